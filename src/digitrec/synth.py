"""Synthetic "user-style" pictures of MNIST digits, to measure preprocessing end to end.

MNIST digits are 28x28, white on black, size-normalised and centred. What a user feeds in is the
opposite: dark ink on light, slightly tinted paper, any size, the digit anywhere, uneven light,
sensor noise, blur and JPEG artefacts. This module turns the first into the second so that
preprocessing (and the whole pipeline) can be scored against known labels and digit boxes.

It is split into two reusable stages so that a multi-digit generator (`synth_numbers`) can share the look:

* :func:`place_digit` draws one digit's ink-coverage mask (float 0..1) at canvas resolution,
  scaled, rotated, slanted and shifted, and says where it put it;
* :func:`ink_on_paper` turns any ink mask into an RGB picture: paper, ink colour, distractors,
  lighting, blur, noise and JPEG.

Every random choice comes from the ``numpy.random.Generator`` passed in, so a picture is a pure
function of (digit, generator state, style). Importing this module has no side effects.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

if TYPE_CHECKING:  # only for annotations: torch tensors are read through duck typing
    import torch

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive (as PIL's crop)

TAIL_SIZE = (0.45, 0.8)  # a small tail's digits, as a share of the first's size (`StyleConfig.small_tail`)


@dataclass(frozen=True)
class StyleConfig:
    """Ranges every effect is drawn from; (lo, hi) tuples are sampled uniformly unless noted."""

    long_side: tuple[int, int] = (40, 600)  # canvas long side in px, log-uniform (sizes span 15x)
    aspect: tuple[float, float] = (0.75, 1.33)  # canvas width / height, log-uniform
    digit_frac: tuple[float, float] = (0.3, 0.85)  # digit height / canvas short side
    rotation: float = 12.0  # max rotation either way, degrees
    shear: float = 0.2  # max horizontal shear (slant) either way
    threshold: tuple[float, float] = (0.3, 0.75)  # soft-threshold level on the upsampled digit: stroke width
    thickness_px: int = 2  # max grey dilation/erosion at output scale (only where strokes are thick)
    p_thickness: float = 0.4
    ink_level: tuple[int, int] = (0, 90)  # grey level of the ink
    p_colour_ink: float = 0.3  # blue / blue-black ballpoint instead of neutral grey
    ink_fade: float = 0.2  # max fading of ink opacity along strokes (pen pressure, dry ballpoint)
    paper_level: tuple[int, int] = (180, 250)
    paper_tint: float = 0.12  # max strength of a cream or bluish cast on the paper (0: neutral grey)
    light_min: float = 0.55  # darkest brightness factor of uneven light; 1.0 means even light
    noise_sigma: tuple[float, float] = (0.0, 8.0)  # Gaussian pixel noise, grey levels
    texture: float = 0.04  # max amplitude of low-frequency paper texture, fraction of paper level
    blur_radius: tuple[float, float] = (0.0, 1.5)  # Gaussian blur radius for a 256-px image (scaled)
    p_jpeg: float = 0.7
    jpeg_quality: tuple[int, int] = (25, 90)
    p_distractors: float = 0.3  # specks and/or a faint ruled line
    # For numbers: "plain", "ruled" (a notebook: the writing sits on a line), "squared", "security"
    # (a check's printed pattern of fine wavy lines behind the writing) or "band" (a printed tint
    # band across the writing's middle, as checks and forms shade a row).
    paper: str = "plain"
    faint_digit: float = 0.0  # for numbers: the share with one digit in a lighter pen (30-50% of the ink)
    turn: float = 0.0  # for numbers: the most a whole number is turned, degrees, as in a photo taken askew
    specks: float = 0.0  # the most pixels set black or white at random (a share), as a poor scan or fax does
    sign: float = 0.0  # for numbers: the share with a printed "$" or "#" before them, as a form or a check prints it
    small_tail: float = 0.0  # for numbers: the share written smaller from one digit on (the zeros of "1.000")

    @classmethod
    def clean(cls, **overrides) -> StyleConfig:
        """Same geometry and colours, but no lighting, fading, texture, noise, blur, JPEG or distractors."""
        off = dict(ink_fade=0.0, light_min=1.0, noise_sigma=(0.0, 0.0), texture=0.0, blur_radius=(0.0, 0.0),
                   p_jpeg=0.0, p_distractors=0.0)
        return replace(cls(), **{**off, **overrides})


def _u(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(*lo_hi)) if lo_hi[1] > lo_hi[0] else float(lo_hi[0])


def _smooth_field(hw: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Random smooth field in [0, 1]: a coarse random grid upsampled bicubically (cheap 'Perlin')."""
    grid = rng.random((cells, cells), dtype=np.float32)
    f = np.asarray(Image.fromarray(grid, "F").resize((hw[1], hw[0]), Image.Resampling.BICUBIC))
    return (f - f.min()) / (float(np.ptp(f)) + 1e-6)


