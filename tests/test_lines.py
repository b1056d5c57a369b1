import numpy as np
import torch

from digitrec.ctc import BLANK, CLASSES, MARKS, STRIDE
from digitrec.framing import MARGIN, STRIP_HEIGHT
from digitrec.lines import LEADING, compose_lines, document_clutter, draw_marks
from digitrec.models import create_model


def test_compose_lines_frames_every_line_like_a_user_line(mnist):
    g = torch.Generator().manual_seed(0)
    x, targets, lengths = compose_lines(mnist.train_images[:2000], mnist.train_labels[:2000], 64, gen=g, noise=0)
    assert x.shape[:3] == (64, 1, STRIP_HEIGHT) and x.shape[3] % 4 == 0
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert targets.shape == (64, 15) and int(lengths.min()) >= 1 and int(lengths.max()) <= 7
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
    assert (a[2] == 3).all() and a[1].shape == (8, 7) and (a[1][:, 3:] == BLANK).all()


def test_lines_with_marks_are_labelled_in_writing_order(mnist):
    g = torch.Generator().manual_seed(3)
    x, targets, lengths = compose_lines(mnist.train_images[:2000], mnist.train_labels[:2000], 200, min_digits=4,
                                        max_digits=6, marks=1.0, gen=g, noise=0)
    texts = ["".join(CLASSES[c] for c in t[:n].tolist()) for t, n in zip(targets, lengths)]
    assert all((t[n:] == BLANK).all() for t, n in zip(targets, lengths))
    digits = ["".join(c for c in t if c.isdigit()) for t in texts]
    assert all(4 <= len(d) <= 6 for d in digits)
    assert all(t[0].isdigit() or t[0] in LEADING for t in texts)  # a number starts with a digit, or a sign
    assert any(t[0] == "$" for t in texts) and any(t[0] == "#" for t in texts)
    assert not any(m in t[1:] for t in texts for m in LEADING)  # only before the number
    assert sum(any(m in t for m in MARKS) for t in texts) > 150  # most lines got marks
    assert any("." in t[:-1] for t in texts) and any(t.endswith("-") or t.endswith("=") for t in texts)
    assert any("/" in t or ":" in t for t in texts)
    assert x.shape[3] % 4 == 0 and 0 <= float(x.min()) and float(x.max()) <= 1


def test_draw_marks_draws_each_mark_where_it_belongs():
    kinds = torch.arange(len(MARKS))
    m = draw_marks(kinds, torch.Generator().manual_seed(0), printed=0.0)[:, 0] > 0.5  # (len(MARKS), 28, 28)
    rows, cols = m.any(2).sum(1), m.any(1).sum(1)
    dot, comma, dash, slash, colon, equals = range(6)
    assert rows[dot] <= 5 and cols[dot] <= 5
    assert rows[dash] <= 4 and cols[dash] >= 4
    assert rows[slash] >= 15 and cols[slash] >= 5
    assert rows[colon] > rows[dot] and rows[equals] > rows[dash]
    assert rows[comma] > rows[dot]
    dollar, hash_ = MARKS.index("$"), MARKS.index("#")
    assert rows[dollar] >= 10 and cols[dollar] >= 4  # an S with its bar standing out above and below
    assert rows[hash_] >= 8 and cols[hash_] >= 8


def test_draw_marks_draws_only_the_marks_asked_for_each_as_it_would_be_drawn_anyway():
    kinds = torch.arange(len(MARKS)).repeat(4)
    drawn = torch.rand(len(kinds), generator=torch.Generator().manual_seed(1)) < 0.5
    every = draw_marks(kinds, torch.Generator().manual_seed(0), printed=0.5)
    some = draw_marks(kinds, torch.Generator().manual_seed(0), printed=0.5, drawn=drawn)
    assert drawn.any() and (~drawn).any()
    assert torch.equal(some[drawn], every[drawn]) and not some[~drawn].any()


def test_a_printed_sign_is_thinner_and_greyer_than_a_written_one_and_the_other_marks_are_as_written():
    kinds = torch.tensor([MARKS.index("$"), MARKS.index("#")] * 32 + [MARKS.index(".")])
    written = draw_marks(kinds, torch.Generator().manual_seed(0), printed=0.0)[:, 0]
    printed = draw_marks(kinds, torch.Generator().manual_seed(0), printed=1.0)[:, 0]
    ink = lambda x: x.flatten(1).sum(1)  # noqa: E731
    assert (ink(printed[:-1]) < ink(written[:-1])).float().mean() > 0.9  # a type's strokes: a third to a half of a pen's
    peak = printed[:-1].flatten(1).amax(1)  # thin strokes anti-aliased, at 55-100% of the ink
    assert 0.3 < float(peak.min()) and float(peak.median()) < 0.9 < float(written[:-1].flatten(1).amax(1).min())
    assert torch.equal(printed[-1], written[-1])  # a period is a pen's either way


