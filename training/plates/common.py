"""Shared by the plate trainers: where the data is, the held-out split, labelled boxes and crops.

The data lives in ../shared/data beside the checkout and is never copied into the repository.
The held-out split is a pure function of the file name (SHA-1), written to models/plates-holdout.txt so
`valet eval plates --only` measures exactly the images no model trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
ENDTOEND = DATA / "openalpr-benchmarks" / "endtoend"
MODELS = ROOT / "models"
HOLDOUT_LIST = MODELS / "plates-holdout.txt"
REGIONS = ("us", "eu", "br")
# A GPU machine gets the data as one pickle made by pack.py (images shrunk, labels scaled to match);
# loaded at the end of this module, once Scene and Plate exist.
PACK = None
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Plate:
    x: int
    y: int
    w: int
    h: int
    text: str


@dataclass(frozen=True)
class Scene:
    """One photo and the plates labelled in it (text may be '' where only the box is known)."""

    path: Path
    plates: tuple[Plate, ...]
    region: str
    key: str  # "us/name.jpg" for endtoend images, the source set otherwise


def is_held_out(key: str) -> bool:
    """About a quarter of each endtoend region, chosen by a hash of the relative path."""
    return hashlib.sha1(key.encode()).digest()[0] % 4 == 0


def endtoend_scenes() -> list[Scene]:
    if PACK:
        return PACK["endtoend"]
    scenes = []
    for region in REGIONS:
        for txt in sorted((ENDTOEND / region).glob("*.txt")):
            by_file: dict[str, list[Plate]] = {}
            for line in txt.read_text().splitlines():
                parts = line.split()
                if len(parts) < 6:
                    continue
                name, (x, y, w, h), text = parts[0], map(int, parts[1:5]), parts[5].upper()
                by_file.setdefault(name, []).append(Plate(x, y, w, h, text))
            for name, plates in by_file.items():
                path = ENDTOEND / region / name
                if path.exists():
                    scenes.append(Scene(path, tuple(plates), region, f"{region}/{name}"))
    return scenes


def split() -> tuple[list[Scene], list[Scene]]:
    """(train, held_out) endtoend scenes; also writes the held-out list for `valet eval plates --only`."""
    scenes = endtoend_scenes()
    train = [s for s in scenes if not is_held_out(s.key)]
    held = [s for s in scenes if is_held_out(s.key)]
    if not PACK:
        MODELS.mkdir(exist_ok=True)
        HOLDOUT_LIST.write_text("".join(f"{s.key}\n" for s in sorted(held, key=lambda s: s.key)))
    return train, held


def _voc(xml: Path, image: Path, region: str, key: str) -> Scene | None:
    if not image.exists():
        return None
    plates = []
    for obj in ET.parse(xml).getroot().iter("object"):
        b = obj.find("bndbox")
        x0, y0, x1, y1 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        plates.append(Plate(round(x0), round(y0), round(x1 - x0), round(y1 - y0), ""))
    return Scene(image, tuple(plates), region, key)


def box_only_scenes() -> list[Scene]:
    """Kaggle (one copy of each duplicate group) and the Romanian dashcam frames: boxes, no text."""
    if PACK:
        return PACK["box_only"]
    scenes = []
    kaggle = DATA / "kaggle-car-plates-416"
    dupes: set[str] = set()
    groups = kaggle / "duplicate_groups.txt"
    if groups.exists():
        for line in groups.read_text().splitlines():
            names = re.findall(r"Cars\d+", line)
            dupes.update(names[1:])
    for xml in sorted((kaggle / "annotations").glob("*.xml")):
        if xml.stem in dupes:
            continue
        s = _voc(xml, kaggle / "images" / f"{xml.stem}.jpg", "eu", f"kaggle/{xml.stem}")
        if s:
            scenes.append(s)
    ro = DATA / "romanian-plates-vott" / "dataset"
    for xml in sorted(ro.glob("*/annots/*.xml")):
        s = _voc(xml, xml.parent.parent / "images" / f"{xml.stem}.jpg", "eu", f"ro/{xml.stem}")
        if s:
            scenes.append(s)
    return scenes


def named_crops() -> list[tuple[Path, str, str]]:
    """Tight real plate crops with text: (path, text, region).

    seg_and_ocr (US, 751) and openalpr-train-detector/br (text parsed from the file name).
    """
    if PACK:
        return PACK["crops"]
    out = []
    seg = DATA / "openalpr-benchmarks" / "seg_and_ocr"
    for line in (seg / "groundtruth.csv").read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) == 3 and (seg / "usimages" / parts[0]).exists():
            out.append((seg / "usimages" / parts[0], parts[2].upper(), "us"))
    for p in sorted((DATA / "openalpr-train-detector" / "br").glob("*")):
        m = re.search(r"_C[CV]_\d+_([A-Z]{3}\d{4})\.JPG", p.name) or re.match(r"\d+_([A-Z]{3}\d{4})\.jpg", p.name)
        if m:
            out.append((p, m.group(1), "br"))
    return [c for c in out if all(ch in ALPHABET for ch in c[1])]


def background_photos() -> list[Path]:
    """Photos to paste synthetic plates onto: lots and streets with no labelled plates."""
    if PACK:
        return PACK["backgrounds"]
    out = sorted((DATA / "pklot-padova").rglob("*.jpg")) + sorted((DATA / "cnr-ext-sample").rglob("*.jpg"))
    return out


def training_args(steps: int, batch: int) -> argparse.ArgumentParser:
    """The flags both trainers take."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(MODELS))
    ap.add_argument("--minutes", type=float, default=40.0,
                    help="train for this long (learning rate follows the clock); 0 = use --steps")
    ap.add_argument("--export-only", metavar="PT", help="skip training: evaluate and export this checkpoint")
    return ap


def write_metrics(out: Path, name: str, held_out_key: str, held_out: dict, model, onnx_path: Path, args,
                  **trained_extra) -> dict:
    """Writes `<name>-metrics.json`: held-out results, how the weights were trained, size, date.

    With --export-only the training record is the one beside the checkpoint (the run that made it).
    """
    import json
    import time

    trained = {"steps": args.steps, "batch": args.batch, "device": args.device, **trained_extra}
    if args.export_only:
        ran = Path(args.export_only).with_name(f"{name}-metrics.json")
        if ran.exists():
            old = json.loads(ran.read_text())
            trained = old.get("trained", {k: old[k] for k in ("steps", "batch", "device") if k in old})
    metrics = {held_out_key: held_out, "trained": trained, "params": sum(p.numel() for p in model.parameters()),
               "onnx_bytes": onnx_path.stat().st_size, "date": time.strftime("%Y-%m-%d")}
    (out / f"{name}-metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def open_image(path: Path):
    """PIL image of a data file, from the pack when there is one."""
    from PIL import Image

    if PACK:
        return Image.open(io.BytesIO(PACK["files"][str(path)])).convert("RGB")
    return Image.open(path).convert("RGB")


if os.environ.get("VALET_PLATES_PACK"):
    with open(os.environ["VALET_PLATES_PACK"], "rb") as f:
        PACK = pickle.load(f)