_UP = 4  # the source digit is smoothed at 4x its resolution before the final resampling


def _smooth_source(d: np.ndarray) -> Image.Image:
    """The digit at 4x, Gaussian-smoothed (sigma 0.5 source px), as a float image.

    Bicubic upsampling alone follows MNIST's pixel grid: thresholded at 10-20x, edges come out
    wobbly and lumpy. Smoothing first makes them run like a pen line.
    """
    up = np.asarray(Image.fromarray(d, "F").resize((d.shape[1] * _UP, d.shape[0] * _UP), Image.Resampling.BICUBIC))
    kern = np.exp(-0.5 * (np.arange(-6, 7) / (0.5 * _UP)) ** 2)
    for axis in (0, 1):
        up = np.apply_along_axis(np.convolve, axis, up, kern / kern.sum(), "same")
    # Faint MNIST strokes (peaks of 0.4-0.6) would break up under a pen-like threshold; dividing by
    # the local maximum (over ~2 source px) lifts every stroke's ridge to ~1 and keeps its shape.
    peak = np.asarray(Image.fromarray(up.astype(np.float32), "F").filter(ImageFilter.MaxFilter(2 * _UP + 1)))
    return Image.fromarray((up / np.maximum(peak, 0.35)).astype(np.float32), "F")


def canvas_size(rng: np.random.Generator, style: StyleConfig = StyleConfig()) -> tuple[int, int]:
    """Draw a canvas (height, width): log-uniform long side and aspect ratio."""
    long_side = math.exp(_u(rng, np.log(style.long_side)))
    aspect = math.exp(_u(rng, np.log(style.aspect)))  # width / height
    w, h = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
    return max(8, round(h)), max(8, round(w))


