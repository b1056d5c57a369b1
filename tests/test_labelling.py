"""OpenCV's labelling gives exactly what scipy.ndimage gives: the same labels, boxes, runs and maxima."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.framing import centre_of_mass
from digitrec.labelling import label, maxima, mean3, pieces, runs

EIGHT = np.ones((3, 3))


def masks(seed: int, n: int = 200):
    """Random masks of every shape from 1x1 to 60x60, sparse to dense: specks, strokes and solid blobs."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = rng.integers(1, 61, 2)
        yield rng.random((h, w)) < rng.uniform(0.02, 0.8)


@pytest.mark.parametrize("seed", [0, 1])
def test_label_and_pieces_are_ndimage(seed):
    for mask in masks(seed):
        want, n = ndi.label(mask, structure=EIGHT)
        got, k = label(mask)
        assert k == n and got.dtype == np.int32 and np.array_equal(got, want)
        got, slices = pieces(mask)
        assert np.array_equal(got, want) and slices == ndi.find_objects(want)


def test_empty_and_blank_masks():
    assert label(np.zeros((0, 5), bool))[1] == 0 and pieces(np.zeros((4, 0), bool))[1] == []
    labels, slices = pieces(np.zeros((6, 7), bool))
    assert slices == [] and not labels.any()
    assert runs(np.zeros(5, bool)) == [] and runs(np.zeros(0, bool)) == []


def test_runs_are_ndimage_find_objects():
    rng = np.random.default_rng(2)
    for _ in range(300):
        flags = rng.random(rng.integers(1, 80)) < rng.uniform(0.1, 0.9)
        assert runs(flags) == [sl for (sl,) in ndi.find_objects(ndi.label(flags)[0])]
    assert runs(np.array([True, True, False, True])) == [slice(0, 2), slice(3, 4)]


def test_maxima_are_ndimage_maximum():
    rng = np.random.default_rng(3)
    for mask in masks(3, 50):
        values = rng.random(mask.shape).astype(np.float32)
        labels, n = label(mask)
        if n:
            assert np.array_equal(maxima(values, labels, n), ndi.maximum(values, labels, np.arange(1, n + 1)))


def test_mean3_is_ndimage_uniform_filter_to_rounding():
    rng = np.random.default_rng(4)
    for shape in [(3, 3), (17, 40), (60, 2), (1, 9)]:
        image = rng.random(shape).astype(np.float32)
        assert np.allclose(mean3(image), ndi.uniform_filter(image, 3), rtol=0, atol=1e-6)


def test_centre_of_mass_is_ndimage_exactly():
    rng = np.random.default_rng(5)
    for _ in range(100):
        image = (rng.random((28, 28)) * (rng.random((28, 28)) < 0.3)).astype(np.float32)
        image[rng.integers(28), rng.integers(28)] = 1.0  # never all paper
        assert centre_of_mass(image) == ndi.center_of_mass(image)
