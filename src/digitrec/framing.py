"""Framing: found ink -> exactly what a model was trained on.

Two framings side by side, sharing their stroke normalisation:

* `frame_like_mnist`, for one digit: MNIST's own recipe. Crop, bring the stroke width and
  contrast to MNIST's, fit a 20x20 box keeping the aspect ratio, place in 28x28 with the centre
  of mass at MNIST's centre.
* `frame_strip`, for a line of digits: the same, but as a strip, the line levelled first if it
  slopes (`level_line`). The writing is 20 px tall in a 28-px strip with 4 px of margin each side,
  any width; `lines.compose_lines` frames its training lines by these constants.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .images import resize
from .morphology import dilate, dilate_disk, dilate_mask, distance_inside, erode_disk
from .stats import percentile

BOX, CANVAS = 20, 28  # MNIST: the digit fits a 20x20 box inside a 28x28 image
MNIST_CENTRE = 14.0  # where MNIST's centres of mass are, in pixel-index coordinates
STRIP_HEIGHT, WRITING, MARGIN = 28, 20, 4  # a line's strip: its height, the writing's height, side margins (px)
TARGET_STROKE = 0.125  # MNIST's median stroke width relative to the digit's long side (2.5 px of 20)
THIN_STROKE, THICK_STROKE = 0.09, 0.18  # outside this range a stroke is brought to TARGET_STROKE
# ... but a digit's fat stroke only as far as its ink keeps this share of its long side (a line's
# strokes are thinned in full: chosen on digits alone, docs/history.md)
KEEP_EXTENT = 0.95
RIM = 2  # px of anti-aliased rim kept around a stroke's mask
LEVEL_FROM = 0.05  # a line climbing more than this (rows per column, about 3 degrees) is levelled
LEVEL_WIDTH = 2.0  # ... if it is at least this many times as wide as it is tall
LEVEL_GAIN = 0.9  # ... and levelling narrows its band of rows to this share or less



def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the distance-to-background along the strokes' ridges."""
    dist = distance_inside(mask)  # the crop's edge is background
    ridge = mask & (dist >= dilate(dist, 3))
    return 2.0 * float(np.median(dist[ridge])) if ridge.any() else 1.0


