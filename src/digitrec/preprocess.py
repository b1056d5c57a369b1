"""Any image of handwriting -> the ink on it, and the digit among the marks (MNIST's recipe).

MNIST digits are white ink on black, scaled to fit a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in 28x28 so that their centre of mass is the centre. A user's photo is
none of that, so resizing it to 28x28 (the tutorial's way) reads about one digit in ten. Here:

1. decode anything Pillow reads (`images.load_image`, `images.to_rgb`);
2. measure "ink" as colour distance from the paper, with the paper's colour estimated locally so
   shadows and uneven light cancel out; either polarity, any ink colour (`ink_map`), at a working
   resolution that is looked at again more finely when nothing is found (`find_ink`);
3. keep the digit: threshold, drop specks, ruled lines and edge shadows, keep broken strokes
   (`ink_components`, `digit_mask`);
4. crop, normalise stroke width and contrast, fit 20x20, centre by mass in 28x28
   (`framing.frame_like_mnist`).

`preprocess(source)` does all of it for one digit; `read` finds a line of digits through the same
`find_ink`. An image with no ink raises NoDigitFound, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from .errors import DigitrecError
from .framing import CANVAS, frame_like_mnist
from .images import load_image, luma, resize, to_rgb
from .morphology import closing, dilate_mask, distance_inside, opening

WORK_SIDE = 192  # long side of a digit's working resolution: ample for a 20 px result, cheap to filter
MARGIN = 0.12  # paper added all round a digit's image (`with_margin`): a tight crop is framed as a photo is
FINER = 4  # when nothing is found in a shrunk image, look again at this many times the resolution
HYSTERESIS = 0.7  # faint ink down to this fraction of the threshold counts if it touches firm ink
T = TypeVar("T")


class NoDigitFound(DigitrecError):
    """The image was read, but it holds no ink that could be a digit."""


@dataclass
class Ink:
    """The ink of an image at a working resolution, and the way back to the source's pixels."""

    ink: np.ndarray  # (h, w) float32 ink strength in [0, ~1], white on black
    polarity: str  # "dark-on-light" or "light-on-dark"
    scale: float  # working pixels per source pixel (at most 1)
    source_size: tuple[int, int]  # (width, height) of the decoded source
    origin: tuple[int, int] = (0, 0)  # where the working image's corner is in the source (a zoom, a margin)

    def box_to_source(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box (x0, y0, x1, y1) in working pixels -> the source's pixels, covering it wholly."""
        (x0, y0, x1, y1), s, (W, H), (ox, oy) = box, self.scale, self.source_size, self.origin
        return (max(0, ox + int(x0 / s)), max(0, oy + int(y0 / s)), min(W, ox + int(np.ceil(x1 / s))),
                min(H, oy + int(np.ceil(y1 / s))))


@dataclass
class Preprocessed:
    """The 28x28 view the model gets, and what was found on the way."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like MNIST
    box: tuple[int, int, int, int]  # the digit's bounding box in the source image (x0, y0, x1, y1)
    polarity: str  # "dark-on-light" or "light-on-dark"
    source_size: tuple[int, int]  # (width, height) of the decoded source
    digits_found: int = 1  # digit-sized marks side by side: more than 1 is a number, for `read`


def find_ink(source, fit: tuple[int, int], pick: Callable[[np.ndarray], T],
             clean: Callable[[np.ndarray], np.ndarray] | None = None, margin: float = 0.0,
             wide_strokes: bool = False) -> tuple[Ink, T]:
    """Decode `source`, measure its ink at the largest resolution that fits `fit` (width, height),
    and return it with what `pick(ink)` finds there (a digit's mask, a line's pieces). `clean`, if
    given, is applied to the ink first (`drop_fine_texture` for documents). `margin` adds that share
    of the long side of paper all round first (`with_margin`): a digit cropped tight, touching the
    image's edges, then has paper around it as every photo does. `wide_strokes`: see `ink_map`.

    Most images are read at that first, cheap look. When nothing is found in an image that was
    shrunk for it, the strokes may have been thinner than a working pixel (a 2-3 px ballpoint
    stroke on a 4000-px phone photo is a tenth of a pixel at 192 px): it looks again at FINER
    times the resolution, and then zooms in on the strongest marks of that finer look, where a
    small digit on a big page is no longer a vanishing share of the pixels.
    Raises ImageError for an unreadable input, NoDigitFound when no look finds anything.
    """
    img = load_image(source)
    size = img.size
    if margin > 0:
        rgb, pad = with_margin(to_rgb(img), margin)
        picture = _Picture(rgb=rgb)
    else:
        picture, pad = _Picture(img), 0
    found, picked = _find(picture, fit, pick, clean, wide_strokes)
    found.origin, found.source_size = (found.origin[0] - pad, found.origin[1] - pad), size
    return found, picked


class _Picture:
    """A decoded image, turned into float RGB at the resolution it is looked at. An 8-bit picture
    (most photos and scans) is shrunk before it is converted: Pillow's box filter on bytes, the same
    pixels to within rounding (1/255), for a third of the work of converting all of a photo's pixels
    first. The finer looks and zooms use the float picture (`exact`)."""

    def __init__(self, img: Image.Image | None = None, rgb: np.ndarray | None = None):
        self.img, self._rgb = img, rgb
        self.size = img.size if img is not None else (rgb.shape[1], rgb.shape[0])  # (width, height)
        self.bytes_first = img is not None and img.mode in ("L", "RGB") and "transparency" not in img.info

    @property
    def rgb(self) -> np.ndarray:
        """The whole picture, (H, W, 3) float32 in [0, 1]."""
        if self._rgb is None:
            self._rgb = to_rgb(self.img)
        return self._rgb

    def at(self, scale: float) -> np.ndarray:
        """The picture shrunk by `scale` (at most 1), (h, w, 3) float32."""
        if scale >= 1.0 or not self.bytes_first:
            return _shrink(self.rgb, scale)
        return to_rgb(self.img.resize(_scaled(self.size, scale), Image.Resampling.BOX))

    def exact(self) -> _Picture:
        """The same picture, converted before it is shrunk: for the finer looks, whose strokes are
        thinner than a working pixel and so faint that 8-bit rounding is a real share of their ink."""
        return _Picture(rgb=self.rgb)


def with_margin(rgb: np.ndarray, margin: float) -> tuple[np.ndarray, int]:
    """`rgb` with `margin` of its long side added all round in the paper's colour, and the
    margin's width in pixels."""
    pad = int(round(margin * max(rgb.shape[:2])))
    if pad <= 0:
        return rgb, 0
    # The paper: the border's typical colour, unless the border is much darker than most of the
    # image (a form's cell, whose border is the printed box): then the lighter half's.
    lum = luma(rgb)
    mid = float(np.median(lum))
    paper = np.median(np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]), axis=0)
    if luma(paper) < mid - 0.15:
        paper = np.median(rgb[lum >= mid], axis=0)
    out = np.empty((rgb.shape[0] + 2 * pad, rgb.shape[1] + 2 * pad, 3), rgb.dtype)
    out[...] = paper
    out[pad:-pad, pad:-pad] = rgb
    return out, pad