def test_printed_signs_change_no_text_and_off_draw_as_before(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]
    lines = lambda **kw: compose_lines(imgs, labels, 64, marks=1.0, gen=torch.Generator().manual_seed(5), **kw)  # noqa: E731
    (plain, y, n), (off, _, _), (typed, y1, n1) = lines(), lines(printed_signs=0.0), lines(printed_signs=1.0)
    assert torch.equal(y, y1) and torch.equal(n, n1)  # the same texts, signs included: only their look changes
    signs = [len(CLASSES) - len(MARKS) + MARKS.index(t) for t in LEADING]
    assert torch.isin(y[:, 0], torch.tensor(signs)).any()
    assert torch.equal(plain, off) and not torch.equal(plain, typed)


def test_glyph_digits_add_lifted_5s_to_the_same_texts_and_unnamed_draw_as_before(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]
    lines = lambda **kw: compose_lines(imgs, labels, 64, glyphs=1.0, gen=torch.Generator().manual_seed(5), **kw)  # noqa: E731
    (plain, y, n), (old, _, _), (fives, y1, n1) = lines(), lines(glyph_digits="249"), lines(glyph_digits="2459")
    assert torch.equal(y, y1) and torch.equal(n, n1) and (y == 5).any()  # the same texts: only the 5s' look changes
    assert torch.equal(plain, old) and not torch.equal(plain, fives)


def test_document_clutter_adds_faint_lines_and_waves_but_keeps_black_lines_black():
    x = torch.zeros(64, 1, 28, 120)
    out = document_clutter(x, 3.0, torch.Generator().manual_seed(0))
    touched = out.flatten(1).amax(1) > 0
    assert 0.5 < touched.float().mean() < 1.0 and out.max() <= 1
    assert torch.equal(document_clutter(x, 0.0, torch.Generator().manual_seed(0)), x)


