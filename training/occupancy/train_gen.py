#!/usr/bin/env python3
"""OccNet-64 trained for unseen lots and cameras ("generalising recipe"), from scratch.

    training/.venv/bin/python training/occupancy/train_gen.py --quick                       # CPU smoke test
    training/.venv/bin/python training/occupancy/train_gen.py --preview /tmp/aug.png        # look at a batch
    python3 train_gen.py --device cuda --minutes 6.5 --save DIR                             # GPU (gpu_gen.sh)
    training/.venv/bin/python training/occupancy/train_gen.py --load DIR --export           # export + evaluate

Same network, input and preprocessing contract as train.py (OccNet 16,32,64,64,128 at 64x64, 6.34 M MACs).
Training data: CNRPark camera A `train` split only (train.py's protocol) plus data generated here, and optionally
(--extcars) real car fronts/backs cut around the plates of openalpr-benchmarks/kaggle car photos (pack_gen.py).
Nothing from pklot-padova. What is new against train.py + finetune.py:
  - one synthetic scene generator for both classes on the same ground (so ground never decides): finetune.py's
    varied asphalt/concrete + occ.paint_lines + thick, dashed or stitched bay lines + hatched no-parking zones +
    tree crowns / bushes / dry grass intruding from an edge + thin pole shadows + neighbour-car shadows;
  - synthetic cars seen from above (rounded body, colour palette, windscreen/rear window, roof shading,
    wheels, cast shadow), as "occupied" and, shifted so only 8-35 % shows at an edge, as a neighbour in "free";
  - real CNRPark busy patches pasted on that ground (occupied) and their edges at free patches' borders;
  - class-balanced cross-entropy, label smoothing, a wall-clock cosine schedule (--minutes) for GPU runs;
  - optional (off by default) free-bay look-alikes: --picto real bay pictograms (wheelchair/EV/letters/arrow, crisp or
    faded), --zebra stripes over the bay, --kerb kerb edges, --shade deep shade, --treeshade tree-crown shadows,
    --nbr neighbour car bodies intruding up to ~40 % from one edge of a free bay; --soup-base/--soup-alpha interpolate.
Selection proxy (never PKLot): held-out camera A (val, val_slot_only) and the 315 hand-labelled cnr-ext-sample
spaces of 9 other cameras (cnrext_labels.csv). PKLot is evaluated only by --export --pklot.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import occ  # noqa: E402
import finetune as FT  # noqa: E402
import train as T  # noqa: E402

GEN = occ.REPO / ".gpudata" / "occgen"


def R(g, dev):
    return lambda lo, hi, shape: torch.empty(shape).uniform_(lo, hi, generator=g).to(dev)


def P(g, dev):
    return lambda prob, B: (torch.rand(B, 1, 1, 1, generator=g) < prob).float().to(dev)


# ---------------------------------------------------------------- scene pieces (all [B,3,S,S] in [0,1], coords [-1,1])


def thick_lines(x, g, prob):
    """1-2 thick bay lines, optionally dashed or 'stitched' (PKLot-like painted lines), white or yellow."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    yellow = p(0.3, B)
    col = r(0.6, 1.0, (B, 1, 1, 1)) * (yellow * torch.tensor([1.0, 0.85, 0.35], device=dev).view(1, 3, 1, 1) + (1 - yellow))
    base = r(0, math.pi, (B, 1, 1))
    for i in range(2):
        on = p(1.0 if i == 0 else 0.5, B).view(B, 1, 1)
        ang = base + (i % 2) * math.pi / 2 * (torch.rand(B, 1, 1, generator=g) < 0.5).float().to(dev) + r(-0.1, 0.1, (B, 1, 1))
        off = r(-1.0, 1.0, (B, 1, 1))
        w = r(3.0, 11.0, (B, 1, 1)) / S
        d = torch.cos(ang) * xx + torch.sin(ang) * yy - off
        t = -torch.sin(ang) * xx + torch.cos(ang) * yy
        line = torch.sigmoid((w - d.abs()) * S / 1.2)
        dashed = (torch.rand(B, 1, 1, generator=g) < 0.3).float().to(dev)
        per = r(0.15, 0.6, (B, 1, 1))
        dash = torch.sigmoid(torch.sin(t / per * 2 * math.pi + r(0, 6.3, (B, 1, 1))) * 6)
        stitch = (torch.rand(B, 1, 1, generator=g) < 0.3).float().to(dev)
        st = 0.55 + 0.45 * torch.sigmoid(torch.sin((t + d) * S * 0.5) * 4)  # diagonal stitch texture
        line = line * (dashed * dash + 1 - dashed) * (stitch * st + 1 - stitch)
        ray = (torch.rand(B, 1, 1, generator=g) < 0.4).float().to(dev)
        cut = torch.sigmoid((t - r(-1.2, 0.6, (B, 1, 1))) * S / 3)
        line = line * (ray * cut + 1 - ray)
        wear = r(0.5, 1.0, (B, 1, 1)) * (1 - 0.35 * torch.rand(B, S, S, generator=g).to(dev))
        a = (line * wear * on).unsqueeze(1) * sel
        x = x * (1 - a) + col * a
    return x