def place_digit(digit: np.ndarray, canvas_hw: tuple[int, int], rng: np.random.Generator,
                style: StyleConfig = StyleConfig()) -> tuple[np.ndarray, Box]:
    """Draw a 28x28 MNIST digit (white on black, uint8) as an ink mask on a canvas of `canvas_hw`.

    Returns ``(mask, box)``: float32 (H, W) ink coverage in [0, 1] and the digit's bounding box
    ``(x0, y0, x1, y1)`` (exclusive ends), which always lies inside the canvas with a margin.
    """
    d = np.asarray(digit, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"digit must be a 2-D image, got shape {d.shape}")
    d = d / 255.0 if d.max() > 1.0 else d
    h, w = int(canvas_hw[0]), int(canvas_hw[1])
    if min(h, w) < 16:
        raise ValueError(f"canvas must be at least 16x16 px, got {h}x{w}")
    ys, xs = np.nonzero(d > 0.1)
    x0, x1, y0, y1 = (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) if len(xs) else (0, d.shape[1], 0, d.shape[0])
    src_c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    # Linear part: slant first (handwriting leans sideways; x shifts with height), then rotate.
    th, sh = math.radians(_u(rng, (-style.rotation, style.rotation))), _u(rng, (-style.shear, style.shear))
    a = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) @ np.array([[1.0, -sh], [0.0, 1.0]])
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], dtype=float) - src_c
    ext = np.ptp(corners @ a.T, axis=0)  # (width, height) of the transformed ink box at scale 1
    margin = 2 + 0.03 * min(h, w) + style.thickness_px  # room for dilation and blur: never clipped
    scale = _u(rng, style.digit_frac) * min(h, w) / ext[1]
    scale = min(scale, (w - 2 * margin) / ext[0], (h - 2 * margin) / ext[1])
    half = ext * scale / 2
    dst_c = np.array([_u(rng, (margin + hf, side - margin - hf)) for hf, side in zip(half, (w, h))])
    # Supersample small digits so that thresholding works on a few pixels per stroke, then box-average
    # down: strokes keep anti-aliased edges at every size.
    k = max(1, math.ceil(3 / scale))
    inv = np.linalg.inv(a * scale * k) * _UP  # PIL wants output -> input coordinates (in the 4x source)
    off = src_c * _UP - inv @ (dst_c * k)
    img = _smooth_source(d).transform((w * k, h * k), Image.Transform.AFFINE,
                                            (*inv[0], off[0], *inv[1], off[1]), resample=Image.Resampling.BICUBIC)
    v = np.asarray(img)
    # A soft threshold about one output pixel wide turns the blurry upsampled blob into a pen line
    # with crisp but anti-aliased edges; its level sets the stroke width.
    t, ramp = _u(rng, style.threshold), min(1.0, 1.5 / scale)
    lo, hi = max(0.02, t - ramp / 2), min(1.0, t + ramp / 2)
    m = np.clip((v - lo) / max(hi - lo, 0.05), 0.0, 1.0).astype(np.float32)
    if k == 1 and scale >= 4 and style.thickness_px > 0 and rng.random() < style.p_thickness:
        size = 2 * int(rng.integers(1, style.thickness_px + 1)) + 1
        flt = ImageFilter.MaxFilter(size) if rng.random() < 0.5 else ImageFilter.MinFilter(size)
        m = np.asarray(Image.fromarray(m, "F").filter(flt))
    if k > 1:
        m = m.reshape(h, k, w, k).mean(axis=(1, 3))
    ys, xs = np.nonzero(m > 0.02)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
    return np.ascontiguousarray(m, dtype=np.float32), box


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(np.clip(-z, -60, 60)))  # clipped: no overflow warnings far from the edge


def _lighting(hw: tuple[int, int], rng: np.random.Generator, low: float) -> np.ndarray:
    """Brightness factor (H, W) in [low, 1]: a lamp gradient, a spot/vignette or a soft shadow band."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    ang = rng.uniform(0, 2 * math.pi)
    p = xx * math.cos(ang) + yy * math.sin(ang)
    kind = rng.integers(3)
    if kind == 0:  # light from one side
        t = (p - p.min()) / (float(np.ptp(p)) + 1e-6)
    elif kind == 1:  # bright spot somewhere, darker towards the corners
        cx, cy = rng.uniform(0, w / max(h, w)), rng.uniform(0, h / max(h, w))
        t = (xx - cx) ** 2 + (yy - cy) ** 2
        t = t / t.max()
    else:  # shadow of a hand or phone: a band with soft edges, possibly running off the page
        e1 = rng.uniform(p.min(), p.max())
        e2, soft = e1 + rng.uniform(0.1, 1.0), rng.uniform(0.01, 0.1)
        t = _sigmoid((p - e1) / soft) * _sigmoid((e2 - p) / soft)
    # A little blotchiness on top, so no two pages are lit by the same clean formula.
    t = 0.85 * t + 0.15 * _smooth_field(hw, 4, rng)
    return 1.0 - (1.0 - low) * t


def _distractors(mask: np.ndarray, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a faint ruled line into `img` (under the ink) and return `mask` with a few specks added."""
    h, w = mask.shape
    s = min(h, w)
    if rng.random() < 0.6:
        # Printed rules sit under the writing; mostly in rows without ink, now and then through it.
        free = np.nonzero(mask.max(axis=1) < 0.05)[0]
        y = int(rng.choice(free)) if len(free) and rng.random() < 0.85 else int(rng.integers(h))
        thick = max(1, round(s * rng.uniform(0.003, 0.008)))
        colour = np.array([150, 175, 225]) if rng.random() < 0.6 else np.array([160, 160, 160])
        img[y:y + thick] += (colour - img[y:y + thick]) * rng.uniform(0.25, 0.6)
    mask = mask.copy()
    yy, xx = np.ogrid[0:h, 0:w]
    for _ in range(int(rng.integers(1, 6))):
        r = rng.uniform(0.4, 0.5 + 0.012 * s)
        dist = np.sqrt((xx - rng.uniform(0, w)) ** 2 + (yy - rng.uniform(0, h)) ** 2)
        mask = np.maximum(mask, np.clip(r + 0.5 - dist, 0, 1) * rng.uniform(0.3, 0.9))
    return mask


