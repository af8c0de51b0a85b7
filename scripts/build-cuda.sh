#!/usr/bin/env bash
# Build the CUDA flavour of convlens on a machine WITHOUT a GPU or a CUDA
# toolkit, using only NVIDIA's PyPI wheels.  The result is meant to be shipped
# to a GPU machine (see scripts/gpu-check.sh).
#
#   scripts/build-cuda.sh [--cudnn] [--tests] [--pack]
#
#   --cudnn   also enable the `cudnn` feature (downloads ~1 GB cuDNN wheel)
#   --tests   also build the convlens-models test executables (what
#             `cargo test --no-run -p convlens-models` builds) and copy them
#             to target/cuda/tests/
#   --pack    also write target/cuda.tar.xz (~25 MB; target/cuda itself is
#             ~340 MB with tests, too big to ship as is): every executable
#             embeds the same ~60 MB of CUDA kernels, and a large xz window
#             dedupes them.  scripts/gpu-check.sh unpacks it if needed.
#
# Outputs (relative to the repo root):
#   target/cuda/convlens        the release binary
#   target/cuda/tests/*         test executables (with --tests)
#
# Environment knobs:
#   CONVLENS_CUDA_CACHE  wheel + toolkit cache (default ~/.cache/convlens-cuda)
#   CARGO_TARGET_DIR     cargo build dir (default target/cuda-build, kept apart
#                        from the normal CPU target/ so the two never thrash)
#   CUDA_COMPUTE_CAP     GPU arch the kernels are compiled for (default 90 =
#                        H100/H200)
#
# Running the binary: it links dynamically to libcuda.so.1 (from the NVIDIA
# driver), libcudart.so.13, libcublas.so.13, libcublasLt.so.13,
# libcurand.so.10 (+ libcudnn.so.9 with --cudnn).  No rpath is baked in
# because the library location differs per machine; instead put the PyTorch
# venv's wheel folders on LD_LIBRARY_PATH, e.g.
#   SP=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
#   export LD_LIBRARY_PATH=$SP/nvidia/cu13/lib:$SP/nvidia/cudnn/lib:$LD_LIBRARY_PATH
# scripts/gpu-check.sh does exactly that.
#
# Heavy: a clean build took ~11.5 min on a busy 2-core box, mostly nvcc
# compiling candle-kernels; it is redone whenever a Cargo.lock / feature
# change touches candle-core's or cudaforge's dependencies.  Consider running
# it under `nice -n 19`.
set -euo pipefail

CUDNN=0
TESTS=0
PACK=0
for arg in "$@"; do
    case "$arg" in
        --cudnn) CUDNN=1 ;;
        --tests) TESTS=1 ;;
        --pack) PACK=1 ;;
        -h|--help) sed -n '2,/^set /{/^set /d;p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

CACHE=${CONVLENS_CUDA_CACHE:-$HOME/.cache/convlens-cuda}
WHEELS=$CACHE/wheels
TOOLKIT=$CACHE/toolkit        # wheels unzipped here; nvidia/cu13 = CUDA_HOME
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target/cuda-build}
OUT=$REPO_ROOT/target/cuda
mkdir -p "$WHEELS" "$TOOLKIT" "$OUT"

log() { printf '[build-cuda] %s\n' "$*" >&2; }

