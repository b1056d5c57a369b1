"""Lines of digits for the number reader: make training lines, decode what the reader says.

The reader (`models.linecnn`) reads a whole line framed like MNIST: white ink on black, the writing
20 px tall in a 28-px strip, 4 px of margin each side, any width (`framing.frame_strip`). Here:

* `compose_lines`: training lines built from MNIST digits on tensors, a whole batch per call. Each
  digit is augmented as the digit models are, given its own size (+-15%) and baseline, then set
  beside the previous one with a clear gap, touching, or overlapping it; the line is framed
  exactly as `framing.frame_strip` frames a user's, and drawn in one `grid_sample` at 2x, then halved.
* `decode`: CTC's best path, as digits with the columns each came from.

`reader_train.train_reader` trains the model on an endless stream of composed lines (`digitrec train-reader`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .augment import augment_batch, noise_family
from .framing import MARGIN, STRIP_HEIGHT, WRITING
from .tensors import to_float_images

BLANK = 10  # CTC's blank class
STRIDE = 2  # columns per output frame of `linecnn`
SPACING_MIX = {"gap": 0.35, "touching": 0.35, "overlapping": 0.3}
# Space between neighbours' ink boxes, x the writing height. Inks meet well before boxes do (a 7's
# arm over a 1, slanted digits), so "touching" and "overlapping" overlap the boxes generously.
GAP = {"gap": (0.1, 0.5), "touching": (-0.35, 0.0), "overlapping": (-0.55, -0.2)}


def _ink_extent(any_ink: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last index where a (N, L) boolean row is True (0, L when all False)."""
    n, size = any_ink.shape
    idx = torch.arange(size, device=any_ink.device).expand(n, size)
    first = torch.where(any_ink, idx, size).amin(1)
    last = torch.where(any_ink, idx + 1, 0).amax(1)
    empty = first >= last
    return torch.where(empty, 0, first), torch.where(empty, size, last)


def compose_lines(images: torch.Tensor, labels: torch.Tensor, n: int, *, max_digits: int = 7,
                  min_digits: int = 1, augment: float = 1.0, noise: float = 0.25,
                  gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`n` lines of `min_digits`..`max_digits` digits drawn from `images` (uint8 (N, 28, 28)).

    Returns (x (n, 1, 28, W) floats in [0, 1], targets (n, max_digits) int64 padded with BLANK,
    lengths (n,)); W is a multiple of 4 that fits the widest line, shorter lines padded with black.
    """
    dev = images.device
    m = max_digits
    rnd = lambda *shape: torch.rand(*shape, generator=gen, device=dev)  # noqa: E731
    length = torch.randint(min_digits, m + 1, (n,), generator=gen, device=dev)
    idx = torch.randint(0, len(images), (n, m), generator=gen, device=dev)
    lab = labels[idx]  # (n, m)
    present = torch.arange(m, device=dev) < length[:, None]  # (n, m)
    d = to_float_images(images[idx.flatten()])  # (n*m, 1, 28, 28)
    d = augment_batch(d, augment, gen, elastic=2.0, labels=lab.flatten(), styles=0.15)

    ink = d[:, 0] > 0.3
    x0, x1 = _ink_extent(ink.any(1))  # columns (n*m,)
    y0, y1 = _ink_extent(ink.any(2))  # rows
    x0, x1, y0, y1 = (t.view(n, m).float() for t in (x0, x1, y0, y1))
    # Lay the line out in "source pixels" (the digit's own 28x28 pixels at scale 1): MNIST writing is
    # ~20 of them tall. Sizes vary +-15%, baselines +-8% of the writing height.
    s = 0.85 + 0.3 * rnd(n, m)
    w, h = (x1 - x0) * s, (y1 - y0) * s
    mode = torch.multinomial(torch.tensor(list(SPACING_MIX.values()), device=dev), n, True, generator=gen)
    lo = torch.tensor([GAP[k][0] for k in SPACING_MIX], device=dev)[mode]
    hi = torch.tensor([GAP[k][1] for k in SPACING_MIX], device=dev)[mode]
    gap = (lo[:, None] + (hi - lo)[:, None] * rnd(n, m)) * WRITING
    gap[:, 0] = 0
    # Overlap never swallows a neighbour: the next digit starts at least 30% of the way in.
    gap = torch.maximum(gap, -0.7 * torch.minimum(w, w.roll(1, 1)))
    left = torch.cumsum(torch.where(present, gap, 0) + torch.where(present, w, 0).roll(1, 1) * (torch.arange(m, device=dev) > 0), 1)
    bottom = WRITING * (1 + 0.08 * (2 * rnd(n, m) - 1))
    top = bottom - h
    big = torch.finfo(torch.float32).max
    line_top = torch.where(present, top, big).amin(1, keepdim=True)
    line_bottom = torch.where(present, bottom, -big).amax(1, keepdim=True)
    line_right = torch.where(present, left + w, 0).amax(1, keepdim=True)
    f = WRITING / (line_bottom - line_top)  # frame: the line's ink box becomes 20 px tall
    width = MARGIN * 2 + f[:, 0] * line_right[:, 0]  # (n,)
    W = int(math.ceil(float(width.max()) / 4) * 4)

    # One grid_sample at 2x, then 2x2 averaging: shrinking by sampling alone would alias.
    ss = 2
    oy = (torch.arange(STRIP_HEIGHT * ss, device=dev) + 0.5) / ss  # output pixel centres
    ox = (torch.arange(W * ss, device=dev) + 0.5) / ss
    k = (s * f).view(-1, 1)  # output px per source px, per digit
    u = x0.view(-1, 1) + ((ox[None] - MARGIN) - (f * left).view(-1, 1)) / k  # (n*m, W*ss) source x
    v = y0.view(-1, 1) + ((oy[None] - MARGIN) - (f * (top - line_top)).view(-1, 1)) / k  # (n*m, H*ss)
    grid = torch.stack(torch.broadcast_tensors(u[:, None, :], v[:, :, None]), -1) * (2 / 28) - 1
    strips = F.grid_sample(d, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    strips = strips.view(n, m, STRIP_HEIGHT * ss, W * ss) * present[:, :, None, None]
    x = F.avg_pool2d(strips.amax(1, keepdim=True), ss)  # (n, 1, 28, W)
    if noise > 0:
        x = noise_family(x, noise, gen)
    targets = torch.where(present, lab, BLANK)
    return x.clamp(0, 1), targets, length


class Decoded(NamedTuple):
    """One digit read from a line: the frames [start, end) it came from, and the ten digits'
    probabilities (blank left out) at the frame where it was surest."""
    digit: int
    probabilities: torch.Tensor  # (10,)
    start: int
    end: int

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.digit])


def decode(logp: torch.Tensor) -> list[list[Decoded]]:
    """CTC best path per line of (B, T, 11) log-probabilities: the digits of each line, left to right."""
    p = logp.exp()
    ten = p[..., :BLANK] / p[..., :BLANK].sum(-1, keepdim=True).clamp_min(1e-9)  # (B, T, 10)
    best = p.argmax(-1)  # (B, T)
    out = []
    for b in range(p.shape[0]):
        runs: list[list[int]] = []  # [digit, start, end]
        prev = BLANK
        for t, c in enumerate(best[b].tolist()):
            if c != BLANK and c == prev:
                runs[-1][2] = t + 1
            elif c != BLANK:
                runs.append([c, t, t + 1])
            prev = c
        out.append([Decoded(c, ten[b, a + int(ten[b, a:z, c].argmax())], a, z) for c, a, z in runs])
    return out
