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
    return percentiles(values, (q,))[0]


def percentiles(values: np.ndarray, qs) -> list[float]:
    """`percentile` at each of `qs`, from one partition at all their ranks."""
    v = values.ravel()
    if v.size == 0:
        raise ValueError("a percentile of no values")
    at = []  # (lo, hi, t) per q
    for q in qs:
        virtual = (v.size - 1) * (q / 100)
        lo = int(np.floor(virtual))
        at.append((lo, min(lo + 1, v.size - 1), virtual - lo))
    part = np.partition(v, sorted({r for lo, hi, _ in at for r in (lo, hi)}))
    # numpy's _lerp: from the nearer end, so that t = 1 gives b exactly.
    return [float(part[hi] - (part[hi] - part[lo]) * (1 - t) if t >= 0.5 else part[lo] + (part[hi] - part[lo]) * t)
            for lo, hi, t in at]


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
    # A first guess at each value's bin, within one of it (in one multiplication of the values' own
    # dtype), then numpy's fix at the edges makes it exact.
    idx = (v * edges.dtype.type(bins / top)).astype(np.intp)
    np.minimum(idx, bins - 1, out=idx)
    idx[v < edges[idx]] -= 1
    upper = edges[1:].copy()
    upper[-1] = np.inf  # the last bin holds its upper edge
    idx[v >= upper[idx]] += 1
    return edges, np.bincount(idx, minlength=bins)
