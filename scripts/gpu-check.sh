#!/usr/bin/env bash
# Run the CUDA build of convlens on the GPU machine (no Rust, no network; a
# python3 with torch 2.11 / CUDA 13 provides the CUDA libraries).
#
#   scripts/gpu-check.sh OUTDIR        (from the repo root)
#
# Expects target/cuda/convlens and target/cuda/tests/* produced by
# `scripts/build-cuda.sh --tests`, or the archive target/cuda.tar.xz from
# `--pack` (unpacked here with python's tarfile, so no xz binary needed).
# Writes one log per step to OUTDIR and every step's exit code to
# OUTDIR/summary.txt (124 = killed by the per-test timeout,
# CONVLENS_TEST_TIMEOUT seconds, default 600).  Deliberately no `set -e`: a
# failing test must not stop the remaining ones.
set -uo pipefail

OUT=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

if [[ ! -d target/cuda && -f target/cuda.tar.xz ]]; then
    python3 -c 'import tarfile; tarfile.open("target/cuda.tar.xz").extractall("target")' \
        || echo "failed to unpack target/cuda.tar.xz" | tee -a "$SUMMARY"
fi

# The tests locate fixtures via the absolute repo path they were compiled in
# (env!("CARGO_MANIFEST_DIR")); make that path lead here if it doesn't exist.
BUILD_ROOT=$(cat target/cuda/BUILD_ROOT 2>/dev/null || true)
if [[ -n $BUILD_ROOT && ! -e $BUILD_ROOT ]]; then
    mkdir -p "$(dirname "$BUILD_ROOT")" && ln -s "$PWD" "$BUILD_ROOT" \
        || echo "could not link $BUILD_ROOT -> $PWD; fixture paths will fail" | tee -a "$SUMMARY"
elif [[ -n $BUILD_ROOT && $(cd "$BUILD_ROOT" && pwd -P) != $(pwd -P) ]]; then
    echo "warning: $BUILD_ROOT exists and is not this checkout; tests read fixtures from it" | tee -a "$SUMMARY"
fi

# step NAME CMD...: run CMD with output to OUTDIR/NAME.log, record exit code
step() {
    local name=$1; shift
    local t0=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    printf '%-40s rc=%-4s %ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$SUMMARY"
    return 0
}

# The binary wants libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10
# (+ libcudnn.so.9): take them from the PyTorch venv's nvidia wheels.
# libcuda.so.1 comes from the driver, already on the default search path.
NV_LIBS=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site, sys, sysconfig
roots = []
try:
    import nvidia                     # namespace package of the nvidia-* wheels
    roots += list(nvidia.__path__)
except Exception:
    pass
for sp in [sysconfig.get_paths()["purelib"], *getattr(site, "getsitepackages", lambda: [])(), site.getusersitepackages()]:
    roots.append(os.path.join(sp, "nvidia"))
seen = []
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "*", "lib"))):
        d = os.path.realpath(d)
        if d not in seen:
            seen.append(d)
print(":".join(seen))
EOF
)
if [[ -z $NV_LIBS ]]; then    # fallback: search the usual places
    NV_LIBS=$(find / -xdev -path '*/site-packages/nvidia/*/lib' -type d 2>/dev/null | sort -u | paste -sd:)
fi
export LD_LIBRARY_PATH=${NV_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CONVLENS_DEVICE=cuda
{
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)"
    echo "repo: $PWD  build root: ${BUILD_ROOT:-?}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
} | tee "$OUT/env.txt"

step nvidia-smi nvidia-smi
if [[ -x target/cuda/convlens ]]; then
    step ldd-convlens ldd target/cuda/convlens
    step convlens-help target/cuda/convlens --help
else
    echo "missing target/cuda/convlens" | tee -a "$SUMMARY"
fi

shopt -s nullglob
tests=(target/cuda/tests/*)
((${#tests[@]})) || echo "no test executables in target/cuda/tests/" | tee -a "$SUMMARY"
# like `cargo test`: cwd and CARGO_MANIFEST_DIR = the package dir;
# timeout: a hung kernel must not eat the whole GPU session
run_test() (
    cd models && CARGO_MANIFEST_DIR=$PWD exec timeout "${CONVLENS_TEST_TIMEOUT:-600}" "$@"
)
for t in "${tests[@]}"; do
    [[ -f $t ]] || continue
    [[ -x $t ]] || chmod +x "$t"
    step "test-$(basename "$t")" run_test "$PWD/$t"
done

if [[ -f benches/peer/run_gpu.sh ]]; then
    export CONVLENS_GPU_CHECK_OUT=$OUT    # in case the bench wants to write there
    step bench-peer bash benches/peer/run_gpu.sh
fi

echo "summary: $SUMMARY"
