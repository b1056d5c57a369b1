"""Where the writing is: the lines of pen strokes in an image's ink, and each digit's box along one.

`read.NumberReader` reads one line (`line_pieces`: the line grown from the largest piece of pen
stroke) or every line on a page (`lines_of_writing`). A line grows from a piece of ink: pieces join
it when they sit in its band of rows and near its ends, so a speck above the line, a mark in the
margin or the page's edge does not stretch the line's height, which sets the scale the reader sees.
Pieces that share columns are grouped (a 5 whose bar lifted off, a 4 drawn in two strokes) for the
digits' boxes (`digit_boxes`).
"""

from __future__ import annotations

import numpy as np

from .ink import NoDigitFound
from .morphology import dilate_mask
from .components import ink_components

# A line of its own grows from a piece at least this share of the first line's first piece's height
# (a page's numbers are written by one hand, at about one size; a dot or a dash is far shorter).
SEED_HEIGHT = 0.4

def _groups(slices: list, pieces: list[int]) -> list[list[int]]:
    """Pieces whose column ranges overlap (by a quarter of the narrower one) belong to the same digit."""
    spans = sorted(((slices[i][1].start, slices[i][1].stop), i) for i in pieces)
    groups: list[tuple[int, int, list[int]]] = []
    for (a, b), i in spans:
        if groups:
            g0, g1, members = groups[-1]
            overlap = min(b, g1) - max(a, g0)
            # A quarter is enough: a 5's lifted bar juts out right; digits side by side barely
            # share columns, and a group that is too wide is cut apart again below.
            if overlap >= 0.25 * min(b - a, g1 - g0):
                groups[-1] = (min(a, g0), max(b, g1), members + [i])
                continue
        groups.append((a, b, [i]))
    return [members for _, _, members in groups]


def line_pieces(ink: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The line's ink as one mask per group of pieces that share columns (left to right), and
    their union; NoDigitFound when there is no writing. The line is the one grown from the largest
    piece of pen stroke (`lines_of_writing`)."""
    return lines_of_writing(ink, every=False)[0]


def lines_of_writing(ink: np.ndarray, every: bool = True) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """The lines of writing in the ink, each as `line_pieces` gives one, in the order of the pieces
    they grew from, largest first; NoDigitFound when there is no writing. `every`: every line,
    else only the one grown from the largest piece.

    A line grows from a piece of pen stroke (blobs such as a shadow's edge only when there is
    nothing else): pieces join when they sit in the line's band of rows and near its ends, so a
    speck above the line, a mark in the margin or the page's edge does not stretch the line's
    height, which sets the scale the reader sees. A piece belongs to one line only, and a line grows
only from a piece at least SEED_HEIGHT as tall as the first: a comma or a dash off by itself is
not a number."""
    comp = ink_components(ink)
    keep, mass = comp.keep, comp.mass
    if not keep.any():
        raise NoDigitFound("no digits found: only lines or shadows")
    # Start from a stroke, not a blob (a shadow's edge), unless blobs are all there is; a thick
    # digit can look like a blob too, so blobs may still join the line.
    strokes = keep & ~comp.blob
    start = strokes if strokes.any() and mass[strokes].max() >= 0.25 * mass[keep].max() else keep
    seeds = [int(i) for i in np.argsort(-np.where(start, mass, -1), kind="stable") if start[i]]
    free, lines = keep.copy(), []
    tall = [sl[0].stop - sl[0].start for sl in comp.slices]
    for seed in seeds[:len(seeds) if every else 1]:
        if not free[seed] or tall[seed] < SEED_HEIGHT * tall[seeds[0]]:
            continue
        chosen = _grow(comp, seed, free)
        free[chosen] = False
        masks = []
        for members in _groups(comp.slices, chosen):
            m = np.isin(comp.labels, np.array(members) + 1)
            if comp.cut is not None and comp.cut.any():  # ink under a ruled line that was set aside
                m |= comp.cut & dilate_mask(m, iterations=2)
            masks.append(m)
        lines.append((masks, np.logical_or.reduce(masks)))
    return lines


def _grow(comp, main: int, free: np.ndarray) -> list[int]:
    """The pieces (among `free`) of the line grown from piece `main`, in index order."""
    mass, slices = comp.mass, comp.slices
    chosen = {main}
    y0, y1, x0, x1 = slices[main][0].start, slices[main][0].stop, slices[main][1].start, slices[main][1].stop
    grew = True
    while grew:
        grew = False
        band = y1 - y0
        for i in np.nonzero(free)[0]:
            if i in chosen:
                continue
            sy, sx = slices[i]
            overlap = min(sy.stop, y1) - max(sy.start, y0)
            if overlap < 0.5 * min(sy.stop - sy.start, band):
                continue  # above or below the line
            gap = max(sx.start - x1, x0 - sx.stop, 0)
            # A digit of its own (a 1 beside an 8 has a third of its ink) may stand a digit's width
            # off; a fragment (a lifted bar, a broken stroke) only right beside the line.
            if (mass[i] >= 0.08 * mass[main] and gap <= 1.5 * band) or (mass[i] >= 0.01 * mass[main] and gap <= 0.1 * band):
                chosen.add(int(i))
                grew = True
                y0, y1 = min(y0, sy.start), max(y1, sy.stop)
                x0, x1 = min(x0, sx.start), max(x1, sx.stop)
    return sorted(chosen)


def digit_boxes(masks: list[np.ndarray], centres: list[float]) -> list[tuple[list[int], tuple[int, int, int, int]]]:
    """Per digit (by the column its reading came from): its groups (the one it was read from first,
    then any group no digit was read from that lies nearest to it), and the box of their ink, split
    at the midpoints to the neighbouring digits read from the same group."""
    spans = [np.nonzero(m.any(0))[0][[0, -1]] for m in masks]
    group = []
    for c in centres:
        dist = [0.0 if a <= c <= b else min(abs(c - a), abs(c - b)) for a, b in spans]
        group.append(int(np.argmin(dist)))
    out = []
    for i, (g, c) in enumerate(zip(group, centres)):
        a, b = spans[g][0], spans[g][1] + 1
        if i and group[i - 1] == g:
            a = max(a, int(round((centres[i - 1] + c) / 2)))
        if i + 1 < len(centres) and group[i + 1] == g:
            b = min(b, int(round((c + centres[i + 1]) / 2)))
        part = np.zeros_like(masks[g])
        part[:, a:b] = masks[g][:, a:b]
        if not part.any():
            part = masks[g]
        ys, xs = np.nonzero(part)
        out.append(([g], (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    # A group no digit was read from is part of its nearest digit: a 5's bar that lifted off.
    for g in sorted(set(range(len(masks))) - set(group)):
        if not out:
            break
        ys, xs = np.nonzero(masks[g])
        a, b = xs.min(), xs.max() + 1
        i = int(np.argmin([max(box[0] - b, a - box[2], 0) for _, box in out]))
        members, box = out[i]
        out[i] = (members + [g], (min(box[0], int(a)), min(box[1], int(ys.min())), max(box[2], int(b)), max(box[3], int(ys.max()) + 1)))
    return out


def reading_order(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """The indices of boxes (x0, y0, x1, y1) in reading order: rows top to bottom, each row left to
    right. A box is in a row when its middle lies between the top and bottom of the row's first box."""
    rows: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda i: boxes[i][1]):
        if rows and boxes[rows[-1][0]][1] <= (boxes[i][1] + boxes[i][3]) / 2 <= boxes[rows[-1][0]][3]:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i][0])]
