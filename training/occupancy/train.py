#!/usr/bin/env python3
"""Train, export and evaluate the occupancy classifiers (OccNet = shipped model, mAlexNet = reference).

    python training/occupancy/train.py                 # both models, full schedule
    python training/occupancy/train.py --only occnet   # one model
    python training/occupancy/train.py --quick         # few epochs (smoke test)

Writes models/{occupancy,malexnet}.{onnx,json}, models/{occupancy,malexnet}-metrics.json and
models/golden/{patch.png,occupancy.json,occupancy-input.f32,malexnet.json,malexnet-input.f32}.
"""
import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import occ  # noqa: E402
import pklot_crops  # noqa: E402

MODELS = occ.REPO / "models"
RUNS = occ.HERE / "runs"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- evaluation


def predict(model, x, bs=256, device="cpu"):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), bs):
            out.append(model(torch.from_numpy(x[i:i + bs]).to(device)).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 2), np.float32)


def metrics(logits, labels):
    pred = logits.argmax(1)
    m = {"n": int(len(labels)), "accuracy": float((pred == labels).mean()) if len(labels) else None}
    for c, name in enumerate(occ.LABELS):
        tp = int(((pred == c) & (labels == c)).sum())
        m[f"{name}_precision"] = tp / max(1, int((pred == c).sum()))
        m[f"{name}_recall"] = tp / max(1, int((labels == c).sum()))
        m[f"n_{name}"] = int((labels == c).sum())
    m["confusion[true][pred]"] = [[int(((labels == t) & (pred == p)).sum()) for p in range(2)] for t in range(2)]
    return m


class EvalSets:
    """Pre-resized (exact Pillow contract) evaluation tensors per input size."""

    def __init__(self, data, masks, pklot_dir=None):
        self.data, self.masks = data, masks
        self.pk = {}
        for style in ("warp", "bbox"):
            if pklot_dir:  # pre-cropped by pklot_crops.py into pklot_dir/<style>/{busy,free}
                items = [(p.name, int(c == "busy"), Image.open(p).convert("RGB"))
                         for c in ("free", "busy") for p in sorted((Path(pklot_dir) / style / c).glob("*.jpg"))]
            else:
                items = list(pklot_crops.iter_crops(style=style))
            self.pk[style] = ([im for _, _, im in items], np.array([o for _, o, _ in items]))
        self.cache = {}

    def sets(self, size):
        if size not in self.cache:
            pil = [Image.fromarray(a) for a in self.data["imgs"]]
            s = {}
            for k in ("val", "val_time_only", "val_slot_only"):
                idx = np.nonzero(self.masks[k])[0]
                s[k] = (occ.preprocess_many([pil[i] for i in idx], size), self.data["labels"][idx])
            for style, (ims, labs) in self.pk.items():
                s[f"pklot_{style}"] = (occ.preprocess_many(ims, size), labs)
            self.cache[size] = s
        return self.cache[size]

    def evaluate(self, model, size, device="cpu"):
        return {k: metrics(predict(model, x, device=device), y) for k, (x, y) in self.sets(size).items()}


# ---------------------------------------------------------------- training


def train(model, data, train_idx, size, epochs, lr, bs, seed, evalsets=None, tag="", device="cpu", synth=0.0):
    g = torch.Generator().manual_seed(seed)
    model.to(device)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(train_idx) / bs)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    imgs, labels = data["imgs"], torch.from_numpy(data["labels"]).long()
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = rng.permutation(train_idx)
        tot, correct, n = 0.0, 0, 0
        for i in range(0, len(perm), bs):
            idx = perm[i:i + bs]
            if len(idx) < 8:
                continue
            if synth > 0:
                x, y = occ.augment_batch(imgs[idx], size, g, device=device, labels=labels[idx], synth=synth)
                y = y.to(device)
            else:
                x = occ.augment_batch(imgs[idx], size, g, device=device)
                y = labels[idx].to(device)
            out = model(x)
            loss = F.cross_entropy(out, y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y).sum())
            n += len(idx)
        msg = f"{tag} epoch {ep + 1}/{epochs} loss {tot / n:.4f} train-aug acc {correct / n:.4f} ({time.time() - t0:.0f}s)"
        if evalsets is not None and (ep + 1 == epochs or (ep + 1) % 5 == 0):
            r = evalsets.evaluate(model, size, device)
            msg += " | " + " ".join(f"{k} {v['accuracy']:.4f}" for k, v in r.items())
        log(msg)
    model.to("cpu")
    return time.time() - t0


# ---------------------------------------------------------------- export


ALLOWED_OPS = {"Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten",
               "Reshape", "Gemm", "MatMul", "Add", "Concat", "Identity", "Constant", "Shape", "Gather"}


