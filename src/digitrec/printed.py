"""What was printed on a document, or lies past its edge, wiped from its ink: the table beyond a
crop's page edge (`drop_past_the_page`), a check's fine security pattern and paper grain
(`drop_fine_texture`), a field box's sides at the image's edges (`drop_box_sides`), a closed box or
a cell's walls around one digit (`drop_box_edges`).

`ink.find_ink` applies one of these to the ink map before the writing is picked from it (its
`clean`): `clean_document` for a number's line, `drop_box_edges` for one digit's cell. Each works
on the ink map alone (H, W) float32, white on black, and returns it with the printed lines set to 0.
"""

from __future__ import annotations

import numpy as np

from .labelling import pieces
from .morphology import dilate_mask, opening
from .stats import otsu

PAST_PAGE = 0.95  # firm ink over this share of a line along a side: past the paper (`drop_past_the_page`)
PAST_PAGE_LINES = 4  # ... in a band this many lines thick or more
PAST_PAGE_PEN = 1  # ... and as thick as the pen's strokes across it, or more (chosen on validation numbers: docs/history.md)


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
        firm = ink > otsu(ink)
        wiped = firm & (opened < 0.5 * ink)
        kept = firm & ~wiped
        if not kept.any():
            break
        if wiped.sum() > 0.1 * firm.sum() and np.median(ink[wiped]) > 0.75 * np.median(ink[kept]):
            break
        ink = opened
    return ink


