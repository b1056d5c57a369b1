import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digitrec.augment import augment_batch, random_affine, stroke_thickness


def _digits(mnist, n=64):
    return mnist.train_images[:n].float().div(255).unsqueeze(1)  # (n, 1, 28, 28) in [0, 1]


def _row_centre(t):
    ys = torch.arange(28.0).view(1, 1, 28, 1)
    return (t * ys).sum((1, 2, 3)) / t.sum((1, 2, 3))


def test_off_means_untouched(mnist):
    x = _digits(mnist)
    assert augment_batch(x, 0.0) is x


def test_seeded_and_batched(mnist):
    x = _digits(mnist)
    a = augment_batch(x, 1.0, torch.Generator().manual_seed(5), elastic=1.5)
    b = augment_batch(x, 1.0, torch.Generator().manual_seed(5), elastic=1.5)
    c = augment_batch(x, 1.0, torch.Generator().manual_seed(6), elastic=1.5)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= a.min() and a.max() <= 1
    # Each image gets its own draw: the change differs from image to image.
    change = (a - x).abs().flatten(1).sum(1)
    assert change.std() > 0.1 * change.mean()


def test_thickness_thickens_and_thins(mnist):
    x = _digits(mnist)
    g = torch.Generator().manual_seed(0)
    thick = stroke_thickness(x, p_thicker=1.0, p_thinner=0.0, gen=g)
    thin = stroke_thickness(x, p_thicker=0.0, p_thinner=1.0, gen=g)
    mass = x.sum((1, 2, 3))
    assert (thick.sum((1, 2, 3)) > 1.2 * mass).all()
    assert (thin.sum((1, 2, 3)) < 0.9 * mass).all()
    assert (thin.sum((1, 2, 3)) > 0).all()  # thinner, not erased


def test_affine_moves_ink_but_keeps_it(mnist):
    x = _digits(mnist)
    g = torch.Generator().manual_seed(1)
    y = random_affine(x, degrees=0, scale=(1, 1), shear=0, translate=0.1, gen=g)
    assert (_row_centre(y) - _row_centre(x)).abs().max() > 1.0  # moved by up to 2.8 px
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.15)  # ink kept (MNIST has margins)
    z = random_affine(x, degrees=0, scale=(1, 1), shear=0, translate=0, gen=g)
    assert torch.allclose(z, x, atol=1e-5)  # the identity warp is exact


def test_elastic_bends_strokes(mnist):
    x = _digits(mnist)
    kw = dict(degrees=0, scale=(1, 1), shear=0, translate=0)
    y = random_affine(x, elastic=2.0, gen=torch.Generator().manual_seed(2), **kw)
    assert (y - x).abs().sum() > 0.05 * x.sum()
    # A warp stretches some strokes and squeezes others, but keeps the ink overall.
    assert abs(y.sum() / x.sum() - 1) < 0.1


def test_flags_only_ones_and_only_to_the_left_of_the_top(mnist):
    x = _digits(mnist, 200)
    labels = mnist.train_labels[:200]
    g = torch.Generator().manual_seed(3)
    from digitrec.augment import flag_ones

    y = flag_ones(x, labels, p=1.0, gen=g)
    ones, others = labels == 1, labels != 1
    assert torch.equal(y[others], x[others])  # other digits untouched
    added = (y - x)[ones].clamp(min=0)
    assert (added.sum((1, 2, 3)) > 3).all()  # every 1 got a visible stroke
    # The flag hangs from the top of the stroke towards the left, in the upper part of the digit.
    cols = torch.arange(28.0)
    rows = torch.arange(28.0)[:, None]
    ink_x = (x[ones] * cols).sum((1, 2, 3)) / x[ones].sum((1, 2, 3))
    flag_x = (added * cols).sum((1, 2, 3)) / added.sum((1, 2, 3))
    ink_y = (x[ones] * rows).sum((1, 2, 3)) / x[ones].sum((1, 2, 3))
    flag_y = (added * rows).sum((1, 2, 3)) / added.sum((1, 2, 3))
    # (A slanted 1 leans left already, so its flag need not be left of the stroke's middle.)
    assert (flag_x < ink_x).float().mean() > 0.75 and (flag_y < ink_y).float().mean() > 0.9
    assert torch.equal(flag_ones(x, labels, p=0.0, gen=g), x)


