"""Any image -> its ink: how far each pixel departs from the paper under it, at a working resolution.

The first half of the MNIST recipe, shared by one digit (`preprocess`) and a line of them (`read`):
decode anything Pillow reads (`images.load_image`), shrink it to the resolution that `fit`s, and
measure ink as colour distance from the paper, with the paper's colour estimated locally so
shadows and uneven light cancel out, in either polarity and any ink colour (`ink_map`). When
nothing is found in a shrunk image, it is looked at again more finely, then zoomed in on its
strongest marks (`find_ink`). Printed things behind the writing (a check's security pattern, a
form's box) can be wiped from the ink first: `find_ink`'s `clean` (`printed.clean_document`,
`printed.drop_box_edges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, reduce
from typing import Callable, TypeVar

import cv2
import numpy as np
from PIL import Image

from .errors import DigitrecError
from .images import load_reduced, luma, rereadable, resize, to_rgb
from .labelling import maxima, mean3, pieces
from .morphology import closing, median3, opening, ring_max, ring_min
from .printed import PAST_PAGE, SIDES, past_the_page, run_from_edge
from .stats import otsu, percentile, percentiles

FINER = 4  # when nothing is found in a shrunk image, look again at this many times the resolution
ZOOMS = 3  # the strongest marks zoomed in on, one after another, while each zoom finds only doubtful ones
RANGE_END = 8  # the picture's range ends at its 8th darkest and lightest pixels (0.3% of a small one): `ink_map`
SPECKS = 0.001  # share of lone pixels (salt and pepper) above which the paper is measured past them
T = TypeVar("T")


class NoDigitFound(DigitrecError):
    """The image was read, but it holds no ink that could be a digit."""


class Doubtful(NoDigitFound):
    """What a look picked may be no writing at all (the edge of a shadow across a photo, a dot of
    ink, where a small digit's strokes faded as it was shrunk), and a closer look may find the
    writing: raised by a `pick` with what it picked, which `find_ink` returns when no closer look
    finds better. `at_edge`: doubtful because it reaches the picture's edge, which in a zoom is only
    the zoom's (no doubt there)."""

    def __init__(self, picked, at_edge: bool, message: str = "only doubtful marks found at this resolution"):
        super().__init__(message)
        self.picked, self.at_edge = picked, at_edge
        self.found: tuple[Ink, object] | None = None  # (the look's ink, picked): set by `_look`


@dataclass
class Ink:
    """The ink of an image at a working resolution, and the way back to the source's pixels."""

    ink: np.ndarray  # (h, w) float32 ink strength in [0, ~1], white on black
    polarity: str  # "dark-on-light" or "light-on-dark"
    scale: float  # working pixels per source pixel (over 1 for a small picture enlarged, `find_ink`'s least)
    source_size: tuple[int, int]  # (width, height) of the decoded source
    origin: tuple[int, int] = (0, 0)  # where the working image's corner is in the source (a zoom, a margin)

    def box_to_source(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box (x0, y0, x1, y1) in working pixels -> the source's pixels, covering it wholly."""
        (x0, y0, x1, y1), s, (W, H), (ox, oy) = box, self.scale, self.source_size, self.origin
        return (max(0, ox + int(x0 / s)), max(0, oy + int(y0 / s)), min(W, ox + int(np.ceil(x1 / s))),
                min(H, oy + int(np.ceil(y1 / s))))


@dataclass
class Decoded:
    """A decoded image (`decode`), maybe at a reduced scale, and the way back to its source's size."""

    image: Image.Image
    factor: int  # source pixels per pixel of `image`: 1, or 2, 4, 8 for a big JPEG
    source_size: tuple[int, int]  # the source's (width, height)
    # The same source decoded for the finer looks, which need more pixels than the first one: once,
    # on first need (None where `image` has all they need).
    again: Callable[[], Decoded] | None = None


def decode(source, fit: tuple[int, int]) -> Decoded:
    """Decode `source` (`images.load_image`) for `find_ink` with `fit`: a big JPEG at the least of its
    reduced scales that keeps the first look's resolution (`images.load_reduced`: libjpeg averages
    in its inverse DCT), so a 400x300 photo decodes at half its size and a phone photo at an eighth,
    for a fraction of the work. The finer looks, rarely needed, decode it again with twice the
    resolution they need (`Decoded.again`)."""
    def need(times: int) -> Callable[[int, int], tuple[int, int]]:
        def size(w: int, h: int) -> tuple[int, int]:
            s = min(1.0, times * min(fit[0] / w, fit[1] / h))
            return int(np.ceil(w * s)), int(np.ceil(h * s))
        return size

    source = rereadable(source)
    first = Decoded(*load_reduced(source, need(1)))
    if first.factor > 1:  # reduced: the finer looks want more of its pixels
        first.again = cache(lambda: Decoded(*load_reduced(source, need(2 * FINER))))
    return first


def find_ink(source, fit: tuple[int, int], pick: Callable[[np.ndarray], T],
             clean: Callable[[np.ndarray], np.ndarray] | None = None, margin: float = 0.0,
             wide_strokes: bool = False, window: float = 0.25, least: int = 0,
             past_page: bool = False) -> tuple[Ink, T]:
    """Decode `source` (or take it as `decode` gave it), measure its ink at the largest resolution
    that fits `fit` (width, height), and return it with what `pick(ink)` finds there (a digit's mask,
    a line's pieces). `clean`, if given, is applied to the ink first (`printed.clean_document` for
    documents). `margin` adds that share of the long side of paper all round first (`with_margin`):
    a digit cropped tight, touching the image's edges, then has paper around it as every photo does.
    `wide_strokes`, `window` and `past_page`: see `ink_map`. `least`: a picture less tall than this is enlarged
    to it (within `fit`'s width) before its ink is measured: in a small scan a pen's stroke is a
    pixel or two wide, as fine as the printed textures `clean` wipes, and its anti-aliased ends
    are lost to the threshold.

    Most images are read at that first, cheap look. When nothing is found in an image that was
    shrunk for it, the strokes may have been thinner than a working pixel (a 2-3 px ballpoint
    stroke on a 4000-px phone photo is a tenth of a pixel at 144 px): it looks again at FINER
    times the resolution, and then zooms in on the strongest marks of that finer look, where a
    small digit on a big page is no longer a vanishing share of the pixels.
    Raises ImageError for an unreadable input, NoDigitFound when no look finds anything.
    """
    decoded = source if isinstance(source, Decoded) else decode(source, fit)
    looks = (fit, pick, clean, {"wide_strokes": wide_strokes, "window": window, "past_page": past_page}, least)
    if decoded.again is not None:  # decoded for the first look alone: the finer ones decode it again
        try:
            return _find_in(decoded, margin, *looks, finer=False)
        except NoDigitFound:
            decoded = decoded.again()
    return _find_in(decoded, margin, *looks)


def _find_in(decoded: Decoded, margin: float, fit: tuple[int, int], pick: Callable[[np.ndarray], T], clean,
             inking: dict, least: int, finer: bool = True) -> tuple[Ink, T]:
    """`find_ink`'s looks at one decoded picture (`finer`: the finer looks too, else the first alone)."""
    img, k = decoded.image, decoded.factor
    if margin > 0:
        rgb, pad = with_margin(to_rgb(img), margin)
        picture = _Picture(rgb=rgb, paper=rgb[0, 0] if pad else None)  # the paper added is the paper
    else:
        picture, pad = _Picture(img), 0
    found, picked = _find(picture, fit, pick, clean, inking, least, finer)
    # Back from the decoded (and padded) picture's pixels to the source's.
    found.scale, found.source_size = found.scale / k, decoded.source_size
    found.origin = ((found.origin[0] - pad) * k, (found.origin[1] - pad) * k)
    return found, picked


class _Picture:
    """A decoded image, turned into float RGB at the resolution it is looked at. An 8-bit picture
    (most photos and scans) is shrunk before it is converted: Pillow's box filter on bytes, the same
    pixels to within rounding (1/255), for a third of the work of converting all of a photo's pixels
    first. The finer looks and zooms use the float picture (`exact`). `paper`: the paper's colour
    where it is known, not measured (the margin `find_ink` added)."""

    def __init__(self, img: Image.Image | None = None, rgb: np.ndarray | None = None, paper: np.ndarray | None = None):
        self.img, self._rgb, self.paper = img, rgb, paper
        self.size = img.size if img is not None else (rgb.shape[1], rgb.shape[0])  # (width, height)
        self.bytes_first = img is not None and img.mode in ("L", "RGB") and "transparency" not in img.info

    @property
    def rgb(self) -> np.ndarray:
        """The whole picture, (H, W, 3) float32 in [0, 1]."""
        if self._rgb is None:
            self._rgb = to_rgb(self.img)
        return self._rgb

    def at(self, scale: float) -> np.ndarray:
        """The picture resized by `scale` (box filter shrinking, bilinear enlarging), (h, w, 3) float32."""
        if scale == 1.0 or not self.bytes_first:
            return _resized(self.rgb, scale)
        filt = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        return to_rgb(self.img.resize(_scaled(self.size, scale), filt))

    def exact(self) -> _Picture:
        """The same picture, converted before it is shrunk: for the finer looks, whose strokes are
        thinner than a working pixel and so faint that 8-bit rounding is a real share of their ink."""
        return _Picture(rgb=self.rgb, paper=self.paper)


def with_margin(rgb: np.ndarray, margin: float) -> tuple[np.ndarray, int]:
    """`rgb` with `margin` of its long side added all round in the paper's colour, and the
    margin's width in pixels."""
    pad = int(round(margin * max(rgb.shape[:2])))
    if pad <= 0:
        return rgb, 0
    paper = np.median(paper_ring(rgb), axis=0)
    out = np.empty((rgb.shape[0] + 2 * pad, rgb.shape[1] + 2 * pad, 3), rgb.dtype)
    out[...] = paper
    out[pad:-pad, pad:-pad] = rgb
    return out, pad


def _find(picture: _Picture, fit: tuple[int, int], pick: Callable[[np.ndarray], T], clean,
          inking: dict, least: int = 0, finer: bool = True) -> tuple[Ink, T]:
    """`find_ink`'s looks: at the fitting resolution (enlarged to `least` px tall), then (`finer`)
    finer, then zoomed in on the strongest marks. `inking`: `ink_map`'s settings."""
    W, H = picture.size
    scale = min(1.0, fit[0] / W, fit[1] / H)
    if H * scale < least:
        scale = max(scale, min(least / H, fit[0] / W))
    doubts: list[tuple[Ink, T]] = []  # doubtful finds (`Doubtful`), returned if nothing better is found
    try:
        return _look(picture, scale, pick, clean, inking)
    except Doubtful as e:
        if not finer:
            raise  # `find_ink` decodes the picture again for the closer looks
        doubts.append(e.found)
    except NoDigitFound:
        if scale >= 1.0 or not finer:
            raise
    if scale < 1.0:
        try:
            return _closer(picture, scale, fit, pick, clean, inking, doubts)
        except NoDigitFound:
            if not doubts:
                raise
    return doubts[0]  # the first doubtful find, as it is: no closer look found better


def _closer(picture: _Picture, scale: float, fit: tuple[int, int], pick: Callable[[np.ndarray], T], clean,
            inking: dict, doubts: list) -> tuple[Ink, T]:
    """`_find`'s closer looks: FINER times the resolution, then zoomed in on the strongest marks, and
    on the next strongest while a zoom finds only doubtful marks (up to ZOOMS). Doubtful finds are
    added to `doubts`; raises NoDigitFound when no look finds better."""
    W, H = picture.size
    picture, scale = picture.exact(), min(1.0, scale * FINER)
    try:
        return _look(picture, scale, pick, clean, inking)
    except NoDigitFound as e:  # (not kept past this block: its traceback holds the pictures)
        if isinstance(e, Doubtful):
            doubts.append(e.found)
        work, tried = picture.at(scale), []
        zoom = _strongest_marks(work, scale, tried)
        if zoom is None:
            raise
    for n in range(1, ZOOMS + 1):
        x0, y0, x1, y1 = zoom
        crop, zoom_scale = _Picture(rgb=picture.rgb[y0:y1, x0:x1]), min(1.0, fit[0] / (x1 - x0), fit[1] / (y1 - y0))
        try:
            (found, picked), doubtful = _look(crop, zoom_scale, pick, clean, inking), False
        except Doubtful as e:  # a dot: the next strongest marks may be the writing
            (found, picked), doubtful = e.found, not e.at_edge
        found.origin, found.source_size = (x0, y0), (W, H)
        if not doubtful:
            return found, picked
        doubts.append((found, picked))
        if n == ZOOMS or (zoom := _strongest_marks(work, scale, tried)) is None:
            break
    raise NoDigitFound("no digit found: only doubtful marks")


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) `size` times `scale`, at least one pixel each."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    size = _scaled((rgb.shape[1], rgb.shape[0]), scale)
    return np.stack([resize(rgb[..., c], size) for c in range(3)], axis=2)


def _look(picture: _Picture, scale: float, pick: Callable[[np.ndarray], T], clean=None,
          inking: dict | None = None) -> tuple[Ink, T]:
    ink, polarity = ink_map(picture.at(scale), paper=picture.paper, **(inking or {}))
    ink = clean(ink) if clean else ink
    found = Ink(ink, polarity, scale, picture.size)
    try:
        return found, pick(ink)
    except Doubtful as e:
        e.found = (found, e.picked)
        raise


def _strongest_marks(work: np.ndarray, scale: float, tried: list | None = None) -> tuple[int, int, int, int] | None:
    """Where to zoom in, in the source's pixels: around the marks that depart most from the paper,
    with those in the same band of rows (a number's other digits), and room around them for the
    paper. Marks that touch the image's edge (a table, a page's edge, a shadow) are not writing.
    `tried`: the zooms (in `work`'s pixels) that found only doubtful marks (a dot), where nothing
    is looked for again; the box chosen is added to it."""
    h, w = work.shape[:2]
    ring = np.concatenate([work[0], work[-1], work[:, 0], work[:, -1]])
    dist = mean3(_colour_distance(work, np.median(ring, axis=0)))  # noise averaged out
    for x0, y0, x1, y1 in tried or ():
        dist[y0:y1, x0:x1] = 0
    labels, slices = pieces(dist > 0.5 * dist.max())
    inner = [i for i, (sy, sx) in enumerate(slices) if sy.start > 0 and sx.start > 0 and sy.stop < h and sx.stop < w]
    if not inner:
        return None
    peaks = maxima(dist, labels, len(slices))
    sy, sx = slices[max(inner, key=lambda i: peaks[i])]
    size = sy.stop - sy.start
    row = [slices[i] for i in inner if slices[i][0].start < sy.stop + size and slices[i][0].stop > sy.start - size]
    y0, y1 = min(r[0].start for r in row), max(r[0].stop for r in row)
    x0, x1 = min(r[1].start for r in row), max(r[1].stop for r in row)
    pad = 1.5 * max(y1 - y0, 4)  # a digit's height of paper all round, and more
    box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    if tried is not None:
        tried.append(tuple(int(round(v)) for v in box))
    return tuple(int(round(v / scale)) for v in box)


def _colour_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Euclidean distance (H, W) of each pixel's RGB from `colour`: np.linalg.norm over the
    channels, spelled out (a reduction over a last axis of 3 is 10x slower)."""
    d = rgb - colour
    return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])


def paper_ring(rgb: np.ndarray, lum: np.ndarray | None = None) -> np.ndarray:
    """The pixels (N, 3) that tell the paper's colour: the image's border, or, where a printed line
    runs along a side (a form's box or comb around a digit), the border just inside it."""
    lum = luma(rgb) if lum is None else lum
    h, w = lum.shape
    split = otsu(lum)
    t, b = _past_printed_line(lum, split), _past_printed_line(lum[::-1], split)
    left, right = _past_printed_line(lum.T, split), _past_printed_line(lum.T[::-1], split)
    if h - t - b < 4 or w - left - right < 4:
        t = b = left = right = 0
    inner = rgb[t:h - b, left:w - right]
    return np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]])


