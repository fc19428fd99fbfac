"""Train, export and evaluate PlateNet-det: a small centre-heatmap plate detector (CenterNet-style).

One command:  training/.venv/bin/python training/plates/train_detector.py [--steps N] [--device cuda]

The frame is resized so its longer side is 512 and padded to a multiple of 32 (exactly what the Rust
detection stage does). The net outputs, at stride 4, a centre heatmap logit, the sub-cell centre offset
and the log box size in cells ([1,5,H/4,W/4]).
Training scenes: endtoend train split (held-out list in models/plates-holdout.txt is never used), the
Kaggle and Romanian box sets, and copy-paste augmentation: real plate crops and synthetic plates
(synth.py) pasted, tilted, into those photos and into lot photos, at every size a gate camera sees.
Writes models/plate-detector.onnx, models/plate-detector.json and models/plate-detector-metrics.json.
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

LONG_SIDE, MULTIPLE, STRIDE = 512, 32, 4
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
WINDOW = 384
CHECKPOINT = "plate-detector"
SPEC = {"name": "PlateNet-det", "input": "image", "mean": MEAN, "std": STD, "long_side": LONG_SIDE,
        "multiple": MULTIPLE, "stride": STRIDE, "score_threshold": 0.35, "nms_iou": 0.3}


def conv_bn(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, pad, dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Separable(nn.Module):
    """Depthwise 3×3 then pointwise 1×1, with a residual when the shape allows."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, stride, groups=cin, dilation=dilation)
        self.pw = conv_bn(cin, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


class PlateDet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2)                                          # s2
        self.s4 = nn.Sequential(Separable(16, 24, 2), Separable(24, 24))        # s4
        self.s8 = nn.Sequential(Separable(24, 48, 2), Separable(48, 48), Separable(48, 48))
        self.s16 = nn.Sequential(Separable(48, 96, 2), Separable(96, 96), Separable(96, 96, dilation=2))
        self.s32 = nn.Sequential(Separable(96, 128, 2), Separable(128, 128), Separable(128, 128, dilation=2))
        self.lat32, self.lat16, self.lat8, self.lat4 = conv_bn(128, 64), conv_bn(96, 64), conv_bn(48, 48), conv_bn(24, 32)
        self.up16, self.up8, self.up4 = Separable(64, 48), Separable(48, 32), Separable(32, 32)
        self.head = nn.Conv2d(32, 5, 1)
        nn.init.constant_(self.head.bias, 0.0)
        with torch.no_grad():
            self.head.bias[0] = -4.0  # start with "no plate anywhere" (focal-loss prior)

    def forward(self, x):
        x4 = self.s4(self.stem(x))
        x8 = self.s8(x4)
        x16 = self.s16(x8)
        x32 = self.s32(x16)
        y = self.lat16(x16) + F.interpolate(self.lat32(x32), scale_factor=2.0, mode="nearest")
        y = self.lat8(x8) + F.interpolate(self.up16(y), scale_factor=2.0, mode="nearest")
        y = self.lat4(x4) + F.interpolate(self.up8(y), scale_factor=2.0, mode="nearest")
        out = self.head(self.up4(y))
        # Offsets squashed into 0..1 inside the model so Rust reads them as they are.
        return torch.cat([out[:, :1], torch.sigmoid(out[:, 1:3]), out[:, 3:5]], 1)


