#!/usr/bin/env bash
# GPU benchmarks, run by scripts/gpu-check.sh on the GPU machine: convlens's engine benchmark
# (criterion, CONVLENS_DEVICE=cuda) and the PyTorch peer on the same GPU in the same call.
# Usage: benches/peer/run_gpu.sh OUTDIR
out=${1:-${CONVLENS_GPU_CHECK_OUT:?usage: run_gpu.sh OUTDIR}/bench}
mkdir -p "$out"
for exe in target/cuda/tests/engine-*; do
    [ -x "$exe" ] || continue
    (cd models && CONVLENS_DEVICE=cuda timeout 300 "../$exe" --bench --noplot 2>&1) | tee "$out/engine_cuda.txt" | grep -E "time:|^engine" || true
done
python3 benches/peer/torch_engine.py --device cuda --runs 20 2>&1 | tee "$out/torch_engine_cuda.jsonl"