def _past_printed_line(lum: np.ndarray, split: float) -> int:
    """How many rows of `lum` (n, m) from its top a printed line along that edge takes, with a
    margin: 0 if there is none. `split` parts dark from light (Otsu's threshold).

    A printed line is a thin band (at most a tenth of the side) in the outer 15% (or within a tenth
    past another: a cell's wall past its neighbour's, across the gap between them), 80% dark (or
    light) along its length, with the other class (between the box's sides, in a tiny cell), or a
    row lighter (darker) along 70% of it, just inside: a box's side with the paper inside. (A
    digit's stroke is not so long; a light digit cropped tight to its ink leaves no such band, so
    its border still tells its paper.)"""
    n, m = lum.shape
    depth = min(n - 1, int(0.15 * n) + 3)  # the outer 15%, and 3 rows for a small picture's blur
    thin, cut = max(3, round(0.1 * n)), 0
    reach = min(n - 1, depth + thin)  # a second line just past one found (a cell's wall past its neighbour's)
    near = lum[:reach + 1]  # the rows a line may take, and the row just past it
    # A dark line on light paper, or a light one on dark: per polarity, the line's class, and whether
    # a pixel is lighter (darker) than the one above it, the paper just past a line.
    for light, in_line, past in ((False, near <= split, lambda d: near[d + 1] > near[d] + 0.1),
                                 (True, near >= split, lambda d: near[d + 1] < near[d] - 0.1)):
        share = (np.count_nonzero(in_line, axis=1) / m).tolist()  # the line's class, per row
        run, found = 0, 0
        for d in range(reach):
            if d >= depth and (not found or d >= found + thin):
                break
            run = run + 1 if share[d] >= 0.8 else 0
            if not 0 < run <= thin:
                continue
            if light and max(share[d + 1:d + 1 + thin]) >= 0.8:
                continue  # light again just past a dark line: the paper of a gap between two cells' walls
            # Paper just inside: little of the line's class, or a row lighter along most of it, or
            # little of it between a box's two sides (a third of a tiny cell's row).
            if share[d + 1] <= 0.3 or (share[d + 1] < 0.8 and (
                    past(d).mean() >= 0.7 or _between_sides(in_line[d + 1], thin) <= 0.3)):
                # Past the line's blurred inner edge: 2 rows, 1 in a small picture (under 38 px),
                # where 2 would reach into a digit close to its box.
                found = d + 1 + min(2, max(1, round(0.04 * n)))
                cut = max(cut, found)
    return cut


