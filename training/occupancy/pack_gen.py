#!/usr/bin/env python3
"""Pack the extra data train_gen.py reads into one folder (default .gpudata/occgen, carried to a GPU box; delete after).

    training/.venv/bin/python training/occupancy/pack_gen.py [--out .gpudata/occgen]

Writes (nothing from pklot-padova, ever):
  A/{busy,free}/*.jpg     copy of CNRPark camera A (for a machine without ../shared)
  extcars.npz             `cars` uint8 [N,150,150,3]: square crops around the plate of every car photo in
                          openalpr-benchmarks/endtoend/{us,eu,br} and kaggle-car-plates-416 (one per duplicate group):
                          the car's front/back, used as extra real "occupied" appearance (composited on ground)
  cnrext.npz              `imgs` [320,150,150,3], `names`, `labels` (1/0, -1 ambiguous): the hand-labelled
                          cnr-ext-sample spaces (cnrext_labels.csv) -- the selection proxy, never trained on
"""
import argparse
import csv
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent.parent / "shared" / "data"


def car_crop(im, x, y, w, h, size=150):
    """Square around a plate box: side 3.8 plate widths, plate centre at 3/4 of the height."""
    side = 3.8 * w
    cx, cy = x + w / 2, y + h / 2 - 0.25 * side
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    out = max(0, -box[0]) + max(0, -box[1]) + max(0, box[2] - im.width) + max(0, box[3] - im.height)
    if out > 0.3 * side or side < 40:
        return None
    return im.crop(tuple(round(v) for v in box)).resize((size, size), Image.BILINEAR)


def ext_cars():
    cars = []
    for region in ("us", "eu", "br"):
        for txt in sorted((DATA / "openalpr-benchmarks" / "endtoend" / region).glob("*.txt")):
            parts = txt.read_text().split()
            if len(parts) < 5:
                continue
            jpg = txt.with_suffix(".jpg")
            if not jpg.exists():
                continue
            im = Image.open(jpg).convert("RGB")
            c = car_crop(im, *(float(v) for v in parts[1:5]))
            if c is not None:
                cars.append(np.asarray(c))
    kg = DATA / "kaggle-car-plates-416"
    dup = set()
    for line in (kg / "duplicate_groups.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        dup.update(line.split()[1:])
    for xml in sorted((kg / "annotations").glob("*.xml")):
        if xml.stem in dup:
            continue
        root = ET.parse(xml).getroot()
        im = Image.open(kg / "images" / (xml.stem + ".png" if (kg / "images" / (xml.stem + ".png")).exists() else xml.stem + ".jpg")).convert("RGB")
        for ob in root.iter("object"):
            bb = ob.find("bndbox")
            x0, y0, x1, y1 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            c = car_crop(im, x0, y0, x1 - x0, y1 - y0)
            if c is not None:
                cars.append(np.asarray(c))
    return np.stack(cars)


def cnr_ext():
    d = DATA / "cnr-ext-sample" / "results"
    labels = {}
    for row in csv.reader(l for l in open(HERE / "cnrext_labels.csv") if not l.startswith("#")):
        if row[0] != "space":
            labels[row[0]] = int(row[1])
    imgs, names = [], []
    for jpg in sorted(d.glob("FULL_IMAGE_1000x750/*/*/camera*/*.jpg")):
        if jpg.stem.endswith("_output"):
            continue
        cam = jpg.parent.name
        im = Image.open(jpg).convert("RGB")
        sx, sy = im.width / 2592, im.height / 1944
        for row in csv.DictReader(open(d / f"{cam}.csv")):
            x, y, w, h = (int(row[k]) for k in "XYWH")
            box = (round(x * sx), round(y * sy), round((x + w) * sx), round((y + h) * sy))
            imgs.append(np.asarray(im.crop(box).resize((150, 150), Image.BILINEAR)))
            names.append(f"{cam}_{row['SlotId']}")
    return np.stack(imgs), np.array(names), np.array([labels[n] for n in names])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE.parent.parent / ".gpudata" / "occgen"))
    ap.add_argument("--no-cnr", action="store_true", help="do not copy CNRPark A")
    ap.add_argument("--eval-dir", help="also write the labelled cnr-ext crops as DIR/{busy,free}/*.png (valet eval occupancy)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_cnr:
        src = DATA / "cnrpark-patches" / "CNRPark-Patches-150x150" / "A"
        shutil.copytree(src, out / "A", dirs_exist_ok=True)
    cars = ext_cars()
    np.savez_compressed(out / "extcars.npz", cars=cars)
    imgs, names, labels = cnr_ext()
    np.savez_compressed(out / "cnrext.npz", imgs=imgs, names=names, labels=labels)
    if args.eval_dir:
        for c in ("busy", "free"):
            (Path(args.eval_dir) / c).mkdir(parents=True, exist_ok=True)
        for im, n, l in zip(imgs, names, labels):
            if l >= 0:
                Image.fromarray(im).save(Path(args.eval_dir) / ("busy" if l else "free") / f"{n}.png")
    print(f"{len(cars)} external car crops, {len(imgs)} cnr-ext spaces ({int((labels >= 0).sum())} labelled) -> {out}")


if __name__ == "__main__":
    main()
