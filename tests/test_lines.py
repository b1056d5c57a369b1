import math

import numpy as np
import torch

from digitrec.framing import MARGIN, STRIP_HEIGHT
from digitrec.lines import BLANK, STRIDE, compose_lines, decode
from digitrec.models import create_model


def test_compose_lines_frames_every_line_like_a_user_line(mnist):
    g = torch.Generator().manual_seed(0)
    x, targets, lengths = compose_lines(mnist.train_images[:2000], mnist.train_labels[:2000], 64, gen=g, noise=0)
    assert x.shape[:3] == (64, 1, STRIP_HEIGHT) and x.shape[3] % 4 == 0
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert targets.shape == (64, 7) and int(lengths.min()) >= 1 and int(lengths.max()) <= 7
    for t, n in zip(targets, lengths):
        assert (t[:n] < 10).all() and (t[n:] == BLANK).all()
    # The writing fills rows 4..24 (20 px), the margins hold (almost) no ink.
    rows = (x[:, 0] > 0.3).any(2).float().mean(0)
    assert rows[:MARGIN - 1].max() < 0.1 and rows[STRIP_HEIGHT - MARGIN + 1:].max() < 0.1
    assert rows[MARGIN + 2:STRIP_HEIGHT - MARGIN - 2].min() > 0.9
    assert float(x[:, 0, :, :MARGIN - 1].max()) < 0.3
    # Longer lines are wider: the layout follows the number of digits.
    widths = np.array([(x[i, 0] > 0.3).any(0).nonzero().max().item() for i in range(64)])
    assert widths[lengths.numpy() >= 5].mean() > 2 * widths[lengths.numpy() <= 2].mean()


def test_compose_lines_is_seeded_and_honours_lengths(mnist):
    a = compose_lines(mnist.train_images[:500], mnist.train_labels[:500], 8, min_digits=3, max_digits=3,
                      gen=torch.Generator().manual_seed(5))
    b = compose_lines(mnist.train_images[:500], mnist.train_labels[:500], 8, min_digits=3, max_digits=3,
                      gen=torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert (a[2] == 3).all() and a[1].shape == (8, 3)


def test_decode_collapses_repeats_and_needs_a_blank_between_equal_digits():
    def frames(seq):
        lp = torch.full((1, len(seq), 11), math.log(0.01 / 10))
        for t, c in enumerate(seq):
            lp[0, t, c] = math.log(0.99)
        return lp

    got = decode(frames([BLANK, 1, 1, BLANK, 1, 7, 7, BLANK, BLANK, 0]))[0]
    assert [d.digit for d in got] == [1, 1, 7, 0]
    assert [(d.start, d.end) for d in got] == [(1, 3), (4, 5), (5, 7), (9, 10)]
    assert all(0.98 < d.confidence <= 1 and abs(float(d.probabilities.sum()) - 1) < 1e-5 for d in got)
    assert decode(frames([BLANK] * 5))[0] == []


def test_linecnn_reads_any_width_one_frame_per_two_columns():
    model = create_model("linecnn").eval()
    for width in (16, 60, 204):
        out = model(torch.zeros(2, 1, STRIP_HEIGHT, width))
        assert out.shape == (2, width // STRIDE, 11)
        assert torch.allclose(out.exp().sum(-1), torch.ones(2, width // STRIDE), atol=1e-5)
