"""Robustness: accuracy on the MNIST test set under the 15 corruptions of MNIST-C.

Mu & Gilmer (2019), "MNIST-C: A Robustness Benchmark for Computer Vision", corrupt MNIST's test
images in 15 ways that keep the digit readable to a person. The dataset itself is not needed:
every corruption is regenerated here by seeded, batched tensor code, in the spirit of the paper's
(severities chosen so that the digit stays legible). Images are (B, 1, 28, 28) in [0, 1], white
ink on black, like `augment`.

`robustness` scores a recogniser on the images `split_images` chooses; `format_table` and
`save_chart` report the results as text and as a PNG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .augment import random_affine
from .data import load_split
from .tensors import band_mask, blobs, segment, split_train_val, to_float_images, uniform


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def shot_noise(x, gen):
    return (torch.poisson(x * 60, generator=gen) / 60).clamp(0, 1)  # photon counting at 60 per unit


def impulse_noise(x, gen):
    u = uniform(x.shape, gen, x.device)
    return torch.where(u < 0.135, torch.zeros_like(x), torch.where(u > 0.865, torch.ones_like(x), x))  # 27% s&p


def glass_blur(x, gen):
    # Blur, jitter every pixel by up to one place, blur again: frosted glass.
    b, _, h, w = x.shape
    x = _blur(x, 0.7)
    jitter = (uniform((b, h, w, 2), gen, x.device) * 2 - 1) * (2.0 / w)
    base = F.affine_grid(torch.eye(2, 3, device=x.device).expand(b, 2, 3), list(x.shape), align_corners=False)
    x = F.grid_sample(x, base + jitter, mode="nearest", align_corners=False)
    return _blur(x, 0.7)


def _warp(x: torch.Tensor, a: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Resample each image through its own affine map: `a` (B, 2, 2) and `shift` (B, 2) in pixels,
    both in affine_grid's output-to-input direction."""
    theta = torch.cat([a, (shift * 2 / x.shape[-1])[:, :, None]], 2).to(x.dtype)  # (B, 2, 3)
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def _eye(b: int, x: torch.Tensor) -> torch.Tensor:
    return torch.eye(2, device=x.device, dtype=x.dtype).expand(b, 2, 2)


def motion_blur(x, gen):
    # Average of copies shifted along a random direction, over 7 px: a shaky hand or camera.
    b = x.shape[0]
    angle = uniform((b,), gen, x.device, 0, math.pi)
    direction = torch.stack([torch.cos(angle), torch.sin(angle)], 1)  # (B, 2) as (x, y)
    return sum(_warp(x, _eye(b, x), t * direction) for t in torch.linspace(-3, 3, 7).tolist()) / 7


def shear(x, gen):
    return random_affine(x, degrees=0, scale=(1, 1), shear=35.0, translate=0, gen=gen)


def scale(x, gen):
    b = x.shape[0]
    zoom = torch.where(uniform((b,), gen, x.device) < 0.5, uniform((b,), gen, x.device, 0.5, 0.7),
                       uniform((b,), gen, x.device, 1.3, 1.5))
    return _warp(x, _eye(b, x) / zoom[:, None, None], torch.zeros(b, 2, device=x.device))


def rotate(x, gen):
    b = x.shape[0]
    sign = torch.where(uniform((b,), gen, x.device) < 0.5, -1.0, 1.0)
    angle = sign * uniform((b,), gen, x.device, 25.0, 45.0) * math.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)  # (B, 2, 2)
    return _warp(x, a, torch.zeros(b, 2, device=x.device))


def brightness(x, gen):
    return (x + 0.45).clamp(0, 1)  # the black background lifted towards grey, as in an over-exposed scan


def translate(x, gen):
    b = x.shape[0]
    shift = (uniform((b, 2), gen, x.device, 4, 7) * torch.where(uniform((b, 2), gen, x.device) < 0.5, -1.0, 1.0))
    return _warp(x, _eye(b, x), -shift)


def stripe(x, gen):
    # Invert a band of a few adjacent columns (or rows): a scanner streak.
    b, _, h, w = x.shape
    start = (uniform((b,), gen, x.device) * (w - 6)).long()
    width = (uniform((b,), gen, x.device, 3, 6)).long()
    columns = uniform((b,), gen, x.device) < 0.5
    return torch.where(band_mask(b, h, w, start, width, ~columns)[:, None], 1 - x, x)


