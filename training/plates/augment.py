"""Photometric and geometric augmentation shared by the plate trainers (PIL + numpy only)."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def photometric(rng: random.Random, im: Image.Image, strength: float = 1.0) -> Image.Image:
    """Light, contrast, colour, blur, sensor noise and JPEG re-encoding, as gate cameras produce them."""
    if rng.random() < 0.8 * strength:
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.55, 1.5))
    if rng.random() < 0.8 * strength:
        im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.4, 1.5))
    if rng.random() < 0.5 * strength:
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.0, 1.6))
    if rng.random() < 0.4 * strength:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.6)))
    if rng.random() < 0.4 * strength:
        a = np.asarray(im, dtype=np.float32)
        a = a + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 10), a.shape)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.5 * strength:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=rng.randint(15, 85))
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return im


def perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """PIL's PERSPECTIVE coefficients mapping output points `dst` to input points `src`."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=np.float64)
    b = np.array([c for p in src for c in p], dtype=np.float64)
    return np.linalg.solve(a, b).tolist()