def _between_sides(line_class: np.ndarray, thin: int) -> float:
    """The share of a row's pixels in the line's class between a box's two sides: a row that starts
    and ends with a thin run of that class (the perpendicular sides, a large share of a tiny
    picture's row; each may start a pixel in, past paper beyond the box: `printed.run_from_edge`) is
    measured between them, where they leave at least half of it; any other row gives 1. So does a
    row under 16 px: a digit cropped that small can be ringed by its own stroke."""
    m = len(line_class)
    if m < 16 or line_class.all():
        return 1.0
    (s0, a), (s1, b) = run_from_edge(line_class), run_from_edge(line_class[::-1])
    start, stop = s0 + a, m - s1 - b
    if not (0 < a <= thin and 0 < b <= thin and start + m - stop <= m / 2):
        return 1.0
    return float(line_class[start:stop].mean())


def ink_map(rgb: np.ndarray, wide_strokes: bool = False, paper: np.ndarray | None = None,
            window: float = 0.25, past_page: bool = False) -> tuple[np.ndarray, str]:
    """Ink strength in [0, ~1] per pixel (H, W) and the polarity, for an RGB float image.

    Paper is what the border mostly looks like (inside a printed box's lines: `paper_ring`); which
    end of the picture's range it is nearer decides the polarity. The paper's colour
    under every pixel is then estimated with a morphological closing (opening for light ink):
    a window wider than any pen stroke wipes the strokes out but keeps what is larger than
    strokes, such as a shadow falling across the page: `window` x the short side, a quarter (wider
    than the strokes of a digit that fills the frame) unless the caller knows the writing is small
    in the picture. Ink is how far a pixel is from its own
    paper, relative to the light that paper gets, so shaded and lit strokes read the same.
    `wide_strokes` (for an image of one digit): strokes may be wider than that window, as a thick
    marker's digit cropped small; where the window loses their middles, it is widened. `paper`
    (RGB): the paper's colour where it is known (`find_ink`'s margin, whose even band a small
    picture's border could take for a printed line), else it is measured. `past_page`: what lies
    past the paper's edge along a side (`_paper_past_the_page`) is taken for paper.
    """
    h, w = rgb.shape[:2]
    lum = luma(rgb)
    paper = np.median(paper_ring(rgb, lum), axis=0) if paper is None else paper
    dist = _colour_distance(rgb, paper)
    if past_page:
        rgb, lum, dist = _paper_past_the_page(rgb, lum, dist, paper)
    if dist.max() < 0.06:
        raise NoDigitFound("no digit found: the image is blank (no ink stands out from the background)")
    # Which end of the picture's range the paper is nearer is the polarity. (Not which way the
    # minority of pixels departs from the median: a light digit cropped tight to its ink is most of
    # its picture. Not counting pixels either: a vignette, a page lit in the middle, has many pixels
    # lighter than its border.) The range ends a few pixels in, past a speck or two: a small digit
    # in a phone photo is a few dozen pixels of the working picture, under the 0.3% that ended it
    # before, and a page lit unevenly then put a lighter patch of paper at one end, the paper at the
    # other, and took the ink for paper (validation digits small in phone photos: 146 of 200 read with
    # 0.3%, 174 / 178 / 181 / 182 with the 20th / 12th / 8th / 4th pixel; every other set the same).
    q = min(0.3, 100 * RANGE_END / lum.size)
    lo, hi = percentiles(lum, (q, 100 - q))
    polarity = "dark-on-light" if luma(paper) >= (lo + hi) / 2 else "light-on-dark"
    k = max(5, round(window * min(h, w))) | 1
    ink = _ink_against_paper(rgb, polarity, k, paper)
    # A stroke wider than the window (a thick marker's digit cropped small) is taken for paper in its
    # middle, leaving a hole where the ink is darkest: then the window is twice as wide (half the
    # short side; the whole picture would take a shadow or a dark table beyond the paper for ink).
    # A shadow is taken for paper too, rightly, but it is much lighter than the ink's core.
    if wide_strokes and k < min(h, w):
        far = dist > 0.7 * float(dist.max())  # the colours furthest from the paper: the ink's core
        holes = far & (ink < 0.3 * percentile(ink[far], 90))
        if not holes.any() and _all_filled(far, ink, k):
            holes = far  # a black-and-white scan's marker: every inked pixel equally black, all filled
        if holes.sum() > 0.05 * far.sum():
            ink = _ink_against_paper(rgb, polarity, (2 * k) | 1, paper)
    return ink, polarity