def _rule(img: np.ndarray, y0: float, pitch: float, *, squared: bool, rng: np.random.Generator) -> None:
    """Print a notebook's ruling into `img` (under the ink): rows every `pitch` px through `y0`, and
    as many columns for squared paper; light blue or grey, 1-2 px, each line a little uneven."""
    h, w = img.shape[:2]
    colour = np.array([140, 170, 225]) if rng.random() < 0.7 else np.array([150, 150, 150])
    strength = rng.uniform(0.35, 0.75)
    thick = int(rng.integers(1, 3))
    for y in np.arange(y0 % pitch, h, pitch).astype(int):
        img[y:y + thick] += (colour - img[y:y + thick]) * strength * rng.uniform(0.8, 1.0)
    if squared:
        for x in np.arange(rng.uniform(0, pitch), w, pitch).astype(int):
            img[:, x:x + thick] += (colour - img[:, x:x + thick]) * strength * rng.uniform(0.8, 1.0)


def _security_pattern(img: np.ndarray, pitch: float, rng: np.random.Generator) -> None:
    """Print a check's security pattern into `img` (under the ink): fine (1 px) wavy lines every
    `pitch` px across the whole field, fainter than a pen, all waving alike, as printing does."""
    h, w = img.shape[:2]
    colour = np.array([120, 130, 150]) if rng.random() < 0.5 else np.array([130, 130, 130])
    strength = rng.uniform(0.2, 0.45)
    amp, period, tilt = rng.uniform(0.5, 2.5), rng.uniform(30, 160), rng.uniform(-0.08, 0.08)
    phase = rng.uniform(0, 2 * np.pi)
    xs = np.arange(w)
    for y0 in np.arange(rng.uniform(0, pitch), h + abs(tilt) * w, pitch) - abs(tilt) * w:
        ys = np.round(y0 + tilt * xs + amp * np.sin(2 * np.pi * xs / period + phase)).astype(int)
        ok = (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok]] += (colour - img[ys[ok], xs[ok]]) * strength


def _tint_band(img: np.ndarray, centre: float, height: float, rng: np.random.Generator) -> None:
    """Print a tint band into `img` (under the ink): `height` px of paper 10-25% darker, edge to
    edge, centred on row `centre`, its edges soft over a pixel as printing leaves them."""
    shade = rng.uniform(0.75, 0.9)
    inside = np.clip(height / 2 - np.abs(np.arange(img.shape[0]) - centre) + 0.5, 0.0, 1.0)
    img *= (1 - (1 - shade) * inside)[:, None, None].astype(np.float32)


def _speckled(img: Image.Image, share: float, rng: np.random.Generator) -> Image.Image:
    """`img` with `share` of its pixels set black or white at random: salt-and-pepper noise."""
    a = np.array(img)
    n = int(share * a.shape[0] * a.shape[1])
    a[rng.integers(0, a.shape[0], n), rng.integers(0, a.shape[1], n)] = rng.choice([0, 255], n)[:, None]
    return Image.fromarray(a, "RGB")