def fog(x, gen):
    # Smooth random haze over the whole image (a coarse random field, upsampled).
    b = x.shape[0]
    field = uniform((b, 1, 4, 4), gen, x.device)
    haze = F.interpolate(field, size=x.shape[-2:], mode="bicubic", align_corners=True).clamp(0, 1)
    return (x + 0.5 * haze).clamp(0, 1)


def spatter(x, gen):
    # Drops of liquid: a sprinkle of soft grey discs of different sizes.
    b, _, h, w = x.shape
    centres = uniform((b, 8, 2), gen, x.device) * (h - 1)
    radius = uniform((b, 8), gen, x.device, 0.3, 1.8)
    return torch.maximum(x, 0.7 * blobs(b, h, w, centres, radius)[:, None])


def dotted_line(x, gen):
    b, _, h, w = x.shape
    p0, p1 = uniform((b, 2), gen, x.device) * (h - 1), uniform((b, 2), gen, x.device) * (h - 1)
    line, t = segment(h, w, p0[:, 1], p0[:, 0], p1[:, 1], p1[:, 0], 0.6)  # points are (y, x)
    dots = (torch.sin(t * (p1 - p0).norm(dim=1)[:, None, None] * math.pi / 2) > 0).to(x.dtype)  # on 2 px, off 2 px
    return torch.maximum(x, (line * dots)[:, None])


def zigzag(x, gen):
    b, _, h, w = x.shape
    points = uniform((b, 4, 2), gen, x.device) * (h - 1)
    out = x
    for k in range(3):
        p0, p1 = points[:, k], points[:, k + 1]  # (y, x)
        line, _ = segment(h, w, p0[:, 1], p0[:, 0], p1[:, 1], p1[:, 0], 0.7)
        out = torch.maximum(out, line[:, None])
    return out


