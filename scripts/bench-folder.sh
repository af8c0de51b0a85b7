#!/usr/bin/env bash
# A folder sweep at scale, beside its PyTorch peer: makes folders of 10 000 and 100 000 small
# images (28x28 PNGs, not committed; /tmp/convlens-bench-folder-N), then times
# `convlens --no-daemon top random:small-vgg DIR --layer features.3 --no-cache` (reading ahead,
# and with --no-prefetch), `embed` the same way (bare; writing --out and --parquet; drawing a
# PCA map), `top` as four shards and their `merge`, and benches/peer/folder_peer.py (a
# DataLoader with 4 workers), with each one's peak RSS (/usr/bin/time). Writes
# docs/bench-logs/folder-cpu-<date>.txt. Run it on a quiet machine.
#
#   scripts/bench-folder.sh [SIZES]      (default: 10000 100000)
#
# PY selects a Python with torch, torchvision and Pillow (default /work/venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/venv/bin/python}
SIZES=${*:-10000 100000}
out=docs/bench-logs/folder-cpu-$(date -u +%F).txt
mkdir -p docs/bench-logs
cargo build --release -q
bin=target/release/convlens

# Peak RSS in MiB and seconds of a command, on one line after its label.
measure() {
  local label=$1; shift
  /usr/bin/time -f "$label peak_rss_mib=%M seconds=%e" -o /tmp/convlens-bench-time "$@" > /dev/null
  awk '{ split($2, a, "="); printf "%s peak_rss_mib=%.1f %s\n", $1, a[2] / 1024, $3 }' \
    /tmp/convlens-bench-time
}

{
  uname -srm; nproc
  for n in $SIZES; do
    dir=/tmp/convlens-bench-folder-$n
    if [ ! -f "$dir/.complete" ]; then
      rm -rf "$dir"
      "$PY" - "$dir" "$n" <<'PYEOF'
import os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for i in range(n):
    sub = os.path.join(root, f"{i // 1000:03d}")
    os.makedirs(sub, exist_ok=True)
    pixels = (rng.random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(pixels, "L").save(os.path.join(sub, f"{i:06d}.png"))
open(os.path.join(root, ".complete"), "w").close()
PYEOF
    fi
    echo "== $n images"
    measure "top/$n" $bin --no-daemon -q top random:small-vgg "$dir" --layer features.3 --no-cache
    measure "top-in-turn/$n" $bin --no-daemon -q top random:small-vgg "$dir" --layer features.3 \
      --no-cache --no-prefetch
    measure "embed/$n" $bin --no-daemon -q embed random:small-vgg "$dir" --no-cache
    # The codes written as they come (.npy and Parquet), and a PCA map drawn: rows stream.
    measure "embed-out/$n" $bin --no-daemon -q embed random:small-vgg "$dir" --no-cache \
      --out /tmp/convlens-bench-codes.npy --parquet /tmp/convlens-bench-codes.parquet
    measure "embed-pca/$n" $bin --no-daemon -q embed random:small-vgg "$dir" --no-cache \
      --map pca -o /tmp/convlens-bench-map.png
    # Four shards of top, then their merge (which streams the shards' rows).
    rm -rf /tmp/convlens-bench-shards
    for i in 0 1 2 3; do
      measure "top-shard-$i-of-4/$n" $bin --no-daemon -q top random:small-vgg "$dir" \
        --layer features.3 --no-cache --shard "$i/4" --shard-dir /tmp/convlens-bench-shards
    done
    measure "merge/$n" $bin --no-daemon -q merge /tmp/convlens-bench-shards --json
    "$PY" benches/peer/folder_peer.py "$dir" --workers 4
  done
} 2>&1 | tee "$out"
