"""framing: found ink -> a 28x28 MNIST digit, or a 28-px strip for the line reader."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.framing import BOX, CANVAS, MARGIN, MNIST_CENTRE, STRIP_HEIGHT, WRITING, frame_like_mnist, frame_strip


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
