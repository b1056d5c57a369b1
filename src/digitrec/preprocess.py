"""Any image of handwriting -> the ink on it, and the digit among the marks (MNIST's recipe).

MNIST digits are white ink on black, scaled to fit a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in 28x28 so that their centre of mass is the centre. A user's photo is
none of that, so resizing it to 28x28 (the tutorial's way) reads about one digit in ten. Here:

1. decode anything Pillow reads and measure its "ink", the departure from the paper under each
   pixel, at a working resolution that is looked at again more finely when nothing is found
   (`ink.find_ink`);
2. keep the digit: take printed tint bands out, threshold, drop specks, ruled lines and edge
   shadows, keep broken strokes (`ink_components`, `digit_mask`);
3. crop, normalise stroke width and contrast, fit 20x20, centre by mass in 28x28
   (`framing.frame_like_mnist`).

`preprocess(source)` does all of it for one digit; `read` finds a line of digits through the same
`ink.find_ink`. An image with no ink raises NoDigitFound, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .framing import CANVAS, frame_like_mnist
from .images import load_image
from .ink import NoDigitFound, decode, drop_box_edges, find_ink
from .morphology import dilate_mask, distance_inside, horizontal_runs
from .stats import otsu, percentile

# Long side of a digit's working resolution: ample for a 20 px result, cheap to filter. Validation
# digits read alike from 96 to 192 (benchmarks/work_side.py); the real user digits hold down to 144
# (455 at 128, 452 at 96). The work falls with the pixels (a 400x300 photo: 44% fewer than at 192).
WORK_SIDE = 144
MARGIN = 0.12  # paper added all round a digit's image (`ink.with_margin`): a tight crop is framed as a photo is
BAND_ROWS = 4  # rows a printed tint band covers at least: thicker than a ruled line at 160 px a line
HYSTERESIS = 0.7  # faint ink down to this fraction of the threshold counts if it touches firm ink


@dataclass
class Preprocessed:
    """The 28x28 view the model gets, and what was found on the way."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like MNIST
    box: tuple[int, int, int, int]  # the digit's bounding box in the source image (x0, y0, x1, y1)
    polarity: str  # "dark-on-light" or "light-on-dark"
    source_size: tuple[int, int]  # (width, height) of the decoded source
    digits_found: int = 1  # digit-sized marks side by side: more than 1 is a number, for `read`


@dataclass
class Components:
    """The marks on a page, as connected pieces of ink (see `ink_components`)."""

    labels: np.ndarray  # (H, W) int: 0 = paper, i = piece i
    slices: list  # bounding slices of each piece
    mass: np.ndarray  # total ink of each piece
    keep: np.ndarray  # bool per piece: not a ruled line, table edge or shadow
    blob: np.ndarray  # bool per piece: solid rather than a pen stroke
    cut: np.ndarray | None  # ink removed with ruled lines, to give back where strokes cross them


