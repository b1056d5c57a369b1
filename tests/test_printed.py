"""printed: what was printed on a document, wiped from its ink (a check's fine pattern, a field's box).

Every test runs the real code on ink maps drawn here with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.printed import drop_box_edges, drop_box_sides, drop_fine_texture, drop_past_the_page, past_the_page


def _pattern_and_strokes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ink map like a check's field: fine wavy printed lines (1 px, faint) every 4 rows behind
    pen strokes 4 px wide. Returns (ink, the pattern's pixels, the strokes' pixels)."""
    h, w = 60, 160
    ink = np.zeros((h, w), np.float32)
    xs = np.arange(w)
    for y0 in range(2, h, 4):
        ys = np.clip(np.round(y0 + 1.2 * np.sin(xs / 9.0)).astype(int), 0, h - 1)
        ink[ys, xs] = 0.3
    pattern = ink > 0
    strokes = np.zeros((h, w), bool)
    strokes[10:50, 30:34] = True  # a 1
    strokes[10:14, 60:90] = strokes[46:50, 60:90] = strokes[10:50, 60:64] = strokes[10:50, 86:90] = True  # a 0
    ink[strokes] = 0.9
    return ink, pattern & ~ndi.binary_dilation(strokes, iterations=2), strokes


def test_a_fine_printed_pattern_is_dropped_and_the_pen_kept():
    ink, pattern, strokes = _pattern_and_strokes()
    clean = drop_fine_texture(ink)
    assert clean[pattern].max() < 0.05
    assert np.mean(clean[strokes] >= 0.85) > 0.95


def test_a_pixel_wide_pen_is_not_taken_for_a_pattern():
    ink = np.zeros((56, 56), np.float32)
    yy, xx = np.mgrid[:56, :56]
    ink[np.abs(np.hypot(yy - 28, (xx - 28) * 1.4) - 20) < 0.6] = 0.9  # a 0 drawn one pixel wide
    assert np.array_equal(drop_fine_texture(ink), ink)


def test_a_box_side_at_the_edge_is_wiped_and_the_digit_touching_it_kept():
    ink = np.zeros((50, 120), np.float32)
    ink[:, 1:3] = 0.5  # the field's printed left side, fainter than the pen
    ink[8:44, 3:7] = 0.9  # a 1 written against it
    ink[8:44, 40:44] = 0.9  # another 1, mid-field
    clean = drop_box_sides(ink)
    assert clean[:, :3].max() == 0
    assert clean[8:44, 40:44].min() == pytest.approx(0.9)
    assert (clean[8:44, 3:7] > 0).any()  # part of the digit beside the side is kept
    assert np.array_equal(drop_box_sides(clean), clean)  # no side left: nothing else is wiped


def _boxed_seven(top: bool = True) -> np.ndarray:
    """A 100x80 ink map: a printed box (2 px, faint) cut with 10 px of paper beyond it, and a 7
    (4 px pen) whose bar runs along the box's top line from side to side. Without `top`, the
    box is a comb field: a baseline and ticks half way up its sides, no top."""
    ink = np.zeros((100, 80), np.float32)
    ink[88:90, 10:70] = 0.5
    ink[50:90, 10:12] = ink[50:90, 68:70] = 0.5
    if top:
        ink[10:12, 10:70] = 0.5
        ink[10:90, 10:12] = ink[10:90, 68:70] = 0.5
    ink[12:16, 12:68] = 0.9  # the 7's bar, against the top line
    for y in range(16, 84):  # its stem, leaning left
        x = 60 - (y - 16) // 3
        ink[y, x:x + 4] = 0.9
    return ink


def test_a_closed_box_with_paper_beyond_it_is_wiped_and_the_digit_kept():
    # Cut from a form with a margin, the box's sides do not reach the image's edges: they are
    # measured against the extent of the box's own piece of ink (not of the specks beyond it),
    # and wiped as thick as the thinnest of them.
    ink = _boxed_seven()
    ink[3, 40] = ink[95, 5] = 0.9  # specks of noise beyond the box
    ink[9, 69] = 0.9  # and one touching its corner, a row above its top line
    clean = drop_box_edges(ink)
    assert clean[10:12].max() == 0 and clean[:, 10:12].max() == 0 and clean[:, 68:70].max() == 0
    assert clean[88:90].max() == 0
    assert (clean[13:16, 14:66] > 0).mean() > 0.95  # the bar along the top line is the digit's
    assert np.array_equal(clean[16:84, 14:66], ink[16:84, 14:66])


