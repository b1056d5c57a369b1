"""Where the writing is (`writing`): lines of pen strokes found in a page's ink, and reading order."""

import numpy as np
import pytest

from digitrec.ink import find_ink
from digitrec.printed import clean_document
from digitrec.read import PAGE_FIT
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import iter_page_set
from digitrec.writing import SEED_HEIGHT, line_pieces, lines_of_writing, reading_order


def test_reading_order_is_rows_top_to_bottom_each_left_to_right():
    boxes = [(300, 12, 400, 60), (10, 100, 90, 150), (20, 10, 120, 58), (200, 104, 260, 146), (15, 200, 80, 240)]
    assert reading_order(boxes) == [2, 0, 1, 3, 4]
    assert reading_order([]) == []


@pytest.mark.parametrize("paper", ["plain", "ruled"])
def test_every_number_on_a_page_is_a_line_of_its_own(mnist, paper):
    found_all = 0
    for page, texts, boxes in iter_page_set(mnist.test_images, mnist.test_labels, 4, 4, 3, "gap", seed=2,
                                            style=StyleConfig(paper=paper)):
        found, lines = find_ink(page, PAGE_FIT, lines_of_writing, clean=clean_document)
        got = []
        for _, line in lines:
            ys, xs = np.nonzero(line)
            got.append(found.box_to_source((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
        # Each number's own box holds the middle of exactly one line found, and each line lies in one number's box.
        inside = lambda b, g: b[0] - 4 <= (g[0] + g[2]) / 2 <= b[2] + 4 and b[1] - 4 <= (g[1] + g[3]) / 2 <= b[3] + 4  # noqa: E731
        if len(got) == len(texts) and all(sum(inside(b, g) for g in got) == 1 for b in boxes):
            found_all += 1
            assert [boxes.index(next(b for b in boxes if inside(b, g))) for g in (got[i] for i in reading_order(got))] \
                == list(range(len(boxes)))  # reading order is the order the page was written in
    assert found_all == 4


def test_one_line_is_the_first_of_every_line():
    ink = np.zeros((60, 200), np.float32)
    ink[10:30, 10:14] = ink[10:30, 30:34] = 1  # a line of two strokes, 20 px tall
    ink[40:55, 120:123] = 1  # another, lower, shorter (15 px: above SEED_HEIGHT of the first)
    ink[45:47, 170:180] = 1  # a dash alone: too short to start a line
    every = lines_of_writing(ink)
    assert len(every) == 2 and 15 / 20 >= SEED_HEIGHT
    masks, line = line_pieces(ink)
    assert np.array_equal(line, every[0][1]) and len(masks) == 2
    assert line[10:30].any() and not line[40:].any()