def ink_components(ink: np.ndarray, one_digit: bool = False) -> Components:
    """Threshold the ink map and split it into pieces, setting aside ruled lines and shadows.
    `one_digit`: the ink is one digit's picture, where a line from edge to edge as thick as the pen
    is the digit's own bar, cropped tight (`_bars`)."""
    h, w = ink.shape
    peak = percentile(ink, 99.9)
    if peak < 0.08:
        raise NoDigitFound("no digit found: the marks are too faint")
    threshold = max(otsu(ink), 0.25 * peak)
    if w >= 8 and not one_digit:
        ink = _without_bands(ink, threshold, peak)
        threshold = max(otsu(ink), 0.25 * peak)
    # Hysteresis: faint ink (a pencil's light stroke) counts where it touches firm ink.
    weak_labels, n_weak = ndi.label(ink > HYSTERESIS * threshold, structure=np.ones((3, 3)))
    firm = np.zeros(n_weak + 1, bool)  # per weak piece: holds firm ink (a lookup, not np.isin's sort)
    firm[weak_labels[ink > threshold]] = True
    firm[0] = False
    mask = firm[weak_labels]
    # Ruled lines (and the edge of a page or a canvas) run from edge to edge, often through the
    # digit, so they are not separate components: find rows where (even faint) ink covers 90% of
    # the width, allowing a little tilt and a few gaps.
    cut = None
    if w >= 8:
        faint = ink > 0.5 * threshold
        band = dilate_mask(faint, np.ones((5, 1)))
        rows = _line_rows(faint, band.mean(axis=1) >= 0.9)
        if one_digit and rows.any():  # (most photos have no line: then no pen to measure)
            rows &= ~_bars(faint, mask, rows)
        lines = _line_ink(mask, rows)
        if lines.any() and (mask & ~lines).sum() > 0.3 * mask.sum():
            # A row of boxes as wide as the picture (a form's cells, a comb) has its top and bottom
            # taken for ruled lines: its walls, then pieces of their own, must go with them.
            whole, _ = ndi.label(mask, structure=np.ones((3, 3)))
            mask &= ~_box_lines(whole, ndi.find_objects(whole))
            cut = mask & dilate_mask(lines, np.ones((3, 1)))
            mask &= ~cut
            # Where a stroke overlaps a line, its ink is darker than the line's: give it back below.
            cut &= ink > 1.5 * float(np.median(ink[lines]))
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    slices = ndi.find_objects(labels)
    box = _box_lines(labels, slices)
    if box.any():
        mask &= ~box
        labels, n = ndi.label(mask, structure=np.ones((3, 3)))
        slices = ndi.find_objects(labels)
    if n == 0:
        raise NoDigitFound("no digit found")
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n + 1)[1:]  # ndi.sum_labels' own sums
    keep, blob = np.ones(n, bool), np.zeros(n, bool)
    for i, sl in enumerate(slices):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        # Half the thickest stroke of a large piece: pen strokes are thin for their length, while a
        # shadow's edge or a dark corner of the photo is a solid blob. (Measured in the piece's own
        # box: whatever is next to a piece is paper, so its distances are those of the whole mask,
        # for a fraction of the work.)
        blob[i] = max(bh, bw) > 0.2 * min(h, w) and 2 * float(distance_inside(labels[sl] == i + 1).max()) > 0.45 * max(bh, bw)
        # Ruled lines run across the page and are thin; a shadow or a table edge hugs two borders.
        if (bw > 0.7 * w and bh < 0.08 * h) or (bh > 0.7 * h and bw < 0.04 * w and bh == h):
            keep[i] = False
        edges = (sl[0].start == 0) + (sl[0].stop == h) + (sl[1].start == 0) + (sl[1].stop == w)
        if edges >= 2 and bh * bw > 0.5 * h * w and (labels[sl] == i + 1).mean() > 0.6:
            keep[i] = False
    if one_digit:
        keep[_cell_walls(slices, mask)] = False
    return Components(labels, slices, mass, keep, blob, cut)


def _cell_walls(slices: list, mask: np.ndarray) -> list[int]:
    """Of the pieces (their `slices`), the walls of a digit's cell whose top and bottom have gone
    (cut off, or wiped as a box's sides), and of its neighbours printed apart from it: thin upright
    lines, each spanning the ink's height, with some on either side of the largest other piece (the
    digit). (A thin 1 spans it too, but nothing lies beyond it.)"""
    rows = np.flatnonzero(mask.any(axis=1))
    top, bottom, w = rows[0], rows[-1] + 1, mask.shape[1]
    tall = [i for i, (sy, sx) in enumerate(slices)
            if sx.stop - sx.start < 0.04 * w and sy.start <= top + 1 and sy.stop >= bottom - 1]
    rest = [sl for i, sl in enumerate(slices) if i not in tall]
    if len(tall) < 2 or not rest:
        return []
    _, sx = max(rest, key=lambda sl: (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start))
    left = [i for i in tall if slices[i][1].stop <= sx.start]
    right = [i for i in tall if slices[i][1].start >= sx.stop]
    return left + right if left and right else []


