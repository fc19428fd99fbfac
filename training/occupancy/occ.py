"""Shared pieces of the occupancy classifier: models, preprocessing contract, data, split, augmentation."""
import math
import io
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO.parent / "shared" / "data"
CNR_A = DATA / "cnrpark-patches" / "CNRPark-Patches-150x150" / "A"

LABELS = ["free", "occupied"]  # logits index 0 = free, 1 = occupied (CNRPark "busy")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# ---------------------------------------------------------------- preprocessing contract


def preprocess(img: Image.Image, size: int) -> np.ndarray:
    """RGB patch of any size -> float32 [3, size, size]. Must match the Rust side exactly."""
    img = img.convert("RGB").resize((size, size), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess_many(imgs, size):
    return np.stack([preprocess(im, size) for im in imgs]) if imgs else np.zeros((0, 3, size, size), np.float32)


# ---------------------------------------------------------------- models


class MAlexNet(nn.Module):
    """mAlexNet (Amato et al. 2017) without LRN. 224x224 input."""

    input_size = 224

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 54 -> 26
            nn.Conv2d(16, 20, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 26 -> 12
            nn.Conv2d(20, 30, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 12 -> 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(1), nn.Dropout(0.5), nn.Linear(30 * 5 * 5, 48), nn.ReLU(inplace=True), nn.Linear(48, 2)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def cbr(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class OccNet(nn.Module):
    """Small plain CNN for 64x64 patches: 3x3 convs + BN (folded at export) + ReLU, average pool, linear."""

    def __init__(self, size=64, width=(16, 32, 64, 64, 128)):
        super().__init__()
        self.input_size = size
        self.width = tuple(width)
        w1, w2, w3, w4, w5 = width
        self.features = nn.Sequential(
            cbr(3, w1, 3, 2),   # 64 -> 32
            cbr(w1, w2, 3, 2),  # 32 -> 16
            cbr(w2, w3, 3, 2),  # 16 -> 8
            cbr(w3, w4, 3, 1),  # 8
            cbr(w4, w5, 3, 2),  # 8 -> 4
        )
        self.pool = nn.AvgPool2d(size // 16)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(w5, 2)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.drop(x))


def fold_bn(model: nn.Module) -> nn.Module:
    """Fold every Conv2d followed by BatchNorm2d (in one nn.Sequential, eval mode) into one Conv2d with bias;
    the BatchNorm2d becomes nn.Identity (nothing in the exported graph)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for child in model.children():
        fold_bn(child)
    if isinstance(model, nn.Sequential):
        for i in range(len(model) - 1):
            if isinstance(model[i], nn.Conv2d) and isinstance(model[i + 1], nn.BatchNorm2d):
                model[i] = fuse_conv_bn_eval(model[i], model[i + 1])
                model[i + 1] = nn.Identity()
    return model


def count_macs(model, size):
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return macs


# ---------------------------------------------------------------- data + split

NAME_RE = re.compile(r"(\d{8})_(\d{4})_(\d+)\.jpg$")

# Validation protocol on camera A (one day, 08:05-18:05 every 5 min, 51 slots):
# held-out times: 10:00-10:55 and 15:00-15:55 (24 of 121 timestamps);
# held-out slots: 3, 7, 11, ..., 51 (13 of 51 slot ids).
# val = time held out AND slot held out; train = time NOT held out AND slot NOT held out.
# Patches with exactly one of the two held out are used by neither (reported as extra checks).
HELD_TIMES = [(1000, 1100), (1500, 1600)]
HELD_SLOTS = set(range(3, 52, 4))


def time_held(hhmm):
    return any(a <= hhmm < b for a, b in HELD_TIMES)


def load_cnr_a():
    """Returns dict with uint8 images [N,150,150,3], labels, times, slots, names."""
    imgs, labels, times, slots, names = [], [], [], [], []
    for cls, lab in (("free", 0), ("busy", 1)):
        for p in sorted((CNR_A / cls).glob("*.jpg")):
            m = NAME_RE.search(p.name)
            im = Image.open(p).convert("RGB")
            if im.size != (150, 150):
                im = im.resize((150, 150), Image.BILINEAR)
            imgs.append(np.asarray(im))
            labels.append(lab)
            times.append(int(m.group(2)))
            slots.append(int(m.group(3)))
            names.append(p.name)
    return dict(
        imgs=np.stack(imgs), labels=np.array(labels), times=np.array(times), slots=np.array(slots), names=names,
        pil=None,
    )


def split_masks(d):
    th = np.array([time_held(t) for t in d["times"]])
    sh = np.array([s in HELD_SLOTS for s in d["slots"]])
    return dict(train=~th & ~sh, val=th & sh, val_time_only=th & ~sh, val_slot_only=~th & sh)


# ---------------------------------------------------------------- augmentation (batched, torch, CPU)


def _homography(src, dst):
    """Batched 3x3 homographies H with H @ dst = src (maps output coords to input coords). src,dst [B,4,2]."""
    B = src.shape[0]
    A = torch.zeros(B, 8, 8, dtype=torch.float64)
    b = torch.zeros(B, 8, dtype=torch.float64)
    for i in range(4):
        x, y = dst[:, i, 0], dst[:, i, 1]
        u, v = src[:, i, 0], src[:, i, 1]
        A[:, 2 * i, 0], A[:, 2 * i, 1], A[:, 2 * i, 2] = x, y, 1
        A[:, 2 * i, 6], A[:, 2 * i, 7] = -u * x, -u * y
        A[:, 2 * i + 1, 3], A[:, 2 * i + 1, 4], A[:, 2 * i + 1, 5] = x, y, 1
        A[:, 2 * i + 1, 6], A[:, 2 * i + 1, 7] = -v * x, -v * y
        b[:, 2 * i], b[:, 2 * i + 1] = u, v
    h = torch.linalg.solve(A, b)
    return torch.cat([h, torch.ones(B, 1, dtype=torch.float64)], 1).view(B, 3, 3)


def geometric(x, g, strength=1.0):
    """x float [B,3,H,W] in [0,1]; random crop/scale/aspect/rotation/perspective/flip/rot90 via one homography.
    Output same size as input. Coordinates normalised to [-1,1]."""
    B = x.shape[0]
    corners = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64)
    # source quad = transformed unit square
    scale = torch.empty(B).uniform_(0.65, 1.1, generator=g).double()
    logr = torch.empty(B).uniform_(math.log(0.6), math.log(1.0 / 0.6), generator=g).double()
    sx, sy = scale * torch.exp(logr / 2), scale * torch.exp(-logr / 2)
    ang = torch.empty(B).uniform_(-20, 20, generator=g).double() * math.pi / 180 * strength
    tx = torch.empty(B).uniform_(-0.2, 0.2, generator=g).double() * strength
    ty = torch.empty(B).uniform_(-0.2, 0.2, generator=g).double() * strength
    q = corners.unsqueeze(0).repeat(B, 1, 1).clone()
    q = q + torch.empty(B, 4, 2).uniform_(-0.25, 0.25, generator=g).double() * strength  # perspective jitter
    q[:, :, 0] *= sx[:, None]
    q[:, :, 1] *= sy[:, None]
    c, s = torch.cos(ang), torch.sin(ang)
    qx = c[:, None] * q[:, :, 0] - s[:, None] * q[:, :, 1] + tx[:, None]
    qy = s[:, None] * q[:, :, 0] + c[:, None] * q[:, :, 1] + ty[:, None]
    src = torch.stack([qx, qy], -1)
    # rot90 / flips: permute which output corner takes which source corner
    k = torch.randint(0, 4, (B,), generator=g)
    flip = torch.rand(B, generator=g) < 0.5
    order = (torch.arange(4)[None] + k[:, None]) % 4
    order = torch.where(flip[:, None], order.flip(1), order)
    dst = corners[order]  # [B,4,2]
    H = _homography(src, dst).float().to(x.device)
    Hh, Ww = x.shape[2], x.shape[3]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, Hh, device=x.device), torch.linspace(-1, 1, Ww, device=x.device), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)  # [1,HW,3]
    m = pts @ H.transpose(1, 2)  # [B,HW,3]
    grid = (m[..., :2] / m[..., 2:3]).view(B, Hh, Ww, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def photometric(x, g):
    """x float [B,3,S,S] in [0,1]."""
    B = x.shape[0]

    dev = x.device

    def r(lo, hi, shape=(B, 1, 1, 1)):
        return torch.empty(shape).uniform_(lo, hi, generator=g).to(dev)

    def p(prob):
        return (torch.rand(B, 1, 1, 1, generator=g) < prob).float().to(dev)

    # channel shuffle (car colours / white balance)
    perm = torch.rand(B, 3, generator=g).argsort(1).to(dev)
    shuf = p(0.3).view(B)
    xs = torch.gather(x, 1, perm[:, :, None, None].expand_as(x))
    x = torch.where(shuf.bool()[:, None, None, None], xs, x)
    # per-channel gain (white balance)
    x = x * (1 + p(0.5) * r(-0.15, 0.15, (B, 3, 1, 1)))
    gray = x.mean(1, keepdim=True)
    # saturation
    x = gray + (x - gray) * (1 + p(0.7) * r(-0.7, 0.6))
    # grayscale
    x = torch.where(p(0.15).bool(), x.mean(1, keepdim=True).expand_as(x), x)
    # brightness / contrast
    x = x * (1 + p(0.8) * r(-0.5, 0.5))
    mu = x.mean((1, 2, 3), keepdim=True)
    x = mu + (x - mu) * (1 + p(0.8) * r(-0.5, 0.5))
    x = x.clamp(0, 1)
    # gamma
    x = x ** torch.exp(p(0.5) * r(-0.6, 0.6))
    # shadow: darken a random half-plane
    S = x.shape[-1]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, S, device=dev), torch.linspace(-1, 1, S, device=dev), indexing="ij")
    th = r(0, 2 * math.pi, (B, 1, 1))
    off = r(-0.8, 0.8, (B, 1, 1))
    soft = r(0.02, 0.3, (B, 1, 1))
    half = torch.sigmoid((torch.cos(th) * xx + torch.sin(th) * yy - off) / soft).unsqueeze(1)
    dark = r(0.35, 0.85)
    sh = p(0.35)
    x = x * (1 - sh * half * (1 - dark))
    # blur (3x3 gaussian, random sigma)
    sig = r(0.4, 1.3, (B,))
    k1 = torch.exp(-torch.tensor([1.0, 0.0, 1.0], device=dev)[None] / (2 * sig[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1[:, :, None] * k1[:, None, :])  # [B,3,3]
    xb = F.conv2d(F.pad(x.reshape(1, B * 3, S, S), (1, 1, 1, 1), mode="replicate"),
                  k2.repeat_interleave(3, 0).unsqueeze(1), groups=B * 3).view(B, 3, S, S)
    x = torch.where(p(0.25).bool(), xb, x)
    # noise
    x = x + p(0.3) * r(0.0, 0.05) * torch.randn(x.shape, generator=g).to(dev)
    # cutout (small occluder: pole, pedestrian, tree)
    cut = p(0.2)
    cx, cy = r(-1, 1, (B, 1, 1)), r(-1, 1, (B, 1, 1))
    cw, chh = r(0.05, 0.3, (B, 1, 1)), r(0.05, 0.3, (B, 1, 1))
    box = (((xx - cx).abs() < cw) & ((yy - cy).abs() < chh)).float().unsqueeze(1)
    x = x * (1 - cut * box) + cut * box * r(0, 1, (B, 3, 1, 1))
    return x.clamp(0, 1)


def jpeg(x_u8, g, prob=0.3):
    """x_u8 uint8 tensor [B,S,S,3]; random JPEG re-encoding."""
    out = x_u8.clone()
    sel = torch.rand(x_u8.shape[0], generator=g) < prob
    qs = torch.randint(15, 80, (x_u8.shape[0],), generator=g)
    for i in torch.nonzero(sel).flatten().tolist():
        buf = io.BytesIO()
        Image.fromarray(x_u8[i].numpy()).save(buf, format="JPEG", quality=int(qs[i]))
        buf.seek(0)
        out[i] = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy())
    return out


MEAN_T = torch.tensor(MEAN).view(1, 3, 1, 1)
STD_T = torch.tensor(STD).view(1, 3, 1, 1)


def augment_batch(imgs_u8, size, g, strength=1.0, device="cpu", work=None, labels=None, synth=0.0):
    """imgs_u8: uint8 numpy [B,150,150,3] -> normalised float [B,3,size,size] on device.
    work: resolution the photometric part runs at (default min(size, 150)); upsampled to size after.
    synth > 0 (needs labels, a long tensor [B]): paint bay lines on 30 % of the patches and replace a fraction
    `synth` of the batch by synthetic asphalt patches (half free, half busy composites). Returns (x, labels)."""
    work = work or min(size, 150)
    x = torch.from_numpy(imgs_u8).to(device).permute(0, 3, 1, 2).float() / 255.0
    if synth > 0:
        labels = labels.clone()
        x = paint_lines(x, g, 0.3)
        B = x.shape[0]
        k = int(round(B * synth / 2))
        busy_idx = torch.nonzero(labels == 1).flatten()
        if k > 0 and len(busy_idx) > 0:
            src = busy_idx[torch.randint(0, len(busy_idx), (k,), generator=g)]
            free, busy = synth_batch(x[src.to(x.device)], x.shape[-1], g, x.device)
            dst = torch.randperm(B, generator=g)[: 2 * k]
            x[dst[:k].to(x.device)] = free
            labels[dst[:k]] = 0
            x[dst[k:].to(x.device)] = busy
            labels[dst[k:]] = 1
    x = geometric(x, g, strength)
    x = F.interpolate(x, size=(work, work), mode="bilinear", antialias=True, align_corners=False)
    x = photometric(x, g)
    xu = (x * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()
    xu = jpeg(xu, g)
    x = xu.to(device).permute(0, 3, 1, 2).float() / 255.0
    if work != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=False, align_corners=False)
    x = (x - MEAN_T.to(device)) / STD_T.to(device)
    return (x, labels) if synth > 0 else x


# ---------------------------------------------------------------- synthetic data (generated here, no external data)
# CNRPark A's free spaces are mostly bare ground, grass and trees; other lots show asphalt with painted bay lines.
# So: (1) paint random bay lines onto real patches (label unchanged), (2) synthetic asphalt "free" patches with
# lines, stains and texture, (3) "occupied" composites: the car-centred middle of a real busy patch pasted with a
# soft elliptical mask onto synthetic asphalt.


def _grid(S, dev):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, S, device=dev), torch.linspace(-1, 1, S, device=dev), indexing="ij")
    return xx, yy


def asphalt(B, S, g, dev):
    def r(lo, hi, shape):
        return torch.empty(shape).uniform_(lo, hi, generator=g).to(dev)

    base = r(0.12, 0.75, (B, 1, 1, 1)) * (1 + r(-0.06, 0.06, (B, 3, 1, 1)))
    low = F.interpolate(torch.randn(B, 1, 6, 6, generator=g).to(dev), size=(S, S), mode="bicubic", align_corners=False)
    hi = torch.randn(B, 1, S, S, generator=g).to(dev)
    x = base * (1 + low * r(0.02, 0.15, (B, 1, 1, 1))) + hi * r(0.01, 0.06, (B, 1, 1, 1))
    # dark stains
    xx, yy = _grid(S, dev)
    for _ in range(2):
        cx, cy, rad = r(-1, 1, (B, 1, 1)), r(-1, 1, (B, 1, 1)), r(0.05, 0.4, (B, 1, 1))
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad ** 2)).unsqueeze(1)
        x = x * (1 - blob * r(0.0, 0.35, (B, 1, 1, 1)))
    return x.clamp(0, 1)


def paint_lines(x, g, prob):
    """Paint 1-3 straight bay lines (white or yellow, partly worn) on a random subset of x [B,3,S,S]."""
    B, _, S, _ = x.shape
    dev = x.device

    def r(lo, hi, shape):
        return torch.empty(shape).uniform_(lo, hi, generator=g).to(dev)

    sel = (torch.rand(B, generator=g) < prob).float().to(dev).view(B, 1, 1, 1)
    xx, yy = _grid(S, dev)
    yellow = (torch.rand(B, 1, 1, 1, generator=g) < 0.25).float().to(dev)
    col = r(0.65, 0.95, (B, 1, 1, 1)) * (yellow * torch.tensor([1.0, 0.85, 0.3], device=dev).view(1, 3, 1, 1)
                                        + (1 - yellow) * torch.ones(1, 3, 1, 1, device=dev))
    nlines = torch.randint(1, 4, (B,), generator=g).to(dev)
    base_ang = r(0, math.pi, (B, 1, 1))
    for i in range(3):
        ang = base_ang + (i % 2) * math.pi / 2 + r(-0.15, 0.15, (B, 1, 1))  # parallel / perpendicular bays
        off = r(-1.0, 1.0, (B, 1, 1))
        w = r(1.0, 5.0, (B, 1, 1)) / S * 2
        d = (torch.cos(ang) * xx + torch.sin(ang) * yy - off).abs()
        line = torch.sigmoid((w - d) * S / 1.5)
        # a ray, not always a full line: cut by a half-plane along the line direction
        cut = torch.sigmoid((-torch.sin(ang) * xx + torch.cos(ang) * yy - r(-1.5, 0.5, (B, 1, 1))) * S / 2)
        ray = (torch.rand(B, 1, 1, generator=g) < 0.5).float().to(dev)
        line = line * (ray * cut + (1 - ray))
        wear = r(0.4, 1.0, (B, 1, 1)) * (1 - 0.4 * torch.rand(B, 1, S, S, generator=g).to(dev).squeeze(1))
        a = (line * wear * (i < nlines).float().view(B, 1, 1)).unsqueeze(1) * sel
        x = x * (1 - a) + col * a
    return x


def synth_batch(real_busy, S, g, dev):
    """real_busy float [K,3,S,S]; returns (free [n,3,S,S], busy [K,3,S,S]) synthetic patches."""
    K = real_busy.shape[0]
    n_free = max(1, K)
    free = paint_lines(asphalt(n_free, S, g, dev), g, 0.85)
    bg = paint_lines(asphalt(K, S, g, dev), g, 0.85)
    xx, yy = _grid(S, dev)

    def r(lo, hi, shape):
        return torch.empty(shape).uniform_(lo, hi, generator=g).to(dev)

    rx, ry = r(0.55, 0.95, (K, 1, 1)), r(0.55, 0.95, (K, 1, 1))
    m = torch.sigmoid((1 - ((xx / rx) ** 2 + (yy / ry) ** 2)) * 8).unsqueeze(1)
    busy = real_busy * m + bg * (1 - m)
    return free, busy
