//! What the bench targets share: whether criterion is benchmarking (`cargo bench`) or cargo
//! runs the bench once as a test (`cargo test --all-targets`), and waiting for the device.

#![allow(dead_code)] // Each bench uses the helpers it needs.

use candle_core::Device;

/// Whether this run is `cargo bench` (criterion passes `--bench`), not a test run.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The input side: 224 when benchmarking, `test_size` when cargo runs the bench as a test (so
/// that it checks the bench works without costing CI minutes).
pub fn input_size(test_size: usize) -> usize {
    if benchmarking() {
        224
    } else {
        test_size
    }
}

/// Waits for the device to finish what was queued (a GPU runs asynchronously).
pub fn sync(device: &Device) {
    device.synchronize().expect("device synchronizes");
}
