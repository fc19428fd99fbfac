"""Train, export and evaluate PlateNet-ocr: a small conv CTC reader for one-row plate crops.

One command:  training/.venv/bin/python training/plates/train_ocr.py [--steps N] [--device cuda]

Input: the crop the Rust rectification stage makes (detected box + margins, grayscale, 32×128).
Training samples, drawn at random each step:
  * real endtoend plates of the train split, cut with a jittered box (as a detector would give it);
  * seg_and_ocr US crops and openalpr-train-detector/br crops (text from the file name), set into a
    background with the same margins;
  * synthetic plates from synth.py (us/eu/br styles) set into real photo backgrounds.
Held-out endtoend plates (models/plates-holdout.txt) are never used, and neither are seg_and_ocr crops
whose plate text equals a held-out plate.
Writes models/plate-ocr.onnx, models/plate-ocr.json and models/plate-ocr-metrics.json.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import augment  # noqa: E402
import common  # noqa: E402
import synth  # noqa: E402

H, W = 32, 128
CHECKPOINT = "plate-ocr"
MARGIN_X, MARGIN_Y = 0.08, 0.15
MEAN, STD = 0.5, 0.5
SPEC = {"name": "PlateNet-ocr", "input": "crop", "height": H, "width": W, "channels": 1, "mean": MEAN, "std": STD,
        "alphabet": common.ALPHABET, "blank": 0, "margin_x": MARGIN_X, "margin_y": MARGIN_Y}


class PlateOcr(nn.Module):
    """Conv stack that keeps 32 columns, collapses height, then reads along the row (CTC)."""

    def __init__(self, classes: int = len(common.ALPHABET) + 1):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, 16), nn.MaxPool2d(2),            # 16×64
            *block(16, 32), nn.MaxPool2d(2),           # 8×32
            *block(32, 64), *block(64, 64), nn.MaxPool2d((2, 1)),  # 4×32
            *block(64, 96), nn.MaxPool2d((2, 1)),      # 2×32
            nn.Conv2d(96, 128, (2, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),  # 1×32
        )
        self.sequence = nn.Sequential(
            nn.Conv1d(128, 128, 3, padding=1, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 3, padding=1, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv1d(128, classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,1,32,128] -> [N,T,C] logits
        f = self.features(x).squeeze(2)
        return self.sequence(f).permute(0, 2, 1)


def crop_box(im: Image.Image, x: float, y: float, w: float, h: float) -> Image.Image:
    """The rectification crop of Rust: box grown by the margins, clamped to the frame."""
    x0, y0 = max(0.0, x - MARGIN_X * w), max(0.0, y - MARGIN_Y * h)
    x1, y1 = min(im.width, x + w + MARGIN_X * w), min(im.height, y + h + MARGIN_Y * h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        x0, y0, x1, y1 = 0, 0, im.width, im.height
    return im.crop((int(x0), int(y0), int(math.ceil(x1)), int(math.ceil(y1))))


def jitter(rng: random.Random, x: float, y: float, w: float, h: float, s: float = 1.0):
    """A box as a detector might return it: edges off by a few percent."""
    dx0, dx1 = rng.gauss(0, 0.04 * s) * w, rng.gauss(0, 0.04 * s) * w
    dy0, dy1 = rng.gauss(0, 0.08 * s) * h, rng.gauss(0, 0.08 * s) * h
    return x + dx0, y + dy0, max(4.0, w - dx0 + dx1), max(4.0, h - dy0 + dy1)


def tilt(rng: random.Random, im: Image.Image, amount: float) -> Image.Image:
    """Perspective and rotation of a plate-centred crop."""
    w, h = im.size
    j = lambda s: rng.uniform(-s, s)  # noqa: E731
    sx, sy = amount * 0.08 * w, amount * 0.12 * h
    shear = j(amount * 0.12) * h
    src = [(j(sx) + shear, j(sy)), (w + j(sx) + shear, j(sy)), (w + j(sx) - shear, h + j(sy)), (j(sx) - shear, h + j(sy))]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    return im.transform((w, h), Image.Transform.PERSPECTIVE, augment.perspective_coeffs(src, dst),
                        Image.Resampling.BILINEAR)


class Samples:
    def __init__(self, seed: int, backgrounds: list[Path]):
        self.train, held = common.split()
        held_texts = {p.text for s in held for p in s.plates}
        self.real = [(s.path, p) for s in self.train for p in s.plates if p.text]
        self.crops = [c for c in common.named_crops() if c[1] not in held_texts]
        self.backgrounds = backgrounds
        self.cache: dict[Path, Image.Image] = {}
        self.rng = random.Random(seed)

    def image(self, path: Path) -> Image.Image:
        if path not in self.cache:
            self.cache[path] = common.open_image(path)
        return self.cache[path]

    def in_context(self, plate: Image.Image) -> tuple[Image.Image, tuple[float, float, float, float]]:
        """Set a tight plate into a piece of real photo, returning the scene and the plate's box."""
        rng = self.rng
        pw = rng.randint(60, 220)
        ph = max(8, int(pw * plate.height / plate.width * rng.uniform(0.85, 1.15)))
        bg = self.image(rng.choice(self.backgrounds))
        cw, ch = int(pw * 1.6), int(ph * 2.0)
        x0, y0 = rng.randint(0, max(0, bg.width - cw)), rng.randint(0, max(0, bg.height - ch))
        scene = bg.crop((x0, y0, x0 + cw, y0 + ch)).resize((cw, ch))
        px, py = (cw - pw) // 2, (ch - ph) // 2
        scene.paste(plate.resize((pw, ph), Image.Resampling.BILINEAR), (px, py))
        return scene, (px, py, pw, ph)

    def one(self) -> tuple[np.ndarray, str]:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            path, p = rng.choice(self.real)
            scene, box, text = self.image(path), (p.x, p.y, p.w, p.h), p.text
        elif r < 0.6:
            path, text, _ = rng.choice(self.crops)
            scene, box = self.in_context(self.image(path))
        else:
            plate, text = synth.render(rng, rng.choice(["us", "eu", "eu", "br"]))
            scene, box = self.in_context(plate)
        crop = crop_box(scene, *jitter(rng, *box))
        if rng.random() < 0.7:
            crop = tilt(rng, crop, rng.uniform(0.3, 1.0))
        if rng.random() < 0.25:  # far away plates: few pixels
            small = (max(8, int(crop.width * rng.uniform(0.3, 0.7))), max(4, int(crop.height * rng.uniform(0.3, 0.7))))
            crop = crop.resize(small, Image.Resampling.BILINEAR)
        crop = augment.photometric(rng, crop)
        return to_input(crop), text


