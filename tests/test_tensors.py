"""The shared tensor helpers: the validation split, normalisation, seeded drawing."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from digitrec.model_file import MNIST_MEAN, normalise
from digitrec.tensors import band_mask, segment, split_train_val, to_float_images, uniform


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 500), data=st.data(), seed=st.integers(0, 2**63 - 1))
def test_split_is_disjoint_complete_and_seeded(n, data, seed):
    val_size = data.draw(st.integers(0, n - 1))
    train, val = split_train_val(n, val_size, seed)
    assert train.dtype == val.dtype == torch.int64
    assert len(val) == val_size and len(train) == n - val_size
    assert sorted(torch.cat([train, val]).tolist()) == list(range(n))
    again = split_train_val(n, val_size, seed)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])


def test_split_on_mnist_sizes():
    train, val = split_train_val(60000)
    assert len(train) == 55000 and len(val) == 5000
    assert not torch.equal(val, split_train_val(60000, seed=1)[1])
    assert torch.equal(val, split_train_val(60000, seed=0)[1])
    assert len(split_train_val(60000, 0)[1]) == 0


@pytest.mark.parametrize("n, val_size", [(100, 100), (100, 101), (100, -1), (0, 0)])
def test_split_rejects_bad_sizes(n, val_size):
    with pytest.raises(ValueError, match="val_size"):
        split_train_val(n, val_size)


def test_normalise_and_float_images_match_the_tutorials_transform():
    raw = torch.tensor([[[0, 255], [128, 51]]], dtype=torch.uint8)
    x = to_float_images(raw)
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(normalise(x), (raw.float() / 255 - 0.1307) / 0.3081)
    assert normalise(torch.tensor(MNIST_MEAN)).item() == 0 and raw.dtype == torch.uint8  # the input is not changed


def test_uniform_is_seeded_and_in_range():
    a = uniform((1000,), torch.Generator().manual_seed(3), "cpu", 2.0, 5.0)
    b = uniform((1000,), torch.Generator().manual_seed(3), "cpu", 2.0, 5.0)
    assert torch.equal(a, b) and a.min() >= 2.0 and a.max() < 5.0 and a.std() > 0.5


def test_segment_draws_a_stroke_between_its_ends():
    z = torch.zeros(1)
    stroke, t = segment(28, 28, z + 4, z + 14, z + 24, z + 14, 1.0)  # a horizontal line on row 14
    assert stroke.shape == (1, 28, 28)
    assert stroke[0, 14, 4:25].min() == 1 and stroke[0, 5].max() == 0 and stroke[0, 14, :2].max() == 0
    assert t[0, 14, 4] == 0 and t[0, 14, 24] == 1


def test_band_mask_rows_or_columns():
    m = band_mask(2, 28, 28, torch.tensor([3, 10]), torch.tensor([2, 4]), torch.tensor([True, False]))
    assert m[0, 3:5].all() and m[0].sum() == 2 * 28
    assert m[1, :, 10:14].all() and m[1].sum() == 4 * 28
