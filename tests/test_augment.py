import torch

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
