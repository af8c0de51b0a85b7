#!/usr/bin/env bash
# The allocator's part of the engine's and the daemon's times (scripts/bench-ab.sh's cases),
# built with mimalloc (what users run) and with glibc's malloc as convlens used it before (the
# `system-allocator` feature of convlens-models: in the daemon, blocks of 1 MiB and more mapped
# on their own so that unloading gives memory back). Run it on a quiet machine. Raw output:
# docs/bench-logs/allocator-cpu-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/bench-ab.sh allocator "mimalloc::" "system:convlens-models/system-allocator:"
