#!/usr/bin/env bash
# Demonstrates exact resumption: trains a small model on the demo subset twice — once straight through,
# once killed with SIGKILL at iteration ≥ KILL_AT and resumed with --resume — then compares the final
# adapter weights byte for byte and the logged loss curves.
# usage: scripts/kill_resume_check.sh [KILL_AT]   (run from the repository root after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
KILL_AT=${1:-803}
B=.build/release/adaroute
W=$(mktemp -d)
cat > "$W/k.yaml" <<YAML
_base_: $PWD/configs/quickstart.yaml
model: {embed_dim: 64, depth: 2, heads: 2, image_size: [64, 64], drop_path: 0.1}
adapter: {adaroute: {rank: 8, kernel_sizes: [3, 5]}}
data:
  root: $PWD/data/camvid-mini
  pipeline: {crop: [64, 64], scale: [160, 96], test_scale: [160, 96]}
train: {iterations: 1500, batch_size: 4, eval_every: 0, checkpoint_every: 7, log_every: 1, warmup_iters: 5, threads: 1, workers: 1}
YAML
$B train --config "$W/k.yaml" --output "$W/straight" > "$W/straight.log" 2>&1
$B train --config "$W/k.yaml" --output "$W/killed" > "$W/killed.log" 2>&1 &
pid=$!
n=0
while [ "$n" -lt "$KILL_AT" ]; do sleep 0.01; n=$(cat "$W/killed/metrics.jsonl" 2>/dev/null | grep -c '"train"' || true); done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
echo "killed after $n logged iterations; latest checkpoint: $(readlink "$W/killed/checkpoints/latest")"
$B train --resume "$W/killed" > "$W/resumed.log" 2>&1
cmp "$W/straight/checkpoints/latest/adapter_model.safetensors" "$W/killed/checkpoints/latest/adapter_model.safetensors" \
    && echo "final adapter weights: byte-identical"
a=$(grep -o '"iteration":[0-9]*,"kind":"train","loss":[^,]*' "$W/straight/metrics.jsonl" | md5sum)
b=$(grep -o '"iteration":[0-9]*,"kind":"train","loss":[^,]*' "$W/killed/metrics.jsonl" | md5sum)
[ "$a" = "$b" ] && [ "$(grep -c "\"train\"" "$W/killed/metrics.jsonl")" = 1500 ] && echo "loss curves (all 1500 iterations): identical" || { echo "loss curves differ"; exit 1; }
rm -rf "$W"
