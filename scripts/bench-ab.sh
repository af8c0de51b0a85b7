#!/usr/bin/env bash
# Times the engine bench's interleaved forward passes (fastest and direct) and input gradients,
# and the daemon bench's fresh-image shares, under two or more variants of the build or the
# environment, run one after the other (each round rotating the order, so that a drift of the
# machine favours none), ROUNDS times (default 2). Run it on a quiet machine. Raw output:
# docs/bench-logs/<NAME>-cpu-<date>.txt, each JSON line tagged with its variant.
#
#   scripts/bench-ab.sh NAME LABEL:FEATURES:ENV [LABEL:FEATURES:ENV ...]
#
# FEATURES is a cargo feature list (may be empty); ENV is space-separated VAR=value pairs set for
# the variant's runs (may be empty). scripts/bench-allocator.sh and scripts/bench-candle-pool.sh
# name their variants this way.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
NAME=$1
shift
VARIANTS=("$@")
out=docs/bench-logs/$NAME-cpu-$(date -u +%F).txt
BENCHES=(-p convlens-models --bench engine -p convlens-daemon --bench warm_latency)

features_of() { local v=$1; v=${v#*:}; echo "${v%%:*}"; }
env_of() { local v=$1; v=${v#*:}; echo "${v#*:}"; }

# Builds first, so that nothing compiles while another variant runs.
for variant in "${VARIANTS[@]}"; do
  features=$(features_of "$variant")
  cargo bench -q "${BENCHES[@]}" ${features:+--features "$features"} --no-run
done

# The JSON lines, and criterion's input-gradient cases (the other criterion cases are
# filtered out).
run() {
  local label=${1%%:*} features env
  features=$(features_of "$1")
  env=$(env_of "$1")
  echo "== $label ($env): $(date -u +%T)"
  # shellcheck disable=SC2086
  env $env cargo bench -q -p convlens-models --bench engine ${features:+--features "$features"} \
    -- input_gradient --warm-up-time 1 --measurement-time 3 2>&1 | grep '^{\|^engine/\|time:' |
    sed "s/^{/{\"variant\": \"$label\", /"
  # shellcheck disable=SC2086
  env $env cargo bench -q -p convlens-daemon --bench warm_latency \
    ${features:+--features "$features"} -- no-criterion-case 2>&1 |
    grep '^{' | sed "s/^{/{\"variant\": \"$label\", /"
}

{
  echo "== $NAME: $(date -u +%T)"
  uname -srm
  nproc
  n=${#VARIANTS[@]}
  for round in $(seq "$ROUNDS"); do
    echo "== round $round: $(date -u +%T)"
    for i in $(seq 0 $((n - 1))); do
      run "${VARIANTS[$(((i + round - 1) % n))]}"
    done
  done
} | tee "$out"