def to_tensor(im: Image.Image) -> np.ndarray:
    a = np.asarray(im, dtype=np.float32) / 255.0
    return ((a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(2, 0, 1)


def targets(boxes: list[tuple[float, float, float, float]], h: int, w: int):
    """Heatmap with an elliptic Gaussian per plate, and offset/size targets at each centre cell."""
    gh, gw = h // STRIDE, w // STRIDE
    heat = np.zeros((gh, gw), np.float32)
    reg = np.zeros((4, gh, gw), np.float32)
    mask = np.zeros((gh, gw), np.float32)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    for x, y, bw, bh in boxes:
        cx, cy = (x + bw / 2) / STRIDE, (y + bh / 2) / STRIDE
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < gw and 0 <= iy < gh) or bw < 4 or bh < 2:
            continue
        sx, sy = max(0.6, bw / STRIDE / 6), max(0.6, bh / STRIDE / 6)
        g = np.exp(-((xs - ix) ** 2 / (2 * sx * sx) + (ys - iy) ** 2 / (2 * sy * sy)))
        heat = np.maximum(heat, g)
        heat[iy, ix] = 1.0
        reg[:, iy, ix] = [cx - ix, cy - iy, math.log(bw / STRIDE), math.log(bh / STRIDE)]
        mask[iy, ix] = 1.0
    return heat, reg, mask


class Scenes:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        train, _ = common.split()
        self.scenes = train + common.box_only_scenes()
        self.crops = [p for p, _, _ in common.named_crops()]
        self.backgrounds = common.background_photos()
        self.cache: dict[Path, tuple[Image.Image, float]] = {}

    def load(self, path: Path) -> tuple[Image.Image, float]:
        """Cached copy at most 1024 px long (what the net ever sees is ≤ 512·1.6), and its scale."""
        if path not in self.cache:
            im = common.open_image(path)
            s = min(1.0, 1024 / max(im.size))
            if s < 1:
                im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
            self.cache[path] = (im, s)
        return self.cache[path]

    def paste(self, im: Image.Image, boxes: list) -> None:
        """Copy-paste a tilted real crop or synthetic plate somewhere it does not cover a labelled plate."""
        rng = self.rng
        if rng.random() < 0.5:
            plate = self.load(rng.choice(self.crops))[0]
        else:
            plate = synth.render(rng, rng.choice(["us", "eu", "br"]))[0]
        pw = int(im.width * math.exp(rng.uniform(math.log(0.03), math.log(0.3))))
        ph = max(6, int(pw * plate.height / plate.width * rng.uniform(0.8, 1.2)))
        if pw < 8 or pw >= im.width or ph >= im.height:
            return
        plate = augment.photometric(rng, plate.resize((pw, ph), Image.Resampling.BILINEAR), 0.5)
        angle = rng.gauss(0, 6)
        rotated = plate.convert("RGBA").rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
        x, y = rng.randint(0, im.width - rotated.width), rng.randint(0, im.height - rotated.height)
        box = (x, y, rotated.width, rotated.height)
        if any(iou(box, b) > 0 for b in boxes):
            return
        im.paste(rotated, (x, y), rotated)
        # The label is the plate's own extent, a bit tighter than the rotated bounding box.
        shrink = abs(math.sin(math.radians(angle)))
        bw, bh = rotated.width - shrink * ph, rotated.height - shrink * pw
        boxes.append((x + (rotated.width - bw) / 2, y + (rotated.height - bh) / 2, bw, bh))

    def one(self):
        rng = self.rng
        if rng.random() < 0.1:
            im, s, boxes = self.load(rng.choice(self.backgrounds))[0].copy(), 1.0, []
        else:
            scene = rng.choice(self.scenes)
            src, s = self.load(scene.path)
            im = src.copy()
            boxes = [(p.x * s, p.y * s, p.w * s, p.h * s) for p in scene.plates]
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            self.paste(im, boxes)
        # Scale so the frame's long side is 512·U(0.55, 1.6), as the Rust stage would see it at other zooms.
        k = LONG_SIDE * math.exp(rng.uniform(math.log(0.55), math.log(1.6))) / max(im.size)
        boxes = [(x * k, y * k, w * k, h * k) for x, y, w, h in boxes]
        sw, sh = im.width * k, im.height * k
        # A WINDOW×WINDOW crop of the scaled frame, placed on a plate most of the time.
        if boxes and rng.random() < 0.7:
            bx, by, bw, bh = rng.choice(boxes)
            x0 = int(bx + bw / 2 - rng.uniform(0.15, 0.85) * WINDOW)
            y0 = int(by + bh / 2 - rng.uniform(0.15, 0.85) * WINDOW)
        else:
            x0 = rng.randint(int(min(0, sw - WINDOW)), int(max(0, sw - WINDOW)))
            y0 = rng.randint(int(min(0, sh - WINDOW)), int(max(0, sh - WINDOW)))
        # Cut the window from the unscaled frame and resize only that; outside the frame is the mean
        # grey, which is what the Rust stage's zero padding means.
        canvas = Image.new("RGB", (WINDOW, WINDOW), (128, 128, 128))
        vx0, vy0 = max(0, x0), max(0, y0)
        vx1, vy1 = min(int(sw), x0 + WINDOW), min(int(sh), y0 + WINDOW)
        if vx1 > vx0 and vy1 > vy0:
            part = im.crop((vx0 / k, vy0 / k, vx1 / k, vy1 / k)).resize((vx1 - vx0, vy1 - vy0), Image.Resampling.BILINEAR)
            canvas.paste(part, (vx0 - x0, vy0 - y0))
        canvas = augment.photometric(rng, canvas, 0.7)
        inside = []
        for x, y, w, h in boxes:
            x, y = x - x0, y - y0
            cx, cy = x + w / 2, y + h / 2
            if 0 <= cx < WINDOW and 0 <= cy < WINDOW:
                inside.append((x, y, w, h))
        heat, reg, mask = targets(inside, WINDOW, WINDOW)
        return to_tensor(canvas), heat, reg, mask


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, seed: int):
        self.seed = seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        scenes = Scenes(self.seed + (info.id if info else 0) * 7919)
        while True:
            yield scenes.one()