def test_crosses_only_sevens_through_the_middle_of_the_stem(mnist):
    from digitrec.augment import cross_sevens

    x = _digits(mnist, 300)
    labels = mnist.train_labels[:300]
    y = cross_sevens(x, labels, p=1.0, gen=torch.Generator().manual_seed(3))
    sevens = labels == 7
    assert torch.equal(y[~sevens], x[~sevens])
    added = (y - x)[sevens].clamp(min=0)
    assert (added.sum((1, 2, 3)) > 2).float().mean() > 0.9  # nearly every 7 got a visible bar
    rows = torch.arange(28.0)[:, None]
    ink = x[sevens]
    top = torch.stack([r.nonzero()[:, 0].min() for r in (ink[:, 0] > 0.5)]).float()
    bottom = torch.stack([r.nonzero()[:, 0].max() for r in (ink[:, 0] > 0.5)]).float()
    bar_y = (added * rows).sum((1, 2, 3)) / added.sum((1, 2, 3)).clamp(min=1e-6)
    middle = (bar_y - top) / (bottom - top)
    assert ((middle > 0.3) & (middle < 0.7)).float().mean() > 0.8  # across the stem's middle, not its top
    assert torch.equal(cross_sevens(x, labels, p=0.0), x)


def test_noise_family_each_does_what_it_says(mnist):
    from digitrec.augment import blotches, broken_strokes, noise_family, specks, uneven_brightness

    x = _digits(mnist)

    def g():  # a fresh, equal generator per call
        return torch.Generator().manual_seed(9)

    mass = x.sum((1, 2, 3))
    background = x == 0
    sp = specks(x, density=0.02, gen=g())
    assert (sp[background] > 0).float().mean() > 0.01  # new bright pixels on the background
    bl = blotches(x, gen=g())
    assert (bl >= x).all() and (bl.sum((1, 2, 3)) > mass).float().mean() > 0.5
    br = broken_strokes(x, gen=g())
    assert (br <= x).all() and (br.sum((1, 2, 3)) < mass).all()  # ink removed, from every digit
    un = uneven_brightness(x, depth=0.6, gen=g())
    assert (un <= x + 1e-6).all() and (un.sum((1, 2, 3)) < mass).float().mean() > 0.9
    from digitrec.augment import levels, salt_and_pepper

    sp2 = salt_and_pepper(x, amount=0.3, gen=g())
    flipped = (sp2 != x).float().mean((1, 2, 3))
    assert flipped.max() > 0.1 and flipped.max() < 0.31  # up to 30% of pixels, a random share each
    lv = levels(x, lift=0.5, gen=g())
    assert (lv[background] > 0).float().mean() > 0.9 and lv.max() <= 1  # background no longer black
    assert ((lv.amax((1, 2, 3)) - lv.amin((1, 2, 3))) >= 0.2 - 1e-6).all()  # the digit still stands out
    a, b = noise_family(x, 1.0, g()), noise_family(x, 1.0, g())
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(noise_family(x, 0.0, g()), x)


def test_preview_rows(mnist):
    from digitrec.augment import preview

    x = _digits(mnist, 8)
    rows = preview(x, mnist.train_labels[:8], seed=1)
    names = [name for name, _ in rows]
    assert names[0] == "original" and {"affine", "elastic", "thicker", "thinner", "specks", "blotches", "broken",
                                       "uneven", "salt & pepper", "levels", "flagged 1s"} <= set(names)
    assert all(imgs.shape == x.shape for _, imgs in rows)
    assert all(not torch.equal(imgs, x) for name, imgs in rows if name not in ("original", "flagged 1s", "crossed 7s"))


def test_preview_digits_are_the_first_with_a_few_ones(mnist):
    from digitrec.augment import preview_digits

    x, labels = preview_digits(mnist.train_images, mnist.train_labels, 16)
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x[:12], _digits(mnist, 12)) and torch.equal(labels[:12], mnist.train_labels[:12])
    assert (labels[12:] == 1).all()  # so that the flagged 1s row shows flags


