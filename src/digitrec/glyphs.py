"""Digits drawn as pen strokes, in writing styles that MNIST's American writers almost never used.

Much of Europe and Latin America starts a 2 with a closed curl at the top, and many writers make a
4 in one movement, round at the bottom-left and open at the top. A model trained on MNIST alone
reads both as 9s (it has seen a closed loop on a stem only in 9s), and the real sets show it: the
curled 2s of bank-check amounts and the one-stroke 4s of user photos are their most frequent
confident errors. The same writers often end a 9's stem with a hook back to the left, which an
MNIST model takes for an 8's lower loop (the bank checks' most frequent substitution, 9 -> 8).
Others lift a 5's top bar off its stem and run it out over the next digit, which reads as a 7
after the 5 (`--glyph-digits 2459`). Augmentation cannot make these from MNIST's own digits, so
they are drawn:

    x = draw_styled(labels, gen)     # (B, 1, 28, 28), white ink on black, like MNIST

Each style is a few strokes through control points in the digit's box (x right, y down, 0..1).
A drawing jitters every point, gives the box its own size, aspect and slant and the pen its own
width, and runs each stroke through a Catmull-Rom spline so it curves as a pen does. The result
then goes through the same augmentation as MNIST's digits (`augment.styled_digits`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .tensors import segment, uniform

Stroke = list[tuple[float, float]]

# label -> styles; a style is a list of strokes. Corners are where one stroke ends and the next starts
# (a spline through a corner would round it).
STYLES: dict[int, list[list[Stroke]]] = {
    2: [
        # Curled 2: starts inside its own top, curls up and over, crosses near where it began.
        [[(0.52, 0.42), (0.24, 0.40), (0.16, 0.18), (0.42, 0.0), (0.76, 0.05), (0.84, 0.30), (0.60, 0.56),
          (0.30, 0.80), (0.06, 1.0)], [(0.06, 1.0), (0.50, 0.95), (1.0, 0.97)]],
        # Its head closed into a loop as big as a 9's, and a loop at the bottom.
        [[(0.62, 0.50), (0.24, 0.48), (0.10, 0.24), (0.38, 0.0), (0.78, 0.04), (0.88, 0.30), (0.62, 0.56),
          (0.28, 0.84), (0.10, 0.97), (0.02, 0.86), (0.16, 0.79), (0.30, 0.90), (0.58, 0.99), (1.0, 0.94)]],
    ],
    4: [
        # One stroke: down the left, round at the bottom, up the right; then the stem down past it.
        [[(0.16, 0.0), (0.08, 0.32), (0.20, 0.55), (0.50, 0.62), (0.82, 0.52), (0.88, 0.28), (0.86, 0.0)],
         [(0.86, 0.0), (0.84, 0.50), (0.80, 1.0)]],
        # Open at the top, the bar running past the stem.
        [[(0.34, 0.0), (0.05, 0.64)], [(0.05, 0.64), (1.0, 0.60)], [(0.70, 0.18), (0.68, 1.0)]],
    ],
    5: [
        # The top bar written last, lifted off the stem and run out to the right, often rising: MNIST's
        # 5s keep it on the stem, so a model reads the lone bar as a 7 (or a dash) after the digit.
        [[(0.18, 0.08), (0.14, 0.46)], [(0.14, 0.46), (0.40, 0.36), (0.72, 0.46), (0.80, 0.72), (0.58, 0.96),
                                        (0.26, 0.98), (0.06, 0.84)], [(0.42, 0.02), (0.90, -0.04), (1.45, -0.14)]],
        # Its stem and bowl one curve, the bar well clear of them.
        [[(0.22, 0.12), (0.16, 0.42), (0.46, 0.38), (0.78, 0.52), (0.78, 0.80), (0.50, 0.98), (0.12, 0.90)],
         [(0.50, 0.04), (0.95, -0.02), (1.35, 0.04)]],
    ],
    9: [
        # The stem's end hooked back to the left under the loop, as many Latin American and European
        # writers end it: MNIST's 9s end straight, so a model reads the hook as an 8's lower loop.
        [[(0.86, 0.22), (0.56, 0.0), (0.20, 0.08), (0.14, 0.32), (0.42, 0.46), (0.78, 0.36), (0.86, 0.12)],
         [(0.86, 0.12), (0.84, 0.55), (0.74, 0.88), (0.48, 1.0), (0.22, 0.88)]],
    ],
}
# What `--glyphs` draws unless told otherwise: the lifted 5s came later (`--glyph-digits`), so a reader
# trained before them, whose config does not name its digits, drew these.
GLYPH_DIGITS = "249"
SAMPLES = 6  # spline points per span between control points


def _spline(points: torch.Tensor) -> torch.Tensor:
    """Catmull-Rom through (B, K, 2) control points: (B, (K - 1) * SAMPLES + 1, 2) points on the curve."""
    p = torch.cat([points[:, :1], points, points[:, -1:]], 1)  # ends doubled: the curve stops at them
    t = torch.linspace(0, 1, SAMPLES + 1, device=points.device, dtype=points.dtype)[:-1, None]  # (S, 1)
    p0, p1, p2, p3 = (p[:, i:i + points.shape[1] - 1, None] for i in range(4))  # (B, K-1, 1, 2)
    curve = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)  # (B, K-1, S, 2)
    return torch.cat([curve.flatten(1, 2), points[:, -1:]], 1)


def _draw(style: list[Stroke], b: int, gen: torch.Generator | None, device) -> torch.Tensor:
    """`b` drawings of one style: (b, 28, 28), the pen's path inside MNIST's 20x20 box."""
    u = lambda lo, hi: uniform((b, 1), gen, device, lo, hi)  # noqa: E731
    height, aspect, lean, pen = u(17.0, 20.0), u(0.55, 0.95), u(-0.35, 0.25), u(0.9, 1.6)
    paths = []
    for stroke in style:
        ctrl = torch.tensor(stroke, device=device).expand(b, -1, -1)
        ctrl = ctrl + 0.1 * (uniform(ctrl.shape, gen, device) - 0.5)  # each point moves up to 5% of the box
        pts = _spline(ctrl)  # (b, M, 2) in the unit box
        y = (pts[..., 1] - 0.5) * height
        paths.append(torch.stack([(pts[..., 0] - 0.5) * height * aspect - lean * y, y], -1))  # lean right: top moves right
    every = torch.cat(paths, 1)
    lo, hi = every.amin(1, keepdim=True), every.amax(1, keepdim=True)  # (b, 1, 2)
    # MNIST's recipe: the longest side of the writing (pen included) at most 20 px, centred.
    fit = ((20 - 2 * pen[:, :, None]) / (hi - lo).amax(2, keepdim=True)).clamp(max=1)
    out = torch.zeros(b, 28, 28, device=device)
    for path in paths:
        xy = (path - (lo + hi) / 2) * fit + 14
        x, y, m = xy[..., 0], xy[..., 1], path.shape[1] - 1
        ink, _ = segment(28, 28, x[:, :-1].flatten(), y[:, :-1].flatten(), x[:, 1:].flatten(), y[:, 1:].flatten(),
                         pen.repeat_interleave(m))
        out = torch.maximum(out, ink.view(b, m, 28, 28).amax(1))
    return out


def draw_styled(labels: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Digits `labels` (B,) drawn in STYLES' writing, each in one of its label's styles at random:
    (B, 1, 28, 28) floats, centred by their ink's centre of mass as MNIST's are. Labels without a
    style (see `STYLES`) come back blank."""
    dev = labels.device
    out = torch.zeros(len(labels), 28, 28, device=dev)
    pick = uniform(len(labels), gen, dev, 0.0, 1.0)
    for label, styles in STYLES.items():
        for i, style in enumerate(styles):
            chosen = (labels == label) & (pick * len(styles)).floor().eq(i)
            if chosen.any():
                out[chosen] = _draw(style, int(chosen.sum()), gen, dev)
    return _centre(out)[:, None]


def _centre(x: torch.Tensor) -> torch.Tensor:
    """Shift each (B, 28, 28) image by whole pixels so its ink's centre of mass sits at the middle."""
    mass = x.sum((1, 2)).clamp_min(1e-6)
    idx = torch.arange(28, device=x.device, dtype=x.dtype)
    cy = (x.sum(2) * idx).sum(1) / mass
    cx = (x.sum(1) * idx).sum(1) / mass
    # Whole-pixel shifts: bilinear sampling at integer offsets moves pixels without blurring them.
    theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -(13.5 - cx).round() * (2 / 28)  # affine_grid maps output to input: shift back
    theta[:, 1, 2] = -(13.5 - cy).round() * (2 / 28)
    grid = F.affine_grid(theta, [len(x), 1, 28, 28], align_corners=False)
    return F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