def hatch(x, g, prob):
    """Hatched no-parking zone: a band from one edge filled with diagonal stripes and bordered by a line."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    th = (torch.randint(0, 4, (B, 1, 1), generator=g).float() * math.pi / 2).to(dev) + r(-0.2, 0.2, (B, 1, 1))
    u = torch.cos(th) * xx + torch.sin(th) * yy
    v = -torch.sin(th) * xx + torch.cos(th) * yy
    depth = r(0.1, 0.6, (B, 1, 1))
    band = torch.sigmoid((u - (1 - depth)) * S / 3)
    per = r(0.08, 0.25, (B, 1, 1))
    sang = r(0.5, 1.1, (B, 1, 1)) * torch.where(torch.rand(B, 1, 1, generator=g).to(dev) < 0.5, 1.0, -1.0)
    stripe = torch.sigmoid((torch.cos(2 * math.pi * (u * torch.cos(sang) + v * torch.sin(sang)) / per) - 0.3) * 5)
    border = torch.sigmoid((r(2, 6, (B, 1, 1)) / S - (u - (1 - depth)).abs()) * S / 1.2)
    m = torch.maximum(band * stripe, border) * r(0.5, 1.0, (B, 1, 1)) * (1 - 0.3 * torch.rand(B, S, S, generator=g).to(dev))
    yellow = p(0.4, B)
    col = r(0.65, 1.0, (B, 1, 1, 1)) * (yellow * torch.tensor([1.0, 0.85, 0.3], device=dev).view(1, 3, 1, 1) + (1 - yellow))
    a = m.unsqueeze(1) * sel
    return x * (1 - a) + col * a


def vegetation(x, g, prob):
    """Tree crown / bush / dry grass intruding from an edge (green or straw), textured."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    th = r(0, 2 * math.pi, (B, 1, 1))
    cx, cy = torch.cos(th) * r(0.9, 1.5, (B, 1, 1)), torch.sin(th) * r(0.9, 1.5, (B, 1, 1))
    rad = r(0.3, 0.9, (B, 1, 1))
    nz = F.interpolate(torch.randn(B, 1, 6, 6, generator=g).to(dev), size=(S, S), mode="bicubic", align_corners=False).squeeze(1)
    d = torch.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    m = torch.sigmoid((rad + 0.15 * nz - d) * S / 6)
    straw = p(0.3, B)
    green = torch.stack([r(0.05, 0.3, (B,)), r(0.18, 0.45, (B,)), r(0.03, 0.2, (B,))], 1).view(B, 3, 1, 1)
    dry = torch.stack([r(0.45, 0.75, (B,)), r(0.35, 0.6, (B,)), r(0.2, 0.4, (B,))], 1).view(B, 3, 1, 1)
    col = straw * dry + (1 - straw) * green
    tex = 1 + r(0.2, 0.6, (B, 1, 1, 1)) * F.interpolate(torch.randn(B, 1, S // 3, S // 3, generator=g).to(dev),
                                                         size=(S, S), mode="bilinear", align_corners=False)
    a = m.unsqueeze(1) * sel
    return x * (1 - a) + (col * tex).clamp(0, 1) * a


def pole_shadow(x, g, prob):
    """A thin dark straight line (shadow of a pole or lamp post), or a thin dark pole itself."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    ang, off = r(0, math.pi, (B, 1, 1)), r(-0.9, 0.9, (B, 1, 1))
    w = r(1.0, 4.0, (B, 1, 1)) / S
    line = torch.sigmoid((w - (torch.cos(ang) * xx + torch.sin(ang) * yy - off).abs()) * S / 1.5)
    a = line.unsqueeze(1) * p(prob, B) * r(0.3, 0.8, (B, 1, 1, 1))
    return x * (1 - a)


def markings(x, g, prob, pale=False):
    """Painted ground markings inside the bay: a pictogram-like figure (disabled-bay sign, arrow, number, letters:
    strokes, rings, discs), white / yellow / blue, faded and worn; or bright worn-paint blotches."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    K = 6
    cx, cy = r(-0.45, 0.45, (B, 1, 1, 1)), r(-0.45, 0.45, (B, 1, 1, 1))
    sc = r(0.4, 1.0, (B, 1, 1, 1))
    ang = r(0, 2 * math.pi, (B, 1, 1, 1))
    px, py = xx[None, None] - cx, yy[None, None] - cy
    lx = (torch.cos(ang) * px + torch.sin(ang) * py) / sc
    ly = (-torch.sin(ang) * px + torch.cos(ang) * py) / sc       # [B,1,S,S] glyph coordinates (-1..1 = glyph box)
    ax, ay, bx, by = (r(-1, 1, (B, K, 1, 1)) for _ in range(4))
    vx, vy = bx - ax, by - ay
    t = (((lx - ax) * vx + (ly - ay) * vy) / (vx ** 2 + vy ** 2 + 1e-6)).clamp(0, 1)
    dseg = torch.sqrt((lx - ax - t * vx) ** 2 + (ly - ay - t * vy) ** 2)
    rad = r(0.1, 0.6, (B, K, 1, 1))
    dring = (torch.sqrt((lx - ax) ** 2 + (ly - ay) ** 2) - rad).abs()
    ddisc = (torch.sqrt((lx - ax) ** 2 + (ly - ay) ** 2) - rad * 0.5).clamp(min=0)
    kind = torch.randint(0, 10, (B, K, 1, 1), generator=g).to(dev)
    d = torch.where(kind < 6, dseg, torch.where(kind < 9, dring, ddisc))
    wid = r(0.05, 0.18, (B, K, 1, 1))
    on = (torch.rand(B, K, 1, 1, generator=g) < 0.75).float().to(dev)
    glyph = (torch.sigmoid((wid - d) * S * sc / 1.5) * on).amax(1, keepdim=True)
    # bright worn-paint blotches instead of a figure for some
    nz = F.interpolate(torch.randn(B, 1, 7, 7, generator=g).to(dev), size=(S, S), mode="bicubic", align_corners=False)
    blot = torch.sigmoid((nz - r(0.3, 1.2, (B, 1, 1, 1))) * 6)
    isblot = p(0.3, B)
    m = glyph * (1 - isblot) + blot * isblot
    fine = F.interpolate(torch.rand(B, 1, S // 4, S // 4, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False)
    wear = (fine > r(0.0, 0.5, (B, 1, 1, 1))).float() * 0.5 + 0.5 * fine
    a = m * wear * r(0.25, 0.9, (B, 1, 1, 1)) * sel
    kindc = torch.randint(0, 10, (B,), generator=g).to(dev).view(B, 1, 1, 1)
    white = torch.ones(1, 3, 1, 1, device=dev) * r(0.7, 1.0, (B, 1, 1, 1))
    col = torch.where(kindc < 6, white, torch.where(kindc < 8, torch.tensor([0.95, 0.8, 0.3], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1),
                                                     torch.tensor([0.2, 0.35, 0.75], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1)))
    if pale:  # half of them: worn paint that only lightens the ground a little (faded pictogram, grey not white)
        lighter = (x * r(1.15, 1.7, (B, 1, 1, 1)) + r(0.0, 0.1, (B, 1, 1, 1))).clamp(0, 1)
        col = torch.where(p(0.5, B).bool(), lighter, col.expand_as(x))
    return x * (1 - a) + col * a


def low_light(x, g, prob):
    """Very dark patches (dusk, deep shade): scale down, a little colour cast."""
    B = x.shape[0]
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    sel = p(prob, B)
    f = r(0.1, 0.4, (B, 1, 1, 1)) * (1 + r(-0.1, 0.1, (B, 3, 1, 1)))
    return x * (1 - sel) + x * f * sel


# ---------------------------------------------------------------- more free-bay look-alikes (--picto/--zebra/--kerb/--shade/--nbr)


def _seg(lx, ly, ax, ay, bx, by):
    vx, vy = bx - ax, by - ay
    t = (((lx - ax) * vx + (ly - ay) * vy) / (vx * vx + vy * vy + 1e-6)).clamp(0, 1)
    return torch.sqrt((lx - ax - t * vx) ** 2 + (ly - ay - t * vy) ** 2)


def _glyph_dist(lx, ly, kind):
    """Distance field of a real ground pictogram in glyph coordinates (-1..1): 0 wheelchair (ISA), 1 EV bolt + plug,
    2 letters 'EV' / 'P', 3 arrow. lx, ly [B,1,S,S]; kind [B,1,1,1]. Returns (stroke distance, filled-disc distance)."""
    big = torch.full_like(lx, 9.0)
    # wheelchair: head, back, arm, thigh, shin, foot, wheel ring
    wc = torch.minimum(_seg(lx, ly, -0.15, -0.45, -0.25, 0.15), _seg(lx, ly, -0.2, -0.2, 0.2, -0.2))
    wc = torch.minimum(wc, _seg(lx, ly, -0.25, 0.15, 0.3, 0.15))
    wc = torch.minimum(wc, _seg(lx, ly, 0.3, 0.15, 0.5, 0.6))
    wc = torch.minimum(wc, _seg(lx, ly, 0.5, 0.6, 0.7, 0.6))
    wc = torch.minimum(wc, (torch.sqrt((lx + 0.25) ** 2 + (ly - 0.35) ** 2) - 0.5).abs())
    wch = (torch.sqrt((lx + 0.1) ** 2 + (ly + 0.72) ** 2) - 0.16).clamp(min=0)
    # EV: lightning bolt + plug (rectangle outline + 2 prongs)
    ev = torch.minimum(_seg(lx, ly, 0.15, -0.9, -0.25, 0.05), _seg(lx, ly, -0.25, 0.05, 0.2, 0.05))
    ev = torch.minimum(ev, _seg(lx, ly, 0.2, 0.05, -0.15, 0.9))
    ev = torch.minimum(ev, (torch.maximum((lx - 0.6).abs() - 0.2, (ly - 0.1).abs() - 0.3)).abs())
    ev = torch.minimum(ev, torch.minimum(_seg(lx, ly, 0.5, -0.2, 0.5, -0.45), _seg(lx, ly, 0.7, -0.2, 0.7, -0.45)))
    # letters E V (or P)
    le = _seg(lx, ly, -0.8, -0.5, -0.8, 0.5)
    for yv in (-0.5, 0.0, 0.5):
        le = torch.minimum(le, _seg(lx, ly, -0.8, yv, -0.3, yv))
    le = torch.minimum(le, torch.minimum(_seg(lx, ly, 0.1, -0.5, 0.35, 0.5), _seg(lx, ly, 0.35, 0.5, 0.6, -0.5)))
    # arrow
    ar = torch.minimum(_seg(lx, ly, 0.0, 0.8, 0.0, -0.6), torch.minimum(_seg(lx, ly, 0.0, -0.8, -0.4, -0.3), _seg(lx, ly, 0.0, -0.8, 0.4, -0.3)))
    d = torch.where(kind == 0, wc, torch.where(kind == 1, ev, torch.where(kind == 2, le, ar)))
    disc = torch.where(kind == 0, wch, big)
    return d, disc


def pictogram(x, g, prob):
    """A real painted bay pictogram (wheelchair, EV, letters, arrow), large or small, crisp or faded to a faint
    lightening of the ground, sometimes inside a painted (blue/yellow/white) box or on a blue-filled bay."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    cx, cy = r(-0.3, 0.3, (B, 1, 1, 1)), r(-0.3, 0.3, (B, 1, 1, 1))
    sc = r(0.35, 0.95, (B, 1, 1, 1))
    asp = torch.exp(r(-0.5, 0.5, (B, 1, 1, 1)))
    ang = torch.randint(0, 4, (B, 1, 1, 1), generator=g).float().to(dev) * math.pi / 2 + r(-0.4, 0.4, (B, 1, 1, 1))
    px, py = xx[None, None] - cx, yy[None, None] - cy
    lx = (torch.cos(ang) * px + torch.sin(ang) * py) / (sc * asp)
    ly = (-torch.sin(ang) * px + torch.cos(ang) * py) / (sc / asp)
    flip = torch.where(p(0.5, B).bool(), -1.0, 1.0)
    kind = torch.multinomial(torch.tensor([5.0, 2.0, 1.5, 1.0]), B, replacement=True, generator=g).to(dev).view(B, 1, 1, 1)
    d, disc = _glyph_dist(lx * flip, ly, kind)
    wid = r(0.05, 0.12, (B, 1, 1, 1))
    glyph = torch.maximum(torch.sigmoid((wid - d) * S * sc / 1.5), torch.sigmoid(-disc * S * sc / 1.5 + 0.0) * (disc < 9).float())
    # optional box outline around the glyph
    box = (torch.maximum(lx.abs(), ly.abs()) - r(1.0, 1.3, (B, 1, 1, 1))).abs()
    glyph = torch.maximum(glyph, torch.sigmoid((wid * 0.7 - box) * S * sc / 1.5) * p(0.3, B))
    fine = F.interpolate(torch.rand(B, 1, S // 4, S // 4, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False)
    wear = ((fine > r(0.0, 0.6, (B, 1, 1, 1))).float() * 0.6 + 0.4 * fine)
    crisp = p(0.35, B)
    strength = crisp * r(0.7, 1.0, (B, 1, 1, 1)) + (1 - crisp) * r(0.12, 0.6, (B, 1, 1, 1))
    wear = crisp * (0.85 + 0.15 * fine) + (1 - crisp) * wear
    kc = torch.randint(0, 10, (B, 1, 1, 1), generator=g).to(dev)
    white = torch.ones(1, 3, 1, 1, device=dev) * r(0.75, 1.0, (B, 1, 1, 1))
    yel = torch.tensor([0.95, 0.82, 0.3], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1)
    blue = torch.tensor([0.2, 0.35, 0.75], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1)
    col = torch.where(kc < 6, white, torch.where(kc < 8, yel, blue)).expand_as(x)
    lighter = (x * r(1.15, 1.8, (B, 1, 1, 1)) + r(0.0, 0.12, (B, 1, 1, 1))).clamp(0, 1)
    col = torch.where(((1 - crisp) * p(0.5, B)).bool(), lighter, col)
    # blue-filled bay (painted disabled bay) under a white glyph, sometimes, also faded
    fill = p(0.2, B) * sel
    fa = fill * r(0.2, 0.8, (B, 1, 1, 1)) * (0.8 + 0.2 * fine)
    x = x * (1 - fa) + blue * (0.6 + 0.4 * x.mean(1, keepdim=True)) * fa
    col = torch.where(fill.bool(), white.expand_as(x), col)
    a = glyph * wear * strength * sel
    return x * (1 - a) + col * a


def zebra(x, g, prob):
    """Zebra / hatched no-parking stripes covering most or all of the patch (worn, white or yellow)."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    ang = r(0, math.pi, (B, 1, 1))
    per = r(0.15, 0.5, (B, 1, 1))
    duty = r(-0.4, 0.4, (B, 1, 1))
    u = torch.cos(ang) * xx + torch.sin(ang) * yy
    stripe = torch.sigmoid((torch.cos(2 * math.pi * u / per + r(0, 6.3, (B, 1, 1))) - duty) * r(3, 12, (B, 1, 1)))
    th = (torch.randint(0, 4, (B, 1, 1), generator=g).float() * math.pi / 2).to(dev)
    v = torch.cos(th) * xx + torch.sin(th) * yy
    cover = torch.sigmoid((v - r(-1.3, 0.2, (B, 1, 1))) * S / 4)   # from one edge to all of the patch
    fine = F.interpolate(torch.rand(B, 1, S // 4, S // 4, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False).squeeze(1)
    m = stripe * cover * r(0.2, 0.95, (B, 1, 1)) * (0.5 + 0.5 * fine)
    yellow = p(0.4, B)
    col = r(0.65, 1.0, (B, 1, 1, 1)) * (yellow * torch.tensor([1.0, 0.85, 0.3], device=dev).view(1, 3, 1, 1) + (1 - yellow))
    a = m.unsqueeze(1) * sel
    return x * (1 - a) + col * a


def kerb(x, g, prob):
    """Kerb at one edge: bright kerb stone (plain or painted stripes) with a dark shadow line on the bay side, and a
    different surface beyond it (grass, pavement, dirt)."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    th = (torch.randint(0, 4, (B, 1, 1), generator=g).float() * math.pi / 2).to(dev) + r(-0.25, 0.25, (B, 1, 1))
    u = torch.cos(th) * xx + torch.sin(th) * yy
    v = -torch.sin(th) * xx + torch.cos(th) * yy
    k0 = r(0.35, 0.95, (B, 1, 1))
    w = r(0.06, 0.2, (B, 1, 1))
    soft = S / 1.5
    stone = torch.sigmoid((u - k0) * soft) * torch.sigmoid((k0 + w - u) * soft)
    beyond = torch.sigmoid((u - k0 - w) * soft)
    sh = torch.sigmoid((u - k0 + r(0.02, 0.08, (B, 1, 1))) * soft) * (1 - torch.sigmoid((u - k0) * soft))
    # surfaces
    grass = torch.stack([r(0.1, 0.35, (B,)), r(0.2, 0.5, (B,)), r(0.05, 0.2, (B,))], 1).view(B, 3, 1, 1)
    pave = r(0.35, 0.8, (B, 1, 1, 1)) * (1 + r(-0.06, 0.06, (B, 3, 1, 1)))
    dirt = torch.stack([r(0.35, 0.6, (B,)), r(0.28, 0.5, (B,)), r(0.18, 0.35, (B,))], 1).view(B, 3, 1, 1)
    ks = torch.randint(0, 3, (B, 1, 1, 1), generator=g).to(dev)
    surf = torch.where(ks == 0, grass, torch.where(ks == 1, pave, dirt))
    tex = 1 + r(0.05, 0.35, (B, 1, 1, 1)) * F.interpolate(torch.randn(B, 1, S // 4, S // 4, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False)
    surf = (surf * tex).clamp(0, 1)
    scol = r(0.55, 0.95, (B, 1, 1, 1)) * (1 + r(-0.05, 0.05, (B, 3, 1, 1)))
    painted = p(0.3, B)
    band = (torch.sin(v * math.pi / r(0.15, 0.4, (B, 1, 1))) > 0).float().unsqueeze(1)
    pc = torch.where(p(0.5, B).bool(), torch.tensor([0.95, 0.8, 0.2], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1),
                     torch.tensor([0.8, 0.15, 0.12], device=dev).view(1, 3, 1, 1).expand(B, 3, 1, 1))
    dk = torch.full_like(pc, 0.08)
    dk = torch.where(pc[:, 1:2] > 0.5, dk, torch.ones_like(pc) * 0.9)
    scol = torch.where(painted.bool(), band * pc + (1 - band) * dk, scol.expand_as(x))
    out = x * (1 - (sh * r(0.3, 0.7, (B, 1, 1))).unsqueeze(1))
    out = out * (1 - beyond.unsqueeze(1)) + surf * beyond.unsqueeze(1)
    out = out * (1 - stone.unsqueeze(1)) + scol * stone.unsqueeze(1)
    return x * (1 - sel) + out * sel


def worn_paint(x, g, prob):
    """Weathered paint: ragged, mottled light patches (worn-out pictograms, old bay lines, repairs) covering 10-50 % of
    the bay, blob-like or stretched into bands, grey-white and only partly opaque."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    sel = p(prob, B)
    nz = torch.zeros(B, 1, S, S, device=dev)
    for cells, amp in ((4, 1.0), (8, 0.6), (16, 0.4), (S // 3, 0.3)):  # fractal noise: blobs with ragged edges
        nz += amp * F.interpolate(torch.randn(B, 1, cells, cells, generator=g).to(dev), size=(S, S), mode="bicubic", align_corners=False)
    band = p(0.4, B)  # a worn band across the bay: stretch the noise along one axis
    stretched = F.interpolate(F.interpolate(nz, size=(S, max(2, S // 6)), mode="bilinear", align_corners=False), size=(S, S), mode="bilinear", align_corners=False)
    stretched = torch.where(p(0.5, B).bool(), stretched, stretched.transpose(2, 3))
    nz = band * (0.6 * stretched + 0.4 * nz) + (1 - band) * nz
    thr = nz.flatten(1).mean(1).view(B, 1, 1, 1) + nz.flatten(1).std(1).view(B, 1, 1, 1) * r(0.0, 1.3, (B, 1, 1, 1))
    m = torch.sigmoid((nz - thr) * r(2.0, 8.0, (B, 1, 1, 1)))
    fine = F.interpolate(torch.rand(B, 1, S // 3, S // 3, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False)
    a = m * (0.5 + 0.5 * fine) * r(0.25, 0.85, (B, 1, 1, 1)) * sel
    col = (torch.ones(B, 3, 1, 1, device=dev) * r(0.6, 0.95, (B, 1, 1, 1)) + r(-0.04, 0.04, (B, 3, 1, 1))).clamp(0, 1)
    return x * (1 - a) + col * a


def deep_shade(x, g, prob):
    """Deep shade over the whole bay (or all but a sunlit sliver at one edge): 5-30 % of the light, bluish."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    xx, yy = occ._grid(S, dev)
    sel = p(prob, B)
    th = r(0, 2 * math.pi, (B, 1, 1))
    off = r(0.5, 1.6, (B, 1, 1))
    sun = torch.sigmoid((torch.cos(th) * xx + torch.sin(th) * yy - off) / r(0.01, 0.1, (B, 1, 1))).unsqueeze(1)
    f = r(0.05, 0.3, (B, 1, 1, 1)) * (1 + r(-0.05, 0.12, (B, 3, 1, 1)) * torch.tensor([-1.0, 0.0, 1.0], device=dev).view(1, 3, 1, 1))
    f = f * (1 - sun) + sun
    return x * (1 - sel) + x * f * sel


def tree_shade(x, g, prob):
    """Large irregular shadow of a tree crown over part of the patch (30-90 %), dappled edges, 25-65 % of the light."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    sel = p(prob, B)
    n = int(torch.randint(3, 7, (1,), generator=g))
    nz = F.interpolate(torch.randn(B, 1, n, n, generator=g).to(dev), size=(S, S), mode="bicubic", align_corners=False)
    fine = F.interpolate(torch.randn(B, 1, S // 6, S // 6, generator=g).to(dev), size=(S, S), mode="bilinear", align_corners=False)
    m = torch.sigmoid((nz + 0.35 * fine - r(-0.7, 0.7, (B, 1, 1, 1))) * r(4, 15, (B, 1, 1, 1)))
    f = r(0.25, 0.65, (B, 1, 1, 1)) * (1 + r(0.0, 0.1, (B, 3, 1, 1)) * torch.tensor([-1.0, 0.0, 1.0], device=dev).view(1, 3, 1, 1))
    return x * (1 - sel * m * (1 - f))


def big_neighbour(x, g, prob, donors):
    """A neighbouring car's body intruding from one edge of a free bay, more than neighbours() (up to ~40 %),
    real (a shifted busy patch) or synthetic, with its shadow; the bay centre stays empty (label free)."""
    B, _, S, _ = x.shape
    dev = x.device
    r, p = R(g, dev), P(g, dev)
    sel = p(prob, B)
    th = (torch.randint(0, 4, (B,), generator=g).float() * math.pi / 2).to(dev) + r(-0.35, 0.35, (B,))
    dist = r(1.15, 1.5, (B,))
    dx, dy = torch.cos(th) * dist, torch.sin(th) * dist
    xx, yy = occ._grid(S, dev)
    grid = torch.stack([xx[None] - dx[:, None, None], yy[None] - dy[:, None, None]], -1)
    real = p(0.5, B)
    if donors is not None and len(donors) > 0:
        shifted = F.grid_sample(donors, grid, mode="bilinear", padding_mode="border", align_corners=True)
        rx, ry = r(0.7, 0.95, (B, 1, 1)), r(0.7, 0.95, (B, 1, 1))
        m = torch.sigmoid((1 - ((grid[..., 0] / rx) ** 2 + (grid[..., 1] / ry) ** 2)) * 8).unsqueeze(1)
        x = x * (1 - sel * real * m) + sel * real * m * shifted
    img, al, sh = topdown_car(B, S, g, dev, offset=torch.stack([dx, dy], 1))
    s2 = sel * (1 - real)
    x = x * (1 - s2 * sh) * (1 - s2 * al) + s2 * al * img
    return x


PALETTE = torch.tensor([
    [0.92, 0.92, 0.92], [0.85, 0.86, 0.88], [0.65, 0.66, 0.68], [0.45, 0.46, 0.48], [0.25, 0.25, 0.27],
    [0.07, 0.07, 0.08], [0.12, 0.12, 0.15], [0.70, 0.08, 0.08], [0.50, 0.05, 0.07], [0.10, 0.20, 0.55],
    [0.05, 0.10, 0.30], [0.15, 0.35, 0.20], [0.80, 0.70, 0.20], [0.75, 0.68, 0.55], [0.35, 0.55, 0.75],
])
PALETTE_P = torch.tensor([14, 14, 12, 10, 8, 12, 6, 6, 3, 5, 3, 2, 1, 2, 2], dtype=torch.float)


def topdown_car(K, S, g, dev, offset=None):
    """Synthetic car seen from above / obliquely: returns rgb [K,3,S,S], alpha [K,1,S,S], shadow alpha [K,1,S,S].
    offset [K,2] shifts the car centre (used for neighbour cars at an edge)."""
    r = R(g, dev)
    xx, yy = occ._grid(S, dev)
    a = r(0.6, 1.0, (K, 1, 1))                      # half length
    b = a * r(0.42, 0.62, (K, 1, 1))                # half width
    ang = (torch.randint(0, 4, (K, 1, 1), generator=g).float() * math.pi / 2).to(dev) + r(-0.3, 0.3, (K, 1, 1))
    c = r(-0.15, 0.15, (K, 2))
    if offset is not None:
        c = c + offset
    dx, dy = xx - c[:, 0, None, None], yy - c[:, 1, None, None]
    u = (torch.cos(ang) * dx + torch.sin(ang) * dy) / a
    v = (-torch.sin(ang) * dx + torch.cos(ang) * dy) / b
    e = r(3.0, 6.0, (K, 1, 1))
    body = torch.sigmoid((1 - (u.abs() ** e + v.abs() ** e)) * r(8, 20, (K, 1, 1)))
    idx = torch.multinomial(PALETTE_P, K, replacement=True, generator=g)
    col = (PALETTE[idx].to(dev) * (1 + r(-0.12, 0.12, (K, 3)))).view(K, 3, 1, 1)
    shade = (1 - r(0.15, 0.45, (K, 1, 1)) * v ** 2) * (1 + r(-0.15, 0.15, (K, 1, 1)) * u)
    img = col * shade.unsqueeze(1)
    front = torch.where(torch.rand(K, 1, 1, generator=g).to(dev) < 0.5, 1.0, -1.0)
    uf = u * front
    # windscreen, rear window, roof; side windows
    w0 = r(0.05, 0.3, (K, 1, 1))
    ws = torch.sigmoid((uf - w0) * 25) * torch.sigmoid((w0 + r(0.2, 0.35, (K, 1, 1)) - uf) * 25)
    rw0 = -r(0.35, 0.6, (K, 1, 1))
    rws = torch.sigmoid((uf - rw0) * 25) * torch.sigmoid((rw0 + r(0.12, 0.25, (K, 1, 1)) - uf) * 25)
    inner = torch.sigmoid((r(0.7, 0.85, (K, 1, 1)) - v.abs()) * 25)
    side = torch.sigmoid((uf - rw0) * 25) * torch.sigmoid((w0 - uf) * 25) * torch.sigmoid((v.abs() - r(0.62, 0.75, (K, 1, 1))) * 30) * inner.new_ones(1) * torch.sigmoid((0.9 - v.abs()) * 30)
    win = ((ws + rws) * inner + side * (torch.rand(K, 1, 1, generator=g).to(dev) < 0.6).float()).clamp(0, 1)
    glass = r(0.03, 0.25, (K, 1, 1, 1)) * torch.tensor([0.9, 0.95, 1.1], device=dev).view(1, 3, 1, 1)
    glass = glass * (1 + 0.6 * torch.sigmoid((v + r(-1, 1, (K, 1, 1))) * 3)).unsqueeze(1)  # reflection gradient
    img = img * (1 - win.unsqueeze(1)) + glass * win.unsqueeze(1)
    # highlight stripe
    hl = torch.exp(-((v - r(-0.5, 0.5, (K, 1, 1))) ** 2) / 0.02) * r(0.0, 0.25, (K, 1, 1))
    img = img + hl.unsqueeze(1)
    # wheels (visible in oblique views)
    wheels = torch.zeros_like(u)
    for su in (-0.62, 0.62):
        for sv in (-1.0, 1.0):
            wheels = wheels + torch.sigmoid((0.16 - (u - su).abs()) * 40) * torch.sigmoid((0.12 - (v - sv).abs()) * 40)
    wheels = wheels.clamp(0, 1) * (torch.rand(K, 1, 1, generator=g).to(dev) < 0.5).float()
    img = img * (1 - wheels.unsqueeze(1)) + 0.05 * wheels.unsqueeze(1)
    alpha = torch.maximum(body, wheels).unsqueeze(1)
    # shadow: body shifted and grown
    sd = r(-0.2, 0.2, (K, 2))
    us = (torch.cos(ang) * (dx - sd[:, 0, None, None]) + torch.sin(ang) * (dy - sd[:, 1, None, None])) / (a * 1.08)
    vs = (-torch.sin(ang) * (dx - sd[:, 0, None, None]) + torch.cos(ang) * (dy - sd[:, 1, None, None])) / (b * 1.15)
    shadow = torch.sigmoid((1 - (us.abs() ** 3 + vs.abs() ** 3)) * 6).unsqueeze(1) * r(0.3, 0.7, (K, 1, 1, 1))
    return img.clamp(0, 1), alpha, shadow


def paste_ellipse(bg, car, g):
    """Real car patch [K,3,S,S] pasted with a soft elliptical mask (occ.synth_batch's way)."""
    K, _, S, _ = car.shape
    r = R(g, bg.device)
    xx, yy = occ._grid(S, bg.device)
    rx, ry = r(0.55, 0.95, (K, 1, 1)), r(0.55, 0.95, (K, 1, 1))
    m = torch.sigmoid((1 - ((xx / rx) ** 2 + (yy / ry) ** 2)) * 8).unsqueeze(1)
    return car * m + bg * (1 - m)


def edge_offset(K, g, dev, lo=1.25, hi=1.7):
    th = torch.empty(K).uniform_(0, 2 * math.pi, generator=g).to(dev)
    d = torch.empty(K).uniform_(lo, hi, generator=g).to(dev)
    return torch.stack([torch.cos(th) * d, torch.sin(th) * d], 1)


def scene_ground(n, S, g, dev, opt):
    gr = FT.ground(n, S, g, dev)
    gr = occ.paint_lines(gr, g, 0.5)
    gr = thick_lines(gr, g, 0.5)
    gr = hatch(gr, g, opt.hatch)
    gr = markings(gr, g, opt.marks, opt.pale)
    if opt.picto > 0:
        gr = pictogram(gr, g, opt.picto)
    if opt.zebra > 0:
        gr = zebra(gr, g, opt.zebra)
    if opt.worn > 0:
        gr = worn_paint(gr, g, opt.worn)
    if opt.kerb > 0:
        gr = kerb(gr, g, opt.kerb)
    gr = FT.cast_shadow(gr, g, 0.3)
    gr = pole_shadow(gr, g, 0.1)
    return gr


def neighbours(x, g, opt, donors):
    """Neighbour car at an edge (real busy patch edge or a synthetic car), vegetation; label unchanged."""
    B, _, S, _ = x.shape
    dev = x.device
    if donors is not None and len(donors) > 0:
        x = FT.edge_car(x, donors, g, opt.edge / 2)
    sel = (torch.rand(B, 1, 1, 1, generator=g) < opt.edge / 2).float().to(dev)
    img, al, sh = topdown_car(B, S, g, dev, offset=edge_offset(B, g, dev))
    x = x * (1 - sel * sh) * (1 - sel * al) + sel * al * img
    return vegetation(x, g, opt.veg)


def synth_pair(k, S, g, dev, opt, real_busy, ext_cars):
    """k synthetic free and k synthetic occupied scenes on the same kind of ground."""
    gr = scene_ground(2 * k, S, g, dev, opt)
    free, bg = gr[:k], gr[k:]
    # occupied: 1/3 synthetic top-down car, the rest real cars (CNRPark busy patches, or external car photos)
    kind = torch.rand(k, generator=g).to(dev)
    img, al, sh = topdown_car(k, S, g, dev)
    syn = bg * (1 - sh) * (1 - al) + al * img
    src = real_busy[torch.randint(0, len(real_busy), (k,), generator=g).to(real_busy.device)]
    if ext_cars is not None and opt.extcars > 0:
        ext = ext_cars[torch.randint(0, len(ext_cars), (k,), generator=g).to(ext_cars.device)]
        use = (torch.rand(k, generator=g) < opt.extcars).to(dev).view(k, 1, 1, 1)
        src = torch.where(use, ext, src)
    real = paste_ellipse(bg, src, g)
    busy = torch.where((kind < opt.topdown).view(k, 1, 1, 1), syn, real)
    donors = real_busy[torch.randint(0, len(real_busy), (2 * k,), generator=g).to(real_busy.device)]
    both = neighbours(torch.cat([free, busy]), g, opt, donors)
    if opt.nbr > 0:
        both[:k] = big_neighbour(both[:k], g, opt.nbr, donors[:k])
    return both[:k], both[k:]


def augment(imgs_u8, labels, size, g, opt, dev, ext_cars=None):
    x = torch.from_numpy(imgs_u8).to(dev).permute(0, 3, 1, 2).float() / 255.0
    if opt.src != x.shape[-1]:
        x = F.interpolate(x, size=(opt.src, opt.src), mode="bilinear", antialias=True, align_corners=False)
        if ext_cars is not None and ext_cars.shape[-1] != opt.src:
            ext_cars = F.interpolate(ext_cars, size=(opt.src, opt.src), mode="bilinear", antialias=True, align_corners=False)
    labels = labels.clone()
    B, S = x.shape[0], x.shape[-1]
    busy_idx = torch.nonzero(labels == 1).flatten()
    free_idx = torch.nonzero(labels == 0).flatten()
    x = occ.paint_lines(x, g, 0.3)
    x = thick_lines(x, g, 0.15)
    if opt.kerb > 0:
        x = kerb(x, g, opt.kerb / 2)
    if len(free_idx) > 0 and opt.marks > 0:
        x[free_idx.to(dev)] = markings(x[free_idx.to(dev)], g, opt.marks / 2, opt.pale)
    if len(free_idx) > 0 and opt.picto > 0:
        x[free_idx.to(dev)] = pictogram(x[free_idx.to(dev)], g, opt.picto / 2)
    if len(free_idx) > 0 and opt.worn > 0:
        x[free_idx.to(dev)] = worn_paint(x[free_idx.to(dev)], g, opt.worn / 2)
    if len(free_idx) > 0 and opt.zebra > 0:
        x[free_idx.to(dev)] = zebra(x[free_idx.to(dev)], g, opt.zebra / 2)
    if len(free_idx) > 0 and len(busy_idx) > 0 and opt.nbr > 0:
        donors = x[busy_idx[torch.randint(0, len(busy_idx), (len(free_idx),), generator=g)].to(dev)]
        x[free_idx.to(dev)] = big_neighbour(x[free_idx.to(dev)], g, opt.nbr / 2, donors)
    if len(busy_idx) > 0 and len(free_idx) > 0:
        donors = x[busy_idx[torch.randint(0, len(busy_idx), (len(free_idx),), generator=g)].to(dev)]
        xf = FT.cast_shadow(neighbours(x[free_idx.to(dev)], g, opt, donors), g, opt.edge)
        x[free_idx.to(dev)] = xf
    if len(busy_idx) > 0:
        k = int(round(B * opt.synth / 2))
        if k > 0:
            real_busy = x[busy_idx.to(dev)].clone()
            fr, bu = synth_pair(k, S, g, dev, opt, real_busy, ext_cars)
            dst = torch.randperm(B, generator=g)[: 2 * k]
            x[dst[:k].to(dev)], labels[dst[:k]] = fr, 0
            x[dst[k:].to(dev)], labels[dst[k:]] = bu, 1
    x = low_light(x, g, opt.dark)
    if opt.shade > 0:
        x = deep_shade(x, g, opt.shade)
    if opt.treeshade > 0:
        x = tree_shade(x, g, opt.treeshade)
    x = occ.geometric(x.clamp(0, 1), g, 1.0)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = occ.photometric(x, g)
    xu = (x * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()
    xu = occ.jpeg(xu, g)
    x = xu.to(dev).permute(0, 3, 1, 2).float() / 255.0
    x = (x - occ.MEAN_T.to(dev)) / occ.STD_T.to(dev)
    return x, labels


# ---------------------------------------------------------------- proxy evaluation (no PKLot)


def load_cnrext(gen_dir):
    p = Path(gen_dir) / "cnrext.npz"
    if not p.exists():
        return None
    d = np.load(p)
    keep = d["labels"] >= 0
    return d["imgs"][keep], d["labels"][keep]


class Proxy:
    def __init__(self, data, masks, cnrext, size):
        self.sets = {}
        for k in ("val", "val_slot_only", "val_time_only"):
            idx = np.nonzero(masks[k])[0]
            self.sets[k] = (occ.preprocess_many([Image.fromarray(data["imgs"][i]) for i in idx], size), data["labels"][idx])
        if cnrext is not None:
            self.sets["cnrext"] = (occ.preprocess_many([Image.fromarray(a) for a in cnrext[0]], size), cnrext[1])

    def evaluate(self, model, device="cpu"):
        out = {}
        for k, (x, y) in self.sets.items():
            lg = T.predict(model, x, device=device)
            m = T.metrics(lg, y)
            lp = torch.log_softmax(torch.from_numpy(lg), 1).numpy()
            m["nll"] = float(-lp[np.arange(len(y)), y].mean())
            out[k] = m
        return out


def fmt(res):
    return " ".join(f"{k} {v['accuracy']:.4f}/{v['nll']:.3f}" for k, v in res.items())


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=0, help="wall-clock training budget (cosine over time)")
    ap.add_argument("--steps", type=int, default=2400, help="steps when --minutes is 0")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--synth", type=float, default=0.4, help="fraction of each batch replaced by synthetic scenes")
    ap.add_argument("--topdown", type=float, default=0.35, help="of the synthetic occupied: share of synthetic cars")
    ap.add_argument("--extcars", type=float, default=0.0, help="of the real cars pasted: share from extcars.npz")
    ap.add_argument("--edge", type=float, default=0.4, help="neighbour car at the edge (real or synthetic)")
    ap.add_argument("--veg", type=float, default=0.15)
    ap.add_argument("--hatch", type=float, default=0.2)
    ap.add_argument("--marks", type=float, default=0.0, help="painted pictograms / worn paint in the bay (synthetic ground; half on real free)")
    ap.add_argument("--pale", action="store_true", help="half of the markings only lighten the ground (faded paint)")
    ap.add_argument("--src", type=int, default=150, help="resample the 150 px sources to this side before augmenting (CPU speed)")
    ap.add_argument("--dark", type=float, default=0.0, help="very dark patches (both classes)")
    ap.add_argument("--picto", type=float, default=0.0, help="real bay pictograms (wheelchair/EV/letters/arrow), crisp or faded (synthetic ground; half on real free)")
    ap.add_argument("--zebra", type=float, default=0.0, help="zebra/hatched stripes over most or all of the bay (synthetic ground; half on real free)")
    ap.add_argument("--worn", type=float, default=0.0, help="weathered paint: ragged mottled light patches/bands (synthetic ground; half on real free)")
    ap.add_argument("--kerb", type=float, default=0.0, help="kerb edge + other surface beyond it (synthetic ground; half on all real patches)")
    ap.add_argument("--shade", type=float, default=0.0, help="deep shade over the whole bay or all but a sunlit sliver (both classes)")
    ap.add_argument("--treeshade", type=float, default=0.0, help="large irregular tree-crown shadow over part of the patch (both classes)")
    ap.add_argument("--nbr", type=float, default=0.0, help="neighbour car body intruding up to ~40 %% from an edge of free bays (synthetic; half on real free)")
    ap.add_argument("--width", default="16,32,64,64,128")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--gen-dir", default=str(GEN), help="pack_gen.py output (CNRPark A copy, extcars, cnrext)")
    ap.add_argument("--cnr-dir", help="CNRPark A folder (default GEN/A if present, else ../shared)")
    ap.add_argument("--save", default=str(T.RUNS / "gen"))
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--quick", action="store_true", help="30 steps, smoke test")
    ap.add_argument("--preview", help="write a PNG grid of one augmented batch and exit")
    ap.add_argument("--init", help="start from this checkpoint (e.g. models/occupancy.pt) instead of random weights")
    ap.add_argument("--load", help="load DIR/occupancy.pt instead of training")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of the teacher's soft labels (0 = off): the teacher is --teacher (default --init) averaged "
                         "over the 8 flips/rotations of each batch, an ensemble distilled into one net of the same cost")
    ap.add_argument("--teacher", help="teacher checkpoint for --distill (default: --init)")
    ap.add_argument("--teacher-inset", type=float, default=1.0, help="also average the teacher over this inset view (< 1)")
    ap.add_argument("--soup", nargs="+", help="average these checkpoints (same init) instead of training")
    ap.add_argument("--soup-base", help="with --soup: interpolate from this checkpoint towards the soup (WiSE-FT style)")
    ap.add_argument("--soup-alpha", type=float, default=1.0, help="with --soup-base: base + alpha * (soup - base)")
    ap.add_argument("--save-soup", help="with --soup: save the averaged checkpoint here")
    ap.add_argument("--export", action="store_true", help="export ONNX + sidecar + golden + metrics into --out")
    ap.add_argument("--out", default=str(T.MODELS), help="where --export writes (models/ ships)")
    ap.add_argument("--pklot", action="store_true", help="with --export: also evaluate PKLot warp/bbox (judge only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    gen = Path(args.gen_dir)
    if args.cnr_dir:
        occ.CNR_A = Path(args.cnr_dir)
    elif (gen / "A").exists():
        occ.CNR_A = gen / "A"
    data = occ.load_cnr_a()
    masks = occ.split_masks(data)
    train_idx = np.nonzero(masks["train"])[0]
    labels_all = torch.from_numpy(data["labels"]).long()
    ext = None
    if (gen / "extcars.npz").exists():
        ext = torch.from_numpy(np.load(gen / "extcars.npz")["cars"]).to(dev).permute(0, 3, 1, 2).float() / 255.0
        if args.src != ext.shape[-1]:
            ext = F.interpolate(ext, size=(args.src, args.src), mode="bilinear", antialias=True, align_corners=False)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    width = tuple(int(v) for v in args.width.split(","))
    model = occ.OccNet(args.size, width)
    size = args.size
    if args.preview:
        idx = rng.choice(train_idx, 64, replace=False)
        x, y = augment(data["imgs"][idx], labels_all[idx], size, g, args, dev, ext)
        x = ((x.cpu() * occ.STD_T + occ.MEAN_T).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
        grid = np.full((8 * (size + 4), 8 * (size + 4), 3), 255, np.uint8)
        for i in range(64):
            r_, c_ = divmod(i, 8)
            tile = x[i].copy()
            tile[:3] = [0, 160, 0] if y[i] == 0 else [255, 0, 0]
            grid[r_ * (size + 4):r_ * (size + 4) + size, c_ * (size + 4):c_ * (size + 4) + size] = tile
        Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2)).save(args.preview)
        return
    proxy = Proxy(data, masks, load_cnrext(gen), size)
    if args.soup:  # uniform weight average ("model soup") of checkpoints fine-tuned from one initialisation
        cks = [torch.load(c, map_location="cpu") for c in args.soup]
        ck = dict(cks[0])
        ck["state_dict"] = {k: (sum(c["state_dict"][k].float() for c in cks) / len(cks)).to(v.dtype)
                            for k, v in cks[0]["state_dict"].items()}
        ck["soup"] = [str(c) for c in args.soup]
        if args.soup_base:
            b = torch.load(args.soup_base, map_location="cpu")["state_dict"]
            ck["state_dict"] = {k: (b[k].float() + args.soup_alpha * (v.float() - b[k].float())).to(b[k].dtype)
                                for k, v in ck["state_dict"].items()}
            ck["soup"] = {"base": str(args.soup_base), "alpha": args.soup_alpha, "soup_of": ck["soup"]}
        ck["train_seconds"] = sum(c["train_seconds"] for c in cks)
        model = occ.OccNet(ck["size"], tuple(ck["width"]))
        model.load_state_dict(ck["state_dict"])
        T.log(f"soup of {len(cks)} checkpoints: " + fmt(proxy.evaluate(model)))
        if args.save_soup:
            torch.save(ck, args.save_soup)
    elif args.load:
        ck = torch.load(Path(args.load) / "occupancy.pt", map_location="cpu")
        model = occ.OccNet(ck["size"], tuple(ck["width"]))
        model.load_state_dict(ck["state_dict"])
        T.log(f"loaded {args.load}/occupancy.pt: {ck.get('recipe')}")
    else:
        if args.init:
            ck0 = torch.load(args.init, map_location="cpu")
            model = occ.OccNet(ck0["size"], tuple(ck0["width"]))
            model.load_state_dict(ck0["state_dict"])
        ck = train(model, data, train_idx, labels_all, size, g, rng, args, dev, ext, proxy)
        save = Path(args.save)
        save.mkdir(parents=True, exist_ok=True)
        torch.save(ck, save / "occupancy.pt")
        (save / "proxy.json").write_text(json.dumps(ck["proxy"], indent=1) + "\n")
    if args.export:
        export(model, ck, args, data, masks, train_idx, proxy)


def dihedral_views(x):
    """The 8 flips/rotations of a batch [B,C,S,S]."""
    r = [x, x.rot90(1, (2, 3)), x.rot90(2, (2, 3)), x.rot90(3, (2, 3))]
    return r + [v.flip(3) for v in r]


def teacher_probs(teacher, x, inset):
    """The teacher's p(free), p(occupied) averaged over the dihedral views (and an inset view of each when < 1)."""
    with torch.no_grad():
        views = dihedral_views(x)
        if inset < 1:
            S = x.shape[-1]
            m = round(S * (1 - inset) / 2)
            inner = F.interpolate(x[..., m:S - m, m:S - m], size=(S, S), mode="bilinear", antialias=True, align_corners=False)
            views += dihedral_views(inner)
        return torch.stack([torch.softmax(teacher(v), 1) for v in views]).mean(0)


def train(model, data, train_idx, labels_all, size, g, rng, args, dev, ext, proxy):
    model.to(dev)
    teacher = None
    if args.distill > 0:
        tck = torch.load(args.teacher or args.init, map_location="cpu")
        teacher = occ.OccNet(tck["size"], tuple(tck["width"]))
        teacher.load_state_dict(tck["state_dict"])
        teacher.to(dev).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    budget = args.minutes * 60
    steps = 30 if args.quick else args.steps
    warm = 0.05
    t0 = time.time()
    step, hist = 0, []
    perm, pos = rng.permutation(train_idx), 0
    tot, correct, n = 0.0, 0, 0
    while True:
        frac = (time.time() - t0) / budget if budget > 0 else step / steps
        if frac >= 1:
            break
        lr = args.lr * (frac / warm if frac < warm else 0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))))
        for pg in opt.param_groups:
            pg["lr"] = lr
        if pos + args.batch > len(perm):
            perm, pos = rng.permutation(train_idx), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        model.train()
        x, y = augment(data["imgs"][idx], labels_all[idx], size, g, args, dev, ext)
        y = y.to(dev)
        out = model(x)
        cnt = torch.bincount(y, minlength=2).float().clamp(min=1)
        loss = F.cross_entropy(out, y, weight=cnt.sum() / (2 * cnt), label_smoothing=0.05)
        if teacher is not None:
            soft = teacher_probs(teacher, x, args.teacher_inset)
            kl = F.kl_div(F.log_softmax(out, 1), soft, reduction="batchmean")
            loss = (1 - args.distill) * loss + args.distill * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        tot += float(loss.detach()) * len(idx)
        correct += int((out.argmax(1) == y).sum())
        n += len(idx)
        if step % args.eval_every == 0:
            res = proxy.evaluate(model, dev)
            hist.append({"step": step, "seconds": round(time.time() - t0), **{k: [v["accuracy"], v["nll"]] for k, v in res.items()}})
            T.log(f"step {step} lr {lr:.2e} loss {tot / n:.4f} aug-acc {correct / n:.4f} ({time.time() - t0:.0f}s) | {fmt(res)}")
            tot, correct, n = 0.0, 0, 0
    secs = time.time() - t0
    res = proxy.evaluate(model, dev)
    T.log(f"final step {step} ({secs:.0f}s) | {fmt(res)}")
    model.to("cpu")
    train_device = dev if dev == "cpu" else torch.cuda.get_device_name()
    recipe = {k: v for k, v in vars(args).items() if k not in ("preview", "load", "export", "out", "pklot", "gen_dir", "cnr_dir", "save", "quick", "eval_every")}
    return {"state_dict": model.state_dict(), "train_seconds": secs, "epochs": round(step * args.batch / len(train_idx), 1),
            "steps": step, "device": train_device, "size": size, "seed": args.seed, "synth": args.synth,
            "width": list(model.width), "recipe": recipe, "history": hist, "proxy": res}


def export(model, ck, args, data, masks, train_idx, proxy):
    out = Path(args.out)
    (out / "golden").mkdir(parents=True, exist_ok=True)
    T.MODELS = out
    size = ck["size"]
    onnx_path = out / "occupancy.onnx"
    folded, ops = T.export_onnx(model, size, onnx_path)
    ver = T.verify_onnx(folded, onnx_path, size)
    ver_unfolded = T.verify_onnx(model.eval(), onnx_path, size)
    T.log(f"onnx ops {ops}; max|onnx-torch| folded {ver}, vs unfolded {ver_unfolded}")
    res = proxy.evaluate(folded)
    if args.pklot:
        for style in ("warp", "bbox"):
            items = list(T.pklot_crops.iter_crops(style=style))
            x = occ.preprocess_many([im for _, _, im in items], size)
            res[f"pklot_{style}"] = T.metrics(T.predict(folded, x), np.array([o for _, o, _ in items]))
    sidecar = {"model": onnx_path.name, "input_size": size, "mean": occ.MEAN, "std": occ.STD,
               "labels": occ.LABELS, "resize": "pillow-bilinear", "layout": "NCHW", "color": "RGB",
               "input_name": "input", "output_name": "logits"}
    (out / "occupancy.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    gold = T.write_golden(onnx_path, "occupancy", size)
    if not (args.load and Path(args.load).resolve() == out.resolve()):
        torch.save(ck, out / "occupancy.pt")
    report = {
        "model": onnx_path.name, "arch": "occnet", "recipe": "train_gen.py", "input_size": size,
        "macs": occ.count_macs(folded, size), "params": sum(p.numel() for p in folded.parameters()),
        "onnx_bytes": onnx_path.stat().st_size, "onnx_ops": ops, "train_seconds": round(ck["train_seconds"], 1),
        "steps": ck.get("steps"), "epochs_equivalent": ck["epochs"], "train_device": ck["device"],
        "train_args": ck.get("recipe"), "init": (ck.get("recipe") or {}).get("init"), "soup_of": ck.get("soup"), "proxy_history": ck.get("history"), "width": ck["width"],
        "train_patches": int(len(train_idx)), "torch_cpu_ms_per_patch_batch50": T.bench_ms(folded, size),
        "onnx_check": ver, "onnx_check_vs_unfolded": ver_unfolded, "golden_logits": gold["logits"],
        "protocol": {"held_out_times": occ.HELD_TIMES, "held_out_slots": sorted(occ.HELD_SLOTS),
                     "val": "time held out AND slot held out", "train": "time not held out AND slot not held out",
                     "cnrext": "315 hand-labelled spaces of cnr-ext-sample (9 cameras, one frame each), never trained on",
                     "pklot": "UFPR05 (pklot-padova), never trained on; evaluated only on the chosen model"},
        "results": res, "torch": torch.__version__, "date": "2026-11-26",
    }
    (out / "occupancy-metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    for k, v in res.items():
        T.log(f"  {k:16s} n={v['n']:5d} acc {v['accuracy']:.4f}  free P/R {v['free_precision']:.3f}/{v['free_recall']:.3f}"
              f"  occ P/R {v['occupied_precision']:.3f}/{v['occupied_recall']:.3f}")


if __name__ == "__main__":
    main()
