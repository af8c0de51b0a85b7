#!/usr/bin/env bash
# Runs every benchmark and its peer one after the other on this machine, writing the raw output
# to docs/bench-logs/<section>-cpu-<date>.txt (-<HHMM> added when that log exists: a log already
# cited is never overwritten). Run it on a quiet machine: nothing else building.
#
#   scripts/bench-cpu.sh [SECTION ...]     sections: engine explain represent maximize daemon tui
#                                           evaluate lrp perturbation family gradients memory
#
# PY selects the Python with torch, captum, grad-cam, zennit, scikit-learn, efficientnet-lite-pytorch
# (default /work/venv/ref/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/venv/ref/bin/python}
DAY=$(date -u +%F)
mkdir -p docs/bench-logs
SECTIONS=${*:-engine explain represent maximize daemon tui}
CRIT=(-- --warm-up-time 1 --measurement-time 3)
LRP=lrp-epsilon-plus-flat,lrp-epsilon-gamma-box,lrp-epsilon-alpha2-beta1
FAMILY=gradcam,gradcam++,xgradcam,layercam,eigencam,saliency,guided-backprop,smoothgrad
GRADIENTS=saliency,guided-backprop,smoothgrad,integrated-gradients,gradient-shap

log() { echo "== $1: $(date -u +%T)"; }

# Score-CAM and occlusion take seconds to tens of seconds a run on this CPU: one timed CLI run
# each (model load and decoding included, a fraction of a second), in-process.
perturbation_cli() {
  cargo build --release -q
  for spec in random:resnet18 demo; do
    for m in scorecam occlusion; do
      t0=$(date +%s.%N)
      target/release/convlens --no-daemon explain "$spec" models/assets/photos/chelsea.jpg \
        --method "$m" --npy "/tmp/bench-$m.npy" > /dev/null
      t1=$(date +%s.%N)
      echo "{\"bench\": \"$m\", \"model\": \"$spec\", \"convlens_cli_s\": $(echo "$t1 - $t0" | bc)}"
    done
  done
}

for s in $SECTIONS; do
  out=docs/bench-logs/$s-cpu-$DAY.txt
  if [ -e "$out" ]; then out=docs/bench-logs/$s-cpu-$DAY-$(date -u +%H%M).txt; fi
  log "$s" | tee "$out"
  {
    uname -srm; nproc; "$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
    case $s in
      engine)
        "$PY" benches/peer/torch_engine.py --runs 5
        cargo bench -p convlens-models --bench engine "${CRIT[@]}"
        # The peer again: this machine's speed drifts by tens of percent over minutes, so the
        # peer is timed on both sides of convlens.
        echo "# torch again, after convlens"
        "$PY" benches/peer/torch_engine.py --runs 5 ;;
      explain)
        "$PY" benches/peer/explain_peer.py --runs 5
        CONVLENS_BENCH_METHODS=$FAMILY,integrated-gradients,deeplift,gradient-shap,$LRP \
          cargo bench -p convlens-models --bench explain "${CRIT[@]}"
        perturbation_cli ;;
      perturbation)
        # Score-CAM and occlusion alone (also part of explain), beside pytorch-grad-cam and Captum.
        "$PY" benches/peer/explain_peer.py --runs 1 --only scorecam,occlusion
        perturbation_cli ;;
      family)
        # The Grad-CAM family, guided backprop and SmoothGrad alone (also part of explain).
        "$PY" benches/peer/explain_peer.py --runs 5 --only $FAMILY
        CONVLENS_BENCH_METHODS=$FAMILY cargo bench -p convlens-models --bench explain "${CRIT[@]}" ;;
      gradients)
        # The methods that send the signal to the input alone (also part of explain).
        "$PY" benches/peer/explain_peer.py --runs 5 --only $GRADIENTS
        CONVLENS_BENCH_METHODS=$GRADIENTS cargo bench -p convlens-models --bench explain "${CRIT[@]}" ;;
      lrp)
        # LRP alone (also part of explain): zennit's composites beside convlens'.
        "$PY" benches/peer/explain_peer.py --runs 5 --only saliency,$LRP
        CONVLENS_BENCH_METHODS=saliency,$LRP cargo bench -p convlens-models --bench explain "${CRIT[@]}" ;;
      evaluate)
        "$PY" benches/peer/evaluate_peer.py --runs 3
        cargo bench -p convlens-models --bench evaluate "${CRIT[@]}" ;;
      represent)
        "$PY" benches/peer/represent_peer.py
        cargo bench -p convlens-models --bench represent "${CRIT[@]}" ;;
      maximize)
        "$PY" benches/peer/maximize_step.py
        cargo bench -p convlens-models --bench maximize "${CRIT[@]}" ;;
      daemon)
        "$PY" benches/peer/warm_latency.py
        cargo bench -p convlens-daemon --bench warm_latency "${CRIT[@]}" ;;
      memory)
        # Peak resident memory of a forward pass and input gradient at batch 8, one process per
        # measurement: torch, then convlens with the pass the gradient methods run and with a
        # full trace.
        cargo build --release -q -p convlens-models --example peak_memory
        for m in resnet50 resnet18 demo; do
          spec=random:$m; [ "$m" = demo ] && spec=demo
          "$PY" benches/peer/peak_memory.py --model "$m" --batch 8
          for t in gradient full; do target/release/examples/peak_memory "$spec" 8 2 "$t"; done
        done ;;
      tui)
        cargo build --release -q
        python3 tui/scripts/latency.py target/release/convlens --rounds 20 ;;
      *) echo "unknown section $s" ;;
    esac
  } 2>&1 | grep -v "^\s*Compiling\|^\s*Running\|Benchmarking .*: \(Warming\|Collecting\|Analyzing\)" | tee -a "$out"
done