def canny_edges(x, gen):
    # Edges only: Sobel gradient, thinned by non-maximum suppression along its direction, thresholded.
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    s = _blur(x, 1.0)
    gx, gy = F.conv2d(s, kx, padding=1), F.conv2d(s, kx.transpose(2, 3), padding=1)
    mag = torch.hypot(gx, gy)
    angle = torch.atan2(gy, gx) % math.pi
    sector = ((angle + math.pi / 8) // (math.pi / 4)).long() % 4  # 0: horizontal gradient, 1: /, 2: vertical, 3: \
    pad = F.pad(mag, (1, 1, 1, 1))
    h, w = x.shape[-2:]

    def at(dy, dx):
        return pad[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    offsets = [((0, 1), (0, -1)), ((1, 1), (-1, -1)), ((1, 0), (-1, 0)), ((1, -1), (-1, 1))]
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for k, (a, c) in enumerate(offsets):
        keep |= (sector == k) & (mag >= at(*a)) & (mag >= at(*c))
    return ((mag > 0.35 * mag.amax((1, 2, 3), keepdim=True)) & keep).to(x.dtype)


CORRUPTIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    f.__name__: f for f in (shot_noise, impulse_noise, glass_blur, motion_blur, shear, scale, rotate, brightness,
                            translate, stripe, fog, spatter, dotted_line, zigzag, canny_edges)
}


@torch.no_grad()
def robustness(recogniser, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
               batch_size: int = 1000, progress=None) -> dict:
    """Accuracy of a `predict.Recogniser` on clean and corrupted uint8 test images (N, 28, 28).
    Returns {"clean": acc, "corruptions": {name: acc}, "mean_corrupted": acc}. `progress(n)`, if
    given, is called with the number of images done after each batch."""
    x = to_float_images(images)
    labels = labels.cpu().numpy()

    def accuracy(fn) -> float:
        correct = 0
        for i in range(0, len(x), batch_size):
            xb = fn(x[i:i + batch_size]).clamp(0, 1)
            correct += int((recogniser.probabilities(xb[:, 0]).argmax(1) == labels[i:i + batch_size]).sum())
            if progress:
                progress(len(xb))
        return correct / len(x)

    result = {"clean": accuracy(lambda xb: xb), "corruptions": {}}
    for k, (name, fn) in enumerate(CORRUPTIONS.items()):
        gen = torch.Generator().manual_seed(seed * 100 + k)  # one stream per corruption, batch after batch
        result["corruptions"][name] = accuracy(lambda xb: fn(xb, gen))
    result["mean_corrupted"] = sum(result["corruptions"].values()) / len(CORRUPTIONS)
    return result


def split_images(split: str = "test", limit: int | None = None, data_dir=None, *,
                 download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels to score on: MNIST's test set, or ("val") the training images
    every recipe holds out for validation; only the first `limit` if given. Only the files of
    the split needed are read (`data.load_split`)."""
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    images, labels = load_split("train" if split == "val" else "test", data_dir, download=download)
    if split == "val":
        _, idx = split_train_val(len(labels))
        images, labels = images[idx], labels[idx]
    return images[:limit], labels[:limit]


def short_names(paths: list[str]) -> list[str]:
    """Short, distinct labels for model paths: the file stem (`model` for `runs/fast/model.pt`), with
    as many parent folders as it takes to tell them apart (`a/model`, `b/model`); the whole path
    where nothing shorter does (`x.pt` beside `x.onnx`)."""
    parts = [Path(p).with_suffix("").parts for p in paths]
    for k in range(1, max(map(len, parts), default=0) + 1):
        names = ["/".join(x[-k:]) for x in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def format_table(results: dict[str, dict]) -> str:
    """`robustness` results keyed by model path as a text table: one row per corruption, one
    column per model, headed by its short name (`short_names`), whole; then each name's full path."""
    paths = list(results)
    names = short_names(paths)
    widths = [max(10, len(n)) + 2 for n in names]
    lines = [f"{'corruption':<16}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    rows = [("clean", [r["clean"] for r in results.values()])]
    rows += [(c, [r["corruptions"][c] for r in results.values()]) for c in CORRUPTIONS]
    rows += [("mean corrupted", [r["mean_corrupted"] for r in results.values()])]
    lines += [f"{name:<16}" + "".join(f"{a:>{w}.4f}" for a, w in zip(accs, widths)) for name, accs in rows]
    lines += [f"{n}: {p}" for n, p in zip(names, paths) if n != p]
    return "\n".join(lines)


def axis_floor(values: list[float]) -> float:
    """Where a chart's accuracy axis starts: just below the lowest value, on a multiple of 0.05, so
    that 0.93 against 0.99 is a visible difference rather than two full bars; 0 when that would be
    below 0.5 (a bar chart of accuracies that low reads better from 0)."""
    low = math.floor((min(values) - 0.02) * 20) / 20
    return low if low >= 0.5 else 0.0


def chart_figure(results: dict[str, dict], split: str = "test", n: int | None = None):
    """`robustness` results keyed by model path as a matplotlib figure: clean, each corruption and
    the mean, one bar per model labelled by its short name; the title says how many images (`n`),
    the axis where it starts when that is not 0, and a footnote each model's full path."""
    # matplotlib is imported here, not above: it is slow to import and only charts need it. A bare
    # Figure (not pyplot's) needs no display and no closing.
    import numpy as np
    from matplotlib.figure import Figure

    corruptions = list(CORRUPTIONS)
    labels = ["clean"] + corruptions + ["mean"]
    names = short_names(list(results))
    fig = Figure(figsize=(12, 4.5))
    ax = fig.subplots()
    width = 0.8 / len(results)
    bars = [[r["clean"]] + [r["corruptions"][c] for c in corruptions] + [r["mean_corrupted"]] for r in results.values()]
    for k, (name, values) in enumerate(zip(names, bars)):
        ax.bar(np.arange(len(labels)) + k * width, values, width, label=name)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")
    what = "test" if split == "test" else "validation"
    low = axis_floor([v for values in bars for v in values])
    ax.set_ylim(low, 1)
    ax.set_ylabel(f"{what} accuracy" + (f" (axis from {low:.2f}, not 0)" if low > 0 else ""))
    images = f" on {n:,} images" if n is not None else ""
    ax.set_title(f"MNIST {what} accuracy under MNIST-C corruptions{images}", loc="left")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(results), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.text(0.01, 0.01, "; ".join(f"{name}: {p}" for name, p in zip(names, results)), fontsize=7, color="0.35")
    return fig


def save_chart(results: dict[str, dict], path: str | Path, split: str = "test", n: int | None = None) -> Path:
    """Write `chart_figure` as a PNG (folders made as needed). Returns the path."""
    fig = chart_figure(results, split, n)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
