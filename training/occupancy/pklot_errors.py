#!/usr/bin/env python3
"""Where an occupancy checkpoint goes wrong on PKLot (judge only, never trained on): accuracy of the warp
crops as they are and under each flip/rotation, test-time averages, errors per bay, and a sheet of the
error crops (sequence/bay, true label F/B, p(occupied)).

    training/.venv/bin/python training/occupancy/pklot_errors.py models/occupancy.pt --sheet /tmp/errors.png
"""
import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import occ  # noqa: E402
import pklot_crops  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="an occupancy.pt (train.py / train_gen.py)")
    ap.add_argument("--sheet", help="write the error crops here (PNG)")
    args = ap.parse_args()
    ck = torch.load(args.checkpoint, map_location="cpu")
    model = occ.OccNet(ck["size"], tuple(ck["width"]))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    items = list(pklot_crops.iter_crops(style="warp"))
    x = torch.from_numpy(occ.preprocess_many([im for _, _, im in items], ck["size"]))
    y = np.array([o for _, o, _ in items])

    def p_occupied(batch):
        with torch.no_grad():
            return torch.softmax(model(batch), 1)[:, 1].numpy()

    views = {"as warped": x, "hflip": x.flip(3), "vflip": x.flip(2), "rot180": x.flip(2).flip(3),
             "rot90": x.rot90(1, (2, 3)), "rot270": x.rot90(3, (2, 3)), "transpose": x.transpose(2, 3),
             "antitranspose": x.rot90(1, (2, 3)).flip(2)}
    p = {name: p_occupied(v) for name, v in views.items()}
    for name, v in p.items():
        print(f"{name:14s} accuracy {((v > 0.5) == y).mean():.4f}")
    for name, keys in [("2 views (id, rot180)", ["as warped", "rot180"]), ("4 flips", ["as warped", "hflip", "vflip", "rot180"]),
                       ("all 8", list(views))]:
        mean = np.mean([p[k] for k in keys], 0)
        print(f"average of {name}: accuracy {((mean > 0.5) == y).mean():.4f}")
    pr = p["as warped"]
    wrong = (pr > 0.5) != y
    print(f"errors {wrong.sum()} of {len(y)}: free->occupied {(wrong & (y == 0)).sum()}, occupied->free {(wrong & (y == 1)).sum()}")
    per_bay, seen = collections.Counter(), collections.Counter()
    for (name, label, _), bad in zip(items, wrong):
        bay = name.rsplit("_", 1)[1]
        seen[bay] += 1
        per_bay[(bay, label)] += int(bad)
    for (bay, label), n in per_bay.most_common():
        if n:
            print(f"  bay {bay:>3s} {'busy' if label else 'free'}: wrong in {n} of {seen[bay]} frames")
    if args.sheet:
        idx = np.nonzero(wrong)[0]
        side, cols = 96, 12
        rows = max(1, (len(idx) + cols - 1) // cols)
        sheet = Image.new("RGB", (cols * (side + 4), rows * (side + 16)), "white")
        draw = ImageDraw.Draw(sheet)
        for j, i in enumerate(idx):
            r, c = divmod(j, cols)
            name, label, im = items[i]
            sheet.paste(im.resize((side, side)), (c * (side + 4), r * (side + 16)))
            caption = f"{name.split('_')[0][-1]}/{name.rsplit('_', 1)[1]} {'B' if label else 'F'} {pr[i]:.2f}"
            draw.text((c * (side + 4), r * (side + 16) + side), caption, fill="black")
        sheet.save(args.sheet)
        print(f"error sheet -> {args.sheet}")


if __name__ == "__main__":
    main()
