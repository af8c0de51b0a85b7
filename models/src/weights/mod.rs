//! Weight files: safetensors, PyTorch checkpoints (zip and legacy), synthetic weights.
//!
//! [`load_state_dict`] reads any supported file into a [`StateDict`], recognising the format by
//! its first bytes, not its extension. PyTorch pickles are read by an allow-listed reader that
//! never executes anything: a pickle naming anything but tensor-rebuild functions, storage
//! types and plain containers is refused with [`Error::UnsafePickle`](crate::Error).

mod pickle;
mod safetensors_file;
pub(crate) mod state_dict;
pub mod synthetic;
pub(crate) mod torch_file;

use std::path::Path;

use crate::error::{Error, Result};

pub use state_dict::StateDict;

/// Loads the model weights in the file at `path`: safetensors, a `torch.save` zip archive, or a
/// legacy (pre-1.6) PyTorch checkpoint, whatever the extension.
///
/// In a training checkpoint the state dict is found under its key ('state_dict', 'model',
/// 'ema', ..., up to three levels down), never in the optimizer's state; a `module.` or
/// `_orig_mod.` prefix shared by all names is stripped. Float tensors become f32, integer and
/// bool tensors i64, all on the CPU.
///
/// Errors: [`Error::Io`] if the file cannot be read, [`Error::UnsafePickle`] for a pickle that
/// references anything outside the allow-list, [`Error::Format`] for anything truncated,
/// corrupt or unrecognised.
pub fn load_state_dict(path: &Path) -> Result<StateDict> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_from_bytes(&bytes, path)
}

/// [`load_state_dict`] on the file's bytes; `path` names it in errors.
fn load_from_bytes(bytes: &[u8], path: &Path) -> Result<StateDict> {
    // safetensors first: its first byte is the low byte of the header length, which may be
    // 0x80 (a pickle's PROTO) or `P`; its full check (length within the file, then `{`) is
    // strict enough that no pickle or zip passes it.
    if safetensors_file::looks_safetensors(bytes) {
        safetensors_file::load(bytes, path)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        torch_file::load_zip(bytes, path)
    } else if safetensors_file::looks_truncated_safetensors(bytes) {
        safetensors_file::load(bytes, path)
    } else if torch_file::looks_legacy(bytes) {
        torch_file::load_legacy(bytes, path)
    } else if bytes.get(257..262) == Some(b"ustar") {
        Err(Error::format(
            path,
            "a tar archive: the tar checkpoint format of PyTorch < 0.4 is not supported",
        ))
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(Error::format(
            path,
            format!(
                "not a weight file this tool reads (safetensors, PyTorch zip or legacy \
                 checkpoint): it starts with bytes [{}]",
                head.join(" ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix and many single-byte corruptions of a file must give an error or a state
    /// dict, never a panic.
    fn survive_mutations(bytes: &[u8]) {
        let path = Path::new("mutated");
        let step = (bytes.len() / 300).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let _ = load_from_bytes(bytes.get(..cut).unwrap_or_default(), path);
        }
        for at in (0..bytes.len()).step_by(step) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut m = bytes.to_vec();
                if let Some(b) = m.get_mut(at) {
                    *b ^= flip;
                }
                let _ = load_from_bytes(&m, path);
            }
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/weights");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn weights_mutated_files_never_panic() {
        for name in [
            "tiny.safetensors",
            "tiny.pth",
            "tiny_legacy.pth",
            "checkpoint_two_level_legacy.pth",
        ] {
            survive_mutations(&fixture(name));
        }
    }

    /// A safetensors file holding `w` = [1.5, -2.0], its JSON header padded with spaces to
    /// `header_len` bytes.
    fn safetensors_with_header_len(header_len: usize) -> Vec<u8> {
        let json = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let header = format!("{json:<header_len$}");
        assert_eq!(header.len(), header_len);
        let mut bytes = (header_len as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        for v in [1.5f32, -2.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    /// A header length whose low byte is 0x80 (a pickle's PROTO opcode) is still safetensors:
    /// torchvision's resnet50 saved with `save_file` starts this way.
    #[test]
    fn weights_safetensors_header_length_starting_with_0x80() {
        for header_len in [0x80, 0x180, 0x280] {
            let bytes = safetensors_with_header_len(header_len);
            assert_eq!(bytes[0], 0x80);
            let sd = load_from_bytes(&bytes, Path::new("w.safetensors")).unwrap();
            let w = sd["w"].to_vec1::<f32>().unwrap();
            assert_eq!(w, [1.5, -2.0], "header length {header_len:#x}");
        }
        // Cut short, it is a truncated safetensors file, not a broken pickle.
        let bytes = safetensors_with_header_len(0x180);
        match load_from_bytes(&bytes[..100], Path::new("w.safetensors")) {
            Err(Error::Format { message, .. }) => {
                assert!(message.contains("truncated"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// The header may start with whitespace before its `{`.
    #[test]
    fn weights_safetensors_header_with_leading_whitespace() {
        let mut bytes = safetensors_with_header_len(0x40);
        // Move the padding to the front: " ...{json}".
        let header = String::from_utf8(bytes[8..8 + 0x40].to_vec()).unwrap();
        let moved = format!("{:>64}", header.trim_end());
        bytes[8..8 + 0x40].copy_from_slice(moved.as_bytes());
        assert_eq!(bytes[8], b' ');
        let sd = load_from_bytes(&bytes, Path::new("w.safetensors")).unwrap();
        assert_eq!(sd["w"].to_vec1::<f32>().unwrap(), [1.5, -2.0]);
    }

    #[test]
    fn weights_unknown_bytes_are_format_errors() {
        for bytes in [
            &b""[..],
            b"\x00",
            b"hello world",
            b"PK\x03\x04",
            b"\x80\x02K\x01.",
        ] {
            assert!(matches!(
                load_from_bytes(bytes, Path::new("x")),
                Err(Error::Format { .. })
            ));
        }
    }
}
