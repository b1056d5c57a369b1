"""Order statistics and thresholds of an image's values: numpy's answers, at a fraction of the cost.

The image path takes a few percentiles and Otsu thresholds of every working image (30,000 values).
numpy's general functions spend most of their time on what these calls never need (NaN checks,
several quantiles at once, bins of any range), so they are spelled out here for one job each, with
numpy's exact results: tests/test_stats.py checks them against numpy, ulps included.
"""

from __future__ import annotations

import numpy as np

OTSU_BINS = 128


def percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) for one q (its default "linear" method) of finite values: one
    partition at the two ranks around q, and numpy's interpolation in the values' own dtype."""
    v = values.ravel()
    if v.size == 0:
        raise ValueError("a percentile of no values")
    virtual = (v.size - 1) * (q / 100)
    lo = int(np.floor(virtual))
    hi = min(lo + 1, v.size - 1)
    part = np.partition(v, (lo, hi))
    a, b, t = part[lo], part[hi], virtual - lo
    # numpy's _lerp: from the nearer end, so that t = 1 gives b exactly.
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative `values` over 128 bins from 0 to their maximum."""
    edges, hist = histogram(values, OTSU_BINS)
    w = np.cumsum(hist).astype(np.float64)
    m = np.cumsum(hist * (edges[:-1] + edges[1:]) / 2)
    w0, w1 = w[:-1], w[-1] - w[:-1]
    between = np.where((w0 > 0) & (w1 > 0), (m[:-1] * w[-1] - m[-1] * w0) ** 2 / np.maximum(w0 * w1, 1e-12), 0)
    return float(edges[1:-1][np.argmax(between)])


def histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram(values, bins, range=(0, max + 1e-6)) for non-negative values, the same counts
    at half the cost: its bin search (scale, then the one-ulp fix at the edges) without its checks
    and blocks, which cost more than the counting on a working image's 30,000 pixels."""
    v = values.ravel()
    top = float(v.max()) + 1e-6
    edges = np.linspace(0.0, top, bins + 1, dtype=np.result_type(v.dtype, np.float32))  # as numpy's: float32 for float32
    idx = (v / top * bins).astype(np.intp)
    idx[idx == bins] -= 1
    idx[v < edges[idx]] -= 1
    idx[(v >= edges[idx + 1]) & (idx != bins - 1)] += 1
    return edges, np.bincount(idx, minlength=bins)
