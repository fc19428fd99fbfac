"""Renders the gate-camera frames of `valet serve --demo` and the end-to-end tests (crates/server/demo/gate-*.jpg).

A car's rear in a lane, with a European-style plate lettered in DejaVu Sans Bold (fonts-dejavu-core):
synthetic and deterministic. The bundled plate models read VL482TG (the tests' car) and KR552TE right
and the others wrongly or unsurely, which the demo keeps: its review queue fills with them. Run from
the repository root:

    for p in VL482TG KR552TE GT468WS BV310NP DM104AX ZH927LC; do
        training/.venv/bin/python training/plates/render_gate_frame.py $p crates/server/demo/gate-$p.jpg
    done
"""

from __future__ import annotations

import sys

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def plate(text: str) -> Image.Image:
    h, w = 110, 480
    im = Image.new("RGB", (w, h), (238, 238, 232))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle([1, 1, w - 2, h - 2], radius=8, outline=(30, 30, 30), width=4)
    band = 44
    d.rectangle([4, 4, band, h - 5], fill=(25, 55, 160))
    d.text((band / 2 + 2, h * 0.72), "I", font=ImageFont.truetype(FONT, 26), fill=(240, 240, 240), anchor="mm")
    fnt = ImageFont.truetype(FONT, 80)
    shown = f"{text[:2]} {text[2:5]} {text[5:]}" if len(text) == 7 else text
    d.text(((w + band) / 2, h / 2 + 2), shown, font=fnt, fill=(20, 20, 20), anchor="mm")
    return im


def frame(text: str) -> Image.Image:
    W, H = 960, 720
    im = Image.new("RGB", (W, H), (90, 92, 96))
    d = ImageDraw.Draw(im)
    for y in range(H):  # asphalt darkening towards the camera
        g = int(110 - 40 * y / H)
        d.line([(0, y), (W, y)], fill=(g, g + 2, g + 5))
    d.rounded_rectangle([150, 120, 810, 640], radius=60, fill=(150, 20, 28))  # car body
    d.rectangle([190, 160, 770, 330], fill=(40, 48, 60))  # rear window
    d.rectangle([170, 470, 790, 560], fill=(60, 60, 64))  # bumper
    for x in (200, 700):
        d.rectangle([x, 380, x + 60, 420], fill=(220, 40, 30))  # lights
    p = plate(text).resize((300, 69), Image.LANCZOS)
    im.paste(p, (330, 385))
    return im.filter(ImageFilter.GaussianBlur(0.6))


if __name__ == "__main__":
    text, out = sys.argv[1], sys.argv[2]
    frame(text).save(out, quality=88)