def test_linecnn_reads_any_width_one_frame_per_two_columns():
    model = create_model("linecnn").eval()
    for width in (16, 60, 204):
        out = model(torch.zeros(2, 1, STRIP_HEIGHT, width))
        assert out.shape == (2, width // STRIDE, 11)
        assert torch.allclose(out.exp().sum(-1), torch.ones(2, width // STRIDE), atol=1e-5)
    assert create_model("linecnn", classes=BLANK + 1)(torch.zeros(1, 1, STRIP_HEIGHT, 40)).shape == (1, 20, BLANK + 1)


def test_stretch_widens_and_narrows_digits_and_off_draws_as_before(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]

    def widths(**kw):
        x, _, _ = compose_lines(imgs, labels, 200, min_digits=1, max_digits=1, augment=0.0, noise=0.0,
                                gen=torch.Generator().manual_seed(7), **kw)
        cols = (x[:, 0] > 0.3).any(1)  # (n, W)
        return cols.float().sum(1), x

    plain, a = widths()
    _, b = widths(stretch=1.0)
    wide, _ = widths(stretch=1.6)
    assert torch.equal(a, b)
    assert wide.std() > 1.2 * plain.std()  # the same digits, more varied widths


def test_line_stretch_widens_a_whole_line_at_once_and_off_draws_as_before(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]

    def widths(**kw):  # ink columns of 4-digit lines, the same digits each time
        x, _, _ = compose_lines(imgs, labels, 300, min_digits=4, max_digits=4, augment=0.0, noise=0.0, clutter=0.0,
                                slant=0.0, gen=torch.Generator().manual_seed(11), **kw)
        return (x[:, 0] > 0.3).any(1).float().sum(1), x

    plain, a = widths()
    _, b = widths(line_stretch=1.0)
    per_digit, _ = widths(stretch=1.5)
    whole_line, _ = widths(line_stretch=1.5)
    assert torch.equal(a, b)
    # One factor for the whole line moves its width far more than a factor per digit, which averages out.
    assert whole_line.std() > 1.3 * per_digit.std() and whole_line.std() > 1.5 * plain.std()


def test_joins_add_rising_strokes_between_close_digits_and_nothing_else(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]

    def lines(joins):
        return compose_lines(imgs, labels, 60, min_digits=4, max_digits=4, noise=0.0, joins=joins,
                             gen=torch.Generator().manual_seed(3))

    (plain, t0, _), (joined, t1, _) = lines(0.0), lines(1.0)
    assert torch.equal(t0, t1)
    added = (joined - plain).clamp(min=0)[:, 0]  # (n, 28, W)
    assert (joined >= plain - 1e-6).all()
    changed = added.flatten(1).amax(1) > 0.5
    assert 0.3 < float(changed.float().mean()) <= 1.0  # most lines have a close pair; some have none
    # The stroke rises to the right: its ink's rows fall as its columns grow.
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(added.shape[-1] * 1.0), indexing="ij")
    slopes = []
    for a in added[changed]:
        w = (a > 0.5).float()
        cx, cy = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()
        slopes.append(float(((xs - cx) * (ys - cy) * w).sum() / ((xs - cx) ** 2 * w).sum()))
    assert np.median(slopes) < 0
    one, _, _ = compose_lines(imgs, labels, 4, min_digits=1, max_digits=1, joins=1.0)  # nothing to join
    assert one.shape[0] == 4


def test_zero_chains_end_lines_in_touching_zeros_and_off_draws_as_before(mnist):
    imgs, labels = mnist.train_images[:2000], mnist.train_labels[:2000]

    def lines(**kw):
        return compose_lines(imgs, labels, 200, min_digits=5, max_digits=5, noise=0.0, clutter=0.0, slant=0.0,
                             marks=0.0, gen=torch.Generator().manual_seed(4), **kw)

    def trailing_zeros(targets, lengths):
        digits = ["".join(str(c) for c in t[:n].tolist() if c < 10) for t, n in zip(targets, lengths)]
        return np.array([len(d) - len(d.rstrip("0")) for d in digits])

    def blank_columns(x):  # per line: columns without ink between its first and last inked ones
        cols = (x[:, 0] > 0.3).any(1)
        return np.array([int((~c[c.nonzero()[0, 0]:c.nonzero()[-1, 0]]).sum()) for c in cols])

    (a, ta, na), (b, tb, _), (chains, tc, nc) = lines(), lines(zero_chains=0.0), lines(zero_chains=1.0)
    assert torch.equal(a, b) and torch.equal(ta, tb)  # off draws as before
    assert torch.equal(na, nc)  # digits become zeros; none is added
    plain, chained = trailing_zeros(ta, na), trailing_zeros(tc, nc)
    assert (plain >= 2).mean() < 0.05 and (chained >= 2).all() and (chained == 4).any()
    # The run's zeros touch: far fewer columns of the line are blank.
    assert blank_columns(chains).mean() < 0.7 * blank_columns(a).mean()


def test_small_tail_writes_the_last_digits_smaller_on_the_same_baseline_and_off_draws_as_before(mnist):
    imgs, labels = mnist.train_images[:500], mnist.train_labels[:500]

    def lines(**kw):
        return compose_lines(imgs, labels, 200, min_digits=4, max_digits=4, augment=0.0, noise=0.0, clutter=0.0,
                             slant=0.0, gen=torch.Generator().manual_seed(5), **kw)

    def ends(x):  # per line: (rows, lowest row) of the ink in its first and its last fifth of columns
        out = []
        for ink in x[:, 0] > 0.3:
            cols = torch.nonzero(ink.any(0))[:, 0]
            c0, c1 = int(cols[0]), int(cols[-1])
            fifth = max(1, (c1 - c0) // 5)
            parts = [torch.nonzero(ink[:, a:b].any(1))[:, 0] for a, b in ((c0, c0 + fifth), (c1 + 1 - fifth, c1 + 1))]
            out.append([(len(p), int(p[-1])) for p in parts])
        return np.array(out)  # (n, 2 ends, (rows, lowest))

    (a, ta, _), (b, _, _), (small, ts, _) = lines(), lines(small_tail=0.0), lines(small_tail=1.0)
    assert torch.equal(a, b) and torch.equal(ta, ts)  # off draws as before; the text never changes
    plain, tail = ends(a), ends(small)
    size, small_size = np.median(plain[:, 1, 0] / plain[:, 0, 0]), np.median(tail[:, 1, 0] / tail[:, 0, 0])
    assert size > 0.85 and small_size < size - 0.15  # MNIST's digits are about one size; the last is smaller...
    assert np.median(np.abs(tail[:, 1, 1] - tail[:, 0, 1])) <= 2  # ... and stands on the same baseline