def to_input(crop: Image.Image) -> np.ndarray:
    g = np.asarray(crop.convert("RGB").resize((W, H), Image.Resampling.BILINEAR), dtype=np.float32)
    g = g[..., 0] * 0.299 + g[..., 1] * 0.587 + g[..., 2] * 0.114
    return ((g / 255.0 - MEAN) / STD)[None]


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, seed: int, backgrounds: list[Path]):
        self.seed, self.backgrounds = seed, backgrounds

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        samples = Samples(self.seed + (info.id if info else 0) * 7919, self.backgrounds)
        while True:
            yield samples.one()


def collate(items):
    xs = torch.from_numpy(np.stack([x for x, _ in items]))
    targets = [torch.tensor([common.ALPHABET.index(c) + 1 for c in t]) for _, t in items]
    lengths = torch.tensor([len(t) for t in targets])
    return xs, torch.cat(targets), lengths, [t for _, t in items]


def greedy(logits: torch.Tensor) -> list[str]:
    out = []
    for row in logits.argmax(-1).tolist():
        s, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                s.append(common.ALPHABET[k - 1])
            prev = k
        out.append("".join(s))
    return out


def held_out_crops() -> list[tuple[np.ndarray, str, str]]:
    _, held = common.split()
    out = []
    for s in held:
        im = common.open_image(s.path)
        for p in s.plates:
            out.append((to_input(crop_box(im, p.x, p.y, p.w, p.h)), p.text, s.region))
    return out


