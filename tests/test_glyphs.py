"""Digits drawn in writing styles MNIST lacks (`glyphs`): what the drawings are, and that they are
fresh for every draw but the same for the same seed."""

import torch

from digitrec.glyphs import STYLES, draw_styled


def _ink_box(img: torch.Tensor) -> tuple[int, int]:
    rows, cols = (img > 0.5).nonzero(as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_drawings_look_like_mnist_digits():
    labels = torch.tensor([2, 4, 5, 9] * 30)
    x = draw_styled(labels, torch.Generator().manual_seed(0))
    assert x.shape == (120, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) == 1.0
    idx = torch.arange(28.0)
    for img in x[:, 0]:
        height, width = _ink_box(img)
        assert 15 <= height <= 24 and 6 <= width <= 24  # MNIST's 20-px box, sizes and aspects varied
        m = img.sum()
        cy, cx = float((img.sum(1) * idx).sum() / m), float((img.sum(0) * idx).sum() / m)
        assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # centred by mass, as MNIST is
        assert 0.08 < float((img > 0.5).float().mean()) < 0.35  # a pen stroke, not a blob or a dot


def _drawn_rows(label: int, seed: int):
    """40 drawings of `label`'s styles, each as (ink mask (28, 28), its top row, bottom row, height)."""
    for img in draw_styled(torch.tensor([label] * 40), torch.Generator().manual_seed(seed))[:, 0] > 0.5:
        rows = img.any(1).nonzero()[:, 0]
        top, bottom = int(rows.min()), int(rows.max())
        yield img, top, bottom, bottom - top + 1


def test_a_hooked_9_ends_left_of_its_stem():
    for img, top, bottom, h in _drawn_rows(9, seed=1):
        stem = img[top + h // 2:top + 3 * h // 4].nonzero()[:, 1].float().mean()  # below the loop: the stem alone
        tail = img[bottom - h // 8:bottom + 1].nonzero()[:, 1].float().min()  # the last rows: the hook
        assert tail < stem - 3, (float(tail), float(stem))


def test_a_lifted_5s_bar_runs_out_past_its_bowl():
    for img, top, bottom, h in _drawn_rows(5, seed=2):
        bar = img[top:top + h // 6].nonzero()[:, 1].float().max()  # the top rows: the bar
        bowl = img[top + h // 2:bottom + 1].nonzero()[:, 1].float().max()  # the lower half: the bowl
        assert bar > bowl, (float(bar), float(bowl))


def test_labels_without_a_style_come_back_blank():
    others = [d for d in range(10) if d not in STYLES]
    x = draw_styled(torch.tensor(others), torch.Generator().manual_seed(0))
    assert float(x.abs().max()) == 0.0


def test_every_draw_differs_and_a_seed_repeats():
    labels = torch.tensor([2] * 8 + [4] * 8)
    a = draw_styled(labels, torch.Generator().manual_seed(3))
    b = draw_styled(labels, torch.Generator().manual_seed(3))
    c = draw_styled(labels, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    flat = a.flatten(1)
    assert torch.cdist(flat, flat).fill_diagonal_(1e9).min() > 1.0  # no two drawings of a batch alike
