"""User-style synthetic pictures: determinism, geometry, polarity, effects on/off, saving."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from digitrec.synth import (StyleConfig, canvas_size, ink_on_paper, iter_user_style_set, place_digit, render_digit,
                            render_digit_with_box, save_user_style_set)


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.test_images[:64].numpy(), mnist.test_labels[:64].numpy()


def lum(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_same_seed_same_pixels_different_seed_different(digits):
    x, _ = digits
    a, b = render_digit(x[0], rng(7)), render_digit(x[0], rng(7))
    assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    c = render_digit(x[0], rng(8))
    assert c.size != a.size or not np.array_equal(np.asarray(a), np.asarray(c))


def test_sizes_modes_and_polarity_over_many_samples(digits):
    x, _ = digits
    longs, aspects = [], []
    for i in range(50):
        img, (x0, y0, x1, y1) = render_digit_with_box(x[i], rng(100 + i))
        assert img.mode == "RGB"
        w, h = img.size
        longs.append(max(w, h))
        aspects.append(w / h)
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        g = lum(img)
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        # Light paper, dark ink: the darkest pixels of the digit's box are far below the paper.
        assert np.median(border) > 90
        assert np.percentile(g[y0:y1, x0:x1], 5) < np.median(border) - 40
    assert 40 <= min(longs) and max(longs) <= 600
    assert min(longs) < 120 and max(longs) > 350  # log-uniform: both small and large pictures occur
    assert 0.73 <= min(aspects) and max(aspects) <= 1.36
    assert min(aspects) < 0.9 and max(aspects) > 1.15


def test_canvas_size_respects_custom_ranges():
    style = StyleConfig(long_side=(100, 120), aspect=(1.0, 1.0))
    for i in range(20):
        h, w = canvas_size(rng(i), style)
        assert h == w and 100 <= h <= 120


def test_ink_is_darker_than_paper_under_default_effects(digits):
    x, _ = digits
    for i in range(20):
        r = rng(200 + i)
        mask, _ = place_digit(x[i], canvas_size(r), r)
        g = lum(ink_on_paper(mask, r))
        assert g.shape == mask.shape
        ink, paper = g[mask > 0.9], g[mask == 0]
        assert ink.size > 0 and ink.mean() < np.median(paper) - 30, i


def test_place_digit_box_holds_the_digit_and_it_is_not_clipped(digits):
    x, _ = digits
    centres = []
    for i in range(40):
        r = rng(300 + i)
        hw = canvas_size(r)
        mask, (x0, y0, x1, y1) = place_digit(x[i], hw, r)
        h, w = hw
        assert mask.shape == hw and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() > 0.9
        # Not clipped: a margin of empty canvas all round.
        assert 0 < x0 < x1 < w and 0 < y0 < y1 < h
        assert mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0
        # The box holds all the ink, and the ink's centre of mass lies in it.
        assert mask.sum() - mask[y0:y1, x0:x1].sum() < 1e-3 * mask.sum()
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy = (mask * xx).sum() / mask.sum(), (mask * yy).sum() / mask.sum()
        assert x0 <= cx < x1 and y0 <= cy < y1
        # Digit height is a sizeable fraction of the short side, never more than the canvas allows.
        assert 0.15 * min(h, w) <= y1 - y0 <= 0.95 * min(h, w)
        centres.append(((cx / w), (cy / h)))
    c = np.array(centres)
    assert c.std(axis=0).min() > 0.05  # placed off-centre, not always in the middle


def test_placed_digit_has_the_shape_of_the_source(digits):
    x, _ = digits
    style = StyleConfig(rotation=0.0, shear=0.0, thickness_px=0, threshold=(0.4, 0.4))
    for i in range(10):
        mask, (x0, y0, x1, y1) = place_digit(x[i], (200, 160), rng(i), style)
        ys, xs = np.nonzero(x[i] > 25)
        src = x[i][ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
        crop = Image.fromarray(mask[y0:y1, x0:x1], "F").resize(src.shape[::-1], Image.Resampling.BOX)
        corr = np.corrcoef(np.asarray(crop).ravel(), src.ravel())[0, 1]
        assert corr > 0.75, (i, corr)  # the same digit, not mirrored, transposed or garbled


def test_clean_style_gives_uniform_paper_outside_the_digit(digits):
    x, _ = digits
    style = StyleConfig.clean()
    assert style.p_jpeg == 0 and style.p_distractors == 0 and style.light_min == 1.0
    for i in range(10):
        r = rng(400 + i)
        mask, _ = place_digit(x[i], canvas_size(r, style), r, style)
        a = np.asarray(ink_on_paper(mask, r, style)).reshape(-1, 3)
        paper = np.unique(a[mask.ravel() == 0], axis=0)
        assert len(paper) == 1 and paper.mean() >= 170  # one light colour, no noise, light or JPEG
        assert a[mask.ravel() > 0.9].mean() < paper.mean() - 80


@pytest.mark.parametrize("effect", [dict(light_min=0.55), dict(noise_sigma=(4.0, 8.0)), dict(texture=0.04),
                                    dict(p_distractors=1.0), dict(specks=0.02)])
def test_each_effect_can_be_turned_on_alone(digits, effect):
    x, _ = digits
    style = StyleConfig.clean(**effect)
    changed = 0
    for i in range(6):
        r = rng(500 + i)
        mask, _ = place_digit(x[i], canvas_size(r, style), r, style)
        a = np.asarray(ink_on_paper(mask, r, style)).reshape(-1, 3)
        changed += len(np.unique(a[mask.ravel() == 0], axis=0)) > 1
    assert changed >= 5  # the paper is no longer one flat colour


def test_specks_set_a_share_of_the_pixels_black_or_white(digits):
    x, _ = digits
    style = StyleConfig.clean(specks=0.02)
    r = rng(600)
    mask, _ = place_digit(x[0], canvas_size(r, style), r, style)
    a = np.asarray(ink_on_paper(mask, r, style)).reshape(-1, 3)
    paper = a[mask.ravel() == 0]
    white, black = (paper == 255).all(1).mean(), (paper == 0).all(1).mean()
    assert 0.002 < white < 0.011 and 0.002 < black < 0.011  # half of 0.5-2% each, less repeats


def test_jpeg_changes_the_picture_a_little(digits):
    x, _ = digits
    base = StyleConfig.clean(noise_sigma=(3.0, 3.0))
    for i in range(5):
        # The JPEG draw is the last step, so the same seed gives the same picture before encoding.
        plain = np.asarray(render_digit(x[i], rng(600 + i), base), dtype=np.float32)
        jpeg = np.asarray(render_digit(x[i], rng(600 + i), replace(base, p_jpeg=1.0)), dtype=np.float32)
        assert plain.shape == jpeg.shape
        diff = np.abs(plain - jpeg)
        assert diff.max() > 0 and diff.mean() < 12


def test_blur_softens_edges(digits):
    x, _ = digits
    sharp = StyleConfig.clean(long_side=(400, 400))
    blurred = replace(sharp, blur_radius=(1.5, 1.5))
    g0, g1 = lum(render_digit(x[0], rng(1), sharp)), lum(render_digit(x[0], rng(1), blurred))
    assert np.abs(np.diff(g1, axis=1)).max() < np.abs(np.diff(g0, axis=1)).max()


def test_user_style_set_is_seeded_per_image_and_accepts_torch_or_numpy(mnist):
    images, labels = mnist.test_images[:6], mnist.test_labels[:6]
    five = list(iter_user_style_set(images, labels, 5, seed=3))
    three = list(iter_user_style_set(images.numpy(), labels.numpy(), 3, seed=3))
    assert [lab for _, lab in five] == labels[:5].tolist()
    for (a, la), (b, lb) in zip(three, five):  # image i does not depend on n
        assert la == lb and np.array_equal(np.asarray(a), np.asarray(b))
    other = list(iter_user_style_set(images, labels, 1, seed=4))[0][0]
    assert other.size != five[0][0].size or not np.array_equal(np.asarray(other), np.asarray(five[0][0]))
    with pytest.raises(ValueError):
        list(iter_user_style_set(images, labels, 7))


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_save_writes_pictures_and_labels_csv(tmp_path, mnist, fmt):
    images, labels = mnist.test_images[:4], mnist.test_labels[:4]
    csv_path = save_user_style_set(tmp_path / "set", images, labels, 4, seed=1, fmt=fmt)
    assert csv_path == tmp_path / "set" / "labels.csv"
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["label"]) for r in rows] == labels.tolist()
    assert sorted(p.name for p in csv_path.parent.glob(f"*.{fmt}")) == [r["file"] for r in rows]
    expected = list(iter_user_style_set(images, labels, 4, seed=1))
    for r, (img, label) in zip(rows, expected):
        assert r["file"] == f"{rows.index(r):05d}_label{label}.{fmt}"
        with Image.open(csv_path.parent / r["file"]) as saved:
            assert saved.mode == "RGB" and saved.size == img.size
            if fmt == "png":  # lossless: exactly the generated picture
                assert np.array_equal(np.asarray(saved), np.asarray(img))
    with pytest.raises(ValueError):
        save_user_style_set(tmp_path / "bad", images, labels, 1, fmt="gif")


def test_rejects_non_2d_digit():
    with pytest.raises(ValueError):
        render_digit(np.zeros((1, 28, 28), np.uint8), rng(0))


def test_place_digit_fits_small_and_extreme_canvases(digits):
    x, _ = digits
    for hw in [(16, 16), (30, 200), (200, 30)]:
        for i in range(5):
            mask, (x0, y0, x1, y1) = place_digit(x[i], hw, rng(i))
            assert mask.shape == hw and 0 < x0 < x1 < hw[1] and 0 < y0 < y1 < hw[0]
    with pytest.raises(ValueError):
        place_digit(x[0], (10, 40), rng(0))


def test_framed_digits(digits):
    from digitrec.synth import frame_digit, render_digit_with_box

    x, _ = digits
    for i in range(10):
        rng = np.random.default_rng(i)
        img, box = render_digit_with_box(x[i], rng)
        tight = frame_digit(img, box, "tight", rng)
        assert tight.size == (box[2] - box[0], box[3] - box[1])
        negative = frame_digit(img, box, "negative", rng)
        assert np.array_equal(np.asarray(negative), 255 - np.asarray(tight.convert("RGB")))
        scan = frame_digit(img, box, "bilevel", rng)  # a black-and-white scan, cropped tight, 20-60 px tall
        values = np.unique(np.asarray(scan.convert("L")))
        assert scan.mode == "1" and set(values) == {0, 255} and scan.height <= 60
        boxed = lum(frame_digit(img, box, "box", np.random.default_rng(i)))
        # The printed box's lines run along the cut-out cell: dark rows (columns) near its edges,
        # on every side the picture had room for.
        h, w = boxed.shape
        paper = np.percentile(boxed, 90)
        dark_rows, dark_cols = boxed.mean(1) < paper - 40, boxed.mean(0) < paper - 40
        sides = [dark_rows[:h // 6].any(), dark_rows[-(h // 6):].any(), dark_cols[:w // 6].any(), dark_cols[-(w // 6):].any()]
        assert sum(sides) >= 3, (i, sides)
    with pytest.raises(ValueError):
        frame_digit(img, box, "circle", rng)


def test_a_photo_by_the_table_has_a_dark_band_along_one_side_and_the_digit_untouched(digits):
    from digitrec.synth import frame_digit, render_digit_with_box

    x, _ = digits
    sides = set()
    for i in range(20):
        rng = np.random.default_rng(i)
        img, box = render_digit_with_box(x[i], rng)
        table = lum(frame_digit(img, box, "table", rng))
        photo = lum(img)
        assert table.shape == photo.shape
        changed = np.abs(table - photo) > 30
        x0, y0, x1, y1 = box
        assert not changed[y0:y1, x0:x1].any(), i  # the digit as it was
        rows, cols = np.flatnonzero(changed.all(1)), np.flatnonzero(changed.all(0))  # a band runs the whole side
        band = [side for side, hit in (("top", rows.size and rows[0] == 0), ("bottom", rows.size and rows[-1] == len(changed) - 1),
                                       ("left", cols.size and cols[0] == 0), ("right", cols.size and cols[-1] == changed.shape[1] - 1)) if hit]
        assert len(band) == 1, (i, band)
        sides.add(band[0])
        assert table[changed].mean() < 100  # dark: a table, not paper
    assert len(sides) >= 3


def test_a_cell_cut_from_a_row_of_cells_shows_its_neighbours(digits):
    from digitrec.synth import frame_digit, render_digit_with_box

    x, _ = digits
    runs = 0  # pictures that show it (a cell at the photo's edge may lose a line, a shadow may darken a side)
    for i in range(10):
        img, box = render_digit_with_box(x[i], np.random.default_rng(i))
        cell = lum(frame_digit(img, box, "cells", np.random.default_rng(i)))
        # The top and bottom lines run on to the picture's sides (with gaps where the cells are
        # printed apart), and the walls stand in from them.
        paper = np.percentile(cell, 90)
        dark = cell < paper - 40
        across = np.flatnonzero((dark.mean(1) > 0.6) & dark[:, :2].any(1) & dark[:, -2:].any(1))
        walls = np.flatnonzero(dark.mean(0) > 0.6)
        runs += across.size > 0 and walls.size > 0 and walls.min() > 0 and walls.max() < cell.shape[1] - 1
    assert runs >= 7, runs


def test_a_cell_printed_in_a_dropout_colour_is_coloured_where_the_paper_is_grey(digits):
    from digitrec.synth import frame_digit, render_digit_with_box

    x, _ = digits
    coloured = 0
    for i in range(10):
        img, box = render_digit_with_box(x[i], np.random.default_rng(i))
        cell = np.asarray(frame_digit(img, box, "dropout", np.random.default_rng(i)).convert("RGB"), np.int16)
        spread = cell.max(axis=2) - cell.min(axis=2)  # a light blue, red or green stands out of grey paper by hue
        rows, cols = (spread > 40).mean(axis=1), (spread > 40).mean(axis=0)
        coloured += rows.max() > 0.6 and cols.max() > 0.6  # the cell's top or bottom, and a wall
    assert coloured >= 7, coloured
