#!/usr/bin/env python3
"""Crop the labelled parking spaces of the PKLot/Padova benchmark into busy/free patches.

Used ONLY for judging the occupancy classifier on a different lot and camera; never trained on.

    python training/occupancy/pklot_crops.py --out /tmp/pklot-warp              # perspective warp (default)
    python training/occupancy/pklot_crops.py --out /tmp/pklot-bbox --style bbox  # axis-aligned bbox of the contour

Layout in: <data>/pklot-padova/ParkingLot_dataset/sequence*/{frames,bounding_boxes}/<stem>.{png,jpg,xml}
Layout out: DIR/busy/*.jpg and DIR/free/*.jpg, named <sequence>_<stem>_<space id>.jpg.

Crop styles
- warp: the space's 4-point contour (in XML order p0..p3) is mapped by a perspective transform onto a
  SIZE x SIZE square, p0 -> (0,0), p1 -> (SIZE,0), p2 -> (SIZE,SIZE), p3 -> (0,SIZE) (Pillow's
  Image.transform(PERSPECTIVE, BILINEAR)). This is what the Rust frame pipeline does.
- bbox: the axis-aligned bounding box of the contour is cut out unchanged (not square); the classifier's
  preprocessing resizes it to its input size.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent.parent / "shared" / "data" / "pklot-padova" / "ParkingLot_dataset"


def perspective_coeffs(dst_pts, src_pts):
    """Coefficients for PIL's PERSPECTIVE transform mapping output (dst) coords to input (src) coords."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst_pts, src_pts):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)).tolist()


def parse_spaces(xml_path):
    root = ET.parse(xml_path).getroot()
    out = []
    for sp in root.iter("space"):
        occ = sp.get("occupied")
        if occ is None:
            continue
        pts = [(float(p.get("x")), float(p.get("y"))) for p in sp.find("contour").iter("point")]
        if len(pts) != 4:
            continue
        out.append((int(sp.get("id")), int(occ), pts))
    return out


def iter_crops(data_dir=DEFAULT_DATA, style="warp", size=150):
    """Yield (name, label 0=free 1=busy, PIL RGB image)."""
    data_dir = Path(data_dir)
    for seq in sorted(data_dir.glob("sequence*")):
        for xml_path in sorted((seq / "bounding_boxes").glob("*.xml")):
            stem = xml_path.stem
            frames = [p for p in (seq / "frames").glob(stem + ".*")]
            if not frames:
                print(f"warning: no frame for {xml_path}", file=sys.stderr)
                continue
            frame = Image.open(frames[0]).convert("RGB")
            for sid, occ, pts in parse_spaces(xml_path):
                if style == "warp":
                    dst = [(0, 0), (size, 0), (size, size), (0, size)]
                    coeffs = perspective_coeffs(dst, pts)
                    crop = frame.transform((size, size), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
                elif style == "bbox":
                    xs = [p[0] for p in pts]
                    ys = [p[1] for p in pts]
                    x0, y0 = max(0, int(np.floor(min(xs)))), max(0, int(np.floor(min(ys))))
                    x1, y1 = min(frame.width, int(np.ceil(max(xs)))), min(frame.height, int(np.ceil(max(ys))))
                    crop = frame.crop((x0, y0, x1, y1))
                else:
                    raise ValueError(style)
                yield f"{seq.name}_{stem}_{sid}", occ, crop


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (gets busy/ and free/)")
    ap.add_argument("--style", choices=["warp", "bbox"], default="warp")
    ap.add_argument("--size", type=int, default=150, help="side of the warped square (warp style)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="ParkingLot_dataset folder")
    args = ap.parse_args()
    out = Path(args.out)
    for c in ("busy", "free"):
        (out / c).mkdir(parents=True, exist_ok=True)
    n = {0: 0, 1: 0}
    for name, occ, crop in iter_crops(args.data, args.style, args.size):
        crop.save(out / ("busy" if occ else "free") / f"{name}.jpg", quality=95)
        n[occ] += 1
    print(f"{args.style}: {n[1]} busy, {n[0]} free -> {out}")


if __name__ == "__main__":
    main()