def ink_on_paper(mask: np.ndarray, rng: np.random.Generator, style: StyleConfig = StyleConfig(),
                 ruling: tuple[float, float] | None = None) -> Image.Image:
    """Render an ink-coverage mask (float (H, W) in [0, 1]) as a photo/scan of ink on paper (RGB).

    In the order light and a camera apply them: tinted, textured paper with maybe a ruled line and
    specks, or a notebook's ruling (`ruling` = (a line's row, the pitch), for `style.paper` "ruled"
    or "squared"; the pitch of the pattern for "security"; the band's centre and height for "band"); ink laid over it; uneven light on both; then optical blur, sensor noise and JPEG.
    """
    mask = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    h, w = mask.shape
    tints = np.array([[0.0, -0.25, -1.0], [0.0, 0.0, 0.0], [-0.6, -0.2, 0.0]])  # cream, grey, bluish
    paper = _u(rng, style.paper_level) * (1 + tints[rng.integers(3)] * _u(rng, (0, style.paper_tint)))
    img = np.broadcast_to(paper, (h, w, 3)).astype(np.float32)
    if style.texture > 0:  # uneven paper: fibres and slight cockling, grey and low frequency
        tex = _smooth_field((h, w), int(rng.integers(6, 16)), rng) - 0.5
        img = img * (1 + 2 * _u(rng, (0, style.texture)) * tex)[..., None]
    if rng.random() < style.p_distractors:
        mask = _distractors(mask, img, rng)
    if style.paper in ("ruled", "squared") and ruling is not None:
        _rule(img, *ruling, squared=style.paper == "squared", rng=rng)
    elif style.paper == "security" and ruling is not None:
        _security_pattern(img, ruling[1], rng)
    elif style.paper == "band" and ruling is not None:
        _tint_band(img, *ruling, rng)
    level = _u(rng, style.ink_level)
    ink = np.full(3, level)
    if rng.random() < style.p_colour_ink:  # blue or blue-black ballpoint; stays dark enough to read
        ink = np.array([level * 0.4 + 15, level * 0.55 + 20, min(255.0, level + rng.uniform(50, 130))])
    if style.ink_fade > 0:
        mask = mask * (1 - _u(rng, (0, style.ink_fade)) * _smooth_field((h, w), 6, rng))
    img = img * (1 - mask[..., None]) + ink * mask[..., None]
    if style.light_min < 1:
        img = img * _lighting((h, w), rng, _u(rng, (style.light_min, 1.0)))[..., None]
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")
    # Optical blur scales with the picture (a 600-px photo blurs over more pixels than a 40-px one).
    radius = _u(rng, style.blur_radius) * math.sqrt(max(h, w) / 256)
    if radius > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(radius))
    sigma = _u(rng, style.noise_sigma)
    if sigma > 0:  # sensor noise: mostly luminance, a little colour
        n = rng.normal(0, sigma, (h, w, 1)) + rng.normal(0, sigma * 0.3, (h, w, 3))
        out = Image.fromarray(np.clip(np.asarray(out, np.float32) + n + 0.5, 0, 255).astype(np.uint8), "RGB")
    if style.specks > 0:
        out = _speckled(out, _u(rng, (style.specks / 4, style.specks)), rng)
    if rng.random() < style.p_jpeg:
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=int(round(_u(rng, style.jpeg_quality))))
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return out


def render_digit_with_box(digit: np.ndarray, rng: np.random.Generator,
                          style: StyleConfig = StyleConfig()) -> tuple[Image.Image, Box]:
    """Like :func:`render_digit`, also returning the digit's box (x0, y0, x1, y1) in the picture."""
    mask, box = place_digit(digit, canvas_size(rng, style), rng, style)
    return ink_on_paper(mask, rng, style), box


def render_digit(digit: np.ndarray, rng: np.random.Generator, style: StyleConfig = StyleConfig()) -> Image.Image:
    """Turn one MNIST digit (uint8 (28, 28), white on black) into a user-style RGB picture."""
    return render_digit_with_box(digit, rng, style)[0]