def normalise_stroke(ink: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], size: float,
                     keep: float = 0.0) -> np.ndarray:
    """Crop `box` (x0, y0, x1, y1) of the ink, set its stroke cores to 1, and return it scaled so
    that `size` pixels become 4 x 20, with the stroke width brought into MNIST's range for writing
    `size` pixels tall (a digit's long side, or a line's height). `keep`: a fat stroke is thinned
    only as far as its ink keeps that share of its long side (`_thinned`; KEEP_EXTENT for a digit)."""
    x0, y0, x1, y1 = box
    # Keep the anti-aliased rim of the strokes: the mask grown by RIM px, grown only around the box
    # (what lies further out cannot reach it), not over a whole page's mask.
    ya, xa = max(y0 - RIM, 0), max(x0 - RIM, 0)
    soft = dilate_mask(mask[ya:y1 + RIM, xa:x1 + RIM], iterations=RIM)[y0 - ya:y1 - ya, x0 - xa:x1 - xa]
    crop = np.where(soft, ink[y0:y1, x0:x1], 0)
    cmask = mask[y0:y1, x0:x1]
    # Contrast: stroke cores at 1, like MNIST's saturated 255s.
    crop = np.clip(crop / max(percentile(crop[cmask], 90), 1e-6), 0, 1)

    # Work at 4x the final box so morphology has pixels to act on, then shrink with area averaging.
    h, w = crop.shape
    scale = 4 * BOX / size
    mid = (max(1, round(w * scale)), max(1, round(h * scale)))
    crop = resize(crop, mid)
    mmask = crop > 0.5
    if mmask.any():
        width = _stroke_width(mmask) / (4 * BOX)  # relative to the long side
        # MNIST's strokes are 0.09-0.15 of the digit's size (5th-75th percentile, median 0.125):
        # a thin pen on a big page is thickened, a fat marker thinned, towards that median.
        # Never more than a quarter of the crop: a solid blob has no stroke to speak of.
        r = int(np.clip(round((TARGET_STROKE - width) * 4 * BOX / 2), -min(crop.shape) // 4, BOX))
        if width < THIN_STROKE and r >= 1:
            crop = dilate_disk(crop, r)
        elif width > THICK_STROKE and r <= -1:
            crop = _thinned(crop, mmask, -r, keep)
    return crop


def _thinned(crop: np.ndarray, mask: np.ndarray, r: int, keep: float) -> np.ndarray:
    """`crop` eroded by `r` px, or by less where that would cut its ink's long side below `keep`
    of what it was: a digit whose loops are filled (a thick marker's 8 on a black-and-white scan)
    is one blob, no stroke, and eroded to the stroke width it was a sliver, read as a 1."""
    long_side = max(_extent(mask))
    while r >= 1:
        thin = erode_disk(crop, r)
        if max(_extent(thin > 0.5)) >= keep * long_side:
            return thin
        r //= 2
    return crop


def _extent(mask: np.ndarray) -> tuple[int, int]:
    """(height, width) of the box around a mask's pixels; (0, 0) for none."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)) if len(rows) else (0, 0)


def frame_like_mnist(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop the digit, normalise its stroke width and contrast, fit it in 20x20 keeping its aspect
    ratio, and place it in 28x28 with its centre of mass at the centre. Returns (image, box)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = normalise_stroke(ink, mask, (x0, y0, x1, y1), max(y1 - y0, x1 - x0), keep=KEEP_EXTENT)
    h, w = crop.shape
    scale = BOX / max(h, w)
    small = resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))))
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)

    out = np.zeros((CANVAS, CANVAS), np.float32)
    sh, sw = small.shape
    top, left = (CANVAS - sh) // 2, (CANVAS - sw) // 2
    out[top:top + sh, left:left + sw] = small
    cy, cx = centre_of_mass(out)
    # MNIST's centres of mass sit at (14.0, 14.0) in pixel-index coordinates (measured on its
    # training set), half a pixel below and right of the geometric centre (13.5).
    dy, dx = int(round(MNIST_CENTRE - cy)), int(round(MNIST_CENTRE - cx))
    # MNIST shifts by the centre of mass; clamp so that no ink is pushed off the canvas.
    dy = min(max(dy, -top), CANVAS - top - sh)
    dx = min(max(dx, -left), CANVAS - left - sw)
    moved = np.zeros_like(out)  # what np.roll gives: all else on the canvas is paper
    moved[top + dy:top + dy + sh, left + dx:left + dx + sw] = small
    return moved, (int(x0), int(y0), int(x1), int(y1))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass of a 2-D image, exactly as ndimage.center_of_mass
    gives it: float64 moments over the image's own sum."""
    total = image.sum()
    rows = np.arange(image.shape[0], dtype=np.float64)[:, None]
    cols = np.arange(image.shape[1], dtype=np.float64)[None, :]
    return float((image * rows).sum() / total), float((image * cols).sum() / total)


def line_slope(ink: np.ndarray, mask: np.ndarray) -> float:
    """How far a line of writing climbs per pixel across (rows per column, down positive): the
    least-squares fit of its ink's rows on its columns, each pixel weighted by its ink."""
    ys, xs = np.nonzero(mask)
    w = ink[ys, xs].astype(np.float64) + 1e-6
    dx = xs - np.average(xs, weights=w)
    return float(np.sum(w * dx * (ys - np.average(ys, weights=w))) / max(np.sum(w * dx * dx), 1e-9))


def _band(rows: np.ndarray, weights: np.ndarray) -> float:
    """The height of the rows holding the middle 90% of the weights."""
    order = np.argsort(rows, kind="stable")
    cum = np.cumsum(weights[order]) / max(float(weights.sum()), 1e-9)
    lo, hi = np.searchsorted(cum, [0.05, 0.95])
    return float(rows[order][min(hi, len(rows) - 1)] - rows[order][lo])


def level_line(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line's ink and mask with its columns slid up or down so that it runs level, when it
    climbs or falls more than LEVEL_FROM (a photo taken askew): a shear, not a turn, so every
    column stays where it was and boxes found along the line keep their x. A line as tall as it
    is wide (one digit) is left as it is: its own strokes would set the slope."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0 or np.ptp(xs) < LEVEL_WIDTH * (np.ptp(ys) + 1):
        return ink, mask
    slope = line_slope(ink, mask)
    # A flourish or an underline tilts the fit too; levelling must make the writing's band of rows
    # (where 90% of its ink lies) clearly narrower, as it does for a line that really slopes.
    weights = ink[ys, xs]
    if abs(slope) < LEVEL_FROM or _band(ys - slope * xs, weights) > LEVEL_GAIN * _band(ys, weights):
        return ink, mask
    h, w = ink.shape
    pad = int(math.ceil(abs(slope) * w / 2)) + 1
    centre = (xs.min() + xs.max()) / 2
    shear = np.float32([[1, 0, 0], [-slope, 1, slope * centre + pad]])  # y' = y - slope * (x - centre) + pad
    size = (w, h + 2 * pad)
    level = cv2.warpAffine(np.ascontiguousarray(ink, np.float32), shear, size, flags=cv2.INTER_LINEAR, borderValue=0)
    kept = cv2.warpAffine(mask.astype(np.uint8), shear, size, flags=cv2.INTER_NEAREST, borderValue=0)
    return level, kept.view(bool)


def frame_strip(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], float]:
    """Frame a real line's ink (white on black, any size) like the line reader's training lines (`lines.compose_lines`).

    Returns (strip (28, W) float32, the ink box (x0, y0, x1, y1) in `ink`'s pixels, and the scale
    from those pixels to the strip's: strip x = MARGIN + (x - x0) * scale)."""
    ink, mask = level_line(ink, mask)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = normalise_stroke(ink, mask, (int(x0), int(y0), int(x1), int(y1)), size=y1 - y0)
    h, w = crop.shape
    scale = WRITING / h
    small = resize(crop, (max(1, round(w * scale)), WRITING))
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)
    width = int(math.ceil((small.shape[1] + 2 * MARGIN) / 4) * 4)
    out = np.zeros((STRIP_HEIGHT, width), np.float32)
    top = (STRIP_HEIGHT - WRITING) // 2
    out[top:top + WRITING, MARGIN:MARGIN + small.shape[1]] = small
    return out, (int(x0), int(y0), int(x1), int(y1)), small.shape[1] / (x1 - x0)  # strip px per source px
