"""ink: the departure of each pixel from the paper under it, at a working resolution.

Every test runs the real code on ink maps and pictures drawn here with numpy and Pillow.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from digitrec.ink import _past_printed_line, _Picture, decode, find_ink, ink_map, paper_ring, with_margin
from digitrec.printed import clean_document
from digitrec.stats import otsu


def page(w=400, h=300, bg=255, mode="L"):
    return Image.new(mode, (w, h), bg)


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


def test_the_table_past_a_sheet_lit_unevenly_is_painted_as_paper():
    # The table along the top, a quarter of the border, and a sheet lit from the right: measured
    # against the border's median (pulled dark by the band), the lit part of the sheet stood as far
    # from the paper as the table, no band was found, and its edge was ink (0.55 here, against the
    # stroke's 0.78). The band is now found against the paper of the sides that do not depart.
    h, w = 160, 380
    rgb = np.broadcast_to(np.linspace(0.50, 0.68, w, dtype=np.float32)[None, :, None], (h, w, 3)).copy()
    edge = np.arange(w) * 0.03 + 20  # the band's edge, leaning under 2 degrees
    rgb[np.arange(h)[:, None] < edge[None, :]] = (0.30, 0.30, 0.31)
    rgb[80:130, 100:106] = rgb[80:86, 100:130] = 0.12  # a 7's stroke and bar on the sheet
    ink, polarity = ink_map(rgb, past_page=True)
    near = np.arange(h)[:, None] < edge[None, :] + 4  # the band and its edge
    assert polarity == "dark-on-light"
    assert ink[near].max() < 0.1 * ink[80:130, 100:106].min(), (ink[near].max(), ink[80:130, 100:106].min())


def test_a_big_jpeg_is_decoded_small_for_the_first_look_and_again_for_the_finer_ones():
    # libjpeg scales in its inverse DCT: a 3000x4000 photo looked at within 144 px is decoded at an
    # eighth; the finer looks (4x the resolution, and twice that) get it at a half, decoded once.
    buf = io.BytesIO()
    Image.new("RGB", (3000, 4000), (235, 235, 230)).save(buf, "JPEG", quality=90)
    first = decode(buf.getvalue(), (144, 144))
    assert (first.factor, first.image.size, first.source_size) == (8, (375, 500), (3000, 4000))
    finer = first.again()
    assert (finer.factor, finer.image.size) == (2, (1500, 2000)) and first.again() is finer
    png = io.BytesIO()
    Image.new("RGB", (3000, 4000), (235, 235, 230)).save(png, "PNG")
    assert decode(png.getvalue(), (144, 144)).again is None  # decoded whole: nothing more to decode


def test_a_small_dark_digit_on_a_page_lit_unevenly_is_dark_on_light():
    # A phone photo shrunk to the working size: grey paper at the border, a lighter patch where the
    # light falls (a fifth of the page), and a small dark digit, 30 pixels of ink (0.2%). The
    # picture's range ends at its few most extreme pixels: the ink, not the paper's darker part.
    rgb = np.full((108, 144, 3), 0.6, np.float32)
    rgb[30:70, 40:110] = 0.85
    rgb[80:95, 20] = rgb[80, 20:30] = rgb[95, 20:26] = 0.15
    ink, polarity = ink_map(rgb)
    assert polarity == "dark-on-light"
    assert ink[80:96, 18:31].max() > 0.5 and ink[35:65, 45:105].max() < 0.1  # the digit is ink, the patch paper
