#!/usr/bin/env python3
"""Make the bundled demo dataset data/camvid-mini from the staged CamVid copy.

This script is a record of how the committed files under data/camvid-mini were made; nothing in the build or
in `adaroute` runs it. Run it from the repository root (needs Python 3 and Pillow):

    python3 scripts/make_demo_subset.py [--src ../shared/data/camvid] [--dst data/camvid-mini]

Selection (deterministic, from the sorted file names of the source split):
  train: every 9th image starting at the first (indices 0, 9, ..., 351 of 367) -> 40 images, spread over the
         three sequences 0001TP, 0006R0 and 0016E5 in proportion to their length;
  val:   every 8th image starting at the first, the first 12 of those (indices 0, 8, ..., 88 of 101) -> 12.
Images: 480x360 -> 240x180, Pillow BILINEAR (antialiased when downscaling), RGB JPEG quality 90, 4:4:4
(subsampling=0), no metadata. Masks: 480x360 -> 240x180, NEAREST, 8-bit single-channel ("L") PNG,
optimize=True; values stay 0..10 and 255 (ignore).

After writing, it prints per-class pixel counts for each split and fails if any class 0..10 is absent from
the train split or if a mask holds a value outside 0..10 and 255.
"""
import argparse
import os
import sys

from PIL import Image

CLASSES = ["sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist"]
IGNORE = 255
SIZE = (240, 180)  # width, height
# split -> (step, count)
SELECTION = {"train": (9, 40), "val": (8, 12)}


def select(names, step, count):
    picked = names[::step][:count]
    if len(picked) != count:
        sys.exit(f"selection rule gives {len(picked)} files, expected {count}")
    return picked


def class_counts(mask):
    hist = mask.histogram()  # 256 bins for mode "L"
    bad = [v for v, n in enumerate(hist) if n and v >= len(CLASSES) and v != IGNORE]
    return hist, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="../shared/data/camvid")
    ap.add_argument("--dst", default="data/camvid-mini")
    args = ap.parse_args()

    totals = {}
    for split, (step, count) in SELECTION.items():
        img_src = os.path.join(args.src, "images", split)
        mask_src = os.path.join(args.src, "masks", split)
        img_dst = os.path.join(args.dst, "images", split)
        mask_dst = os.path.join(args.dst, "masks", split)
        os.makedirs(img_dst, exist_ok=True)
        os.makedirs(mask_dst, exist_ok=True)

        names = sorted(f for f in os.listdir(img_src) if f.endswith(".jpg"))
        picked = select(names, step, count)
        hist_total = [0] * 256
        for name in picked:
            stem = name[:-len(".jpg")]
            with Image.open(os.path.join(img_src, name)) as im:
                im = im.convert("RGB")
                im.resize(SIZE, Image.BILINEAR).save(
                    os.path.join(img_dst, stem + ".jpg"), "JPEG", quality=90, subsampling=0)
            with Image.open(os.path.join(mask_src, stem + ".png")) as m:
                if m.mode != "L":
                    sys.exit(f"{stem}.png: mask mode {m.mode}, expected L")
                small = m.resize(SIZE, Image.NEAREST)
            hist, bad = class_counts(small)
            if bad:
                sys.exit(f"{stem}.png: unexpected mask values {bad}")
            small.save(os.path.join(mask_dst, stem + ".png"), "PNG", optimize=True)
            hist_total = [a + b for a, b in zip(hist_total, hist)]
        totals[split] = hist_total

        pixels = len(picked) * SIZE[0] * SIZE[1]
        seqs = {}
        for n in picked:
            seqs[n.split("_")[0]] = seqs.get(n.split("_")[0], 0) + 1
        print(f"{split}: {len(picked)} images ({', '.join(f'{k} {v}' for k, v in sorted(seqs.items()))}), "
              f"{pixels} pixels")
        for c, name in enumerate(CLASSES):
            print(f"  {c:2d} {name:<12s} {hist_total[c]:8d}  {100.0 * hist_total[c] / pixels:6.2f}%")
        print(f"  255 {'ignore':<11s} {hist_total[IGNORE]:8d}  {100.0 * hist_total[IGNORE] / pixels:6.2f}%")

    missing = [CLASSES[c] for c in range(len(CLASSES)) if totals["train"][c] == 0]
    if missing:
        sys.exit(f"classes absent from the train split: {missing}; change the selection rule")
    print("every class 0..10 appears in train")


if __name__ == "__main__":
    main()