def test_preview_grid_draws_a_labelled_row_per_augmentation(mnist):
    from digitrec.augment import preview, preview_grid

    x = _digits(mnist, 5)
    rows = preview(x, mnist.train_labels[:5], seed=1)
    grid = preview_grid(rows, scale=2)
    assert grid.mode == "L" and grid.size == (90 + 5 * 56, len(rows) * 56)
    pixels = torch.from_numpy(np.array(grid))  # (H, W) uint8
    # The first row is the digits themselves, each pixel drawn as a 2x2 block; the name is on the left.
    assert torch.equal(pixels[:56:2, 90::2], (torch.cat(list(x[:, 0]), 1) * 255).to(torch.uint8))
    assert (pixels[:56, :90] > 40).any()


def test_extremes_each_does_what_it_says(mnist):
    from digitrec.augment import extremes_family, hollow, inverted_band, lines_across, tilt

    x = _digits(mnist)

    def g():
        return torch.Generator().manual_seed(3)

    mass = x.sum((1, 2, 3))
    # Tilt: the ink is turned, not moved or lost (its centre stays, its amount nearly does).
    t = tilt(x, degrees=45, gen=g())
    assert ((t - x).abs().sum((1, 2, 3)) > 0.2 * mass).float().mean() > 0.8
    assert ((t.sum((1, 2, 3)) - mass).abs() < 0.15 * mass).float().mean() > 0.9
    # Lines across add ink (never remove it) in long thin runs, off the digit too.
    la = lines_across(x, gen=g())
    added = ((la > 0.1) & (x == 0)).sum((1, 2, 3))  # (a line along a 1's stroke adds little)
    assert (la >= x).all() and added.median() >= 10 and (added >= 5).float().mean() > 0.9
    # Hollow strokes: the stroke cores go dark, a rim stays.
    core = F.max_pool2d(-F.max_pool2d(-x, 5, 1, 2), 1) > 0.9  # pixels deep inside thick strokes
    ho = hollow(x)
    if core.any():
        assert ho[core].mean() < 0.3
    assert (ho.sum((1, 2, 3)) > 0.3 * mass).all()
    # An inverted band: some pixels flipped, in one band of rows or columns, 2 to 6 wide.
    ib = inverted_band(x, gen=g())
    changed = (ib - (1 - x)).abs() < 1e-6
    flipped = changed & ((ib - x).abs() > 1e-6)
    for img in flipped[:, 0]:
        cols, rows = img.any(0).nonzero().flatten(), img.any(1).nonzero().flatten()
        assert min(len(cols), len(rows)) <= 6
    a, b = extremes_family(x, 1.0, g()), extremes_family(x, 1.0, g())
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(extremes_family(x, 0.0, g()), x)
    # Through augment_batch, off unless asked for.
    base = augment_batch(x, 1.0, g())
    assert torch.equal(base, augment_batch(x, 1.0, g(), extremes=0.0))
    assert not torch.equal(base, augment_batch(x, 1.0, g(), extremes=2.0))


def test_styled_digits_redraw_only_twos_fours_and_nines(mnist):
    from digitrec.augment import styled_digits

    x = _digits(mnist, 300)
    labels = mnist.train_labels[:300]
    y = styled_digits(x, labels, p=1.0, gen=torch.Generator().manual_seed(2))
    styled = (labels == 2) | (labels == 4) | (labels == 9)
    assert torch.equal(y[~styled], x[~styled])
    assert all(not torch.equal(a, b) for a, b in zip(y[styled], x[styled]))
    assert torch.equal(styled_digits(x, labels, p=0.0), x)
    some = styled_digits(x, labels, p=0.5, gen=torch.Generator().manual_seed(2))
    changed = (some != x).flatten(1).any(1)
    assert 0.3 < float(changed[styled].float().mean()) < 0.7 and not changed[~styled].any()


def test_styled_digits_redraw_5s_only_when_asked(mnist):
    from digitrec.augment import styled_digits

    x = _digits(mnist, 300)
    labels = mnist.train_labels[:300]
    y = styled_digits(x, labels, p=1.0, gen=torch.Generator().manual_seed(2), digits="2459")
    styled = (labels == 2) | (labels == 4) | (labels == 5) | (labels == 9)
    assert torch.equal(y[~styled], x[~styled])
    assert all(not torch.equal(a, b) for a, b in zip(y[styled], x[styled]))
    with pytest.raises(ValueError, match="no drawn style for the digit 3"):
        styled_digits(x, labels, p=1.0, digits="23")