def _paper_past_the_page(rgb: np.ndarray, lum: np.ndarray, dist: np.ndarray,
                         paper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The picture (and its luma and distance from the paper) with what lies past the paper's edge
    painted as paper: a table or a scanner's lid along a side of a photo of a note, solidly far from
    the paper up to a straight edge (`printed.past_the_page`). Left as it was, the closing that
    measures the paper took a band wider than its window for paper and its inner edge for a
    stroke (a 1), and a narrower one for ink (generated photos by the table, validation digits:
    0.85 read, against 0.99 of the same photos without it). The paint carries on the paper beside
    the band (OpenCV's inpainting), not one colour: a page lit unevenly would otherwise step at the
    band's edge (validation numbers by a page's edge: 330 of 400 read with one colour, 336 with
    this and without painting)."""
    if min(dist.shape) < 8:
        return rgb, lum, dist
    # Most pictures have paper all round: no side whose outer two lines depart from it along
    # PAST_PAGE of their length by a tenth of the most departing pixel, and no need to look further.
    low = 0.1 * float(dist.max())
    departs = [(side(dist)[:, :2] > low).any(axis=1).mean() >= PAST_PAGE for side in SIDES]
    if not any(departs):
        return rgb, lum, dist
    # The paper measured on the sides that do not depart: the band, a quarter of the border, pulls
    # the border's median towards itself, and on a sheet lit unevenly its lit part then stands as
    # far from that as the band.
    kept = [side(rgb)[:, 0] for side, d in zip(SIDES, departs) if not d]
    apart = _colour_distance(rgb, np.median(np.concatenate(kept), axis=0)) if kept else dist
    past = past_the_page(apart > otsu(apart), untouched=True)
    if past is None:
        return rgb, lum, dist
    rgb = rgb.copy()
    rgb[past] = _inpaint(rgb, past)[past]
    return rgb, luma(rgb), np.where(past, _colour_distance(rgb, paper), dist)


def _inpaint(rgb: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`rgb` (floats in [0, 1]) with the pixels `where` filled in from around them (Telea's method,
    3 px about each: OpenCV takes 8-bit colour)."""
    u8 = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    return cv2.inpaint(u8, where.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255


def _all_filled(far: np.ndarray, ink: np.ndarray, k: int) -> bool:
    """Whether the closing filled the ink's core wholly, away from the picture's edge (k // 2 in):
    no hole can be told from the rest where the core has no ink at all. A printed box's lines along
    the edge are filled there too, and a digit within them is not."""
    b = k // 2
    inner = far[b:-b, b:-b]
    return bool(inner.any()) and percentile(ink[b:-b, b:-b][inner], 90) == 0


def _despeckled(rgb: np.ndarray, polarity: str) -> np.ndarray:
    """The picture the paper is measured on: with its lone pixels gone (a 3x3 median) where more
    than SPECKS of them stand out of all their neighbours towards the paper's side. A scan's
    salt-and-pepper noise, a white pixel in every few hundred, would otherwise lift the closing's
    paper to white everywhere, and all the real paper would read as ink. Other pictures are
    measured as they are (a check's fine printed pattern is no noise, and the median would blur it)."""
    lum = luma(rgb)
    lone = lum > ring_max(lum) + 0.15 if polarity == "dark-on-light" else lum < ring_min(lum) - 0.15
    return median3(rgb) if lone.mean() > SPECKS else rgb


def _ink_against_paper(rgb: np.ndarray, polarity: str, k: int, paper: np.ndarray) -> np.ndarray:
    """Ink strength (H, W), float32: each pixel's departure from the paper under it, the paper being
    a grey closing (opening for light ink) of the picture (`_despeckled`, `_as_paper_lit`) with a
    k x k window. `paper`: the paper's colour (RGB)."""
    base = _despeckled(rgb, polarity)
    if polarity == "dark-on-light":
        field = closing(_as_paper_lit(base, paper), k)
        ink = (field - rgb) / np.maximum(field, 0.15)  # relative darkening, per channel
    else:
        field = opening(base, k)
        ink = rgb - field
    ink = np.clip(ink, 0, None)
    ink = np.maximum(np.maximum(ink[..., 0], ink[..., 1]), ink[..., 2])  # the channel where the ink stands out most
    return ink.astype(np.float32)


def _as_paper_lit(rgb: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """`rgb` as the paper would look under each pixel's light, at most: the paper's colour scaled by
    the least of the pixel's channels relative to it. Paper under any light is the paper's colour
    scaled (a pixel of it stays as it is), but a colour lighter than the paper in one channel, a
    form's light-blue box on grey paper in blue, would lift the closing's paper above the real
    paper all round it, in a cell narrower than the window everywhere, and the paper would read as
    ink. Channels the paper barely has (under 0.25) do not judge: their noise is most of them."""
    judge = paper >= 0.25
    if not judge.any():
        return rgb
    # (H, W, 1): the least ratio, channel by channel (a reduction over a last axis of 3 is slow).
    lit = reduce(np.minimum, [rgb[..., c:c + 1] / paper[c] for c in np.flatnonzero(judge)])
    return np.minimum(rgb, lit * paper).astype(np.float32, copy=False)  # float32 already, unless paper was not