# --- 1. Download the pinned wheels -----------------------------------------
# Versions are exactly what PyTorch 2.11 (CUDA 13) pins, so the sonames the
# binary records (libcudart.so.13, libcublas.so.13, ...) are the ones present
# in the GPU machine's PyTorch venv.  nvcc must stay at 13.0.x: the cudarc
# build script reads `nvcc --version` to pick its CUDA API bindings.
PINS=(
    nvidia-cuda-nvcc==13.0.88      # nvcc, ptxas, fatbinary (builds candle-kernels)
    nvidia-cuda-crt==13.0.88       # include/crt headers nvcc needs
    nvidia-nvvm==13.0.88           # cicc + libdevice (nvcc's device front end)
    nvidia-cuda-cccl==13.0.85      # CUB/Thrust/libcu++ headers used by the kernels
    nvidia-cuda-runtime==13.0.96   # cuda_runtime.h / libcudart
    nvidia-cublas==13.1.0.3        # libcublas + libcublasLt (linked)
    nvidia-curand==10.4.0.35       # libcurand (linked)
    nvidia-cuda-nvrtc==13.0.88     # libnvrtc (cudarc `nvrtc` feature)
)
if [[ $CUDNN == 1 ]]; then
    PINS+=(nvidia-cudnn-cu13==9.19.0.56)   # libcudnn (~1 GB)
fi

