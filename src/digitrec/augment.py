"""Batched data augmentation on tensors: a whole batch per call, on whatever device it lives on.

Images are (B, 1, H, W) floats in [0, 1] with white ink on black, i.e. before normalisation, so
that "background" is exactly 0 and resampling pads with background. Every function takes a
`torch.Generator` so that a seeded run draws the same augmentations again (and a resumed run
continues the same sequence).

`preview`, `preview_digits` and `preview_grid` show each augmentation on real digits, for
`digitrec augment-preview`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .glyphs import GLYPH_DIGITS, STYLES, draw_styled
from .tensors import band_mask, blobs, segment, to_float_images, uniform


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
    rot = uniform(b, gen, dev, -degrees, degrees) * (math.pi / 180)
    zoom = uniform(b, gen, dev, scale[0], scale[1])
    sh = torch.tan(uniform(b, gen, dev, -shear, shear) * (math.pi / 180))
    tx = uniform(b, gen, dev, -translate, translate) * 2  # affine_grid works in [-1, 1] units
    ty = uniform(b, gen, dev, -translate, translate) * 2
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
        coarse = uniform((b, 2, 4, 4), gen, dev, -1.0, 1.0).to(x.dtype)
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)  # (B, 2, H, W)
        grid = grid + field.permute(0, 2, 3, 1) * (2 * elastic / x.shape[-1])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_thickness(x: torch.Tensor, *, p_thicker: float = 0.25, p_thinner: float = 0.25,
                     gen: torch.Generator | None = None) -> torch.Tensor:
    """Make some images' strokes thicker (grey dilation) and others thinner (grey erosion), by one
    pixel each way, as a felt-tip marker or a fine pen would; the rest are left as they are."""
    u = uniform(x.shape[0], gen, x.device, 0.0, 1.0)
    thick = (u < p_thicker).nonzero().flatten()
    thin = ((u >= p_thicker) & (u < p_thicker + p_thinner)).nonzero().flatten()
    out = x.clone()
    # Only the chosen images are filtered: at training strength that is a quarter of the batch.
    if len(thick):
        out[thick] = F.max_pool2d(x[thick], 3, stride=1, padding=1)  # dilation by a 3x3 square
    if len(thin):
        # Erosion with a plus-shaped element: a 3x3 square would wipe out MNIST's 2-3 px strokes.
        xt = x[thin]
        pad = F.pad(xt, (1, 1, 1, 1), value=0.0)
        eroded = torch.minimum(torch.minimum(pad[..., 1:-1, :-2], pad[..., 1:-1, 2:]),
                               torch.minimum(pad[..., :-2, 1:-1], pad[..., 2:, 1:-1]))
        out[thin] = torch.minimum(eroded, xt)
    return out


def flag_ones(x: torch.Tensor, labels: torch.Tensor, *, p: float = 0.3, longest: float = 0.45,
              gen: torch.Generator | None = None) -> torch.Tensor:
    """Give some 1s the lead-in stroke ("flag") that much of Europe writes: a line from the top of
    the stroke down to the left, up to `longest` of the image's height (writers in a hurry start
    it near the baseline). MNIST's American writers almost never made it, so a model trained on
    MNIST alone reads a flagged 1 as a 7."""
    b, _, h, w = x.shape
    dev = x.device
    chosen = (labels == 1) & (uniform(b, gen, dev, 0.0, 1.0) < p)
    length = uniform(b, gen, dev, 0.25, max(longest, 0.25)) * h  # of the image height
    angle = uniform(b, gen, dev, 25.0, 60.0) * (math.pi / 180)  # below the horizontal; flatter is a 7
    width = uniform(b, gen, dev, 0.9, 1.6)  # half-width in pixels, like MNIST's 2-3 px strokes
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
    flagged = torch.maximum(x, segment(h, w, x0, y0, x1, y1, width)[0][:, None])
    return torch.where(chosen[:, None, None, None], flagged, x)


def cross_sevens(x: torch.Tensor, labels: torch.Tensor, *, p: float = 0.3,
                 gen: torch.Generator | None = None) -> torch.Tensor:
    """Cross some 7s with the short bar through the middle of the stem that much of Europe and
    Latin America writes (MNIST's writers rarely did): a slightly tilted stroke centred on the ink
    of the digit's middle row."""
    b, _, h, w = x.shape
    dev = x.device
    chosen = (labels == 7) & (uniform(b, gen, dev, 0.0, 1.0) < p)
    half = uniform(b, gen, dev, 3.0, 5.5)  # half the bar's length, px
    tilt = uniform(b, gen, dev, -0.15, 0.15)  # rise over run
    width = uniform(b, gen, dev, 0.9, 1.6)
    if not chosen.any():
        return x
    ink = x[:, 0] > 0.5  # (B, H, W)
    rows = torch.arange(h, device=dev, dtype=x.dtype)
    cols = torch.arange(w, device=dev, dtype=x.dtype)
    inked = ink.any(2)  # (B, H)
    top = torch.where(inked, rows[None], torch.full_like(rows[None], h)).amin(1)
    bottom = torch.where(inked, rows[None], torch.zeros_like(rows[None])).amax(1)
    yc = (top + bottom) / 2 + 0.5  # the stem's middle
    row = ink[torch.arange(b, device=dev), yc.long().clamp(0, h - 1)]  # (B, W)
    xc = (row * cols).sum(1) / row.sum(1).clamp(min=1) + 0.5
    crossed = torch.maximum(x, segment(h, w, xc - half, yc + half * tilt, xc + half, yc - half * tilt, width)[0][:, None])
    return torch.where(chosen[:, None, None, None], crossed, x)


def styled_digits(x: torch.Tensor, labels: torch.Tensor, *, p: float = 0.2,
                  gen: torch.Generator | None = None, digits: str = GLYPH_DIGITS) -> torch.Tensor:
    """Replace a share `p` of the `digits` (each one that `glyphs.STYLES` knows other ways of writing:
    curled 2s, one-stroke 4s, lifted 5s, hooked 9s) with a drawing in one of those ways; the others
    are left as they are."""
    styled = torch.zeros_like(labels, dtype=torch.bool)
    for label in map(int, digits):
        if label not in STYLES:
            raise ValueError(f"no drawn style for the digit {label}: glyph digits are among {''.join(map(str, STYLES))}")
        styled |= labels == label
    chosen = styled & (uniform(labels.shape[0], gen, x.device, 0.0, 1.0) < p)
    if not chosen.any():
        return x
    out = x.clone()
    out[chosen] = draw_styled(labels[chosen], gen).to(x.dtype)
    return out


def specks(x: torch.Tensor, *, density: float = 0.01, gen: torch.Generator | None = None) -> torch.Tensor:
    """Salt: isolated bright pixels (dust, sensor noise), about `density` of all pixels."""
    hit = uniform(x.shape, gen, x.device) < density
    return torch.where(hit, torch.maximum(x, uniform(x.shape, gen, x.device, 0.4, 1.0)), x)


def blotches(x: torch.Tensor, *, count: int = 2, max_radius: float = 3.0,
             gen: torch.Generator | None = None) -> torch.Tensor:
    """Smudges: up to `count` soft grey blobs anywhere on each image (ink that rubbed off)."""
    b, _, h, w = x.shape
    centres = uniform((b, count, 2), gen, x.device) * torch.tensor([h - 1, w - 1], device=x.device, dtype=x.dtype)
    radius = uniform((b, count), gen, x.device, 0.5, max_radius) * (uniform((b, count), gen, x.device) < 0.7)
    level = uniform((b, 1, 1), gen, x.device, 0.3, 0.8)
    return torch.maximum(x, (blobs(b, h, w, centres, radius) * level)[:, None])


def broken_strokes(x: torch.Tensor, *, gaps: int = 2, radius: float = 1.2,
                   gen: torch.Generator | None = None) -> torch.Tensor:
    """Pen skips: erase `gaps` small discs centred on inked pixels, so strokes break."""
    b, _, h, w = x.shape
    weights = x.flatten(1).cpu() + 1e-6  # (B, H*W): gaps land on ink; sampled where the generator lives
    cpu_gen = gen if gen is not None and gen.device.type == "cpu" else None
    picks = torch.multinomial(weights, gaps, replacement=True, generator=cpu_gen).to(x.device)  # (B, gaps)
    centres = torch.stack([picks // w, picks % w], -1).to(x.dtype)
    holes = blobs(b, h, w, centres, torch.full((b, gaps), radius, device=x.device, dtype=x.dtype))
    return x * (1 - holes[:, None])


def uneven_brightness(x: torch.Tensor, *, depth: float = 0.6, gen: torch.Generator | None = None) -> torch.Tensor:
    """Uneven light or pen pressure: ink fades by up to `depth` along a random direction."""
    b, _, h, w = x.shape
    angle = uniform((b,), gen, x.device, 0, 2 * math.pi)
    amount = uniform((b,), gen, x.device, 0, depth)
    yy = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)[None, :, None]
    xx = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)[None, None, :]
    ramp = (torch.cos(angle)[:, None, None] * xx + torch.sin(angle)[:, None, None] * yy + 1.414) / 2.828  # 0..1
    return x * (1 - amount[:, None, None, None] * ramp[:, None])


def salt_and_pepper(x: torch.Tensor, *, amount: float = 0.3, gen: torch.Generator | None = None) -> torch.Tensor:
    """Impulse noise: up to `amount` of the pixels (a random share per image) set to black or white."""
    b = x.shape[0]
    share = uniform((b, 1, 1, 1), gen, x.device, 0, amount)
    u = uniform(x.shape, gen, x.device)
    return torch.where(u < share / 2, torch.zeros_like(x), torch.where(u > 1 - share / 2, torch.ones_like(x), x))


def levels(x: torch.Tensor, *, lift: float = 0.5, gen: torch.Generator | None = None) -> torch.Tensor:
    """Exposure and contrast: the background lifted by up to `lift` and the ink dimmed by up to a
    third, so the model does not rely on a pitch-black background."""
    b = x.shape[0]
    floor = uniform((b, 1, 1, 1), gen, x.device, 0, lift)
    top = uniform((b, 1, 1, 1), gen, x.device, 0.67, 1.0)
    return floor + x * (torch.maximum(top, floor + 0.2) - floor)


def noise_family(x: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Each image gets each of specks, blotches, broken strokes, uneven brightness, impulse noise
    and levels with probability 0.2 x strength (capped at 0.9); the rest are left alone."""
    p = min(0.2 * strength, 0.9)
    for fn in (specks, blotches, broken_strokes, uneven_brightness, salt_and_pepper, levels):
        pick = uniform((x.shape[0], 1, 1, 1), gen, x.device) < p
        x = torch.where(pick, fn(x, gen=gen), x)
    return x


def tilt(x: torch.Tensor, *, degrees: float = 45.0, gen: torch.Generator | None = None) -> torch.Tensor:
    """A page photographed askew: rotation by up to `degrees` either way, nothing else."""
    return random_affine(x, degrees=degrees, scale=(1.0, 1.0), shear=0.0, translate=0.0, gen=gen)


def lines_across(x: torch.Tensor, *, count: int = 3, gen: torch.Generator | None = None) -> torch.Tensor:
    """Strokes that are not the digit: 1 to `count` straight lines anywhere (a crossing-out, a
    neighbouring field's border, a scribble), each as bright as ink or fainter."""
    b, _, h, w = x.shape
    out = x
    n = (uniform((b,), gen, x.device) * count).long() + 1  # lines per image
    for k in range(count):
        mid = uniform((b, 2), gen, x.device) * torch.tensor([w - 1, h - 1], device=x.device, dtype=x.dtype)
        angle = uniform((b,), gen, x.device, 0, math.pi)
        half = uniform((b, 1), gen, x.device, 0.2, 0.5) * max(h, w) * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
        p0, p1 = mid - half, mid + half  # through a point of the image; what leaves it is clipped
        width = uniform((b,), gen, x.device, 0.3, 1.0)
        level = uniform((b, 1, 1), gen, x.device, 0.5, 1.0) * (k < n)[:, None, None]
        out = torch.maximum(out, (segment(h, w, p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1], width)[0] * level)[:, None])
    return out


def hollow(x: torch.Tensor, *, gen: torch.Generator | None = None) -> torch.Tensor:
    """Outline strokes (a bubble-letter pen, an edge-traced scan): the stroke's rim without its
    core, the morphological gradient of the ink."""
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    return (dilated - eroded).clamp(0, 1)


def inverted_band(x: torch.Tensor, *, gen: torch.Generator | None = None) -> torch.Tensor:
    """A scanner streak: a band 2-6 px wide across the image, rows or columns, in negative."""
    b, _, h, w = x.shape
    start = uniform((b,), gen, x.device, 0, w - 6).long()
    width = uniform((b,), gen, x.device, 2, 7).long()
    rows = uniform((b,), gen, x.device) < 0.5
    return torch.where(band_mask(b, h, w, start, width, rows)[:, None], 1 - x, x)


def extremes_family(x: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """The hard cases, each with probability 0.1 x strength (capped at 0.5): tilt, lines across,
    hollow strokes, an inverted band."""
    p = min(0.1 * strength, 0.5)
    for fn in (tilt, lines_across, hollow, inverted_band):
        pick = uniform((x.shape[0], 1, 1, 1), gen, x.device) < p
        x = torch.where(pick, fn(x, gen=gen), x)
    return x


def augment_batch(x: torch.Tensor, strength: float, gen: torch.Generator | None = None, *,
                  elastic: float = 0.0, labels: torch.Tensor | None = None, styles: float = 0.0,
                  noise: float = 0.0, extremes: float = 0.0, sevens: float = 0.0,
                  flag_length: float = 0.45, glyphs: float = 0.0, glyph_digits: str = GLYPH_DIGITS) -> torch.Tensor:
    """The training-time augmentation at a given strength (0 = off, 1 = the default amounts):
    writing styles MNIST lacks (with probability `styles` a flagged 1, its flag up to `flag_length`
    of the height, with `sevens` a crossed 7, with `glyphs` one of `glyph_digits` drawn by
    `glyphs.draw_styled`; they need `labels`), stroke thickness, a
    random affine warp with `elastic` pixels of elastic wobble, then the noise family at `noise`
    and the hard cases (`extremes_family`) at `extremes`."""
    if strength <= 0:
        return x
    if styles > 0 and labels is not None:
        x = flag_ones(x, labels, p=styles, longest=flag_length, gen=gen)
    if sevens > 0 and labels is not None:
        x = cross_sevens(x, labels, p=sevens, gen=gen)
    if glyphs > 0 and labels is not None:
        x = styled_digits(x, labels, p=glyphs, gen=gen, digits=glyph_digits)
    p = min(0.25 * strength, 0.4)
    x = stroke_thickness(x, p_thicker=p, p_thinner=p, gen=gen)
    x = random_affine(x, degrees=10 * strength, scale=(1 - 0.1 * strength, 1 + 0.1 * strength),
                      shear=10 * strength, translate=0.08 * strength, elastic=elastic * strength, gen=gen)
    x = noise_family(x, noise, gen) if noise > 0 else x
    return extremes_family(x, extremes, gen) if extremes > 0 else x


def preview(x: torch.Tensor, labels: torch.Tensor, *, strength: float = 1.0, seed: int = 0,
            elastic: float = 1.5, styles: float = 1.0, noise: float = 1.0) -> list[tuple[str, torch.Tensor]]:
    """Each augmentation applied on its own to the same images, then all together:
    (name, images) rows for `digitrec augment-preview`."""
    gen = torch.Generator().manual_seed(seed)
    s = strength
    rows = [
        ("original", x),
        ("affine", random_affine(x, degrees=10 * s, scale=(1 - 0.1 * s, 1 + 0.1 * s), shear=10 * s,
                                 translate=0.08 * s, gen=gen)),
        ("elastic", random_affine(x, degrees=0, scale=(1, 1), shear=0, translate=0, elastic=elastic * s, gen=gen)),
        ("thicker", stroke_thickness(x, p_thicker=1.0, p_thinner=0.0, gen=gen)),
        ("thinner", stroke_thickness(x, p_thicker=0.0, p_thinner=1.0, gen=gen)),
        ("flagged 1s", flag_ones(x, labels, p=1.0, gen=gen)),
        ("crossed 7s", cross_sevens(x, labels, p=1.0, gen=gen)),
        ("curled 2s, one-stroke 4s, hooked 9s", styled_digits(x, labels, p=1.0, gen=gen)),
        ("specks", specks(x, density=0.01 * s, gen=gen)),
        ("blotches", blotches(x, gen=gen)),
        ("broken", broken_strokes(x, gen=gen)),
        ("uneven", uneven_brightness(x, depth=0.6 * s, gen=gen)),
        ("salt & pepper", salt_and_pepper(x, amount=0.3 * s, gen=gen)),
        ("levels", levels(x, lift=0.5 * s, gen=gen)),
        ("tilt", tilt(x, gen=gen)),
        ("lines across", lines_across(x, gen=gen)),
        ("hollow", hollow(x, gen=gen)),
        ("inverted band", inverted_band(x, gen=gen)),
    ]
    rows += [(f"all #{k + 1}", augment_batch(x, s, gen, elastic=elastic, labels=labels, styles=styles, noise=noise))
             for k in range(3)]
    return rows


def preview_digits(images: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits `augment-preview` shows: the first n of uint8 `images` (N, 28, 28), with a few 1s
    among them so that the flag shows. Returns float images (n, 1, 28, 28) in [0, 1] and labels."""
    idx = torch.cat([torch.arange(n - n // 4), (labels == 1).nonzero().flatten()[: n // 4]])
    return to_float_images(images[idx]), labels[idx]


def preview_grid(rows: list[tuple[str, torch.Tensor]], *, scale: int = 3) -> Image.Image:
    """Draw `preview`'s rows as one greyscale picture: a row per augmentation, its name on the left,
    each 28x28 digit enlarged `scale` times (nearest neighbour, so the real pixels show)."""
    n = rows[0][1].shape[0]
    cell, label_w = 28 * scale, 90
    grid = Image.new("L", (label_w + n * cell, len(rows) * cell), 40)
    draw = ImageDraw.Draw(grid)
    for r, (name, imgs) in enumerate(rows):
        strip = (torch.cat(list(imgs[:, 0]), 1).clamp(0, 1).numpy() * 255).astype(np.uint8)  # (28, n * 28)
        grid.paste(Image.fromarray(strip).resize((n * cell, cell), Image.NEAREST), (label_w, r * cell))
        draw.text((6, r * cell + cell // 2 - 6), name, fill=230)
    return grid
