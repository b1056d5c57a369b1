"""ink: the departure of each pixel from the paper under it, and the printed things wiped from it.

Every test runs the real code on ink maps and pictures drawn here with numpy and Pillow.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from digitrec.ink import (_past_printed_line, _Picture, clean_document, drop_box_edges, drop_box_sides, drop_fine_texture,
                          find_ink, ink_map, paper_ring, with_margin)
from digitrec.stats import otsu


def page(w=400, h=300, bg=255, mode="L"):
    return Image.new(mode, (w, h), bg)


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


def test_a_stroke_wider_than_the_paper_window_keeps_its_middle():
    # The paper under each pixel is a closing over a quarter of the picture's short side: a bold
    # stroke wider than that is taken for paper in its middle, unless the window widens.
    img = page(120, 120, bg=230)
    ImageDraw.Draw(img).polygon([(50, 5), (70, 5), (85, 115), (35, 115)], fill=20)  # 20 px wide at the top, 50 at the foot
    rgb = np.asarray(img.convert("RGB"), np.float32) / 255
    narrow, _ = ink_map(rgb)
    wide, _ = ink_map(rgb, wide_strokes=True)
    assert narrow[15, 60] > 0.8 * narrow.max() and narrow[105, 60] < 0.1 * narrow.max()  # a document's reading keeps the hole
    assert wide[105, 60] > 0.8 * wide.max() and wide[60, 15] < 0.1 * wide.max()


def test_a_small_digit_in_a_printed_box_on_an_unevenly_lit_page_is_dark_on_light():
    # 40x40: a dark table's edge, a printed box, and inside it paper lit from one side with a dark 7.
    lum = np.tile(np.linspace(0.3, 0.95, 40, dtype=np.float32), (40, 1))
    lum[:2, :] = lum[-2:, :] = lum[:, :2] = lum[:, -2:] = 0.2  # beyond the box
    lum[2:4, 2:-2] = lum[-4:-2, 2:-2] = lum[2:-2, 2:4] = lum[2:-2, -4:-2] = 0.1  # the box
    lum[11:14, 12:28] = 0.15  # the 7's bar
    for k in range(18):  # and its stem, down to the left
        lum[13 + k, 26 - k // 2:29 - k // 2] = 0.15
    rgb = np.repeat(lum[:, :, None], 3, axis=2)
    _, polarity = ink_map(rgb)
    assert polarity == "dark-on-light"


def _thick_zero(light_ink: bool) -> np.ndarray:
    """A thick 0 cropped tight to its ink (RGB, 60x40): the ink is 70% of the picture."""
    ink = np.zeros((60, 40), bool)
    yy, xx = np.mgrid[:60, :40]
    ink[((yy - 29.5) / 30) ** 2 + ((xx - 19.5) / 20) ** 2 <= 1] = True
    ink[((yy - 29.5) / 14) ** 2 + ((xx - 19.5) / 6) ** 2 <= 1] = False  # the hole
    lum = np.where(ink, 0.1, 0.9).astype(np.float32)
    lum = 1 - lum if light_ink else lum
    return np.repeat(lum[:, :, None], 3, axis=2)


@pytest.mark.parametrize("light_ink", [False, True])
def test_a_digit_that_is_most_of_its_picture_keeps_its_polarity(light_ink):
    # Cropped tight to a thick stroke, the ink outnumbers the paper: the typical pixel is ink. The
    # paper is still what the border shows (with the minority rule, the light 0 read dark-on-light).
    rgb = _thick_zero(light_ink)
    assert (np.abs(rgb[..., 0] - rgb[0, 0, 0]) > 0.5).mean() > 0.6  # the ink really is the majority
    for margin in (0.0, 0.12):  # as `preprocess` looks at it: as it is, then with paper added all round
        framed, pad = with_margin(rgb, margin)
        ink, polarity = ink_map(framed, wide_strokes=True)
        assert polarity == ("light-on-dark" if light_ink else "dark-on-light"), margin
    assert ink[pad + 30, pad + 2] > 0.5 and ink[pad + 30, pad + 20] < 0.1  # the stroke is ink, the hole paper


@pytest.mark.parametrize("dark_lines", [True, False])
def test_the_paper_is_read_inside_a_printed_box(dark_lines):
    # A box's sides at the picture's edges (2 px, the top one with a little paper beyond it) are
    # not the paper: the paper is just inside them, in either polarity.
    lum = np.full((50, 40), 0.9, np.float32)
    lum[2:4, :] = lum[-2:, :] = lum[:, :2] = lum[:, -2:] = 0.1
    lum[15:35, 18:22] = 0.1  # a 1
    lum = lum if dark_lines else 1 - lum
    ring = paper_ring(np.repeat(lum[:, :, None], 3, axis=2))
    assert np.allclose(np.median(ring, axis=0), 0.9 if dark_lines else 0.1)


@pytest.mark.parametrize("dark_lines", [True, False])
def test_the_paper_is_read_inside_a_tiny_printed_box(dark_lines):
    # 19x19, a form's cell cut at its box: the 3-px sides are a third of every row, so the row
    # inside the top line is 32% line-coloured. Measured between the sides it is paper, and the
    # digit keeps its polarity (before, the box was taken for the paper and the 1 read light-on-dark).
    lum = np.full((19, 19), 0.7, np.float32)
    lum[:3, :] = lum[-3:, :] = lum[:, :3] = lum[:, -3:] = 0.22
    lum[5:14, 8:11] = 0.25  # a 1
    lum = lum if dark_lines else 1 - lum
    rgb = np.repeat(lum[:, :, None], 3, axis=2)
    assert np.allclose(np.median(paper_ring(rgb), axis=0), 0.7 if dark_lines else 0.3)
    assert ink_map(rgb)[1] == ("dark-on-light" if dark_lines else "light-on-dark")


def test_a_tiny_box_with_a_pixel_of_paper_beyond_it_is_a_printed_line():
    # 21x21: a 19-px cell's 3-px box with a pixel of paper beyond it, and a 1 from just inside the
    # top line. The row inside that line is 43% dark (the sides and the 1), and it starts with
    # paper, so no side was found at its ends: only the light pixel beyond was skipped (2 rows),
    # and the paper was read on the box's line. Now the line is passed: 1 + 3 rows, and 1 more.
    lum = np.full((21, 21), 0.7, np.float32)
    box = lum[1:20, 1:20]
    box[:3, :] = box[-3:, :] = box[:, :3] = box[:, -3:] = 0.22
    box[3:14, 8:11] = 0.25
    assert _past_printed_line(lum, otsu(lum)) == 5


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_an_8_bit_picture_shrunk_before_conversion_is_the_float_one_to_within_rounding(mode):
    # The first look shrinks a photo's bytes, then converts them; the float picture shrunk is the
    # reference (what the finer looks use). Pillow's box filter either way: 1/255 apart at most.
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (301, 403, 3), dtype=np.uint8)).convert(mode)
    picture = _Picture(img)
    assert picture.bytes_first
    for scale in (0.9, 0.476, 0.13):
        fast, exact = picture.at(scale), picture.exact().at(scale)
        assert fast.shape == exact.shape == (round(301 * scale), round(403 * scale), 3)
        assert np.abs(fast - exact).max() <= 1 / 255 + 1e-6


def test_a_picture_with_transparency_is_converted_before_it_is_shrunk():
    # Transparent pixels become a background chosen against the opaque ones (`to_rgb`), which a
    # shrink of the bytes would blend with them first.
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).line((40, 50, 160, 50), fill=(0, 0, 0, 255), width=6)
    assert not _Picture(img).bytes_first
    shrunk = _Picture(img).at(0.5)
    assert shrunk.max() == 1.0 and shrunk.min() < 0.1  # white behind a black stroke


def test_a_small_picture_is_enlarged_to_the_least_height_and_boxes_map_back():
    # A 50-px scan of a 1-px pen stroke beside a bold one: enlarged to 100 px before its ink is found,
    # and a box in the working pixels maps back onto the source's.
    img = Image.new("RGB", (120, 50), (235, 235, 230))
    d = ImageDraw.Draw(img)
    d.line((30, 10, 30, 40), fill=(20, 20, 20), width=3)
    d.line((80, 10, 80, 40), fill=(90, 90, 90), width=1)
    found, ink = find_ink(img, (2400, 160), lambda ink: ink, least=100)
    assert ink.shape == (100, 240) and found.scale == pytest.approx(2.0)
    ys, xs = np.nonzero(ink > 0.5 * ink.max())
    x0, y0, x1, y1 = found.box_to_source((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    assert abs(x0 - 29) <= 1 and abs(y0 - 10) <= 1 and abs(x1 - 81) <= 1 and abs(y1 - 41) <= 1
    assert find_ink(img, (2400, 160), lambda ink: ink)[1].shape == (50, 120)  # no least: as it is
    # The thin stroke, two working pixels wide once enlarged, outlives the document cleaning that
    # wipes 1-px printed lines; at 50 px it is wiped with them.
    cleaned = find_ink(img, (2400, 160), clean_document, least=100)[1]
    assert cleaned[30:70, 155:165].max() > 0.1 * cleaned.max()
    assert find_ink(img, (2400, 160), clean_document)[1][15:35, 77:83].max() == 0


def test_salt_and_pepper_noise_leaves_the_paper_paper():
    # One pixel in a hundred white, one black, on grey paper (a poor scan): the paper under the
    # pen is measured past the lone pixels, so the paper reads as no ink and the stroke as ink.
    rng = np.random.default_rng(0)
    rgb = np.full((120, 160, 3), 0.75, np.float32)
    rgb[30:90, 70:76] = 0.1  # a stroke
    for value in (1.0, 0.0):
        ys, xs = rng.integers(0, 120, 192), rng.integers(0, 160, 192)
        rgb[ys, xs] = value
    ink, polarity = ink_map(rgb)
    assert polarity == "dark-on-light"
    assert np.median(ink) < 0.02 and np.median(ink[30:90, 71:75]) > 0.8



def test_a_box_printed_lighter_than_the_paper_in_one_colour_leaves_its_cells_paper():
    # Grey paper and a row of cells printed in a form's light dropout blue: darker than the paper in
    # red, lighter in blue. In cells narrower than the paper's window (15 px here) and between the
    # outer walls and the picture's edges, the blue channel's closing took the line's blue for the
    # paper, and the paper there read as ink (0.28: with the walls, a row of thick 1s).
    paper, line = np.array([0.66, 0.66, 0.66], np.float32), np.array([0.55, 0.75, 0.92], np.float32)
    rgb = np.tile(paper, (60, 84, 1))
    for x in range(5, 80, 14):  # walls 2 px, cells 12 px inside
        rgb[10:50, x:x + 2] = line
    rgb[10:12, 5:77] = rgb[48:50, 5:77] = line
    rgb[20:40, 25:27] = 0.15  # a 1 in the second cell
    ink, polarity = ink_map(rgb)
    assert polarity == "dark-on-light"
    cells = ~ndi.binary_dilation((rgb != paper).any(axis=2), iterations=1)  # away from the lines and the 1
    assert ink[cells].max() < 0.05
    assert ink[25:35, 25:27].min() == pytest.approx((0.66 - 0.15) / 0.66, abs=0.01)  # darkening against the real paper
