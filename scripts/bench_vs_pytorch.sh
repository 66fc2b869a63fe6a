#!/usr/bin/env bash
# Issue 6's table side by side: for each config, the PyTorch reference (eager, fp32) and then our binary,
# in the same run (machines drift between days: only ratios measured back to back are honest).
# usage: scripts/bench_vs_pytorch.sh [STEPS]   (after scripts/setup.sh and ../shared/reference/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-5}
REF=${ADAROUTE_REFERENCE_DIR:-../shared/reference}
PY=${ADAROUTE_REFERENCE_PYTHON:-/tmp/adaroute-refenv/bin/python}
B=$PWD/.build/release/adaroute
common="--batch 8 --classes 150 --rank 64 --router-hidden 16 --threads 2 --steps $STEPS"
run() { # name, reference mode, image, timm arch, our model arguments
    echo "== $1"
    (cd "$REF" && "$PY" adaroute_ref.py bench-one --arch "$4" --mode "$2" --img "$3" --batch 8 --threads 2 \
        --out "$(mktemp)" 2>&1 | grep RESULT)
    $B bench train $5 $common | tail -1
    $B bench infer $5 $common | tail -1
}
run ti224 adaroute 224 vit_tiny_patch16_224 "--model vit_tiny_patch16 --image 224"
run ti224conv adaroute_conv 224 vit_tiny_patch16_224 "--model vit_tiny_patch16 --image 224 --kernels 3,5,7"
run s224 adaroute 224 vit_small_patch16_224 "--model vit_small_patch16 --image 224"
run ti512 adaroute 512 vit_tiny_patch16_224 "--model vit_tiny_patch16 --image 512"
