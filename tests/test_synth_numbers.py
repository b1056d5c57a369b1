"""Whole numbers on paper (`synth_numbers`): MNIST digits set side by side on ruled, squared,
security-printed and tint-banded paper, and numbers written in a font."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import ImageFont
from scipy import ndimage as ndi

from digitrec.read import load_reader
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import (FIELDS, in_field, iter_number_set, iter_page_set, render_number, render_page,
                                    write_number)


def test_numbers_on_ruled_and_squared_paper(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(3)]
    plain, _ = render_number(digits, np.random.default_rng(4), style=StyleConfig.clean())
    ruled, boxes = render_number(digits, np.random.default_rng(4), style=StyleConfig.clean(paper="ruled"))
    squared, _ = render_number(digits, np.random.default_rng(4), style=StyleConfig.clean(paper="squared"))
    p, r, q = (np.asarray(im.convert("L"), np.float32) for im in (plain, ruled, squared))
    assert p.shape == r.shape == q.shape
    free_rows = [y for y in range(r.shape[0]) if not any(b[1] <= y < b[3] for b in boxes)]
    # Ruling darkens whole rows edge to edge where the plain paper is blank; squared paper columns too.
    dark_rows = [y for y in free_rows if (r[y] < p[y] - 20).mean() > 0.9]
    assert dark_rows and not [y for y in free_rows if (p[y] < 200).mean() > 0.9]
    assert ((q < p - 20).mean(0) > 0.9).any() and not ((r < p - 20).mean(0) > 0.9).any()


def test_numbers_on_a_checks_security_pattern(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(3)]
    secure, boxes = render_number(digits, np.random.default_rng(4), style=StyleConfig.clean(paper="security"))
    s = np.asarray(secure.convert("L"), np.float32)
    free = np.ones(s.shape, bool)
    for x0, y0, x1, y1 in boxes:
        free[y0:y1, x0:x1] = False
    paper, pen = np.percentile(s[free], 95), np.percentile(s, 0.5)
    darker = (s < paper - 10) & free
    # Fine lines all over the paper, every few rows, each fainter than the pen.
    assert 0.03 < darker.sum() / free.sum() < 0.5
    rows = np.nonzero(darker.any(1))[0]
    assert ndi.label(darker.any(1))[1] >= 8 and rows[-1] - rows[0] > 0.8 * s.shape[0]
    assert s[free].min() > pen + 0.3 * (paper - pen)


def test_numbers_across_a_printed_tint_band(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(3)]
    banded, boxes = render_number(digits, np.random.default_rng(4), style=StyleConfig.clean(paper="band"))
    b = np.asarray(banded.convert("L"), np.float32)
    paper, pen = np.percentile(b, 95), b.min()
    darker = (b < paper - 8).mean(axis=1) > 0.9  # rows shaded edge to edge (clean paper is even)
    rows = np.flatnonzero(darker)
    top, base = min(y0 for _, y0, _, _ in boxes), max(y1 for _, _, _, y1 in boxes)
    # One band, fainter than the pen, running through the writing rather than above or below it.
    assert rows.size and ndi.label(darker)[1] == 1 and top < rows.mean() < base
    assert rows.size < 0.4 * (base - top) and np.median(b[darker]) > pen + 60


def test_one_digit_of_a_number_in_a_lighter_pen(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(4)]
    img, boxes = render_number(digits, np.random.default_rng(2), style=StyleConfig.clean(faint_digit=1.0))
    g = np.asarray(img.convert("L"), np.float32)
    paper = np.percentile(g, 90)
    contrast = sorted(paper - np.percentile(g[y0:y1, x0:x1], 1) for x0, y0, x1, y1 in boxes)
    # One digit at 30-50% of the pen's strength; the rest all alike.
    assert contrast[0] < 0.6 * contrast[1] and contrast[1] > 0.9 * contrast[-1]
    _, same = render_number(digits, np.random.default_rng(2), style=StyleConfig.clean())
    assert len(same) == len(boxes)


def test_a_number_turned_as_in_a_photo_taken_askew(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(5)]
    img, boxes = render_number(digits, np.random.default_rng(3), style=StyleConfig.clean(turn=12))
    g = np.asarray(img.convert("L"), np.float32)
    ink = g < np.percentile(g, 90) - 60
    centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes])
    # The digits climb (or fall) along the line by 4-12 degrees, and each box still holds its digit.
    assert 4 <= abs(np.degrees(np.arctan(np.polyfit(centres[:, 0], centres[:, 1], 1)[0]))) <= 13
    covered = np.zeros_like(ink)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
        assert ink[y0:y1, x0:x1].sum() > 50
    assert ink[covered].sum() >= 0.97 * ink.sum()


def test_a_number_written_smaller_from_one_digit_on(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(5)]
    for seed in range(4):
        _, boxes = render_number(digits, np.random.default_rng(seed), style=StyleConfig.clean(small_tail=1.0))
        heights = np.array([y1 - y0 for _, y0, _, y1 in boxes], float)
        bottoms = np.array([y1 for _, _, _, y1 in boxes], float)
        _, plain = render_number(digits, np.random.default_rng(seed), style=StyleConfig.clean())
        # The first digit keeps its size, the last is written 0.45-0.8 as tall (MNIST's own 20 px
        # box, +-15%, and a 4 px gap each side give or take), on the same baseline.
        assert heights[-1] < 0.85 * heights[0]
        assert np.ptp(bottoms) < 0.25 * heights[0]
        assert len(plain) == len(boxes)


def test_a_printed_sign_before_a_number(mnist):
    digits = [mnist.test_images[i].numpy() for i in range(4)]
    img, boxes = render_number(digits, np.random.default_rng(5), style=StyleConfig.clean(sign=1.0))
    plain, plain_boxes = render_number(digits, np.random.default_rng(5), style=StyleConfig.clean())
    g = np.asarray(img.convert("L"), np.float32)
    ink = g < np.percentile(g, 90) - 60
    first = min(x0 for x0, _, _, _ in boxes)
    # Ink before the first digit, apart from it, no taller than the digits; the digits' boxes moved with it.
    sign = np.flatnonzero(ink[:, :first].any(0))
    assert len(sign) and sign[-1] < first - 3
    rows = np.flatnonzero(ink[:, :first].any(1))
    assert rows[-1] - rows[0] <= 1.2 * max(y1 - y0 for _, y0, _, y1 in boxes)
    assert img.width > plain.width and len(boxes) == len(plain_boxes)
    for x0, y0, x1, y1 in boxes:
        assert ink[y0:y1, x0:x1].sum() > 50


def test_a_number_written_in_a_font_is_read_as_written():
    """`write_number`: one hand's digits on paper, as `digitrec read` meets a number (the shipped reader)."""
    font = ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf", 96)
    short = write_number("40", font, np.random.default_rng(1), StyleConfig.clean())
    long = write_number("4096127", font, np.random.default_rng(1), StyleConfig.clean())
    assert long.width > 2 * short.width and long.mode == "RGB"
    grey = np.asarray(long.convert("L"), np.float32)
    assert np.percentile(grey, 50) > 150 and grey.min() < 100  # dark ink on light paper
    reader = load_reader()
    for seed, paper in enumerate(["plain", "ruled", "squared"]):
        img = write_number("27058", font, np.random.default_rng(seed), StyleConfig(paper=paper))
        assert reader.read(img).text == "27058"


