//! The metrics a training run writes beside its checkpoint (`checkpoint.json` beside
//! `checkpoint.safetensors`, as `convlens train-demo` does), for the version list.
//!
//! The trainer may already have written the next checkpoint's metrics by the time the daemon
//! reads them (they are written just before the weights). When the weights' safetensors metadata
//! names their step and the JSON beside them is of another step, the numbered metrics of that
//! step (`step-000200.json`) are used instead, and none when there are none.

use std::io::Read;
use std::path::Path;

use convlens_models::train::checkpoint::numbered_name;
use serde_json::Value;

/// The largest safetensors header read for its metadata.
const MAX_HEADER: u64 = 100 << 20;

/// A JSON object read from `path`, if it is one.
fn read_object(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value.is_object().then_some(value)
}

/// The `step` of a safetensors file's metadata (`__metadata__.step`), when it has one.
pub fn safetensors_step(weights: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(weights).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    header
        .get("__metadata__")?
        .get("step")?
        .as_str()?
        .parse()
        .ok()
}

/// The metrics of checkpoint `path`, whose bytes as loaded are in `weights` (a kept copy, or the
/// file itself): the JSON beside it, or the numbered one of the weights' step.
pub fn metrics_beside(path: &Path, weights: &Path) -> Option<Value> {
    let beside = read_object(&path.with_extension("json"));
    let Some(step) = safetensors_step(weights) else {
        return beside;
    };
    let step_of = |m: &Value| m.get("step").and_then(Value::as_u64);
    match beside {
        Some(m) if step_of(&m).is_none_or(|s| s == step) => Some(m),
        _ => {
            let numbered = path.with_file_name(numbered_name(step as usize));
            read_object(&numbered.with_extension("json")).filter(|m| step_of(m) == Some(step))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with one tensor and `step` in its metadata, written by hand.
    fn weights(path: &Path, step: Option<u64>) {
        let mut header = serde_json::json!({
            "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
        });
        if let Some(s) = step {
            header["__metadata__"] = serde_json::json!({"format": "pt", "step": s.to_string()});
        }
        let header = header.to_string().into_bytes();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn the_metrics_of_the_weights_step_are_found_even_when_the_next_ones_are_beside() {
        let dir = std::env::temp_dir().join(format!("convlens-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ckpt = dir.join("checkpoint.safetensors");
        let m = |step: u64| serde_json::json!({"step": step, "test_accuracy": step as f64 / 100.0});
        let write = |name: &str, v: &Value| std::fs::write(dir.join(name), v.to_string()).unwrap();

        weights(&ckpt, Some(20));
        assert_eq!(safetensors_step(&ckpt), Some(20));
        assert_eq!(metrics_beside(&ckpt, &ckpt), None, "no JSON at all");
        write("checkpoint.json", &m(20));
        assert_eq!(metrics_beside(&ckpt, &ckpt), Some(m(20)), "the JSON beside");
        write("checkpoint.json", &m(30));
        assert_eq!(
            metrics_beside(&ckpt, &ckpt),
            None,
            "beside is of another step"
        );
        write("step-000020.json", &m(20));
        assert_eq!(
            metrics_beside(&ckpt, &ckpt),
            Some(m(20)),
            "the numbered one"
        );

        // Weights without a step (PyTorch's, another tool's): whatever JSON is beside.
        weights(&ckpt, None);
        assert_eq!(safetensors_step(&ckpt), None);
        assert_eq!(metrics_beside(&ckpt, &ckpt), Some(m(30)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
