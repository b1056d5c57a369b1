"""stats: percentiles and Otsu's histogram spelled out for speed, which must give numpy's answers exactly.

Values are drawn by hypothesis: arrays of every shape the image path gives, with ties, zeros and
a single value; the answers are compared with numpy's to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitrec.stats import histogram, otsu, percentile, percentiles

FAST = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VALUES = hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=2, max_side=300),
                    elements=st.floats(0, 4, width=32))


@FAST
@given(VALUES, st.sampled_from([2, 7, 128]))
def test_the_threshold_histogram_counts_as_numpy_does(values, bins):
    # Otsu's histogram is hand-rolled for speed; its counts and edges must stay numpy's, ulps included.
    edges, counts = histogram(values, bins)
    want_counts, want_edges = np.histogram(values, bins=bins, range=(0.0, float(values.max()) + 1e-6))
    assert np.array_equal(counts, want_counts) and np.array_equal(edges, want_edges)


@FAST
@given(VALUES, st.one_of(st.sampled_from([0.0, 0.3, 50.0, 90.0, 99.7, 99.9, 100.0]), st.floats(0, 100)))
def test_a_percentile_is_numpys_to_the_last_bit(values, q):
    want = np.percentile(values, q)
    assert percentile(values, q) == float(want)
    assert type(percentile(values, q)) is float


@FAST
@given(VALUES, st.lists(st.floats(0, 100), min_size=1, max_size=4))
def test_several_percentiles_at_once_are_each_numpys(values, qs):
    assert percentiles(values, qs) == [float(np.percentile(values, q)) for q in qs]


def test_a_percentile_of_a_photos_worth_of_values_is_numpys():
    # The sizes the image path takes them of: a working image, its ink, a stroke's distances.
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 97, 30_000, 36_864):
        for values in (rng.random(n, dtype=np.float32), rng.integers(0, 4, n).astype(np.float32), rng.exponential(1, n)):
            for q in (0.3, 90, 99.7, 99.9):
                assert percentile(values, q) == float(np.percentile(values, q)), (n, values.dtype, q)


def test_a_percentile_of_no_values_is_an_error_not_a_number():
    with pytest.raises(ValueError):
        percentile(np.array([], np.float32), 50)


@pytest.mark.parametrize("dark,light", [(0.1, 0.9), (0.0, 0.3), (2.0, 3.5)])
def test_otsu_splits_two_groups_of_values_between_them(dark, light):
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(dark, 0.02, 500), rng.normal(light, 0.02, 300)]).clip(0, None)
    assert dark + 0.03 < otsu(values) < light - 0.03
