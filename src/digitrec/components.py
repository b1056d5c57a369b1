"""The marks on a page as pieces of ink: threshold the ink map and set aside what is not writing.

`ink_components` is shared by one digit (`preprocess`) and a line of them (`writing`): printed tint
bands are taken out of the ink; a light pen's digit beside a bold one is kept; ruled lines, a form's
boxes and cells, a comb's ticks and a photo's shadowed edges are set aside, and the strokes they
crossed given back where their ink is darker than the line's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from .ink import NoDigitFound
from .labelling import label, pieces, runs
from .morphology import dilate_mask, distance_inside, horizontal_runs
from .stats import otsu, percentile

BAND_ROWS = 4  # rows a printed tint band covers at least: thicker than a ruled line at 160 px a line
WALL_ALIGN = 2  # px within which a row of printed cells' walls start and end alike (`_standing_walls`)
# A band's own level is under this fraction of the pen's (the ink's 99.9th percentile). Behind one
# digit, lower: a thick marker's bar cropped tight runs edge to edge at 0.58 of it (a 7 read as 1
# with its bar taken for a band), where tint bands behind user-style digits lie at 0.22-0.40.
BAND_UNDER, BAND_UNDER_ONE = 0.6, 0.45
FAINT = 0.5  # a lighter pen's digit counts down to this fraction of the threshold (`_faint_digits`)
HYSTERESIS = 0.7  # faint ink down to this fraction of the threshold counts if it touches firm ink
FAINT_LINE = 0.5  # a printed box's lines are looked for down to this fraction of the threshold when not found above it


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
    # Ruled lines (and the edge of a page or a canvas) run from edge to edge, often through the
    # digit, so they are not separate components: rows where (even faint) ink covers 90% of the width.
    rows = _ruled_rows(ink, threshold) if w >= 8 else None
    if rows is not None:
        ceiling = (BAND_UNDER_ONE if one_digit else BAND_UNDER) * peak
        flat = _without_bands(ink, rows, threshold, ceiling)
        if flat is not ink:  # unless it is a box's top or bottom, as light as a band
            flat = _without_bands(ink, rows & ~_box_rows(ink > threshold), threshold, ceiling)
        if flat is not ink:  # a band taken out: the threshold and the lines are the flattened ink's
            ink, threshold = flat, max(otsu(flat), 0.25 * peak)
            rows = _ruled_rows(ink, threshold)
    # Hysteresis: faint ink (a pencil's light stroke) counts where it touches firm ink.
    weak_labels, n_weak = label(ink > HYSTERESIS * threshold)
    firm = np.zeros(n_weak + 1, bool)  # per weak piece: holds firm ink (a lookup, not np.isin's sort)
    firm[weak_labels[ink > threshold]] = True
    firm[0] = False
    mask = firm[weak_labels]
    if not one_digit:
        mask |= _faint_digits(ink, threshold, mask)
    cut = None
    if rows is not None:
        if one_digit and rows.any():  # (most photos have no line: then no pen to measure)
            rows &= ~_bars(ink > 0.5 * threshold, mask, rows)
        lines = _line_ink(mask, rows)
        if lines.any() and (mask & ~lines).sum() > 0.3 * mask.sum():
            # A row of boxes as wide as the picture (a form's cells, a comb) has its top and bottom
            # taken for ruled lines: its walls, then pieces of their own, must go with them.
            mask &= ~_box_lines(*pieces(mask))
            cut = mask & dilate_mask(lines, np.ones((3, 1)))
            mask &= ~cut
            # Where a stroke overlaps a line, its ink is darker than the line's: give it back below.
            cut &= ink > 1.5 * float(np.median(ink[lines]))
    labels, slices = pieces(mask)
    box = _box_lines(labels, slices)
    if not box.any() and not one_digit:
        # A box printed light (a form's dropout colour) lies near the threshold, broken into pieces
        # that are no box each: its lines are looked for in the faint ink, where it is whole.
        box = _box_lines(*pieces(ink > FAINT_LINE * threshold)) & mask
    if box.any():
        mask &= ~box
        labels, slices = pieces(mask)
    n = len(slices)
    if n == 0:
        raise NoDigitFound("no digit found")
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n + 1)[1:]  # ndimage.sum_labels' own sums
    keep, blob = np.ones(n, bool), np.zeros(n, bool)
    for i, sl in enumerate(slices):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        # Half the thickest stroke of a large piece: pen strokes are thin for their length, while a
        # shadow's edge or a dark corner of the photo is a solid blob. (Measured in the piece's own
        # box: whatever is next to a piece is paper, so its distances are those of the whole mask,
        # for a fraction of the work.)
        # (No pixel is further inside than half the box's short side, rounded up: a long thin piece
        # needs no measuring.)
        blob[i] = (max(bh, bw) > 0.2 * min(h, w) and 2 * ((min(bh, bw) + 1) // 2) > 0.45 * max(bh, bw)
                   and 2 * float(distance_inside(labels[sl] == i + 1).max()) > 0.45 * max(bh, bw))
        # Ruled lines run across the page and are thin; a shadow or a table edge hugs two borders.
        if (bw > 0.7 * w and bh < 0.08 * h) or (bh > 0.7 * h and bw < 0.04 * w and bh == h):
            keep[i] = False
        edges = (sl[0].start == 0) + (sl[0].stop == h) + (sl[1].start == 0) + (sl[1].stop == w)
        if edges >= 2 and bh * bw > 0.5 * h * w and (labels[sl] == i + 1).mean() > 0.6:
            keep[i] = False
    keep[_cell_walls(slices, mask) if one_digit else _standing_walls(labels, slices)] = False
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


def _standing_walls(labels: np.ndarray, slices: list) -> list[int]:
    """Of the pieces (`labels`, `slices`), the walls of a row of printed cells whose top and bottom
    were not found with them (printed fainter than the threshold, or cut as ruled lines), which
    would read as 1s between the digits: two or more straight upright lines, each filling half its
    box or more and ten times as tall as wide, spanning the same rows to within WALL_ALIGN px (printed, not
    written), taller than whatever lies between them, with something between two of them. A
    pen's 1s are not all of these at once: they lean, and no two start and end on the same pixel."""
    upright = [i for i, (sy, sx) in enumerate(slices)
               if 10 * (sx.stop - sx.start) <= sy.stop - sy.start and (labels[sy, sx] == i + 1).mean() >= 0.5]
    if len(upright) < 2:
        return []
    top = np.median([slices[i][0].start for i in upright])
    bottom = np.median([slices[i][0].stop for i in upright])
    walls = [i for i in upright if abs(slices[i][0].start - top) <= WALL_ALIGN and abs(slices[i][0].stop - bottom) <= WALL_ALIGN]
    if len(walls) < 2:
        return []
    x0, x1 = min(slices[i][1].start for i in walls), max(slices[i][1].stop for i in walls)
    inside = [sl for i, sl in enumerate(slices) if i not in walls and sl[1].start >= x0 and sl[1].stop <= x1]
    if not inside or max(sl[0].stop - sl[0].start for sl in inside) >= bottom - top - WALL_ALIGN:
        return []
    return walls


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
    thin = [sl for sl in runs(run >= 3) if sl.stop - sl.start <= len(line) + 2]  # the posts' columns
    heights = [int(run[sl].min()) for sl in thin]
    if len(thin) < 2:
        return out
    tick = float(np.median(heights))
    # Paper just above a post, a little either side: a tick's top, not a bend in a stroke.
    free = sum(abs(h - tick) <= 0.2 * tick and not piece[max(0, top - h - 3):top - h, max(0, sl.start - 2):sl.stop + 2].any()
               for sl, h in zip(thin, heights))
    if free < 2 or tick < 2 * len(line) or tick > 0.75 * writing:
        return out
    out[line] = piece[line]
    for sl, h in zip(thin, heights):
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
    inner = False
    for sl in runs(wall):
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
    w = faint.shape[1]
    for sl in runs(covered):
        spans = [s[1].stop - s[1].start for s in pieces(faint[sl])[1]] or [0]
        if max(spans) >= 0.7 * w:
            out[sl] = True
    return out


