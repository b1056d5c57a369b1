"""Square- and disk-window grey morphology, binary dilation and the distance transform, on
OpenCV, with scipy.ndimage's results.

The image path spends most of its time here: a paper estimate is a closing with a window a quarter
of the image wide, and every digit's stroke width is a distance transform. OpenCV does the same
work 4-7x faster than scipy.ndimage (`python benchmarks/image_path.py`); these wrappers keep
ndimage's conventions (edges repeat outwards, even windows anchored as ndimage anchors them), so
the pixels that come out are the same (tests/test_morphology.py checks them against ndimage).
"""

from __future__ import annotations

import cv2
import numpy as np


def use_one_image_thread() -> None:
    """Run OpenCV's operations on the calling thread alone, in this process: digitrec's pools' and
    cluster actors' workers do (the CLI sets $OPENCV_FOR_THREADS_NUM for itself and what it
    starts). digitrec's images are small (a digit at 144 px): OpenCV's pool splits each call
    across the cores, and its idle workers then spin (sched_yield) waiting for the next one,
    ~10% more CPU per image on 2 cores for no faster answer, taken from the other process or
    request that would use that core."""
    cv2.setNumThreads(1)


def _square(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


def _as_cv(image: np.ndarray) -> np.ndarray:
    # OpenCV wants contiguous float32 (or uint8) with at most 4 channels last.
    return np.ascontiguousarray(image, dtype=np.float32)


def erode(image: np.ndarray, size: int) -> np.ndarray:
    """The minimum over a size x size window (ndimage.minimum_filter / grey_erosion), per channel."""
    return cv2.erode(_as_cv(image), _square(size), anchor=(size // 2, size // 2), borderType=cv2.BORDER_REPLICATE)


def dilate(image: np.ndarray, size: int) -> np.ndarray:
    """The maximum over a size x size window, anchored as ndimage.grey_dilation anchors it (an even
    window reaches one pixel further right and down than erode's)."""
    a = (size - 1) // 2
    return cv2.dilate(_as_cv(image), _square(size), anchor=(a, a), borderType=cv2.BORDER_REPLICATE)


def opening(image: np.ndarray, size: int) -> np.ndarray:
    """ndimage.grey_opening(image, size=(size, size)): wipes out what is brighter and narrower than the window."""
    return dilate(erode(image, size), size)


def closing(image: np.ndarray, size: int) -> np.ndarray:
    """ndimage.grey_closing(image, size=(size, size)): fills in what is darker and narrower than the window."""
    return erode(dilate(image, size), size)


def median3(image: np.ndarray) -> np.ndarray:
    """ndimage.median_filter(image, size=(3, 3) per channel, mode="nearest") of a float32 (H, W) or
    (H, W, 3) image: a lone pixel (a speck of noise) takes its neighbours' value."""
    return cv2.medianBlur(np.ascontiguousarray(image, dtype=np.float32), 3)


_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8)


def ring_max(image: np.ndarray) -> np.ndarray:
    """The largest of each pixel's 8 neighbours (those inside the image), float32 (H, W)."""
    return cv2.dilate(np.ascontiguousarray(image, dtype=np.float32), _RING)


def ring_min(image: np.ndarray) -> np.ndarray:
    """The smallest of each pixel's 8 neighbours (those inside the image), float32 (H, W)."""
    return cv2.erode(np.ascontiguousarray(image, dtype=np.float32), _RING)


def disk(r: int) -> np.ndarray:
    """A disk of radius `r` (sides 2r + 1), the pen a stroke is thickened or thinned with."""
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r + r).astype(np.uint8)


def dilate_disk(image: np.ndarray, r: int) -> np.ndarray:
    """ndimage.grey_dilation(image, footprint=disk(r)): every stroke r pixels wider on each side
    (30-50x faster than ndimage where r is 10-20, as a thin pen on a big page needs)."""
    return cv2.dilate(_as_cv(image), disk(r), borderType=cv2.BORDER_REPLICATE)


def erode_disk(image: np.ndarray, r: int) -> np.ndarray:
    """ndimage.grey_erosion(image, footprint=disk(r)): every stroke r pixels narrower on each side."""
    return cv2.erode(_as_cv(image), disk(r), borderType=cv2.BORDER_REPLICATE)


CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)  # ndimage's default structure: 4-connected


def dilate_mask(mask: np.ndarray, structure: np.ndarray = CROSS, iterations: int = 1) -> np.ndarray:
    """ndimage.binary_dilation(mask, structure, iterations) for a symmetric structure of odd sides,
    with nothing beyond the image's edge; 10x faster. Boolean (H, W)."""
    out = cv2.dilate(np.ascontiguousarray(mask, dtype=np.uint8), np.asarray(structure, np.uint8),
                     iterations=iterations, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.view(bool)


def horizontal_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of `mask` on a horizontal run at least `length` long: a binary opening with a
    1 x length line (nothing beyond the image's edge). Boolean (H, W)."""
    # Explicit anchors: OpenCV's open uses one anchor for both steps, which shifts an even-length
    # line by a pixel. Erode marks each window's first pixel; dilate spreads it over the window.
    line = np.ones((1, length), np.uint8)
    start = cv2.erode(np.ascontiguousarray(mask, dtype=np.uint8), line, anchor=(0, 0),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = cv2.dilate(start, line, anchor=(length - 1, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.view(bool)


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (H, W) float32 from each pixel of `mask` to the nearest pixel outside it,
    the image's own edge counting as outside (ndimage.distance_transform_edt of the padded mask)."""
    # One px of outside all round (OpenCV's border is 20x quicker than np.pad on a digit's mask).
    padded = cv2.copyMakeBorder(np.ascontiguousarray(mask, dtype=np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    # OpenCV's exact transform differs in the last bits from call to call (its vectorised paths
    # depend on the buffers' alignment), which flipped ties between stroke ridges and so a few
    # digits' framing. A squared distance to a pixel centre is a whole number: snap to it.
    return np.sqrt(np.rint(dist * dist)).astype(np.float32)