def as_numpy(x) -> np.ndarray:
    """A numpy array of `x`, a numpy array or a torch tensor (on any device)."""
    return np.asarray(x.detach().cpu()) if hasattr(x, "detach") else np.asarray(x)  # torch without importing it


def iter_user_style_set(images: torch.Tensor | np.ndarray, labels, n: int, seed: int = 0,
                        style: StyleConfig = StyleConfig()) -> Iterator[tuple[Image.Image, int]]:
    """Yield (picture, label) for the first `n` digits, one at a time (a big set won't fit in memory)."""
    images, labels = as_numpy(images), as_numpy(labels)
    if not 0 <= n <= len(images):
        raise ValueError(f"n must be between 0 and {len(images)}, got {n}")
    # One child seed per image, keyed by its index: image i is the same whatever n is.
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        yield render_digit(images[i], np.random.default_rng(child), style), int(labels[i])


def save_user_style_set(out_dir: str | Path, images: torch.Tensor | np.ndarray, labels, n: int, seed: int = 0,
                        fmt: str = "png", style: StyleConfig = StyleConfig()) -> Path:
    """Write `{i:05d}_label{d}.{fmt}` files and a ``labels.csv`` (file,label) to `out_dir`; return the csv path."""
    if fmt not in ("png", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, label) in enumerate(iter_user_style_set(images, labels, n, seed, style)):
        name = f"{i:05d}_label{label}.{fmt}"
        # PNG keeps the picture exactly (JPEG artefacts included); jpg adds one more, mild, encode.
        img.save(out / name, **({"format": "JPEG", "quality": 95} if fmt == "jpg" else {"format": "PNG"}))
        rows.append((name, label))
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="") as f:
        csv.writer(f).writerows([("file", "label"), *rows])
    return csv_path


def _grown(box: Box, by: int, size: tuple[int, int]) -> Box:
    """`box` grown by `by` pixels a side, within a picture of `size` (width, height)."""
    x0, y0, x1, y1 = box
    return max(0, x0 - by), max(0, y0 - by), min(size[0], x1 + by), min(size[1], y1 + by)


FRAMES = ("photo", "tight", "box", "comb", "cells", "dropout", "marker", "upscaled", "negative", "bilevel", "table")


