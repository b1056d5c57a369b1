"""Batched data augmentation on tensors: a whole batch per call, on whatever device it lives on.

Images are (B, 1, H, W) floats in [0, 1] with white ink on black, i.e. before normalisation, so
that "background" is exactly 0 and resampling pads with background. Every function takes a
`torch.Generator` so that a seeded run draws the same augmentations again (and a resumed run
continues the same sequence).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, gen: torch.Generator | None, device) -> torch.Tensor:
    # Draw on the generator's device (CPU generators cannot fill CUDA tensors), then move.
    gdev = gen.device if gen is not None else torch.device("cpu")
    return (torch.rand(n, generator=gen, device=gdev) * (high - low) + low).to(device)


def random_affine(x: torch.Tensor, *, degrees: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  shear: float = 10.0, translate: float = 0.1, elastic: float = 0.0,
                  gen: torch.Generator | None = None) -> torch.Tensor:
    """Rotate, scale, shear and shift each image by its own random amount, optionally with an
    elastic wobble on top, in a single resampling.

    degrees: max rotation either way; scale: range of zoom factors; shear: max horizontal shear
    angle in degrees (handwriting slants sideways, not up and down); translate: max shift as a
    fraction of the image size; elastic: max displacement of the smooth random warp, in pixels
    (Simard et al. 2003: the distortion that hands make). Returns a tensor like `x`.
    """
    b = x.shape[0]
    dev = x.device
    rot = _uniform(b, -degrees, degrees, gen, dev) * (math.pi / 180)
    zoom = _uniform(b, scale[0], scale[1], gen, dev)
    sh = torch.tan(_uniform(b, -shear, shear, gen, dev) * (math.pi / 180))
    tx = _uniform(b, -translate, translate, gen, dev) * 2  # affine_grid works in [-1, 1] units
    ty = _uniform(b, -translate, translate, gen, dev) * 2
    cos, sin = torch.cos(rot), torch.sin(rot)
    # theta maps output coordinates to input coordinates, so it is the inverse of the intended
    # transform: zooming in by `zoom` means sampling a region 1/zoom as large.
    a = torch.stack([torch.stack([cos, -sin + sh * cos], -1), torch.stack([sin, cos + sh * sin], -1)], 1)  # (B, 2, 2)
    a = a / zoom[:, None, None]
    theta = torch.cat([a, torch.stack([tx, ty], -1)[:, :, None]], 2)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
    if elastic > 0:
        # Random offsets on a coarse 4x4 lattice, interpolated smoothly over the image: strokes
        # bend and wobble without tearing. Pixels -> grid units: 2 / size.
        gdev = gen.device if gen is not None else torch.device("cpu")
        coarse = (torch.rand(b, 2, 4, 4, generator=gen, device=gdev) * 2 - 1).to(dev, x.dtype)
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)  # (B, 2, H, W)
        grid = grid + field.permute(0, 2, 3, 1) * (2 * elastic / x.shape[-1])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_thickness(x: torch.Tensor, *, p_thicker: float = 0.25, p_thinner: float = 0.25,
                     gen: torch.Generator | None = None) -> torch.Tensor:
    """Make some images' strokes thicker (grey dilation) and others thinner (grey erosion), by one
    pixel each way, as a felt-tip marker or a fine pen would; the rest are left as they are."""
    b = x.shape[0]
    u = _uniform(b, 0.0, 1.0, gen, x.device)[:, None, None, None]
    thick = F.max_pool2d(x, 3, stride=1, padding=1)  # (B, 1, H, W) dilation by a 3x3 square
    # Erosion with a plus-shaped element: a 3x3 square would wipe out MNIST's 2-3 px strokes.
    pad = F.pad(x, (1, 1, 1, 1), value=0.0)
    thin = torch.minimum(torch.minimum(pad[..., 1:-1, :-2], pad[..., 1:-1, 2:]),
                         torch.minimum(pad[..., :-2, 1:-1], pad[..., 2:, 1:-1]))
    thin = torch.minimum(thin, x)
    return torch.where(u < p_thicker, thick, torch.where(u < p_thicker + p_thinner, thin, x))


def flag_ones(x: torch.Tensor, labels: torch.Tensor, *, p: float = 0.3,
              gen: torch.Generator | None = None) -> torch.Tensor:
    """Give some 1s the lead-in stroke ("flag") that much of Europe writes: a line from the top of
    the stroke down to the left. MNIST's American writers almost never made it, so a model
    trained on MNIST alone reads a flagged 1 as a 7."""
    b, _, h, w = x.shape
    dev = x.device
    chosen = (labels == 1) & (_uniform(b, 0.0, 1.0, gen, dev) < p)
    length = _uniform(b, 0.25, 0.45, gen, dev) * h  # of the image height
    angle = _uniform(b, 25.0, 60.0, gen, dev) * (math.pi / 180)  # below the horizontal; flatter is a 7
    width = _uniform(b, 0.9, 1.6, gen, dev)  # half-width in pixels, like MNIST's 2-3 px strokes
    if not chosen.any():
        return x
    ink = x[:, 0] > 0.5  # (B, H, W)
    rows = torch.arange(h, device=dev, dtype=x.dtype)
    cols = torch.arange(w, device=dev, dtype=x.dtype)
    # The top of the stroke: the first inked row, and the middle of the ink in it.
    top = torch.where(ink.any(2), rows[None, :], torch.full_like(rows[None, :], h)).amin(1)  # (B,)
    top_row = ink[torch.arange(b, device=dev), top.clamp(max=h - 1).long()]  # (B, W)
    x0 = (top_row * cols).sum(1) / top_row.sum(1).clamp(min=1)
    y0 = top + 0.5
    x1, y1 = x0 - length * torch.cos(angle), y0 + length * torch.sin(angle)
    # Distance from every pixel to the segment (x0, y0)-(x1, y1), per image.
    px, py = cols[None, None, :], rows[None, :, None]
    dx, dy = (x1 - x0)[:, None, None], (y1 - y0)[:, None, None]
    t = (((px - x0[:, None, None]) * dx + (py - y0[:, None, None]) * dy) / (dx * dx + dy * dy)).clamp(0, 1)
    dist = torch.hypot(px - (x0[:, None, None] + t * dx), py - (y0[:, None, None] + t * dy))  # (B, H, W)
    stroke = (width[:, None, None] + 0.5 - dist).clamp(0, 1)  # anti-aliased edge
    flagged = torch.maximum(x, stroke[:, None])
    return torch.where(chosen[:, None, None, None], flagged, x)


def augment_batch(x: torch.Tensor, strength: float, gen: torch.Generator | None = None, *,
                  elastic: float = 0.0, labels: torch.Tensor | None = None, styles: float = 0.0) -> torch.Tensor:
    """The training-time augmentation at a given strength (0 = off, 1 = the default amounts):
    writing styles MNIST lacks (with probability `styles`, needs `labels`), stroke thickness, then a
    random affine warp with `elastic` pixels of elastic wobble."""
    if strength <= 0:
        return x
    if styles > 0 and labels is not None:
        x = flag_ones(x, labels, p=styles, gen=gen)
    p = min(0.25 * strength, 0.4)
    x = stroke_thickness(x, p_thicker=p, p_thinner=p, gen=gen)
    return random_affine(x, degrees=10 * strength, scale=(1 - 0.1 * strength, 1 + 0.1 * strength),
                         shear=10 * strength, translate=0.08 * strength, elastic=elastic * strength, gen=gen)
