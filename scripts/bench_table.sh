#!/usr/bin/env bash
# The speed table of issue 6 for our binary: linear head, 150 classes, batch 8, AdaRoute after every block
# (rank 64, router hidden 16), 2 threads; training and inference step times on synthetic batches.
# usage: scripts/bench_table.sh [STEPS]   (after scripts/setup.sh; prints one line per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-5}
B=.build/release/adaroute
common="--batch 8 --classes 150 --rank 64 --router-hidden 16 --threads 2 --steps $STEPS"
for mode in train infer; do
    $B bench $mode --model vit_tiny_patch16 --image 224 $common
    $B bench $mode --model vit_tiny_patch16 --image 224 --kernels 3,5,7 $common
    $B bench $mode --model vit_small_patch16 --image 224 $common
    $B bench $mode --model vit_tiny_patch16 --image 512 $common
done
