#!/usr/bin/env bash
# RESULTS.md, sections 1 and 3, over three seeds (0, 1, 2): the repro2018-mnist sweep on MNIST-5k and the
# compress table on MNIST-5k. Everything goes to one run store ($TTEXPLORE_HOME, default /tmp/ttx-seeds), so a
# second launch skips what is done and only rewrites the outputs. About 1 h on the shared 2-core machine
# (measured: one 20-epoch TT cell trains in ~5 s of CPU; a dense 1024x1024 cell in ~40 s).
#
#   nice -n 10 results/reproduce_seeds.sh            # writes results/repro2018-mnist5k-seeds, results/compress-mnist5k-seeds
set -euo pipefail
export TTEXPLORE_HOME=${TTEXPLORE_HOME:-/tmp/ttx-seeds}
OUT=${OUT:-results}
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$TTEXPLORE_HOME"

# 1. The 2018 reproduction's grid (24 TT cells + 5 baselines) at every seed: 87 runs, 2 processes x 1 thread.
python -m ttexplore sweep --preset repro2018-mnist --seeds "$(echo $SEEDS | tr ' ' ,)" --workers 2 \
    --out "$OUT/repro2018-mnist5k-seeds"

# 3. The dense net to compress, one per seed (10 epochs, as the single-seed table), then TT-SVD of each at
#    ranks 1-64, fine-tuned 3 epochs, beside the TT net of each rank and seed trained 10 epochs from scratch.
runs=()
for seed in $SEEDS; do
    summary="$TTEXPLORE_HOME/dense-seed-$seed.json"
    if [ ! -s "$summary" ]; then
        python -m ttexplore train --dataset mnist5k --layer dense --epochs 10 --evals-per-epoch 1 --seed "$seed" \
            --record --name "dense seed $seed" --tag compress-source --threads 1 --quiet --json "$summary"
    fi
    runs+=(--run "$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['run_id'])" "$summary")")
done
python -m ttexplore compress "${runs[@]}" --in-modes 4x8x8x4 --out-modes 4x8x8x4 --ranks 1,2,4,8,16,32,64 \
    --finetune-epochs 3 --train-scratch --scratch-epochs 10 --threads 1 --quiet --out "$OUT/compress-mnist5k-seeds"