def evaluate(model: nn.Module, held, device) -> dict:
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack([h[0] for h in held])).to(device)
        reads = greedy(model(x).cpu())
    per = {}
    for (_, truth, region), read in zip(held, reads):
        n, ok = per.get(region, (0, 0))
        per[region] = (n + 1, ok + (read == truth))
    model.train()
    res = {r: {"n": n, "exact": ok / n} for r, (n, ok) in per.items()}
    res["all"] = {"n": len(held), "exact": sum(read == h[1] for h, read in zip(held, reads)) / len(held)}
    res["misreads"] = [(h[1], read) for h, read in zip(held, reads) if read != h[1]]
    return res


def main() -> None:
    ap = common.training_args(steps=6000, batch=128)
    ap.add_argument("--init", metavar="PT", help="start from this checkpoint (fine-tuning)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.export_only:
        model = PlateOcr()
        model.load_state_dict(torch.load(args.export_only, map_location="cpu"))
        model.eval()
        export(model, Path(args.out), evaluate(model, held_out_crops(), "cpu"), args)
        return
    backgrounds = [p for s in common.split()[0] for p in [s.path]] + common.background_photos()
    held = held_out_crops()
    model = PlateOcr()
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    loader = torch.utils.data.DataLoader(Stream(args.seed, backgrounds), batch_size=args.batch,
                                         num_workers=args.workers, collate_fn=collate, persistent_workers=True)
    t0, best = time.time(), None
    for step, (x, targets, lengths, _) in enumerate(loader, 1):
        x = x.to(device)
        logp = F.log_softmax(model(x), -1).permute(1, 0, 2)  # [T,N,C]
        loss = ctc(logp, targets, torch.full((x.shape[0],), logp.shape[0], dtype=torch.long), lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        progress = (time.time() - t0) / (args.minutes * 60) if args.minutes else step / args.steps
        for g in opt.param_groups:  # 5 % warm-up, then cosine to zero
            g["lr"] = args.lr * (progress / 0.05 if progress < 0.05 else 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        done = progress >= 1.0
        if step % 250 == 0 or done:
            res = evaluate(model, held, device)
            print(f"step {step} loss {loss.item():.3f} held-out exact {res['all']['exact']:.3f} "
                  + " ".join(f"{r} {res[r]['exact']:.3f}" for r in common.REGIONS if r in res)
                  + f"  {time.time() - t0:.0f}s", flush=True)
        if step % 1000 == 0:
            torch.save(model.state_dict(), Path(args.out) / f"{CHECKPOINT}.pt")
        if done:
            args.steps = step  # what was run, for the metrics file
            break
    export(model.cpu().eval(), Path(args.out), evaluate(model.cpu(), held, "cpu"), args)


def export(model: nn.Module, out: Path, res: dict, args) -> None:
    out.mkdir(exist_ok=True)
    onnx_path = out / "plate-ocr.onnx"
    torch.save(model.state_dict(), out / "plate-ocr.pt")
    torch.onnx.export(model, torch.zeros(1, 1, H, W), str(onnx_path), input_names=["crop"], output_names=["logits"],
                      dynamic_axes={"crop": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    (out / "plate-ocr.json").write_text(json.dumps(SPEC, indent=2) + "\n")
    metrics = common.write_metrics(out, "plate-ocr", "held_out_crops_exact", res, model, onnx_path, args,
                                   init=args.init)
    print(json.dumps({k: v for k, v in metrics.items() if k != "held_out_crops_exact"}))


if __name__ == "__main__":
    main()