def focal(logit: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def frame_input(im: Image.Image) -> tuple[np.ndarray, float]:
    """Exactly the Rust detection input: long side 512, padded right/bottom to a multiple of 32 with 0."""
    s = LONG_SIDE / max(im.size)
    w, h = max(1, round(im.width * s)), max(1, round(im.height * s))
    a = to_tensor(im.resize((w, h), Image.Resampling.BILINEAR))
    pw, ph = -(-w // MULTIPLE) * MULTIPLE, -(-h // MULTIPLE) * MULTIPLE
    out = np.zeros((3, ph, pw), np.float32)
    out[:, :h, :w] = a
    return out, s


def decode(out: np.ndarray, scale: float, threshold: float = SPEC["score_threshold"], nms: float = SPEC["nms_iou"]):
    heat = 1 / (1 + np.exp(-out[0]))
    peak = F.max_pool2d(torch.from_numpy(heat)[None, None], 3, 1, 1)[0, 0].numpy()
    dets = []
    for y, x in zip(*np.nonzero((heat >= threshold) & (heat == peak))):
        cx, cy = (x + out[1, y, x]) * STRIDE, (y + out[2, y, x]) * STRIDE
        w, h = math.exp(out[3, y, x]) * STRIDE, math.exp(out[4, y, x]) * STRIDE
        dets.append((float(heat[y, x]), ((cx - w / 2) / scale, (cy - h / 2) / scale, w / scale, h / scale)))
    dets.sort(key=lambda d: -d[0])
    kept = []
    for d in dets:
        if all(iou(d[1], k[1]) <= nms for k in kept):
            kept.append(d)
    return kept


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def evaluate(model: nn.Module, device, held) -> dict:
    model.eval()
    per: dict[str, list[int]] = {}
    ious = []
    with torch.no_grad():
        for scene, (x, s) in held:
            out = model(torch.from_numpy(x)[None].to(device))[0].cpu().numpy()
            dets = decode(out, s)
            stats = per.setdefault(scene.region, [0, 0, 0])
            for p in scene.plates:
                best = max((iou((p.x, p.y, p.w, p.h), d[1]) for d in dets), default=0.0)
                ious.append(best)
                stats[0] += 1
                stats[1] += best >= 0.5
            stats[2] += sum(1 for d in dets if max(iou((p.x, p.y, p.w, p.h), d[1]) for p in scene.plates) < 0.1)
    model.train()
    res = {r: {"plates": n, "found": f / n, "extra_boxes": fp} for r, (n, f, fp) in per.items()}
    n = sum(v[0] for v in per.values())
    res["all"] = {"plates": n, "found": sum(v[1] for v in per.values()) / n,
                  "extra_boxes": sum(v[2] for v in per.values()), "median_iou": float(np.median(ious))}
    return res


def main() -> None:
    ap = common.training_args(steps=4000, batch=32)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    _, held_scenes = common.split()
    held = [(s, frame_input(common.open_image(s.path))) for s in held_scenes]
    model = PlateDet().to(device)
    if args.export_only:
        model.load_state_dict(torch.load(args.export_only, map_location="cpu"))
        export(model.eval(), Path(args.out), evaluate(model.eval(), "cpu", held), args)
        return
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(Stream(args.seed), batch_size=args.batch, num_workers=args.workers,
                                         persistent_workers=True)
    t0 = time.time()
    for step, (x, heat, reg, mask) in enumerate(loader, 1):
        x, heat, reg, mask = x.to(device), heat.to(device), reg.to(device), mask.to(device)
        out = model(x)
        l_heat = focal(out[:, 0], heat)
        m = mask[:, None]
        l_reg = (F.l1_loss(out[:, 1:5] * m, reg * m, reduction="sum")) / mask.sum().clamp(min=1)
        loss = l_heat + l_reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        progress = (time.time() - t0) / (args.minutes * 60) if args.minutes else step / args.steps
        for g in opt.param_groups:  # 5 % warm-up, then cosine to zero
            g["lr"] = 3e-3 * (progress / 0.05 if progress < 0.05 else 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        done = progress >= 1.0
        if step % 250 == 0 or done:
            res = evaluate(model, device, held)
            print(f"step {step} loss {l_heat.item():.3f}+{l_reg.item():.3f} found {res['all']['found']:.3f} "
                  + " ".join(f"{r} {res[r]['found']:.3f}" for r in common.REGIONS if r in res)
                  + f" extra {res['all']['extra_boxes']} iou {res['all']['median_iou']:.2f} {time.time() - t0:.0f}s",
                  flush=True)
        if step % 1000 == 0:
            torch.save(model.state_dict(), Path(args.out) / f"{CHECKPOINT}.pt")
        if done:
            args.steps = step  # what was run, for the metrics file
            break
    model = model.cpu().eval()
    export(model, Path(args.out), evaluate(model, "cpu", held), args)


def export(model: nn.Module, out: Path, res: dict, args) -> None:
    out.mkdir(exist_ok=True)
    onnx_path = out / "plate-detector.onnx"
    torch.save(model.state_dict(), out / "plate-detector.pt")
    torch.onnx.export(model, torch.zeros(1, 3, 288, 512), str(onnx_path), input_names=["image"],
                      output_names=["maps"], dynamic_axes={"image": {2: "h", 3: "w"}, "maps": {2: "gh", 3: "gw"}},
                      opset_version=17, dynamo=False)
    (out / "plate-detector.json").write_text(json.dumps(SPEC, indent=2) + "\n")
    metrics = common.write_metrics(out, "plate-detector", "held_out", res, model, onnx_path, args)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
