"""The small tensor helpers every module shares, said once: uint8 -> float images, the validation
split, and seeded drawing (uniform draws, straight strokes, soft discs). Normalisation, which
needs no torch, is `model_file.normalise`.

Images here are (B, 1, H, W) or (B, H, W) floats in [0, 1] with white ink on black, as MNIST's
bytes / 255, before normalisation: "background" is exactly 0.
"""

from __future__ import annotations

import torch

SPLIT_SEED = 0  # the validation split is fixed across training seeds, so runs are comparable
VAL_SIZE = 5000  # training images every recipe holds out to choose on


def to_float_images(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1], on `device` (default: where they are)."""
    return images.to(device).float().div_(255).unsqueeze(1)


def split_train_val(n: int, val_size: int = VAL_SIZE, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into (train_idx, val_idx): disjoint, sorted int64 index tensors.

    The split depends only on ``n``, ``val_size`` and ``seed`` (a seeded torch.Generator), so
    the same settings always hold out the same images.
    """
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be between 0 and {n - 1} for {n} training images, got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


def _gen_device(gen: torch.Generator | None) -> torch.device:
    """Where `gen` draws: a CPU generator cannot fill a CUDA tensor, so draws are made there and moved."""
    return gen.device if gen is not None else torch.device("cpu")


def uniform(shape, gen: torch.Generator | None, device, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Uniform draws in [low, high) of `shape`, made on the generator's device (a CPU generator
    cannot fill a CUDA tensor) and moved to `device`."""
    return (torch.rand(shape, generator=gen, device=_gen_device(gen)) * (high - low) + low).to(device)


def randint(low: int, high: int, shape, gen: torch.Generator | None, device) -> torch.Tensor:
    """Integers in [low, high) of `shape`, drawn on the generator's device and moved to `device`."""
    return torch.randint(low, high, shape, generator=gen, device=_gen_device(gen)).to(device)


def choice(weights: list[float], n: int, gen: torch.Generator | None, device) -> torch.Tensor:
    """`n` indices into `weights` (n,), drawn with replacement in proportion to them, on the
    generator's device and moved to `device`."""
    return torch.multinomial(torch.tensor(weights, device=_gen_device(gen)), n, True, generator=gen).to(device)


def segment(h: int, w: int, x0, y0, x1, y1, width) -> tuple[torch.Tensor, torch.Tensor]:
    """Anti-aliased straight strokes (B, H, W) from (x0, y0) to (x1, y1) (each (B,)) with half-width
    `width` px (a float or (B,)), and each pixel's position along its segment, 0..1 (B, H, W)."""
    rows = torch.arange(h, device=x0.device, dtype=x0.dtype)
    cols = torch.arange(w, device=x0.device, dtype=x0.dtype)
    px, py = cols[None, None, :], rows[None, :, None]
    dx, dy = (x1 - x0)[:, None, None], (y1 - y0)[:, None, None]
    # The distance from every pixel to the segment: project onto it, clamp to its ends.
    t = (((px - x0[:, None, None]) * dx + (py - y0[:, None, None]) * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp(0, 1)
    dist = torch.hypot(px - (x0[:, None, None] + t * dx), py - (y0[:, None, None] + t * dy))  # (B, H, W)
    width = width[:, None, None] if isinstance(width, torch.Tensor) else width
    return (width + 0.5 - dist).clamp(0, 1), t


def blobs(b: int, h: int, w: int, centres: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Soft discs, one per row of `centres` (B, K, 2) as (y, x) with radii (B, K): (B, H, W) in [0, 1]."""
    dev = centres.device
    yy = torch.arange(h, device=dev, dtype=centres.dtype)[None, None, :, None]
    xx = torch.arange(w, device=dev, dtype=centres.dtype)[None, None, None, :]
    d = torch.hypot(yy - centres[..., 0, None, None], xx - centres[..., 1, None, None])  # (B, K, H, W)
    return (radius[..., None, None] + 0.5 - d).clamp(0, 1).amax(1)


def band_mask(b: int, h: int, w: int, start: torch.Tensor, width: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(B, H, W) booleans: a band of `width` rows (where `rows`) or columns from `start` (each (B,))."""
    idx = torch.arange(w, device=start.device)
    band = (idx[None] >= start[:, None]) & (idx[None] < (start + width)[:, None])  # (B, W)
    return torch.where(rows[:, None, None], band[:, :, None].expand(b, h, w), band[:, None, :].expand(b, h, w))
