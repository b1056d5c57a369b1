"""framing: found ink -> a 28x28 MNIST digit, or a 28-px strip for the line reader."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.framing import (BOX, CANVAS, MARGIN, MNIST_CENTRE, STRIP_HEIGHT, WRITING, frame_like_mnist, frame_strip,
                              level_line, line_slope)


def test_frame_like_mnist_fits_20_px_keeping_the_aspect_and_centres_the_mass():
    ink = np.zeros((300, 200), np.float32)
    ink[50:250, 80:120] = 1.0  # a bar 200 px tall, 40 wide
    image, box = frame_like_mnist(ink, ink > 0.5)
    assert box == (80, 50, 120, 250) and image.shape == (CANVAS, CANVAS)
    ys, xs = np.nonzero(image > 0.5)
    assert ys.max() - ys.min() + 1 == BOX and xs.max() - xs.min() + 1 < 10
    cy, cx = (image * np.indices(image.shape)).reshape(2, -1).sum(1) / image.sum()
    assert abs(cy - MNIST_CENTRE) <= 0.5 and abs(cx - MNIST_CENTRE) <= 0.5


def test_frame_strip_scales_the_writing_to_20_px_and_keeps_the_aspect():
    ink = np.zeros((120, 400), np.float32)
    ink[30:90, 50:70] = 1.0  # a bar 60 px tall, 20 wide
    ink[30:90, 200:350] = 1.0  # a block 150 wide, 200 px after the first bar's left edge
    strip, box, scale = frame_strip(ink, ink > 0.5)
    assert box == (50, 30, 350, 90)
    assert strip.shape[0] == STRIP_HEIGHT and strip.shape[1] % 4 == 0
    assert scale == pytest.approx(WRITING / 60, rel=0.02)
    rows = np.nonzero(strip.max(1) > 0.5)[0]
    assert rows[0] == (STRIP_HEIGHT - WRITING) // 2 and rows[-1] == (STRIP_HEIGHT + WRITING) // 2 - 1
    cols = np.nonzero(strip.max(0) > 0.5)[0]
    assert cols[0] == MARGIN and cols[-1] == pytest.approx(MARGIN + 300 * scale, abs=1.5)


def _bars_climbing(slope: float) -> np.ndarray:
    """Six upright bars 40 px tall, 30 px apart, each starting `slope` rows per column lower."""
    ink = np.zeros((160, 240), np.float32)
    for i in range(6):
        x = 20 + 36 * i
        y = int(round(60 + slope * (x - 20)))
        ink[y:y + 40, x:x + 6] = 1.0
    return ink


@pytest.mark.parametrize("slope", [-0.2, 0.12])
def test_a_sloping_line_is_levelled_column_by_column(slope):
    ink = _bars_climbing(slope)
    mask = ink > 0.5
    assert line_slope(ink, mask) == pytest.approx(slope, abs=0.01)
    level, kept = level_line(ink, mask)
    rows = np.nonzero(kept.any(1))[0]
    assert rows[-1] - rows[0] + 1 <= 42  # the bars side by side again, 40 px tall
    assert np.array_equal(kept.sum(0), mask.sum(0))  # a shear: each column keeps its pixels and its x
    assert level.sum() == pytest.approx(ink.sum(), rel=0.01)


def test_a_level_line_and_a_single_digit_are_left_as_they_are():
    ink = _bars_climbing(0.02)
    assert level_line(ink, ink > 0.5)[0] is ink
    leaning = np.zeros((100, 60), np.float32)
    for y in range(80):  # one stroke leaning hard, taller than wide: a digit's own slope
        leaning[10 + y, 10 + y // 2:14 + y // 2] = 1.0
    assert level_line(leaning, leaning > 0.5)[0] is leaning


def test_a_line_whose_fit_is_tilted_by_an_underline_is_not_levelled():
    # Digits on the level with a long underline starting under the first and rising a little to the
    # right: the fit tilts, but levelling would not narrow the writing's rows, so nothing moves.
    ink = _bars_climbing(0.0)
    for x in range(10, 235):
        y = int(round(108 - 0.25 * (x - 10)))
        ink[y:y + 3, x] = 1.0
    mask = ink > 0.5
    assert abs(line_slope(ink, mask)) > 0.05
    assert level_line(ink, mask)[0] is ink



def test_a_filled_blob_is_not_thinned_to_a_sliver():
    # An 8 whose loops are filled (a thick marker on a black-and-white scan) is one blob, no stroke:
    # eroded to MNIST's stroke width it was a sliver half its height, read as a 1 for sure.
    yy, xx = np.mgrid[:120, :120]
    blob = (((yy - 60) / 50) ** 2 + ((xx - 60) / 30) ** 2 <= 1).astype(np.float32)  # 100 tall, 60 wide
    image, _ = frame_like_mnist(blob, blob > 0.5)
    ys, xs = np.nonzero(image > 0.5)
    assert ys.max() - ys.min() + 1 >= 0.9 * BOX and xs.max() - xs.min() + 1 >= 0.4 * BOX  # its shape kept