def _find(picture: _Picture, fit: tuple[int, int], pick: Callable[[np.ndarray], T], clean,
          wide: bool) -> tuple[Ink, T]:
    """`find_ink`'s looks: at the fitting resolution, finer, then zoomed in on the strongest marks."""
    W, H = picture.size
    scale = min(1.0, fit[0] / W, fit[1] / H)
    try:
        return _look(picture, scale, pick, clean, wide)
    except NoDigitFound:
        if scale >= 1.0:
            raise
    picture, scale = picture.exact(), min(1.0, scale * FINER)
    try:
        return _look(picture, scale, pick, clean, wide)
    except NoDigitFound:
        zoom = _strongest_marks(picture.at(scale), scale)
        if zoom is None:
            raise
    x0, y0, x1, y1 = zoom
    found, picked = _look(_Picture(rgb=picture.rgb[y0:y1, x0:x1]), min(1.0, fit[0] / (x1 - x0), fit[1] / (y1 - y0)), pick, clean, wide)
    found.origin, found.source_size = (x0, y0), (W, H)
    return found, picked


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) `size` times `scale`, at least one pixel each."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return rgb
    size = _scaled((rgb.shape[1], rgb.shape[0]), scale)
    return np.stack([resize(rgb[..., c], size) for c in range(3)], axis=2)