missing=()
for pin in "${PINS[@]}"; do
    name=${pin%%==*} ver=${pin##*==}
    # wheel file names use underscores: nvidia_cuda_nvcc-13.0.88-py3-...whl
    if ! compgen -G "$WHEELS/${name//-/_}-${ver}-*.whl" >/dev/null; then
        missing+=("$pin")
    fi
done
if ((${#missing[@]})); then
    log "downloading ${missing[*]}"
    # --no-deps: the wheels' own deps are irrelevant (we never pip-install them);
    # --only-binary: we want the prebuilt binaries, never an sdist.
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$WHEELS" "${missing[@]}"
fi

# --- 2. Unzip them into one toolkit tree ------------------------------------
# All CUDA 13 wheels install into nvidia/cu13/{bin,include,lib,nvvm}, which
# together form a regular CUDA_HOME layout; cuDNN goes to nvidia/cudnn/.
# `unzip` (not python's zipfile) so that nvcc/ptxas keep their exec bits.
# A stamp per wheel makes re-runs instant.
for pin in "${PINS[@]}"; do
    name=${pin%%==*} ver=${pin##*==}
    stamp=$TOOLKIT/.stamp-${name}-${ver}
    [[ -e $stamp ]] && continue
    whl=$(compgen -G "$WHEELS/${name//-/_}-${ver}-*.whl" | head -n1)
    log "unpacking $(basename "$whl")"
    unzip -q -o "$whl" -x '*.dist-info/*' -d "$TOOLKIT"
    touch "$stamp"
done

export CUDA_HOME=$TOOLKIT/nvidia/cu13
CUDNN_ROOT=$TOOLKIT/nvidia/cudnn

# --- 3. Unversioned .so symlinks -------------------------------------------
# Wheels ship only runtime names (libcublas.so.13); the linker's `-lcublas`
# needs libcublas.so.  The binary still records the versioned soname.
for dir in "$CUDA_HOME/lib" "$CUDNN_ROOT/lib"; do
    [[ -d $dir ]] || continue
    for lib in "$dir"/lib*.so.*; do
        [[ -e $lib ]] || continue
        plain=${lib%%.so.*}.so
        [[ -e $plain ]] || ln -sf "$(basename "$lib")" "$plain"
    done
done

# --- 4. libcuda link stub ---------------------------------------------------
# libcuda belongs to the GPU driver and is in no wheel, but cudarc (with
# `dynamic-linking`) emits `-lcuda`.  A stub that merely defines every driver
# symbol cudarc declares is enough to link; it gets soname libcuda.so.1 so the
# binary asks for the driver's real library at run time.  It lives in
# $CUDA_HOME/lib/stubs, which cudarc's build script adds to the link search
# path, and which is NOT a runtime search path.
STUBS=$CUDA_HOME/lib/stubs
if [[ ! -e $STUBS/libcuda.so.1 ]]; then
    log "building libcuda stub"
    # the cudarc source is only on disk once cargo has fetched it
    cargo fetch --quiet
    cudarc_dir=$(cargo metadata --format-version 1 --features cuda 2>/dev/null | python3 -c '
import json, os, sys
pk = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"]
if not pk: sys.exit("cudarc not in dependency graph")
print(os.path.dirname(pk[0]["manifest_path"]))')
    mkdir -p "$STUBS"
    grep -oE 'pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc_dir/src/driver/sys/mod.rs" \
        | awk '{print $4}' | sort -u \
        | sed 's/.*/void &(void) {}/' > "$STUBS/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 \
        -o "$STUBS/libcuda.so.1" "$STUBS/libcuda_stub.c"
    ln -sf libcuda.so.1 "$STUBS/libcuda.so"
fi

# --- 5. Environment for cargo -----------------------------------------------
export PATH=$CUDA_HOME/bin:$PATH                 # nvcc for cudarc + candle-kernels
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}  # no GPU here to detect it from
FEATURES=cuda
if [[ $CUDNN == 1 ]]; then
    export CUDNN_LIB=$CUDNN_ROOT                 # cudarc searches $CUDNN_LIB/lib
    FEATURES=cuda,cudnn
fi
log "nvcc: $(nvcc --version | tail -n2 | head -n1)"
log "CARGO_TARGET_DIR=$CARGO_TARGET_DIR features=$FEATURES sm_$CUDA_COMPUTE_CAP"

# --- 6. Build the binary (and, with --tests, the test executables) ---------
# One cargo invocation for both on purpose: building test targets unifies the
# dev-dependencies' features into the graph (e.g. criterion changes `half`),
# which changes candle-core's and cudaforge's fingerprints, so a separate
# `cargo test --no-run -p convlens-models` after `cargo build` would compile
# candle-kernels a second time (~10 min).  `cargo build --tests` produces the
# same test executables as `cargo test --no-run`; cargo's JSON messages name
# each one.  Test executables are copied flat to target/cuda/tests/ (their
# fixtures are looked up relative to the repo root, so run them from there).
if [[ $TESTS == 0 ]]; then
    cargo build --release --features "$FEATURES" --bin convlens
else
    rm -rf "$OUT/tests"
    mkdir -p "$OUT/tests"
    list=$OUT/tests/.list
    cargo build --release --features "$FEATURES" \
        -p convlens -p convlens-models --bin convlens --tests --benches \
        --message-format=json-render-diagnostics \
        | MODELS_MANIFEST=$REPO_ROOT/models/Cargo.toml python3 -c '
import json, os, sys
want = os.path.realpath(os.environ["MODELS_MANIFEST"])
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and (m.get("profile", {}).get("test") or "bench" in m.get("target", {}).get("kind", []))
            and os.path.realpath(m.get("manifest_path", "")) == want):
        print(m["executable"])' > "$list"
    while read -r exe; do
        cp -f "$exe" "$OUT/tests/"
        log "test executable: $OUT/tests/$(basename "$exe")"
    done < "$list"
    rm -f "$list"
fi
cp -f "$CARGO_TARGET_DIR/release/convlens" "$OUT/convlens"
log "binary: $OUT/convlens ($(du -h "$OUT/convlens" | cut -f1))"

# The test executables find their fixtures through the compile-time absolute
# path env!("CARGO_MANIFEST_DIR") (e.g. /work/main/models/../tests/fixtures);
# record the build root so gpu-check.sh can symlink it on the GPU machine.
echo "$REPO_ROOT" > "$OUT/BUILD_ROOT"

# --- 8. Optionally one compressed archive to ship ----------------------------
if [[ $PACK == 1 ]]; then
    log "packing target/cuda.tar.xz (a few minutes)"
    tar -C "$REPO_ROOT/target" -cf - cuda \
        | xz -T1 --lzma2=preset=6,dict=192MiB > "$REPO_ROOT/target/cuda.tar.xz.tmp"
    mv -f "$REPO_ROOT/target/cuda.tar.xz.tmp" "$REPO_ROOT/target/cuda.tar.xz"
    log "archive: $REPO_ROOT/target/cuda.tar.xz ($(du -h "$REPO_ROOT/target/cuda.tar.xz" | cut -f1))"
fi