def frame_digit(img: Image.Image, box: Box, frame: str, rng: np.random.Generator) -> Image.Image:
    """A rendered digit as it reaches a user in other ways than a photo: "tight" (cropped to the
    digit, touching the image's edges, as cut from a postal-code field), "box" (inside a printed
    box, 1-3 px lines close to the digit or touching it, cut from the form with a little beyond),
    "comb" (a form's comb field: a baseline and ticks either side, no top), "cells" (one of a row
    of printed cells, cut with a sliver of the cells either side), "dropout" (the same, the cells printed
    in a form's light dropout colour, `dropout_ink`), "marker" (written with
    a thick marker, strokes about a sixth to a quarter of the digit's height, cropped tight), "upscaled"
    (a low-resolution scan, 10-18 px tall, blown up 4-10x, cropped tight), "negative" (light ink on a
    dark ground, cropped tight: a dark-mode canvas, chalk on a board, a negative scan; the ink is
    then most of the picture), "bilevel" (a form scanner's or a fax's black-and-white image: pen or
    thick marker, cropped tight, 20-60 px tall, every pixel black or white), "table" (the photo with
    the table or a scanner's lid past the paper's edge along one side: `by_the_table`); "photo" as it is."""
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    if frame == "photo":
        return img
    x0, y0, x1, y1 = box
    if frame == "tight":
        return img.crop(box)
    if frame == "negative":
        return ImageOps.invert(img.crop(box).convert("RGB"))
    if frame == "marker":
        return _in_marker(img, box, rng)
    if frame == "table":
        return by_the_table(img, box, rng)
    if frame == "bilevel":
        grey = (_in_marker(img, box, rng) if rng.random() < 0.5 else img.crop(box)).convert("L")
        f = min(1.0, rng.uniform(20, 60) / grey.height)
        grey = grey.resize((max(2, round(grey.width * f)), max(2, round(grey.height * f))), Image.Resampling.BOX)
        lo, hi = grey.getextrema()
        return grey.point(lambda v: 255 if v > (lo + hi) / 2 else 0).convert("1")  # the scanner's threshold
    if frame == "upscaled":
        crop = img.crop(box)
        f = rng.uniform(10, 18) / crop.height
        small = crop.resize((max(2, round(crop.width * f)), max(2, round(crop.height * f))), Image.Resampling.BOX)
        up = rng.uniform(4, 10)
        how = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
        return small.resize((round(small.width * up), round(small.height * up)), how)
    img = img.copy()
    h = y1 - y0
    t = printed_line_width(h, rng)
    margin = int(rng.uniform(-0.02, 0.2) * h)  # a digit may touch or cross its box
    # Within the picture: a cell cut from a form always has its box (where the digit is near the
    # picture's edge, the box comes closer to it).
    left, top = max(0, x0 - margin - t), max(0, y0 - margin - t)
    right, bottom = min(img.width - 1, x1 + margin + t), min(img.height - 1, y1 + margin + t)
    colour = dropout_ink(rng) if frame == "dropout" else printed_ink(rng)
    if frame in ("cells", "dropout"):
        return _cut_from_cells(img, (left, top, right, bottom), t, colour, rng)
    draw = ImageDraw.Draw(img)
    if frame == "box":
        draw.rectangle([left, top, right, bottom], outline=colour, width=t)
    else:
        tick = top + int(rng.uniform(0.4, 0.7) * (bottom - top))
        draw.line([left, bottom, right, bottom], fill=colour, width=t)
        draw.line([left, tick, left, bottom], fill=colour, width=t)
        draw.line([right, tick, right, bottom], fill=colour, width=t)
    beyond = int(rng.uniform(0, 0.1) * h)
    return img.crop((max(0, left - beyond), max(0, top - beyond), min(img.width, right + beyond + 1),
                     min(img.height, bottom + beyond + 1)))


def by_the_table(img: Image.Image, box: Box, rng: np.random.Generator) -> Image.Image:
    """The photo with what lies past the paper's edge along one side: a dark band (a table, a
    scanner's lid) 5-25% of the picture across, its edge up to 3 degrees off the picture's (a photo
    taken askew) but running the whole side, on a side with room for it, never on the writing in `box`."""
    a = np.array(img.convert("RGB"), dtype=np.float32)
    h, w = a.shape[:2]
    x0, y0, x1, y1 = box
    across, along = np.array([w, h, w, h]), np.array([h, w, h, w])
    room = np.array([x0, y0, w - x1, h - y1]) - 0.1 * (y1 - y0)  # paper beside the digit: left, top, right, bottom
    roomy = np.flatnonzero(room >= 0.05 * across)
    side = int(rng.choice(roomy)) if roomy.size else int(np.argmax(room / across))
    band = min(rng.uniform(0.05, 0.25) * across[side], room[side])
    if band < 1:
        return img
    # The edge's depth changes by `lean` a pixel along the side: it stays off the digit, and in the picture.
    swing = min(band - 0.02 * across[side], room[side] - band) / (along[side] / 2)
    lean = np.tan(np.deg2rad(rng.uniform(-3, 3)))
    lean = float(np.clip(lean, -max(swing, 0), max(swing, 0)))
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    depth, pos = [(xx, yy), (yy, xx), (w - 1 - xx, yy), (h - 1 - yy, xx)][side]  # into the picture, and along its side
    past = depth < band + lean * (pos - along[side] / 2)
    table = rng.uniform(15, 90) + rng.uniform(-8, 8, 3) + rng.normal(0, 3, (h, w, 3))  # a dark, slightly tinted grain
    a[past] = table[past]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _in_marker(img: Image.Image, box: Box, rng: np.random.Generator) -> Image.Image:
    """The digit in `box` written with a thick marker, cropped tight: the paper is light, so a
    minimum filter spreads the dark ink."""
    x0, y0, x1, y1 = box
    grow = int(rng.uniform(0.025, 0.07) * (y1 - y0))  # per side, on top of the pen's own width
    out = _grown(box, grow, img.size)
    # Filter only a window a filter's reach beyond the crop (the whole photo took 0.3 s an image):
    # the same pixels, as the filter repeats the picture's edge where the window meets it.
    win = _grown(out, grow, img.size)
    wide = img.crop(win).filter(ImageFilter.MinFilter(2 * grow + 1)) if grow else img.crop(win)
    return wide.crop((out[0] - win[0], out[1] - win[1], out[2] - win[0], out[3] - win[1]))


