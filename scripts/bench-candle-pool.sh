#!/usr/bin/env bash
# candle's CPU worker pool between operations (models/src/candle_pool.rs), in
# scripts/bench-ab.sh's cases: its workers spinning up to candle's default of 25 000 times
# before they sleep; sleeping at once (what convlens sets); and no pool at all (one thread for
# candle's elementwise operations). Run it on a quiet machine. Raw output:
# docs/bench-logs/candle-pool-cpu-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/bench-ab.sh candle-pool \
  "spin-25000::CANDLE_BARRIER_POOL_SPIN_LIMIT=25000" \
  "spin-0::" \
  "one-thread::CANDLE_NUM_THREADS=1"