def _look(picture: _Picture, scale: float, pick: Callable[[np.ndarray], T], clean=None,
          wide: bool = False) -> tuple[Ink, T]:
    ink, polarity = ink_map(picture.at(scale), wide_strokes=wide)
    ink = clean(ink) if clean else ink
    return Ink(ink, polarity, scale, picture.size), pick(ink)


def _strongest_marks(work: np.ndarray, scale: float) -> tuple[int, int, int, int] | None:
    """Where to zoom in, in the source's pixels: around the marks that depart most from the paper,
    with those in the same band of rows (a number's other digits), and room around them for the
    paper. Marks that touch the image's edge (a table, a page's edge, a shadow) are not writing."""
    h, w = work.shape[:2]
    ring = np.concatenate([work[0], work[-1], work[:, 0], work[:, -1]])
    dist = ndi.uniform_filter(_colour_distance(work, np.median(ring, axis=0)), 3)  # noise averaged out
    labels, n = ndi.label(dist > 0.5 * dist.max(), structure=np.ones((3, 3)))
    slices = ndi.find_objects(labels)
    inner = [i for i, (sy, sx) in enumerate(slices) if sy.start > 0 and sx.start > 0 and sy.stop < h and sx.stop < w]
    if not inner:
        return None
    peaks = ndi.maximum(dist, labels, np.arange(1, n + 1))
    sy, sx = slices[max(inner, key=lambda i: peaks[i])]
    size = sy.stop - sy.start
    row = [slices[i] for i in inner if slices[i][0].start < sy.stop + size and slices[i][0].stop > sy.start - size]
    y0, y1 = min(r[0].start for r in row), max(r[0].stop for r in row)
    x0, x1 = min(r[1].start for r in row), max(r[1].stop for r in row)
    pad = 1.5 * max(y1 - y0, 4)  # a digit's height of paper all round, and more
    box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    return tuple(int(round(v / scale)) for v in box)


# ---------------------------------------------------------------------------------------------
# Ink


OTSU_BINS = 128


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative `values` over 128 bins from 0 to their maximum."""
    edges, hist = _histogram(values, OTSU_BINS)
    w = np.cumsum(hist).astype(np.float64)
    m = np.cumsum(hist * (edges[:-1] + edges[1:]) / 2)
    w0, w1 = w[:-1], w[-1] - w[:-1]
    between = np.where((w0 > 0) & (w1 > 0), (m[:-1] * w[-1] - m[-1] * w0) ** 2 / np.maximum(w0 * w1, 1e-12), 0)
    return float(edges[1:-1][np.argmax(between)])


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram(values, bins, range=(0, max + 1e-6)) for non-negative values, the same counts
    at half the cost: its bin search (scale, then the one-ulp fix at the edges) without its checks
    and blocks, which cost more than the counting on a working image's 30,000 pixels."""
    v = values.ravel()
    top = float(v.max()) + 1e-6
    edges = np.linspace(0.0, top, bins + 1, dtype=np.result_type(v.dtype, np.float32))  # as numpy's: float32 for float32
    idx = (v / top * bins).astype(np.intp)
    idx[idx == bins] -= 1
    idx[v < edges[idx]] -= 1
    idx[(v >= edges[idx + 1]) & (idx != bins - 1)] += 1
    return edges, np.bincount(idx, minlength=bins)


