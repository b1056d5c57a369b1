"""OpenCV's morphology gives exactly what scipy.ndimage gives, with ndimage's edges and anchors."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.morphology import (closing, dilate, dilate_disk, dilate_mask, disk, distance_inside, erode, erode_disk,
                                 horizontal_runs, median3, opening, ring_max, ring_min)


@pytest.fixture(params=[0, 1, 2])
def image(request):
    rng = np.random.default_rng(request.param)
    return rng.random((37, 53)).astype(np.float32)


@pytest.mark.parametrize("size", [2, 3, 4, 5, 41])
def test_grey_morphology_is_ndimages(image, size):
    assert np.array_equal(erode(image, size), ndi.grey_erosion(image, size=(size, size)))
    assert np.array_equal(dilate(image, size), ndi.grey_dilation(image, size=(size, size)))
    assert np.array_equal(opening(image, size), ndi.grey_opening(image, size=(size, size)))
    assert np.array_equal(closing(image, size), ndi.grey_closing(image, size=(size, size)))


@pytest.mark.parametrize("r", [1, 2, 5, 20])  # 20: a disk wider than the image, its edges repeating outwards
def test_disk_morphology_is_ndimages(image, r):
    assert disk(2).tolist() == [[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]]
    assert np.array_equal(dilate_disk(image, r), ndi.grey_dilation(image, footprint=disk(r).astype(bool)))
    assert np.array_equal(erode_disk(image, r), ndi.grey_erosion(image, footprint=disk(r).astype(bool)))


def test_colour_images_are_filtered_per_channel(image):
    rgb = np.stack([image, image[::-1], 1 - image], axis=2)  # (H, W, 3)
    want = ndi.minimum_filter(ndi.maximum_filter(rgb, size=(9, 9, 1)), size=(9, 9, 1))
    assert closing(rgb, 9).shape == rgb.shape and np.array_equal(closing(rgb, 9), want)


def test_distance_inside_is_the_exact_euclidean_distance_with_the_edge_outside(image):
    mask = ndi.binary_opening(image > 0.35)
    want = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    got = distance_inside(mask)
    assert got.shape == mask.shape and np.allclose(got, want, atol=1e-4)
    assert (got[~mask] == 0).all() and got[mask].min() >= 1
    # A full mask: distances grow from the image's edges inwards.
    full = distance_inside(np.ones((7, 9), bool))
    assert full[0].max() == 1 and full[3, 4] == 4


def test_no_pixel_is_further_inside_than_half_the_short_side_rounded_up():
    # components.ink_components skips measuring a piece that this bound already rules out as a blob.
    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = rng.integers(1, 30, 2)
        mask = rng.random((h, w)) < rng.uniform(0.6, 1.1)  # full masks among them
        assert distance_inside(mask).max() <= (min(h, w) + 1) // 2
    assert distance_inside(np.ones((5, 40), bool)).max() == 3  # the bound is reached


@pytest.mark.parametrize("structure", [None, np.ones((1, 3)), np.ones((5, 1)), np.ones((3, 3))])
@pytest.mark.parametrize("iterations", [1, 2])
def test_binary_dilation_is_ndimages_edges_included(image, structure, iterations):
    mask = image > 0.8  # specks, some on the image's edges
    want = ndi.binary_dilation(mask, structure=None if structure is None else structure.astype(bool), iterations=iterations)
    got = dilate_mask(mask, iterations=iterations) if structure is None else dilate_mask(mask, structure, iterations)
    assert got.dtype == bool and np.array_equal(got, want)


@pytest.mark.parametrize("length", [1, 3, 8])
def test_horizontal_runs_keeps_exactly_the_pixels_on_a_run_that_long(image, length):
    # The definition itself, not another library's opening (ndimage shifts even-length lines by one):
    # a pixel stays if some window of `length` pixels along its row holds it and is all ink.
    mask = image > 0.3
    full = np.lib.stride_tricks.sliding_window_view(mask, length, axis=1).all(axis=2)  # (H, W - length + 1)
    want = np.zeros_like(mask)
    for k in range(length):
        want[:, k:k + full.shape[1]] |= full
    got = horizontal_runs(mask, length)
    assert got.dtype == bool and np.array_equal(got, want)
    row = np.zeros((1, 12), bool)
    row[0, :4] = row[0, 6:8] = True  # a run of 4 at the edge stays; a run of 2 goes
    assert horizontal_runs(row, 3)[0].tolist() == [True] * 4 + [False] * 8


def test_median3_is_ndimages_3x3_median_per_channel(image):
    rgb = np.stack([image, image[::-1], image[:, ::-1]], axis=2).astype(np.float32)
    want = ndi.median_filter(rgb, size=(3, 3, 1), mode="nearest")
    assert np.array_equal(median3(rgb), want)
    assert np.array_equal(median3(image.astype(np.float32)), ndi.median_filter(image.astype(np.float32), size=3, mode="nearest"))


def test_ring_max_and_min_are_the_neighbours_own_without_the_pixel(image):
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    padded_hi = np.pad(image, 1, constant_values=-np.inf)
    padded_lo = np.pad(image, 1, constant_values=np.inf)
    assert np.array_equal(ring_max(image), ndi.maximum_filter(padded_hi, footprint=ring)[1:-1, 1:-1])
    assert np.array_equal(ring_min(image), ndi.minimum_filter(padded_lo, footprint=ring)[1:-1, 1:-1])