def printed_line_width(h: float, rng: np.random.Generator) -> int:
    """A form's printed line beside writing `h` px tall: 1-3 px, a little heavier on big scans."""
    return int(rng.integers(1, 4)) * max(1, round(h / 60))


def printed_ink(rng: np.random.Generator) -> tuple[int, int, int]:
    """A printing ink's RGB: a dark grey or blue."""
    return tuple(int(v) for v in (rng.uniform(30, 90), rng.uniform(30, 90), rng.uniform(30, 140)))


def dropout_ink(rng: np.random.Generator) -> tuple[int, int, int]:
    """A form's dropout colour, RGB: the light blue, red or green that forms print their boxes in so
    that a scanner can drop them, as light as a band of tint or lighter than the pen by half."""
    light = {"blue": ((110, 170), (160, 210), (215, 250)), "red": ((215, 250), (110, 170), (110, 170)),
             "green": ((120, 170), (185, 225), (130, 180))}
    hue = ("blue", "red", "green")[int(rng.integers(3))]
    return tuple(int(rng.uniform(*span)) for span in light[hue])


def _cut_from_cells(img: Image.Image, cell: Box, t: int, colour: tuple, rng: np.random.Generator) -> Image.Image:
    """One cell of a row of printed cells cut out with a sliver of its neighbours: its top and bottom
    run on to the cut's sides, and past each wall lies a strip of the next cell's paper. Half the
    rows print their cells apart: a gap of paper, then the next cell's wall, its top and bottom."""
    left, top, right, bottom = cell
    h = bottom - top
    side = [int(rng.uniform(0.03, 0.25) * h) for _ in range(2)]  # the neighbours' strips, left and right
    beyond = int(rng.uniform(0, 0.1) * h)
    gap = int(rng.uniform(0.05, 0.2) * h) if rng.random() < 0.5 else 0
    cut = (max(0, left - gap - side[0]), max(0, top - beyond), min(img.width, right + gap + side[1] + 1),
           min(img.height, bottom + beyond + 1))
    draw = ImageDraw.Draw(img)
    runs = [(cut[0], cut[2])] if not gap else [(cut[0], left - gap), (left, right), (right + gap, cut[2])]
    for y in (top, bottom):
        for x0, x1 in runs:
            draw.line([x0, y, x1, y], fill=colour, width=t)
    for x in (left, right) + ((left - gap, right + gap) if gap else ()):
        draw.line([x, top, x, bottom], fill=colour, width=t)
    return img.crop(cut)


def iter_framed_set(images: torch.Tensor | np.ndarray, labels, n: int, frame: str, seed: int = 0,
                    style: StyleConfig = StyleConfig()) -> Iterator[tuple[Image.Image, int]]:
    """Like `iter_user_style_set`, each picture framed by `frame_digit`."""
    images, labels = as_numpy(images), as_numpy(labels)
    if not 0 <= n <= len(images):
        raise ValueError(f"n must be between 0 and {len(images)}, got {n}")
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        img, box = render_digit_with_box(images[i], rng, style)
        yield frame_digit(img, box, frame, rng), int(labels[i])