def _colour_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Euclidean distance (H, W) of each pixel's RGB from `colour`: np.linalg.norm over the
    channels, spelled out (a reduction over a last axis of 3 is 10x slower)."""
    d = rgb - colour
    return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])


def ink_map(rgb: np.ndarray, wide_strokes: bool = False) -> tuple[np.ndarray, str]:
    """Ink strength in [0, ~1] per pixel (H, W) and the polarity, for an RGB float image.

    Paper is what the border mostly looks like; that decides the polarity. The paper's colour
    under every pixel is then estimated with a morphological closing (opening for light ink):
    a window wider than any pen stroke wipes the strokes out but keeps what is larger than
    strokes, such as a shadow falling across the page. Ink is how far a pixel is from its own
    paper, relative to the light that paper gets, so shaded and lit strokes read the same.
    `wide_strokes` (for an image of one digit): strokes may be wider than that window, as a thick
    marker's digit cropped small; where the window loses their middles, it is widened.
    """
    h, w = rgb.shape[:2]
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    paper = np.median(ring, axis=0)
    dist = _colour_distance(rgb, paper)
    if dist.max() < 0.06:
        raise NoDigitFound("no digit found: the image is blank (no ink stands out from the background)")
    # Ink is the minority that departs furthest from the typical pixel; which way it departs is the
    # polarity. (Counting pixels instead would be fooled by a vignette: a page lit in the middle
    # has many pixels lighter than its border.)
    lum = luma(rgb)
    inner = lum
    if luma(paper) < np.median(lum) - 0.15:
        # The border is much darker than most of the image: a printed box around a small digit, or
        # a table around the page. The box's lines would pass for the paper there: judge the inside.
        bh, bw = round(0.15 * h), round(0.15 * w)
        inner = lum[bh:h - bh, bw:w - bw]
    lo, mid, hi = np.percentile(inner, [0.3, 50, 99.7])
    polarity = "dark-on-light" if mid - lo >= hi - mid else "light-on-dark"
    # A quarter of the short side is wider than the strokes of a digit that fills the frame.
    k = max(5, round(0.25 * min(h, w))) | 1
    ink = _ink_against_paper(rgb, polarity, k)
    # A stroke wider than the window (a thick marker's digit cropped small) is taken for paper in its
    # middle, leaving a hole where the ink is darkest: then the window is twice as wide (half the
    # short side; the whole picture would take a shadow or a dark table beyond the paper for ink).
    # A shadow is taken for paper too, rightly, but it is much lighter than the ink's core.
    if wide_strokes and k < min(h, w):
        far = dist > 0.7 * float(dist.max())  # the colours furthest from the paper: the ink's core
        holes = far & (ink < 0.3 * float(np.percentile(ink[far], 90)))
        if holes.sum() > 0.05 * far.sum():
            ink = _ink_against_paper(rgb, polarity, (2 * k) | 1)
    return ink, polarity


def _ink_against_paper(rgb: np.ndarray, polarity: str, k: int) -> np.ndarray:
    """Ink strength (H, W), float32: each pixel's departure from the paper under it, the paper being
    a grey closing (opening for light ink) of the picture with a k x k window."""
    if polarity == "dark-on-light":
        field = closing(rgb, k)
        ink = (field - rgb) / np.maximum(field, 0.15)  # relative darkening, per channel
    else:
        field = opening(rgb, k)
        ink = rgb - field
    ink = np.clip(ink, 0, None)
    ink = np.maximum(np.maximum(ink[..., 0], ink[..., 1]), ink[..., 2])  # the channel where the ink stands out most
    return ink.astype(np.float32)


def drop_fine_texture(ink: np.ndarray) -> np.ndarray:
    """The ink without lines finer than the pen: a check's printed security pattern, paper grain.

    A grey opening with an s x s square wipes out every line narrower than s px and keeps strokes
    that are wider; s grows (2, then 3) while the pen survives it. A pattern is fainter than the
    pen: when what an opening would wipe out is as strong as what it keeps, it is the pen itself
    (a fine ballpoint, a pixel-wide drawing), and the ink is kept as the smaller opening left it."""
    for size in (2, 3):
        if min(ink.shape) < 4 * size or ink.max() <= 0:
            break
        opened = opening(ink, size)
        firm = ink > _otsu(ink)
        wiped = firm & (opened < 0.5 * ink)
        kept = firm & ~wiped
        if not kept.any():
            break
        if wiped.sum() > 0.1 * firm.sum() and np.median(ink[wiped]) > 0.75 * np.median(ink[kept]):
            break
        ink = opened
    return ink


def drop_box_sides(ink: np.ndarray) -> np.ndarray:
    """The ink without the printed sides of a field's box at the image's left and right edges.

    A field cut from a form or a check keeps the box's vertical sides; written digits touch them,
    so they are not pieces of their own, and they read as a 1. A column near a side edge (its
    outer eighth) that ink covers over 95% of the height, allowing a lean of a pixel, is
    such a side: it is wiped, with a pixel either side. (Printed rules are often fainter than the
    pen, so faint ink counts, as for ruled lines in `ink_components`.)"""
    h, w = ink.shape
    if min(h, w) < 8 or ink.max() <= 0:
        return ink
    faint = ink > 0.5 * _otsu(ink)
    cover = dilate_mask(faint, np.ones((1, 3))).mean(axis=0)  # (w,)
    side = max(2, w // 8)
    out = ink.copy()
    for cols in (np.arange(side), np.arange(w - side, w)):
        hit = cols[cover[cols] >= 0.95]
        if hit.size:
            out[:, max(0, hit.min() - 1):hit.max() + 2] = 0
    return out


def drop_box_edges(ink: np.ndarray) -> np.ndarray:
    """`drop_box_sides` across and down: a digit's cell cut from a form keeps all four sides of its
    box (on generated boxed digits, from validation digits: 0.950 -> 0.963 read)."""
    return drop_box_sides(drop_box_sides(ink).T).T


def clean_document(ink: np.ndarray) -> np.ndarray:
    """A document's ink without what was printed on it: fine patterns, a box's sides (for `find_ink`'s `clean`)."""
    return drop_box_sides(drop_fine_texture(ink))


# ---------------------------------------------------------------------------------------------
# The digit among the marks


@dataclass
class Components:
    """The marks on a page, as connected pieces of ink (see `ink_components`)."""

    labels: np.ndarray  # (H, W) int: 0 = paper, i = piece i
    slices: list  # bounding slices of each piece
    mass: np.ndarray  # total ink of each piece
    keep: np.ndarray  # bool per piece: not a ruled line, table edge or shadow
    blob: np.ndarray  # bool per piece: solid rather than a pen stroke
    cut: np.ndarray | None  # ink removed with ruled lines, to give back where strokes cross them


def ink_components(ink: np.ndarray) -> Components:
    """Threshold the ink map and split it into pieces, setting aside ruled lines and shadows."""
    h, w = ink.shape
    peak = float(np.percentile(ink, 99.9))
    if peak < 0.08:
        raise NoDigitFound("no digit found: the marks are too faint")
    threshold = max(_otsu(ink), 0.25 * peak)
    # Hysteresis: faint ink (a pencil's light stroke) counts where it touches firm ink.
    weak_labels, _ = ndi.label(ink > HYSTERESIS * threshold, structure=np.ones((3, 3)))
    firm = np.unique(weak_labels[ink > threshold])
    mask = np.isin(weak_labels, firm[firm > 0])
    # Ruled lines (and the edge of a page or a canvas) run from edge to edge, often through the
    # digit, so they are not separate components: find rows where (even faint) ink covers 90% of
    # the width, allowing a little tilt and a few gaps.
    cut = None
    if w >= 8:
        faint = ink > 0.5 * threshold
        band = dilate_mask(faint, np.ones((5, 1)))
        rows = _line_rows(faint, band.mean(axis=1) >= 0.9)
        lines = mask & rows[:, None]
        if lines.any() and (mask & ~lines).sum() > 0.3 * mask.sum():
            cut = mask & dilate_mask(lines, np.ones((3, 1)))
            mask &= ~cut
            # Where a stroke overlaps a line, its ink is darker than the line's: give it back below.
            cut &= ink > 1.5 * float(np.median(ink[lines]))
    mask &= ~_box_lines(mask)
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise NoDigitFound("no digit found")
    mass = ndi.sum_labels(ink, labels, np.arange(1, n + 1))
    inside = distance_inside(mask)
    slices = ndi.find_objects(labels)
    keep, blob = np.ones(n, bool), np.zeros(n, bool)
    for i, sl in enumerate(slices):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        # Half the thickest stroke of a large piece: pen strokes are thin for their length, while a
        # shadow's edge or a dark corner of the photo is a solid blob.
        blob[i] = max(bh, bw) > 0.2 * min(h, w) and 2 * float(inside[sl][labels[sl] == i + 1].max()) > 0.45 * max(bh, bw)
        # Ruled lines run across the page and are thin; a shadow or a table edge hugs two borders.
        if (bw > 0.7 * w and bh < 0.08 * h) or (bh > 0.7 * h and bw < 0.04 * w and bh == h):
            keep[i] = False
        edges = (sl[0].start == 0) + (sl[0].stop == h) + (sl[1].start == 0) + (sl[1].stop == w)
        if edges >= 2 and bh * bw > 0.5 * h * w and (labels[sl] == i + 1).mean() > 0.6:
            keep[i] = False
    return Components(labels, slices, mass, keep, blob, cut)


def _box_lines(mask: np.ndarray) -> np.ndarray:
    """The straight sides of a printed box (a form's cell) around the writing, as a mask.

    A piece of ink is a box when at least three of its sides are straight lines: rows (columns)
    near its top and bottom (left and right) edges that its ink covers over 75% of its width
    (height), around a hollow; no digit has three. The digit inside often touches the box, so only those lines go,
    not the piece."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    for i, (sy, sx) in enumerate(ndi.find_objects(labels)):
        bh, bw = sy.stop - sy.start, sx.stop - sx.start
        if min(bh, bw) < 8:
            continue
        piece = labels[sy, sx] == i + 1
        rows, cols = piece.mean(axis=1) >= 0.75, piece.mean(axis=0) >= 0.75
        band_h, band_w = max(2, bh // 8), max(2, bw // 8)
        sides = [rows[:band_h], rows[-band_h:], cols[:band_w], cols[-band_w:]]
        # A box is hollow (what it holds fills little of it); a solid bar is not a box.
        if sum(side.any() for side in sides) < 3 or piece[band_h:-band_h, band_w:-band_w].mean() > 0.5:
            continue
        lines = np.zeros_like(piece)
        lines[:band_h][rows[:band_h]] = True
        lines[bh - band_h:][rows[-band_h:]] = True
        lines[:, :band_w][:, cols[:band_w]] = True
        lines[:, bw - band_w:][:, cols[-band_w:]] = True
        out[sy, sx] |= lines & piece
    return out


def _line_rows(faint: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Of the rows `covered` edge to edge by faint ink, those where a ruled line runs: each group of
    such rows must hold one connected piece of ink spanning 70% of the width. A printed texture (a
    check's security pattern) covers rows too, but with short waves, and cutting it would cut the
    digits written over it."""
    out = np.zeros_like(covered)
    groups, n = ndi.label(covered)
    w = faint.shape[1]
    for sl in ndi.find_objects(groups):
        pieces, k = ndi.label(faint[sl], structure=np.ones((3, 3)))
        spans = [s[1].stop - s[1].start for s in ndi.find_objects(pieces)] if k else [0]
        if max(spans) >= 0.7 * w:
            out[sl] = True
    return out


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of the digit's strokes: threshold, then keep the components that make the digit."""
    return _digit_and_count(ink)[0]


def _digit_and_count(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """The digit's mask, and how many digit-sized marks stand side by side in its row (1 for a digit alone)."""
    h, w = ink.shape
    comp = ink_components(ink)
    labels, slices, mass, keep, blob, cut = comp.labels, comp.slices, comp.mass, comp.keep.copy(), comp.blob, comp.cut
    n = len(slices)
    if not keep.any():
        raise NoDigitFound("no digit found: only lines or shadows")
    # Prefer strokes to blobs, unless the blob is all there is (a thick, blurred digit is a blob too).
    strokes = keep & ~blob
    if strokes.any() and mass[strokes].max() >= 0.25 * mass[keep].max():
        keep = strokes
    main = int(np.argmax(np.where(keep, mass, -1)))
    if mass[main] < 1e-3 * h * w:
        raise NoDigitFound("no digit found: only specks")
    # Grow the digit from its largest piece: pieces of a broken stroke (or of a stroke cut by a
    # ruled line) sit close to what is already chosen; specks are too small to count.
    chosen = np.zeros(n, bool)
    chosen[main] = True
    box = [slices[main][0].start, slices[main][0].stop, slices[main][1].start, slices[main][1].stop]
    grew = True
    while grew:
        grew = False
        size = max(box[1] - box[0], box[3] - box[2])
        for i, sl in enumerate(slices):
            if chosen[i] or not keep[i]:
                continue
            gap = max(sl[0].start - box[1], box[0] - sl[0].stop, sl[1].start - box[3], box[2] - sl[1].stop, 0)
            if (mass[i] >= 0.03 * mass[main] and gap <= 0.25 * size) or (mass[i] >= 0.3 * mass[main] and gap <= 0.6 * size):
                chosen[i] = grew = True
                box = [min(box[0], sl[0].start), max(box[1], sl[0].stop), min(box[2], sl[1].start), max(box[3], sl[1].stop)]
    digit = np.concatenate([[False], chosen])[labels]
    if cut is not None and cut.any():
        digit |= cut & dilate_mask(digit, iterations=2)
    return digit, _digits_in_row(slices, mass, keep, main)


def _digits_in_row(slices: list, mass: np.ndarray, keep: np.ndarray, main: int) -> int:
    """How many digits stand in the chosen digit's row: pen strokes about its height (half of it,
    at least), sharing most of its rows, with a quarter of its ink; pieces that share columns are
    one digit (a broken stroke, a 5's bar), and a piece much wider than tall is touching digits.
    A user who gave a number to `predict` is told so."""
    sy = slices[main][0]
    height = sy.stop - sy.start
    spans = []
    for i, (ry, rx) in enumerate(slices):
        overlap = min(ry.stop, sy.stop) - max(ry.start, sy.start)
        if keep[i] and mass[i] >= 0.25 * mass[main] and ry.stop - ry.start >= 0.5 * height and overlap >= 0.5 * height:
            spans.append((rx.start, rx.stop))
    groups: list[list[int]] = []
    for a, b in sorted(spans):
        if groups and a < groups[-1][1] - 0.25 * (b - a):  # shares columns with the digit before
            groups[-1][1] = max(groups[-1][1], b)
        else:
            groups.append([a, b])
    # Touching digits are one piece, wider than any digit is tall: about 0.8 of a height per digit.
    count = sum(max(2, round((b - a) / (0.8 * height))) if b - a > 1.6 * height else 1 for a, b in groups)
    return max(count, 1)


def preprocess(source) -> Preprocessed:
    """Any image of one handwritten digit -> MNIST-style 28x28 (see module docstring).

    Raises ImageError if the input cannot be read, NoDigitFound if it holds no digit.
    """
    img = load_image(source)  # decoded once, for both looks
    try:
        found, (mask, digits) = find_ink(img, (WORK_SIDE, WORK_SIDE), _digit_and_count, clean=drop_box_edges,
                                         wide_strokes=True)
        tight = _touches_edge(mask)
    except NoDigitFound:
        # A digit that fills its picture (a thick marker's 1 cut from a form) can leave too little
        # paper at the border to measure the paper by: the same second look.
        tight = True
    if tight:
        # Cropped tight (a form's field, a postal-code box): the paper's colour and the digit's
        # outline are both misjudged at the edge. Look again with paper added all round.
        found, (mask, digits) = find_ink(img, (WORK_SIDE, WORK_SIDE), _digit_and_count, clean=drop_box_edges,
                                         margin=MARGIN, wide_strokes=True)
    image, box = frame_like_mnist(found.ink, mask)
    return Preprocessed(image=image, box=found.box_to_source(box), polarity=found.polarity, source_size=found.source_size,
                        digits_found=digits)


def _touches_edge(mask: np.ndarray) -> bool:
    """Whether the digit reaches (within 3% of the image) an edge of it."""
    b = max(2, round(0.03 * max(mask.shape)))
    return bool(mask[:b].any() or mask[-b:].any() or mask[:, :b].any() or mask[:, -b:].any())


def naive_preprocess(source) -> np.ndarray:
    """The tutorial's pipeline, for comparison: grey, resize to 28x28, nothing else. (28, 28) float32."""
    grey = load_image(source).convert("L")
    return np.asarray(grey.resize((CANVAS, CANVAS)), dtype=np.float32) / 255.0