def test_a_cell_cut_from_a_row_of_cells_loses_its_walls_and_the_lines_beyond():
    # Cut with a sliver of its neighbours: the top and bottom run on to the picture's sides, past
    # walls that stand in from its edges, with the next cells' paper (and nothing else) beyond.
    ink = _boxed_seven()
    ink[10:12, :] = ink[88:90, :] = 0.5
    clean = drop_box_edges(ink)
    assert clean[10:12].max() == 0 and clean[88:90].max() == 0
    assert clean[:, 10:12].max() == 0 and clean[:, 68:70].max() == 0
    assert np.array_equal(clean[16:84, 14:66], ink[16:84, 14:66])
    ink[12:30, 3:5] = 0.9  # a neighbour's digit beyond a wall, touching the line: not a sliver of paper
    assert drop_box_edges(ink)[30:80, 10:12].max() > 0


def test_a_comb_field_or_a_lone_square_is_not_a_closed_box():
    comb = _boxed_seven(top=False)
    assert np.array_equal(drop_box_edges(comb), comb)  # left to the box rule of `ink_components`
    square = np.zeros((60, 60), np.float32)
    square[10:50, 10:50] = 0.9
    square[14:46, 14:46] = 0  # a square 0: four lines, and nothing inside them
    assert np.array_equal(drop_box_edges(square), square)


def _strokes_beside(band: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    """An ink map of pen strokes 3 px wide (a 1 and a 7) with a solid band of `band` lines along
    `side` ("left" or "bottom"): the table past a page's edge. Returns (ink, the strokes' pixels)."""
    ink = np.zeros((80, 200), np.float32)
    strokes = np.zeros(ink.shape, bool)
    strokes[20:60, 70:73] = True
    strokes[20:23, 100:130] = strokes[20:60, 127:130] = True
    ink[strokes] = 0.5
    if side == "left":
        ink[:, :band] = 0.9
    else:
        ink[-band:] = 0.9
    return ink, strokes


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_the_table_past_a_pages_edge_is_wiped_and_the_pen_kept(side):
    ink, strokes = _strokes_beside(12, side)
    clean = drop_past_the_page(ink)
    assert np.array_equal(clean[strokes], ink[strokes])
    assert clean[~strokes].max() == 0  # the band and its edge gone: only the strokes are ink


def test_a_printed_line_along_the_edge_as_thin_as_the_pen_is_kept():
    ink, _ = _strokes_beside(3, "bottom")  # a form's line, no thicker than the strokes
    assert drop_past_the_page(ink) is ink
    ink, _ = _strokes_beside(100, "left")  # half the picture or more: no edge of a page, leave it
    assert drop_past_the_page(ink) is ink


def _leaning_band(lean: float) -> np.ndarray:
    """A band along the right side of an 80x200 picture whose edge leans `lean` px per row (a photo
    taken askew), 8 px deep in the middle, with a pixel of grain in it every 7th pixel, beside a
    pen's stroke 3 px wide (the pen the band is measured against)."""
    firm = np.zeros((80, 200), bool)
    firm[20:60, 60:63] = True
    rows, cols = np.mgrid[:80, :200]
    firm[(199 - cols) < 8 + lean * (rows - 40)] = True
    firm.flat[::7] = False  # grain: the band is solid, not flawless
    return firm


@pytest.mark.parametrize("lean", [0.0, 0.05, -0.05])
def test_a_band_whose_edge_leans_is_found_to_its_edge(lean):
    firm = _leaning_band(lean)
    past = past_the_page(firm)
    assert past is not None
    assert past[:, 100:][firm[:, 100:]].mean() > 0.99 and not past[:, :100].any()  # all of the band, not the stroke
    rows = np.arange(80)
    edge = 199 - np.ceil(8 + lean * (rows - 40))  # the band's innermost column, per row
    assert all(not past[r, :int(edge[r]) - 3].any() for r in rows)  # and its blurred edge, no further


def test_a_band_thin_at_one_end_where_it_leans_is_found():
    # 5 px deep in the middle, leaning 3 degrees: 3 px at one end, under PAST_PAGE_LINES (missed before).
    firm = np.zeros((80, 200), bool)
    firm[20:60, 60:63] = True
    rows, cols = np.mgrid[:80, :200]
    depth = 5 + 0.05 * (rows - 40)
    firm[(199 - cols) < depth] = True
    past = past_the_page(firm)
    assert past is not None and past[firm & (cols > 100)].all() and not past[:, :100].any()
    firm[(199 - cols) < depth - 2] = False  # 3 px in the middle: a printed line, no page's edge
    assert past_the_page(firm) is None


def test_a_side_held_half_by_a_thin_line_and_half_by_a_block_has_no_band():
    # The rows' ends lie in two groups and none near their median: there is no one edge to fit.
    firm = np.zeros((80, 200), bool)
    firm[:40, :3] = True
    firm[40:, :60] = True
    assert past_the_page(firm) is None


def test_a_shadow_across_the_writing_is_no_table_where_untouched_is_asked():
    firm = _leaning_band(0.0)
    firm[36:44, 150:193] = True  # a stroke that runs into the band: writing, or a shadow across it
    assert past_the_page(firm) is not None  # a page's edge the writing touches: wiped to the edge
    assert past_the_page(firm, untouched=True) is None
