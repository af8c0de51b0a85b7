#!/usr/bin/env bash
# The allocator's part of the engine's and the daemon's times: the engine bench's interleaved
# forward passes (fastest and direct) and input gradients, and the daemon bench's fresh-image
# shares, built with mimalloc (what users run) and with glibc's malloc as convlens used it
# before (the `system-allocator` feature of convlens-models: in the daemon, blocks of 1 MiB and
# more mapped on their own so that unloading gives memory back), run one after the other (each
# round swapping the order), ROUNDS times (default 2). Run it on a quiet machine. Raw output:
# docs/bench-logs/allocator-cpu-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
out=docs/bench-logs/allocator-cpu-$(date -u +%F).txt
SYSTEM=(--features convlens-models/system-allocator)
# Builds first, so that nothing compiles while the other runs.
for features in "" "${SYSTEM[*]}"; do
  # shellcheck disable=SC2086
  cargo bench -q -p convlens-models --bench engine -p convlens-daemon --bench warm_latency $features --no-run
done
# The JSON lines, and criterion's input-gradient cases (the other criterion cases are
# filtered out).
run() {
  echo "== $1: $(date -u +%T)"
  # shellcheck disable=SC2086
  cargo bench -q -p convlens-models --bench engine $2 -- input_gradient \
    --warm-up-time 1 --measurement-time 3 2>&1 | grep '^{\|^engine/\|time:' |
    sed "s/^{/{\"allocator\": \"$1\", /"
  # shellcheck disable=SC2086
  cargo bench -q -p convlens-daemon --bench warm_latency $2 -- no-criterion-case 2>&1 |
    grep '^{' | sed "s/^{/{\"allocator\": \"$1\", /"
}
{
  echo "== allocator: $(date -u +%T)"
  uname -srm
  nproc
  for round in $(seq "$ROUNDS"); do
    echo "== round $round: $(date -u +%T)"
    # Each round swaps the order, so that a drift of the machine favours neither.
    if ((round % 2)); then
      run mimalloc ""
      run system "${SYSTEM[*]}"
    else
      run system "${SYSTEM[*]}"
      run mimalloc ""
    fi
  done
} | tee "$out"
