"""Pack the plate training data into one pickle for a GPU machine that has no ../shared/data.

    training/.venv/bin/python training/plates/pack.py .gpudata/plates.pkl .gpudata/fonts

Scene images are shrunk to at most 1024 px (labels scaled to match), crops to at most 200 px wide, and
re-encoded as JPEG, so the pack fits the device's 64 MiB transfer limit. Never commit the pack.
Use it with VALET_PLATES_PACK=… VALET_FONT_DIR=… before the trainers.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import synth  # noqa: E402


def shrink(path: Path, longest: int, quality: int) -> tuple[bytes, float]:
    im = common.open_image(path)
    s = min(1.0, longest / max(im.size))
    if s < 1:
        im = im.resize((round(im.width * s), round(im.height * s)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), s


def main() -> None:
    out, fonts = Path(sys.argv[1]), Path(sys.argv[2])
    files: dict[str, bytes] = {}

    def scenes(items: list[common.Scene]) -> list[common.Scene]:
        packed = []
        for sc in items:
            key = f"pack/{sc.key}"
            files[key], s = shrink(sc.path, 1024, 88)
            plates = tuple(dataclasses.replace(p, x=round(p.x * s), y=round(p.y * s), w=round(p.w * s),
                                               h=round(p.h * s)) for p in sc.plates)
            packed.append(dataclasses.replace(sc, path=Path(key), plates=plates))
        return packed

    pack = {"endtoend": scenes(common.endtoend_scenes()), "box_only": scenes(common.box_only_scenes())}
    pack["crops"] = []
    for i, (path, text, region) in enumerate(common.named_crops()):
        key = f"pack/crop/{i}"
        im = common.open_image(path)
        files[key] = shrink(path, 200 * max(im.size) // im.width, 90)[0]
        pack["crops"].append((Path(key), text, region))
    pack["backgrounds"] = []
    for path in common.background_photos()[::2]:
        key = f"pack/bg/{path.name}"
        files[key] = shrink(path, 1024, 85)[0]
        pack["backgrounds"].append(Path(key))
    pack["files"] = files
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(pack))
    fonts.mkdir(parents=True, exist_ok=True)
    for f in synth.fonts():
        shutil.copy(f, fonts / f.name)
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, {len(files)} files; fonts in {fonts}")


if __name__ == "__main__":
    main()
