"""Synthetic licence plates rendered from fonts of Debian packages, per region style.

`render(rng, region)` returns (RGB plate image, text). The styles are rough on purpose: the OCR must learn
glyphs, spacing and clutter (state names, bands, bolts, stickers), not one exact plate design.
Fonts: fonts-dejavu, fonts-liberation2, fonts-freefont-ttf, fonts-urw-base35, fonts-roboto-unhinted,
fonts-b612, fonts-bebas-neue (see README.md).
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
FONT_DIRS = [Path(os.environ.get("VALET_FONT_DIR", "/usr/share/fonts")), Path("/usr/local/share/fonts")]
# Condensed, bold sans faces look most like plate lettering; a few wider ones add variety.
FONT_NAMES = [
    "NimbusSansNarrow-Bold.otf", "NimbusSansNarrow-Regular.otf", "NimbusSans-Bold.otf",
    "DejaVuSansCondensed-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf",
    "LiberationSansNarrow-Bold.ttf", "LiberationSansNarrow-Regular.ttf", "LiberationSans-Bold.ttf",
    "LiberationMono-Bold.ttf", "FreeSansBold.ttf", "FreeMonoBold.ttf", "Roboto-Bold.ttf",
    "RobotoCondensed-Bold.ttf", "RobotoCondensed-Regular.ttf", "B612-Bold.otf", "B612Mono-Bold.otf",
    "BebasNeue-Regular.otf", "BebasNeue-Bold.otf",
]
WORDS = ["CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "OHIO", "ILLINOIS", "GEORGIA", "MARYLAND", "ALASKA",
         "VIRGINIA", "ARIZONA", "NEVADA", "OREGON", "MICHIGAN", "SAO PAULO", "RIO DE JANEIRO", "CURITIBA",
         "Sunshine State", "Land of Lincoln", "Empire State", "dmv.gov", "Grand Canyon State"]


@lru_cache(maxsize=None)
def fonts() -> list[Path]:
    found = {}
    for d in FONT_DIRS:
        if d.exists():
            for p in d.rglob("*"):
                if p.name in FONT_NAMES:
                    found[p.name] = p
    if not found:
        raise SystemExit("no plate fonts found: install the Debian font packages listed in training/plates/README.md")
    return sorted(found.values())


@lru_cache(maxsize=512)
def font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def pattern_text(rng: random.Random, pattern: str) -> str:
    return "".join(rng.choice(LETTERS if c == "L" else DIGITS if c == "D" else LETTERS + DIGITS) for c in pattern)


def text_for(rng: random.Random, region: str) -> tuple[str, list[int]]:
    """Plate text and the positions after which the plate shows a gap, dash or dot."""
    if region == "br":
        if rng.random() < 0.7:
            return pattern_text(rng, "LLLDDDD"), [3]
        return pattern_text(rng, "LLLDLDD"), []
    if region == "eu":
        pat, gaps = rng.choice([("LLDDDLL", [2, 5]), ("LLDDDDLL", [2, 6]), ("LLLDDDD", [3]), ("DLDDDDD", [2]),
                                ("DLLDDDD", [3]), ("LLDDDDL", [2, 6]), ("LDDLLL", [1, 3]), ("LLLDDD", [3]),
                                ("LLDLLDDD", [2, 4]), ("AAAAAAA", [])])
        return pattern_text(rng, pat), gaps
    n = rng.choice([5, 6, 6, 7, 7, 7, 8])
    pat = rng.choice(["D" + "L" * 3 + "D" * (n - 4), "L" * 3 + "D" * (n - 3), "A" * n, "A" * n, "DLLLDDD"[:n]])
    return pattern_text(rng, pat.ljust(n, "A")[:n]), [rng.randint(1, n - 1)] if rng.random() < 0.5 else []


def _colour(rng: random.Random, base: tuple[int, int, int], spread: int = 25) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-spread, spread))) for c in base)


def render(rng: random.Random, region: str) -> tuple[Image.Image, str]:
    text, gaps = text_for(rng, region)
    h = 120
    aspect = {"us": rng.uniform(1.8, 2.2), "eu": rng.uniform(3.8, 4.8), "br": rng.uniform(2.8, 3.3)}[region]
    w = int(h * aspect)
    style = rng.random()
    if region == "eu":
        bg = _colour(rng, (240, 240, 235)) if style < 0.75 else _colour(rng, (245, 200, 40))
        fg = _colour(rng, (20, 20, 20), 15)
    elif region == "br":
        if style < 0.6:
            bg, fg = _colour(rng, (185, 185, 180), 30), _colour(rng, (35, 35, 35), 20)
        elif style < 0.8:
            bg, fg = _colour(rng, (235, 235, 235)), _colour(rng, (20, 20, 20), 15)
        else:
            bg, fg = _colour(rng, (200, 40, 40), 30), _colour(rng, (240, 240, 240), 15)
    else:
        bg = _colour(rng, rng.choice([(240, 240, 240), (250, 240, 200), (225, 235, 250), (250, 250, 250),
                                      (30, 50, 120), (245, 215, 60)]))
        dark_bg = sum(bg) < 300
        fg = _colour(rng, (240, 240, 240), 10) if dark_bg else _colour(
            rng, rng.choice([(20, 30, 110), (15, 15, 15), (150, 20, 20), (20, 90, 40)]), 20)
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    d.rounded_rectangle([1, 1, w - 2, h - 2], radius=rng.randint(0, 12), outline=_colour(rng, fg, 40),
                        width=rng.randint(0, 5))
    left, top, bottom = int(0.05 * w), int(0.12 * h), int(0.92 * h)
    if region == "eu" and rng.random() < 0.8:
        band = int(w * rng.uniform(0.07, 0.1))
        d.rectangle([0, 0, band, h], fill=_colour(rng, (20, 50, 160), 20))
        small = font(rng.choice(fonts()), int(h * 0.28))
        d.text((band * 0.15, h * 0.6), rng.choice(["D", "I", "F", "SK", "HR", "CZ", "RO", "BG", "NL"]),
               font=small, fill=(240, 240, 240))
        left = band + int(0.04 * w)
    if region == "br" and style >= 0.6 and rng.random() < 0.6:
        d.rectangle([0, 0, w, int(h * 0.2)], fill=_colour(rng, (20, 50, 160), 20))
        top = int(h * 0.24)
    elif region in ("us", "br") and rng.random() < 0.8:
        small = font(rng.choice(fonts()), int(h * rng.uniform(0.14, 0.22)))
        d.text((w / 2, h * 0.03), rng.choice(WORDS), font=small, fill=_colour(rng, fg, 60), anchor="mt")
        top = int(h * 0.24)
        if region == "us" and rng.random() < 0.5:
            d.text((w / 2, h * 0.97), rng.choice(WORDS), font=small, fill=_colour(rng, fg, 60), anchor="mb")
            bottom = int(h * 0.8)
    # Fit the characters between left/right margins and top/bottom, with the plate's own gaps.
    f = rng.choice(fonts())
    size = int((bottom - top) * rng.uniform(1.0, 1.3))
    sep = rng.choice(["", " ", "-", "·"]) if gaps else ""
    shown = "".join(ch + (sep if i + 1 in gaps else "") for i, ch in enumerate(text))
    fnt = font(f, size)
    tw = d.textlength(shown, font=fnt)
    avail = (w - int(0.04 * w)) - left
    if tw > avail:
        fnt = font(f, max(10, int(size * avail / tw)))
        tw = d.textlength(shown, font=fnt)
    x0 = left + (avail - tw) / 2
    d.text((x0, (top + bottom) / 2), shown, font=fnt, fill=fg, anchor="lm")
    if rng.random() < 0.3:  # a bolt or a sticker
        for _ in range(rng.randint(1, 2)):
            cx, cy = rng.randint(0, w), rng.choice([int(h * 0.1), int(h * 0.9)])
            r = rng.randint(3, 8)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_colour(rng, (150, 150, 150), 60))
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return im, text
