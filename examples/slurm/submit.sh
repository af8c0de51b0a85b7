#!/bin/bash
# Submits examples/slurm/top.sbatch as an array job and its merge job after it:
#   MODEL=run.pt DATA=/data/train LAYER=layer4 examples/slurm/submit.sh
# On nodes without GPUs, add DEVICE=cpu SBATCH_GRES=none (an SBATCH_ variable overrides the
# #SBATCH line); tests/slurm_cluster.rs submits it so to a one-node cluster.
set -euo pipefail
here=$(dirname "$0")
jid=$(sbatch --parsable "$here/top.sbatch")
shards=${SHARDS:-shards/top-$jid}
sbatch --dependency=afterok:"$jid" --export=ALL,SHARDS="$shards" "$here/merge.sbatch"
echo "array job $jid; shards in $shards; the merge writes top.json and top.png"