def _box_lines(labels: np.ndarray, slices: list) -> np.ndarray:
    """The straight sides of a printed box (a form's cell) around the writing, as a mask, from the
    pieces of ink (`labels` and their `slices`).

    A piece of ink is a box when at least three of its sides are straight lines: rows (columns)
    near its top and bottom (left and right) edges that its ink covers over 75% of its width
    (height), around a hollow; no digit has three. The digit inside often touches the box, so only those lines go,
    not the piece. So do the box's inner walls (a form's row of cells, one digit to a cell): thin
    straight lines across 90% of it (`_walls`), which would read as 1s between the digits."""
    out = np.zeros(labels.shape, bool)
    for i, (sy, sx) in enumerate(slices):
        bh, bw = sy.stop - sy.start, sx.stop - sx.start
        if min(bh, bw) < 8:
            continue
        piece = labels[sy, sx] == i + 1
        rows, cols = piece.mean(axis=1) >= 0.75, piece.mean(axis=0) >= 0.75
        band_h, band_w = max(2, bh // 8), max(2, bw // 8)
        sides = [rows[:band_h], rows[-band_h:], cols[:band_w], cols[-band_w:]]
        # A box is hollow (what it holds fills little of it); a solid bar is not a box.
        if sum(side.any() for side in sides) < 3 or piece[band_h:-band_h, band_w:-band_w].mean() > 0.5:
            if sides[1].any():
                out[sy, sx] |= _comb(piece, rows, band_h, _writing_height(labels, sy, sx))
            continue
        lines = np.zeros_like(piece)
        lines[:band_h][rows[:band_h]] = True
        lines[bh - band_h:][rows[-band_h:]] = True
        lines[:, :band_w][:, cols[:band_w]] = True
        lines[:, bw - band_w:][:, cols[-band_w:]] = True
        lines[:, _walls(dilate_mask(piece, np.ones((1, 3))).mean(axis=0), band_w)] = True
        lines[_walls(dilate_mask(piece, np.ones((3, 1))).mean(axis=1), band_h), :] = True
        out[sy, sx] |= lines & piece
    return out


def _comb(piece: np.ndarray, rows: np.ndarray, band: int, writing: int) -> np.ndarray:
    """A form's comb field in a piece of ink (`rows`: its rows covered 75%; `band`: the bottom band
    to look in for a baseline), as a mask: the baseline and the ticks standing on it. Ticks are posts
    as thin as the line (2 px more for blur), of one height (within a fifth), at least two with
    paper just above them (a 0's sides, standing on its bottom, bend away), shorter than three
    quarters of the `writing` above the line (1s standing on an underline are writing). Digits
    often touch a tick or the line: they stay, and a post as tall as a tick or taller (a tick whose
    top a digit touches) loses a tick's height. Empty when there is none."""
    out = np.zeros_like(piece)
    line = np.flatnonzero(rows[len(rows) - band:]) + len(rows) - band
    top = int(line[0])
    if top < 3:
        return out
    above = piece[:top][::-1]  # upward from the line
    run = np.where(above.all(axis=0), top, above.argmin(axis=0))  # (w,) ink standing on the line, per column
    posts, _ = ndi.label(run >= 3)
    thin = [sl for sl in ndi.find_objects(posts) if sl[0].stop - sl[0].start <= len(line) + 2]  # 1-D slices
    heights = [int(run[sl].min()) for sl in thin]
    if len(thin) < 2:
        return out
    tick = float(np.median(heights))
    # Paper just above a post, a little either side: a tick's top, not a bend in a stroke.
    free = sum(abs(h - tick) <= 0.2 * tick and not piece[max(0, top - h - 3):top - h, max(0, sl.start - 2):sl.stop + 2].any()
               for (sl,), h in zip(thin, heights))
    if free < 2 or tick < 2 * len(line) or tick > 0.75 * writing:
        return out
    out[line] = piece[line]
    for (sl,), h in zip(thin, heights):
        if h >= 0.8 * tick:
            out[max(0, top - int(round(1.1 * tick))):top, sl] = True
    return out & piece


def _writing_height(labels: np.ndarray, sy: slice, sx: slice) -> int:
    """Rows from the top of any ink in the columns `sx` down to the bottom of the piece at `sy`."""
    inked = np.flatnonzero(labels[:sy.stop, sx].any(axis=1))
    return int(sy.stop - inked[0]) if inked.size else 0


def _walls(cover: np.ndarray, band: int) -> np.ndarray:
    """Of a box's columns (rows), with the share of each that its ink `cover`s (allowing a pixel of
    lean), those of its inner walls: runs covered 90% or more, at most `band` wide (a printed line,
    not a solid bar), inside the `band` at either side. None unless one of them lies wholly inside:
    a side thicker than the band is no wall of its own (a marker's 1 cropped tight would go whole)."""
    wall = cover >= 0.9
    runs, _ = ndi.label(wall)
    inner = False
    for (sl,) in ndi.find_objects(runs):
        if sl.stop - sl.start > band:
            wall[sl] = False
        else:
            inner |= sl.start >= band and sl.stop <= len(wall) - band
    wall[:band] = wall[len(wall) - band:] = False
    return wall if inner else np.zeros_like(wall)


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


def _without_bands(ink: np.ndarray, threshold: float, peak: float) -> np.ndarray:
    """The ink with printed tint bands taken out: runs of BAND_ROWS or more rows whose median ink
    (the band's own level, as strokes cross a band on a fraction of its columns) is over half the
    threshold yet well under the pen's, each row less its median. A ruled line is thinner, a
    line as dark as the pen is cut as a line, and a stroke across a band stays whole and firm,
    where cutting the band's rows cut every stroke in two."""
    faint = ink > 0.5 * threshold
    rows = _line_rows(faint, dilate_mask(faint, np.ones((5, 1))).mean(axis=1) >= 0.9)
    level = np.median(ink, axis=1)
    groups, _ = ndi.label(rows & (level > 0.5 * threshold) & (level < 0.6 * peak))
    out = ink
    for (sl,) in ndi.find_objects(groups):
        if sl.stop - sl.start >= BAND_ROWS:
            rows = slice(max(0, sl.start - 1), sl.stop + 1)  # and the soft edge either side
            out = out.copy() if out is ink else out
            out[rows] = np.maximum(ink[rows] - level[rows, None], 0)
    return out


def _line_ink(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The firm ink (`mask`) that is a ruled line in its `rows`: all of it where a firm piece spans
    70% of the width there (a line darker than the threshold, and the strokes that cross it, given
    back later where they are darker still), else only long horizontal runs of it (a faint line
    whose darker stretches passed the threshold). Rows covered by faint ink without a firm line (a
    printed tint band, a shadow's edge, a check's texture under the writing) hold no line to cut:
    cutting them cut every stroke across them, and the digits fell apart into tops and bottoms."""
    out = np.zeros_like(mask)
    w = mask.shape[1]
    runs = None
    groups, _ = ndi.label(rows)
    for sl in ndi.find_objects(groups):
        pieces, k = ndi.label(mask[sl], structure=np.ones((3, 3)))
        if k and max(s[1].stop - s[1].start for s in ndi.find_objects(pieces)) >= 0.7 * w:
            out[sl] = mask[sl]
            continue
        if runs is None:  # a tenth of the width: a line's firm stretches; a stroke crosses the rows far shorter
            runs = dilate_mask(horizontal_runs(mask, max(5, round(0.1 * w))), np.ones((3, 1)))
        out[sl] = mask[sl] & runs[sl]
    return out


def _bars(faint: np.ndarray, mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of the ruled-line `rows`, those that are a digit's own bar: as thick as its pen. A 7's or a
    2's bar, cropped tight, runs edge to edge as a ruled line does; a ruled line is thinner than the
    pen that wrote over it. (Not for documents: a check's printed baseline can be as thick as a
    fine ballpoint, and the bank checks read 179 -> 176 with it.)"""
    out = np.zeros_like(rows)
    rest = mask & ~rows[:, None]
    if not rest.any():
        return out
    pen = 2 * percentile(distance_inside(rest)[rest], 90)  # the width of the thick strokes
    groups, _ = ndi.label(rows)
    for sl in ndi.find_objects(groups):
        thick = float(np.median(faint[sl].sum(axis=0)))  # per column: a tilted line is thin in each
        if thick >= 0.75 * pen:
            out[sl] = True
    return out


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of the digit's strokes: threshold, then keep the components that make the digit."""
    return _digit_and_count(ink)[0]


def _digit_and_count(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """The digit's mask, and how many digit-sized marks stand side by side in its row (1 for a digit alone)."""
    h, w = ink.shape
    comp = ink_components(ink, one_digit=True)
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


def preprocess(source, *, work_side: int = WORK_SIDE) -> Preprocessed:
    """Any image of one handwritten digit -> MNIST-style 28x28 (see module docstring). `work_side`:
    the long side of the working resolution the ink is first looked for at (WORK_SIDE).

    Raises ImageError if the input cannot be read, NoDigitFound if it holds no digit.
    """
    fit = (work_side, work_side)
    img = decode(source, fit)  # decoded once, for both looks
    try:
        found, (mask, digits) = find_ink(img, fit, _digit_and_count, clean=drop_box_edges, wide_strokes=True)
        tight = _touches_edge(mask)
    except NoDigitFound:
        # A digit that fills its picture (a thick marker's 1 cut from a form) can leave too little
        # paper at the border to measure the paper by: the same second look.
        tight = True
    if tight:
        # Cropped tight (a form's field, a postal-code box): the paper's colour and the digit's
        # outline are both misjudged at the edge. Look again with paper added all round.
        found, (mask, digits) = find_ink(img, fit, _digit_and_count, clean=drop_box_edges, margin=MARGIN,
                                         wide_strokes=True)
    image, box = frame_like_mnist(found.ink, mask)
    x0, y0, x1, y1 = box = found.box_to_source(box)
    if x1 <= x0 or y1 <= y0:  # all of it in the paper added round a tight crop: the rim of a lone speck
        raise NoDigitFound("no digit found: only a speck at the image's edge")
    return Preprocessed(image=image, box=box, polarity=found.polarity, source_size=found.source_size, digits_found=digits)


def _touches_edge(mask: np.ndarray) -> bool:
    """Whether the digit reaches (within 3% of the image) an edge of it."""
    b = max(2, round(0.03 * max(mask.shape)))
    return bool(mask[:b].any() or mask[-b:].any() or mask[:, :b].any() or mask[:, -b:].any())


def naive_preprocess(source) -> np.ndarray:
    """The tutorial's pipeline, for comparison: grey, resize to 28x28, nothing else. (28, 28) float32."""
    grey = load_image(source).convert("L")
    return np.asarray(grey.resize((CANVAS, CANVAS)), dtype=np.float32) / 255.0