def _faint_digits(ink: np.ndarray, threshold: float, mask: np.ndarray) -> np.ndarray:
    """Pieces of ink fainter than the threshold but as tall as the firm writing: a digit in a
    lighter pen (grey ballpoint beside a black marker, a stroke pressed lightly), which a threshold
    set between paper and the bold pen misses whole. Each is kept where its ink passes half the
    threshold; a mark shorter than the writing, a texture wider than three of its heights, or one
    spreading over more pixels than the largest firm piece is not a digit. Nor is one that does not
    stand out from the paper around it as a pen's stroke does (its ink 2.5 times the ring around it):
    a printed texture's residue is as strong as the ground it lies on."""
    firm, firm_slices = pieces(mask)
    if not firm_slices:
        return np.zeros_like(mask)
    sizes = np.bincount(firm.ravel())[1:]
    tall = max(sl[0].stop - sl[0].start for sl in firm_slices)
    weak, weak_slices = pieces((ink > FAINT * threshold) & ~dilate_mask(mask, iterations=2))
    out = np.zeros_like(mask)
    for i, sl in enumerate(weak_slices):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if bh < 0.6 * tall or bw > 3 * bh:
            continue
        near = tuple(slice(max(0, a.start - 5), a.stop + 5) for a in sl)  # the piece and 5 px of paper
        piece = weak[near] == i + 1
        ring = dilate_mask(piece, iterations=4) & ~dilate_mask(piece) & ~mask[near]
        level = float(np.median(ink[near][piece]))
        if piece.sum() <= sizes.max() and level >= 0.6 * threshold and ring.any() \
                and level >= 2.5 * percentile(ink[near][ring], 75):
            out[near] |= piece
    return out


