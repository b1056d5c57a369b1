"""Connected pieces of a mask and runs of a row of flags, on OpenCV and numpy, with scipy.ndimage's results.

Every look at an image labels its ink a dozen times (strokes, specks, ruled rows, a box's walls).
OpenCV's SAUF labelling (`cv2.CCL_WU`) numbers the pieces in the order a raster scan first meets
them, as ndimage.label does, so the labels are the same array (tests/test_labelling.py checks
them against ndimage), in a third of the time, with each piece's box from the same pass; and the
image path no longer imports scipy, a fifth of a second of every cold start.
"""

from __future__ import annotations

import cv2
import numpy as np


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """ndimage.label(mask, structure=np.ones((3, 3))): the 8-connected pieces of a 2-D boolean
    mask numbered 1..n in raster order (0 = outside), int32 (H, W), and n."""
    if mask.size == 0:
        return np.zeros(mask.shape, np.int32), 0
    n, labels = cv2.connectedComponentsWithAlgorithm(_as_u8(mask), 8, cv2.CV_32S, cv2.CCL_WU)
    return labels, n - 1


def pieces(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """`label(mask)`'s labels and each piece's bounding slices (ndimage.find_objects of them);
    the number of pieces is the slices' length."""
    if mask.size == 0:
        return np.zeros(mask.shape, np.int32), []
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(_as_u8(mask), 8, cv2.CV_32S, cv2.CCL_WU)
    return labels, [(slice(y, y + h), slice(x, x + w)) for x, y, w, h in stats[1:, :4].tolist()]


def runs(flags: np.ndarray) -> list[slice]:
    """The runs of True in a 1-D boolean array, in order, as slices (ndimage.find_objects of
    ndimage.label(flags)): the groups of rows a ruled line or a band covers, a box's walls."""
    edges = np.diff(np.concatenate(([0], np.asarray(flags, np.int8), [0])))
    return [slice(a, b) for a, b in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist())]


def maxima(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """The largest of `values` in each piece 1..n of `labels` (ndimage.maximum with index 1..n)."""
    out = np.full(n + 1, -np.inf, values.dtype)
    np.maximum.at(out, labels.ravel(), values.ravel())
    return out[1:]


def mean3(image: np.ndarray) -> np.ndarray:
    """The mean over each pixel's 3x3 window, edges mirrored (ndimage.uniform_filter(image, 3)),
    float32; equal to ndimage's to within rounding (1e-7: OpenCV sums in float32, ndimage in float64)."""
    return cv2.blur(np.ascontiguousarray(image, dtype=np.float32), (3, 3), borderType=cv2.BORDER_REFLECT)


def _as_u8(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mask, dtype=np.uint8)
