//! The memory a forward pass and an input gradient take: one process, one model, one batch,
//! measured as the process's peak resident set (Linux `VmHWM`) and its resident set after the
//! model is loaded (`VmRSS`, the weights and the program). `benches/peer/peak_memory.py`
//! measures torch the same way; docs/PERFORMANCE.md gives both.
//!
//! `cargo run --release -p convlens-models --example peak_memory -- [MODEL] [BATCH] [ROUNDS] [TRACE]`
//! (defaults `random:resnet50`, 8, 2, `gradient`). The pass runs `ROUNDS` times, as a user's
//! loop would: the peak after the first round shows whether memory is reused. `TRACE` is
//! `gradient` (the pass the gradient methods run: `Graph::forward_for_gradient`, only what the
//! backward pass reads kept) or `full` (every node's output kept, as an explanation of one
//! image in the daemon keeps it). Prints one JSON object.

use candle_core::{DType, Tensor};
use convlens_models::device::device_from_env;
use convlens_models::graph::BackwardRule;
use convlens_models::{LoadOptions, Model};

/// Any error, printed as is.
type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A `kB` line of /proc/self/status (`VmRSS`, `VmHWM`), in MiB.
fn status_mib(key: &str) -> AnyResult<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or_else(|| format!("/proc/self/status has no {key} line"))?;
    let kib: f64 = line
        .trim_start_matches(key)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

fn main() -> AnyResult<()> {
    convlens_models::process::prepare();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = args.first().map_or("random:resnet50", String::as_str);
    let batch: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let full = match args.get(3).map_or("gradient", String::as_str) {
        "gradient" => false,
        "full" => true,
        other => return Err(format!("TRACE is `gradient` or `full`, not `{other}`").into()),
    };
    let device = device_from_env()?;
    let model = Model::load(spec, &LoadOptions::default(), &device)?;
    let loaded = status_mib("VmRSS")?;
    let x = Tensor::randn(0f32, 1f32, (batch, 3, 224, 224), &device)?;
    let mut peaks = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let trace = if full {
            model.graph.forward(&x, None)?
        } else {
            model
                .graph
                .forward_for_gradient(&x, &[model.graph.output_id()])?
        };
        let out = trace.output().ok_or("the model produced no output")?;
        let signal = out.ones_like()?.to_dtype(DType::F32)?;
        let g = model.graph.backward(
            &trace,
            model.graph.output_id(),
            &signal,
            0,
            BackwardRule::Gradient,
        )?;
        // Read the gradient, so that nothing is left undone.
        let _ = g.sum_all()?.to_scalar::<f32>()?;
        peaks.push(status_mib("VmHWM")?);
    }
    let peak = peaks.last().copied().unwrap_or(loaded);
    println!(
        "{{\"bench\": \"peak_memory\", \"who\": \"convlens\", \"model\": \"{}\", \"batch\": {batch}, \
         \"rounds\": {rounds}, \"trace\": \"{}\", \"loaded_mib\": {loaded:.1}, \"peak_mib\": {peak:.1}, \
         \"peak_after_round_mib\": {peaks:.1?}, \"beyond_loaded_mib\": {:.1}}}",
        spec.trim_start_matches("random:"),
        if full { "full" } else { "gradient" },
        peak - loaded
    );
    Ok(())
}