def export_onnx(model, size, path):
    import onnx

    m = occ.fold_bn(copy.deepcopy(model)).eval()
    dummy = torch.randn(2, 3, size, size)
    try:
        torch.onnx.export(m, (dummy,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          do_constant_folding=True, dynamo=False)
    except Exception as e:  # TorchScript exporter gone -> torch.export based one
        log(f"torchscript export failed ({type(e).__name__}: {e}); using dynamo exporter")
        batch = torch.export.Dim("batch", min=1, max=4096)
        prog = torch.onnx.export(m, (dummy,), input_names=["input"], output_names=["logits"],
                                 dynamic_shapes={"x": {0: batch}}, dynamo=True, external_data=False)
        prog.optimize()
        prog.save(str(path), external_data=False)
    mp = onnx.load(str(path))
    # name the dynamic axis "batch" on input and output, whatever the exporter called it
    for v in list(mp.graph.input) + list(mp.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        d0.ClearField("dim_value")
        d0.dim_param = "batch"
    mp.doc_string = "Valet occupancy classifier: logits[N,2], 0=free 1=occupied"
    onnx.checker.check_model(mp)
    onnx.save(mp, str(path))
    if isinstance(model, occ.OccNet):  # the per-camera adapter's input (add_embedding.py)
        from add_embedding import add_embedding

        add_embedding(str(path))
        mp = onnx.load(str(path))
    ops = sorted({n.op_type for n in mp.graph.node})
    bad = [o for o in ops if o not in ALLOWED_OPS]
    if bad:
        raise SystemExit(f"exported {path} uses ops outside the rten-safe set: {bad}")
    return m, ops


def verify_onnx(torch_model, path, size):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    res = {}
    for n in (1, 7, 50):
        x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            ref = torch_model(x).numpy()
        got = sess.run(None, {"input": x.numpy()})[0]
        assert got.shape == (n, 2), got.shape
        res[f"batch{n}_max_abs_diff"] = float(np.abs(ref - got).max())
    return res


def golden_patch():
    """Deterministic 37x23 RGB test image: gradients + checker + diagonal stripes."""
    w, h = 37, 23
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // (w - 1)).astype(np.uint8)
    gch = (y * 255 // (h - 1)).astype(np.uint8)
    b = np.where(((x // 4) + (y // 4)) % 2 == 0, 40, 210) + ((x + 2 * y) % 7) * 6
    img = np.stack([r, gch, b.astype(np.uint8)], -1)
    return Image.fromarray(img, "RGB")


def write_golden(onnx_path, name, size):
    import onnxruntime as ort

    gdir = MODELS / "golden"
    gdir.mkdir(parents=True, exist_ok=True)
    png = gdir / "patch.png"
    golden_patch().save(png)
    img = Image.open(png).convert("RGB")
    x = occ.preprocess(img, size)[None]
    (gdir / f"{name}-input.f32").write_bytes(x.astype("<f4").tobytes())
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": x})[0][0]
    meta = {"image": "patch.png", "image_size": [img.width, img.height], "model": onnx_path.name,
            "input_size": size, "mean": occ.MEAN, "std": occ.STD, "input": f"{name}-input.f32",
            "input_layout": "NCHW float32 little-endian, shape [1,3,%d,%d]" % (size, size),
            "logits": [float(v) for v in logits], "labels": occ.LABELS}
    (gdir / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# ---------------------------------------------------------------- main


def bench_ms(model, size, n=50, reps=20):
    model.eval()
    x = torch.randn(n, 3, size, size)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        t = time.perf_counter()
        for _ in range(reps):
            model(x)
    return (time.perf_counter() - t) / reps / n * 1000


def run_model(kind, args, data, masks, evalsets):
    args = copy.copy(args)
    if args.seed is None:
        args.seed = 2 if kind == "occnet" else 1
    torch.manual_seed(args.seed)
    if kind == "occnet":
        width = tuple(int(v) for v in args.width.split(","))
        model, size, stem = occ.OccNet(args.size, width), args.size, "occupancy"
        epochs, lr = args.epochs_occnet, 3e-3
    else:
        model, size, stem = occ.MAlexNet(), 224, "malexnet"
        epochs, lr = args.epochs_malexnet, 2e-3
    if args.quick:
        epochs = max(2, epochs // 6)
    train_idx = np.nonzero(masks["train"])[0]
    if args.load:
        ck = torch.load(Path(args.load) / f"{stem}.pt", map_location="cpu")
        if kind == "occnet":
            size = ck["size"]
            model = occ.OccNet(size, tuple(ck["width"]))
        model.load_state_dict(ck["state_dict"])
        secs, epochs, train_device = ck["train_seconds"], ck["epochs"], ck["device"]
        args.seed, args.synth = ck.get("seed", args.seed), ck.get("synth", args.synth)
        log(f"{kind}: loaded {args.load}/{stem}.pt (trained {secs:.0f}s on {train_device})")
    else:
        log(f"{kind}: {len(train_idx)} training patches, input {size}, {epochs} epochs on {args.device}")
        secs = train(model, data, train_idx, size, epochs, lr, args.batch, args.seed, evalsets, tag=kind,
                     device=args.device, synth=args.synth)
        train_device = args.device if args.device == "cpu" else torch.cuda.get_device_name()
        save_dir = Path(args.save) if args.save else RUNS
        save_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": model.state_dict(), "train_seconds": secs, "epochs": epochs,
                    "device": train_device, "size": size, "seed": args.seed, "synth": args.synth,
                    "width": list(getattr(model, "width", []))}, save_dir / f"{stem}.pt")
        if args.train_only:
            return None
    onnx_path = MODELS / f"{stem}.onnx"
    folded, ops = export_onnx(model, size, onnx_path)
    ver = verify_onnx(folded, onnx_path, size)
    ver_unfolded = verify_onnx(model.eval(), onnx_path, size)
    log(f"{kind}: onnx ops {ops}; max|onnx-torch| folded {ver}, vs unfolded {ver_unfolded}")
    res = evalsets.evaluate(folded, size)
    macs = occ.count_macs(folded, size)
    params = sum(p.numel() for p in folded.parameters())
    sidecar = {"model": onnx_path.name, "input_size": size, "mean": occ.MEAN, "std": occ.STD,
               "labels": occ.LABELS, "resize": "pillow-bilinear", "layout": "NCHW", "color": "RGB",
               "input_name": "input", "output_name": "logits"}
    (MODELS / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    gold = write_golden(onnx_path, stem, size)
    report = {
        "model": onnx_path.name, "arch": kind, "input_size": size, "macs": macs, "params": params,
        "onnx_bytes": onnx_path.stat().st_size, "onnx_ops": ops, "train_seconds": round(secs, 1),
        "epochs": epochs, "synth": getattr(args, "synth", 0.0), "width": list(getattr(model, "width", [])), "train_device": train_device, "train_patches": int(len(train_idx)), "torch_cpu_ms_per_patch_batch50": bench_ms(folded, size),
        "onnx_check": ver, "onnx_check_vs_unfolded": ver_unfolded, "golden_logits": gold["logits"],
        "protocol": {"held_out_times": occ.HELD_TIMES, "held_out_slots": sorted(occ.HELD_SLOTS),
                     "val": "time held out AND slot held out", "train": "time not held out AND slot not held out"},
        "results": res, "torch": torch.__version__, "seed": args.seed, "date": "2026-11-26",
    }
    (MODELS / f"{stem}-metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"{kind}: MACs {macs / 1e6:.2f}M params {params} onnx {report['onnx_bytes']} B")
    for k, v in res.items():
        log(f"  {k:16s} n={v['n']:5d} acc {v['accuracy']:.4f}  free P/R {v['free_precision']:.3f}/{v['free_recall']:.3f}"
            f"  occ P/R {v['occupied_precision']:.3f}/{v['occupied_recall']:.3f}")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["occnet", "malexnet"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=64, help="OccNet input size (multiple of 16)")
    ap.add_argument("--width", default="16,32,64,64,128", help="OccNet channel widths (5 conv layers)")
    ap.add_argument("--epochs-occnet", type=int, default=80)
    ap.add_argument("--epochs-malexnet", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, help="random seed (default: 2 for occnet, 1 for malexnet, as shipped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synth", type=float, default=0.25,
                    help="fraction of each batch replaced by synthetic asphalt patches (0 = off; also paints lines)")
    ap.add_argument("--device", default="cpu", help="training device (cpu, cuda)")
    ap.add_argument("--cnr-dir", help="CNRPark A folder (default ../shared/data/...)")
    ap.add_argument("--pklot-dir", help="pre-cropped pklot folder with warp/ and bbox/ (default: crop from data)")
    ap.add_argument("--save", help="where to save trained checkpoints (default training/occupancy/runs)")
    ap.add_argument("--train-only", action="store_true", help="train + save checkpoints, no export")
    ap.add_argument("--load", help="skip training: load checkpoints from this folder, then export + evaluate")
    args = ap.parse_args()
    if args.cnr_dir:
        occ.CNR_A = Path(args.cnr_dir)
    torch.set_num_threads(args.threads)
    MODELS.mkdir(exist_ok=True)
    log("loading CNRPark A ...")
    data = occ.load_cnr_a()
    masks = occ.split_masks(data)
    log("split sizes: " + ", ".join(f"{k} {int(v.sum())}" for k, v in masks.items()))
    evalsets = EvalSets(data, masks, args.pklot_dir)
    kinds = [args.only] if args.only else ["occnet", "malexnet"]
    for k in kinds:
        run_model(k, args, data, masks, evalsets)


if __name__ == "__main__":
    main()