def drop_box_sides(ink: np.ndarray, limit: float | None = None) -> np.ndarray:
    """The ink without the printed sides of a field's box at the image's left and right edges.

    A field cut from a form or a check keeps the box's vertical sides; written digits touch them,
    so they are not pieces of their own, and they read as a 1. A column near a side edge (its
    outer eighth) that ink covers over 95% of the height, allowing a lean of a pixel, is
    such a side: it is wiped, with a pixel either side. (Printed rules are often fainter than the
    pen, so faint ink counts, as for ruled lines in `ink_components`: above `limit`, by default
    half of Otsu's threshold.)"""
    h, w = ink.shape
    if min(h, w) < 8 or ink.max() <= 0:
        return ink
    faint = ink > (0.5 * otsu(ink) if limit is None else limit)
    cover = dilate_mask(faint, np.ones((1, 3))).mean(axis=0)  # (w,)
    side = max(2, w // 8)
    out = ink  # (most pictures have no box: the ink as it came, not a copy, in its own memory order)
    for cols in (np.arange(side), np.arange(w - side, w)):
        hit = cols[cover[cols] >= 0.95]
        if hit.size:
            out = ink.copy() if out is ink else out
            out[:, max(0, hit.min() - 1):hit.max() + 2] = 0
    return out


def drop_box_edges(ink: np.ndarray) -> np.ndarray:
    """`drop_box_sides` across and down: a digit's cell cut from a form keeps all four sides of its
    box (on generated boxed digits, from validation digits: 0.950 -> 0.963 read). A closed box cut
    with paper beyond it goes first (`_drop_closed_box`). Faint ink is measured once, on the ink as given."""
    if min(ink.shape) < 8 or ink.max() <= 0:
        return ink
    limit = 0.5 * otsu(ink)
    return drop_box_sides(drop_box_sides(_drop_closed_box(ink, limit), limit).T, limit).T


def _drop_closed_box(ink: np.ndarray, limit: float) -> np.ndarray:
    """The ink without a printed box that encloses it, where the box was cut with paper beyond it.

    `drop_box_sides` measures a side against the image's height, so a box that does not reach the
    image's edges (a cell cut with a margin) keeps its sides. Here the sides are measured against
    the extent of the piece of ink that spans most (the box, with whatever touches it; not specks
    of noise beyond it), and only a closed box counts: four lines, one along each edge of that
    extent, each covering 95% of it (a comb field has no top, and its ticks stop half way down, so
    it is left to the rule above). A box's four lines are printed alike, so each is wiped from
    where it starts, as thick as the thinnest of them, and a digit's bar that runs along one is
    kept (where it crosses one, the line's rows go with it). A digit that is all that was found (a
    square 0) is not wiped: a tenth of the ink must stay. Ink above `limit` counts (`drop_box_sides`)."""
    faint = ink > limit
    if faint.mean(axis=1).max() < 0.5 or faint.mean(axis=0).max() < 0.5:
        return ink  # no line spans half the picture either way: no box (and no labelling, for most photos)
    labels, slices = pieces(faint)  # not empty: a line spans half the picture
    # The box (with whatever touches it) is the piece that spans most: specks beyond it are not.
    biggest = int(np.argmax([(y.stop - y.start) * (x.stop - x.start) for y, x in slices])) + 1
    sy, sx = slices[biggest - 1]
    r0, r1, c0, c1 = sy.start, sy.stop, sx.start, sx.stop
    if min(r1 - r0, c1 - c0) < 8:
        return ink
    sub = labels[sy, sx] == biggest
    across = dilate_mask(sub, np.ones((3, 1))).mean(axis=1) >= 0.95  # per row, allowing a pixel of lean
    down = dilate_mask(sub, np.ones((1, 3))).mean(axis=0) >= 0.95
    # Ink in each row (column) besides the lines the other way, a pixel of blur either side.
    rows_ink = (sub & (np.convolve(down, [1, 1, 1], "same") == 0)).any(axis=1)
    cols_ink = (sub & (np.convolve(across, [1, 1, 1], "same") == 0)[:, None]).any(axis=0)
    runs = [_side_from_edge(line, ink_beyond) for line, ink_beyond in  # (start, length)
            ((across, rows_ink), (across[::-1], rows_ink[::-1]), (down, cols_ink), (down[::-1], cols_ink[::-1]))]
    t = min(length for _, length in runs)  # the line, and a row inside it (the dilation's): its blurred inner edge
    if t == 0:
        return ink
    (top, _), (bottom, _), (left, _), (right, _) = runs
    out = ink.copy()
    out[r0 + top:r0 + top + t], out[r1 - bottom - t:r1 - bottom] = 0, 0
    out[:, c0 + left:c0 + left + t], out[:, c1 - right - t:c1 - right] = 0, 0
    return out if (out > limit).sum() >= 0.1 * faint.sum() else ink


def _side_from_edge(covered: np.ndarray, ink: np.ndarray) -> tuple[int, int]:
    """`run_from_edge`, or where a box is one of a row of cells cut with a sliver of its
    neighbours, its wall standing in from the edge (in the outer quarter) with no `ink` (bool per
    row) beyond it but the top and bottom running on."""
    start, length = run_from_edge(covered)
    if length:
        return start, length
    hits = np.flatnonzero(covered[:len(covered) // 4])
    if not hits.size or ink[:hits[0]].any():
        return 0, 0
    gaps = np.flatnonzero(~covered[hits[0]:])
    return int(hits[0]), int(gaps[0]) if gaps.size else len(covered) - int(hits[0])


def run_from_edge(covered: np.ndarray) -> tuple[int, int]:
    """Where the first run of `covered` rows (bool per row, from an edge) starts, in the first two
    (a speck beyond a line can stretch the extent by a row), and how long it is; (0, 0) if none."""
    start = 0 if covered[0] else 1
    if not covered[start]:
        return 0, 0
    gaps = np.flatnonzero(~covered[start:])
    return start, int(gaps[0]) if gaps.size else len(covered) - start


def drop_past_the_page(ink: np.ndarray) -> np.ndarray:
    """The ink without what lies past the paper along a side of the picture: the table, the scanner's
    lid or the next page beyond a crop's page edge. That is solidly darker than the paper (firm
    ink) from the side inwards, along PAST_PAGE of the side, PAST_PAGE_LINES deep or more at its
    middle, up to a straight edge (which may lean: a photo taken askew, the band then thin at one
    end) that leaves at least half the picture, and at least as thick as the pen's strokes measured
    across it (PAST_PAGE_PEN of the median; a printed line along the edge is thinner). It is wiped
    with its blurred inner edge before the pen is measured: as the strongest "ink" in the picture
    it took the texture filter's and the threshold's measure of the pen, and a number beside it
    lost its strokes."""
    if min(ink.shape) < 8 or ink.max() <= 0:
        return ink
    past = past_the_page(ink > otsu(ink))
    if past is None:
        return ink
    out = ink.copy()
    out[past] = 0
    return out


# Each side of a picture seen as its left one: views of the same pixels (of (H, W) or (H, W, C)).
SIDES = (lambda a: a, lambda a: a[:, ::-1], lambda a: a.swapaxes(0, 1), lambda a: a[::-1].swapaxes(0, 1))


def past_the_page(firm: np.ndarray, untouched: bool = False) -> np.ndarray | None:
    """Where a picture (`firm`: (H, W) bools, what departs firmly from the paper) holds what lies
    past its paper's edge, as `drop_past_the_page` says: a bool mask, or None. `untouched`: only a
    band that nothing runs into (over 2% of its edge's rows 3 px past it): nothing is written on a
    table, and a shadow that falls across the writing is no table."""
    past = None
    for side in SIDES:
        depth = _band_from_edge(side(firm), untouched)
        if depth is not None:
            past = np.zeros(firm.shape, bool) if past is None else past
            view = side(past)
            view |= np.arange(view.shape[1]) < depth[:, None]
    return past


def _band_from_edge(mask: np.ndarray, untouched: bool = False) -> np.ndarray | None:
    """How deep, in each row, to wipe a band of `mask` (True: firm ink) that runs down its left
    side from column 0, as `drop_past_the_page` says; None if there is none. A row where writing
    touches the band is wiped only to the band's edge."""
    n = mask.shape[1]
    if (mask[:, 0] | mask[:, 1]).mean() < PAST_PAGE:
        return None  # most pictures: no band along this side (and no work on all of its pixels)
    half = mask[:, :n // 2 + 1]  # a band must leave half the picture: no need to look further
    reach = np.maximum(_reach(half), _reach(half[:, 1:]) + 1)  # from the edge, or past a pixel of paper at it
    held = reach >= 2  # rows the band holds: it runs the whole side, if thin at one end where it leans
    if held.mean() < PAST_PAGE:
        return None
    rows = np.arange(len(reach))
    # The edge: a line through the rows' ends, first near their median (within a lean of 3 degrees
    # either way), then those within 2 px of it; not where writing touches it and runs on.
    near = held & (np.abs(reach - np.median(reach[held])) <= 0.03 * len(rows) + 2)
    if near.sum() < 2:
        return None  # the rows end in two bands, none of them at the median: no one edge
    edge = np.polyval(np.polyfit(rows[near], reach[near], 1), rows)
    on = held & (np.abs(reach - edge) <= 2)
    if on.mean() < 0.8:
        return None
    edge = np.polyval(np.polyfit(rows[on], reach[on], 1), rows).round(6)  # 4, not 3.9999999, for an even band
    stop, depth = int(np.ceil(edge.max())) + 2, float(np.median(edge))
    if depth < PAST_PAGE_LINES or edge.min() < 1 or stop > n // 2:
        return None
    if depth < PAST_PAGE_PEN * _run_median(mask[:, stop:]):
        return None
    if untouched and (reach > np.ceil(edge) + 3).mean() > 0.02:
        return None
    return np.minimum(reach, np.ceil(edge) + 1) + 2  # and the band's blurred inner edge


def _reach(mask: np.ndarray) -> np.ndarray:
    """Per row of `mask`, how far from column 0 it still covers PAST_PAGE of the way (0 if its
    first pixel is not covered): grain does not end a band."""
    mask = mask.copy()
    mask[:, 1:-1] |= mask[:, :-2] & mask[:, 2:]  # a lone pixel of grain is no gap
    solid = np.cumsum(mask, axis=1) >= PAST_PAGE * np.arange(1, mask.shape[1] + 1)
    return np.where(solid[:, 0], mask.shape[1] - np.argmax(solid[:, ::-1], axis=1), 0)


def _run_median(mask: np.ndarray) -> float:
    """The median length of the runs of True along the rows of `mask` (inf for none): how thick
    the strokes are across the rows."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    lengths = np.flatnonzero(edges.ravel() == -1) - np.flatnonzero(edges.ravel() == 1)
    return float(np.median(lengths)) if lengths.size else np.inf


def clean_document(ink: np.ndarray) -> np.ndarray:
    """A document's ink without what was printed on it, or lies past its edge: the table beyond
    a page's edge, fine patterns, a box's sides (for `find_ink`'s `clean`)."""
    return drop_box_sides(drop_fine_texture(drop_past_the_page(ink)))