def _ruled_rows(ink: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean per row: a ruled line runs there. Faint ink (half the threshold) covers 90% of the
    width, allowing a little tilt and a few gaps, with one piece spanning 70% of it (`_line_rows`)."""
    faint = ink > 0.5 * threshold
    return _line_rows(faint, dilate_mask(faint, np.ones((5, 1))).mean(axis=1) >= 0.9)


def _without_bands(ink: np.ndarray, rows: np.ndarray, threshold: float, ceiling: float) -> np.ndarray:
    """The ink with printed tint bands taken out (`ink` itself where there is none): runs of BAND_ROWS
    or more of the ruled-line `rows` whose median ink (the band's own level, as strokes cross a band
    on a fraction of its columns) is over half the threshold yet under `ceiling`, each row less
    its median. A ruled line is thinner, a line as dark as the pen is cut as a line, and a stroke
    across a band stays whole and firm, where cutting the band's rows cut every stroke in two."""
    if not rows.any():  # (most pictures: and a median of every row is a good share of their time)
        return ink
    near = dilate_mask(rows[:, None], np.ones((3, 1)))[:, 0]  # the rows a band may take, and one either side
    level = np.zeros(len(ink), ink.dtype)
    level[near] = np.median(ink[near], axis=1)
    out = ink
    for sl in runs(rows & (level > 0.5 * threshold) & (level < ceiling)):
        if sl.stop - sl.start >= BAND_ROWS:
            span = slice(max(0, sl.start - 1), sl.stop + 1)  # and the soft edge either side
            out = out.copy() if out is ink else out
            out[span] = np.maximum(ink[span] - level[span, None], 0)
    return out


def _box_rows(mask: np.ndarray) -> np.ndarray:
    """Boolean per row: the top or bottom of a printed box (`_box_lines`) runs there. Printed as
    light as a tint band and as thick, a box's top and bottom were flattened as bands, and its
    walls, left standing alone, read as 1s between the digits of a form's cells."""
    return _box_lines(*pieces(mask)).mean(axis=1) >= 0.5


def _line_ink(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The firm ink (`mask`) that is a ruled line in its `rows`: all of it where a firm piece spans
    70% of the width there (a line darker than the threshold, and the strokes that cross it, given
    back later where they are darker still), else only long horizontal runs of it (a faint line
    whose darker stretches passed the threshold). Rows covered by faint ink without a firm line (a
    printed tint band, a shadow's edge, a check's texture under the writing) hold no line to cut:
    cutting them cut every stroke across them, and the digits fell apart into tops and bottoms."""
    out = np.zeros_like(mask)
    w = mask.shape[1]
    long = None
    for sl in runs(rows):
        if max((s[1].stop - s[1].start for s in pieces(mask[sl])[1]), default=0) >= 0.7 * w:
            out[sl] = mask[sl]
            continue
        if long is None:  # a tenth of the width: a line's firm stretches; a stroke crosses the rows far shorter
            long = dilate_mask(horizontal_runs(mask, max(5, round(0.1 * w))), np.ones((3, 1)))
        out[sl] = mask[sl] & long[sl]
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
    for sl in runs(rows):
        thick = float(np.median(faint[sl].sum(axis=0)))  # per column: a tilted line is thin in each
        if thick >= 0.75 * pen:
            out[sl] = True
    return out