def test_a_page_holds_its_numbers_apart_in_reading_order_on_its_ruling(mnist):
    numbers = [[mnist.test_images[4 * k + i].numpy() for i in range(4)] for k in range(5)]
    page, boxes = render_page(numbers, np.random.default_rng(3), style=StyleConfig.clean(paper="ruled"))
    g = np.asarray(page.convert("L"), np.float32)
    assert len(boxes) == 5 and all(0 <= b[0] < b[2] <= g.shape[1] and 0 <= b[1] < b[3] <= g.shape[0] for b in boxes)
    for i, a in enumerate(boxes):  # no two numbers share ink
        for b in boxes[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    # Reading order: a number on the same row (its middle within the other's rows) is to the right.
    for a, b in zip(boxes, boxes[1:]):
        same_row = a[1] <= (b[1] + b[3]) / 2 <= a[3]
        assert (b[0] > a[2]) if same_row else (b[1] > a[1])
    # The numbers sit on the ruling: the page's dark ruled rows pass just under their digits.
    plain, _ = render_page(numbers, np.random.default_rng(3), style=StyleConfig.clean())
    ruled_rows = np.nonzero((g < np.asarray(plain.convert("L"), np.float32) - 8).mean(1) > 0.6)[0]
    assert all(np.abs(ruled_rows - b[3]).min() <= 0.25 * (b[3] - b[1]) for b in boxes)


def test_a_number_in_a_forms_cells_or_comb(mnist):
    """`in_field`: the digits untouched, a wall printed between each pair of them and beyond the
    ends (full height for cells, a tick for a comb), and a field only around clear gaps."""
    digits = [mnist.test_images[i].numpy() for i in range(4)]
    plain, boxes = render_number(digits, np.random.default_rng(2), style=StyleConfig.clean())
    p = np.asarray(plain.convert("L"), np.float32)
    for field in FIELDS:
        if field == "amount":
            continue  # one box around the whole number: its own test
        f = np.asarray(in_field(plain, boxes, field, np.random.default_rng(3)).convert("L"), np.float32)
        inside = np.zeros(p.shape, bool)
        for x0, y0, x1, y1 in boxes:
            inside[y0:y1, x0:x1] = True
        printed = (f < p - (15 if field == "dropout" else 40)) & ~inside  # a dropout colour is light
        cols = np.nonzero(printed.sum(0) > 0.3 * (boxes[0][3] - boxes[0][1]))[0]  # vertical lines
        groups = len(np.split(cols, np.nonzero(np.diff(cols) > 1)[0] + 1)) if cols.size else 0
        assert groups == len(digits) + 1, (field, groups)
        top = min(b[1] for b in boxes)
        assert printed[:top].any() == (field != "comb")  # cells are closed above; a comb is open
    with pytest.raises(ValueError, match="field"):
        in_field(plain, boxes, "grid", np.random.default_rng(3))
    with pytest.raises(ValueError, match="gap"):
        next(iter_number_set(mnist.test_images, mnist.test_labels, 1, 4, "touching", field="boxes"))


def test_a_number_in_one_amount_box(mnist):
    """`in_field`'s "amount": one closed box, its two sides beyond or just into the end digits and
    no wall between them, around any spacing."""
    digits = [mnist.test_images[i].numpy() for i in range(4)]
    for seed in range(4):
        plain, boxes = render_number(digits, np.random.default_rng(seed), "touching", StyleConfig.clean())
        p = np.asarray(plain.convert("L"), np.float32)
        f = np.asarray(in_field(plain, boxes, "amount", np.random.default_rng(seed)).convert("L"), np.float32)
        top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
        h = bottom - top
        printed = f < p - 40
        assert printed[:top].any() and printed[bottom:].any()  # closed above and below
        cols = np.nonzero(printed[top - 1:bottom + 1].mean(0) > 0.6)[0]  # lines down the writing (not over its ink)
        assert cols.size and cols.min() < boxes[0][0] + 0.06 * h and cols.max() > boxes[-1][2] - 0.06 * h
        assert not ((cols > boxes[0][2]) & (cols < boxes[-1][0])).any()  # no wall between digits
    img, text, _ = next(iter_number_set(mnist.test_images, mnist.test_labels, 1, 4, "touching", field="amount"))
    assert len(text) == 4 and img.mode == "RGB"


def test_a_number_small_in_a_crop_of_its_page_and_by_the_pages_edge(mnist):
    digits = [mnist.test_images[i] for i in range(3)]
    alone, boxes = render_number(digits, np.random.default_rng(4))
    crop, crop_boxes = render_number(digits, np.random.default_rng(4), page="crop")
    edge, edge_boxes = render_number(digits, np.random.default_rng(4), page="edge")
    assert crop.height >= 2.5 * alone.height - 1 and crop.width >= 3 * alone.width - 1
    assert crop_boxes == edge_boxes and all(b[2] <= crop.width and b[3] <= crop.height for b in crop_boxes)
    assert [b[2] - b[0] for b in crop_boxes] == [b[2] - b[0] for b in boxes]  # the same writing, moved
    differ = np.any(np.asarray(crop) != np.asarray(edge), axis=2)
    rows, cols = differ.any(axis=1), differ.any(axis=0)
    # Only a band along one side, of one grey, differs: the page's edge.
    assert rows.all() or cols.all()
    band = np.asarray(edge)[differ]
    assert (band == band[0]).all() and band[0].max() <= 90
    with pytest.raises(ValueError, match="page must be one of"):
        render_number(digits, np.random.default_rng(4), page="shelf")


def test_a_page_by_the_table_is_the_same_page_with_the_table_along_one_side(mnist):
    plain = iter_page_set(mnist.test_images, mnist.test_labels, 4, 3, 4, "gap", seed=2)
    table = iter_page_set(mnist.test_images, mnist.test_labels, 4, 3, 4, "gap", seed=2, table=True)
    for (page, texts, boxes), (by, by_texts, by_boxes) in zip(plain, table):
        assert (by_texts, by_boxes, by.size) == (texts, boxes, page.size)
        differ = np.any(np.asarray(page.convert("RGB")) != np.asarray(by.convert("RGB")), axis=2)
        assert differ.any(axis=1).all() or differ.any(axis=0).all()  # a band that runs a whole side
        for x0, y0, x1, y1 in boxes:
            assert not differ[y0:y1, x0:x1].any()  # never on the writing


def test_a_number_by_the_table_has_the_table_along_one_side_and_the_writing_untouched(mnist):
    digits = [mnist.test_images[i] for i in range(4)]
    for seed in range(6):
        crop, boxes = render_number(digits, np.random.default_rng(seed), page="crop")
        table, table_boxes = render_number(digits, np.random.default_rng(seed), page="table")
        assert table_boxes == boxes and table.size == crop.size
        differ = np.any(np.asarray(crop) != np.asarray(table), axis=2)
        rows, cols = differ.any(axis=1), differ.any(axis=0)
        assert rows.all() or cols.all()  # a band that runs a whole side
        for x0, y0, x1, y1 in boxes:
            assert not differ[y0:y1, x0:x1].any()  # never on the writing
