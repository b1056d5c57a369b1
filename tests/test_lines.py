import math

import numpy as np
import pytest
import torch

from conftest import run_cli
from digitrec.checkpoint import load_checkpoint
from digitrec.errors import CheckpointError
from digitrec.framing import MARGIN, STRIP_HEIGHT
from digitrec.lines import BLANK, STRIDE, ReaderConfig, compose_lines, decode, train_reader
from digitrec.models import create_model
from digitrec.read import load_reader


def test_compose_lines_frames_every_line_like_a_user_line(mnist):
    g = torch.Generator().manual_seed(0)
    x, targets, lengths = compose_lines(mnist.train_images[:2000], mnist.train_labels[:2000], 64, gen=g, noise=0)
    assert x.shape[:3] == (64, 1, STRIP_HEIGHT) and x.shape[3] % 4 == 0
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert targets.shape == (64, 7) and int(lengths.min()) >= 1 and int(lengths.max()) <= 7
    for t, n in zip(targets, lengths):
        assert (t[:n] < 10).all() and (t[n:] == BLANK).all()
    # The writing fills rows 4..24 (20 px), the margins hold (almost) no ink.
    rows = (x[:, 0] > 0.3).any(2).float().mean(0)
    assert rows[:MARGIN - 1].max() < 0.1 and rows[STRIP_HEIGHT - MARGIN + 1:].max() < 0.1
    assert rows[MARGIN + 2:STRIP_HEIGHT - MARGIN - 2].min() > 0.9
    assert float(x[:, 0, :, :MARGIN - 1].max()) < 0.3
    # Longer lines are wider: the layout follows the number of digits.
    widths = np.array([(x[i, 0] > 0.3).any(0).nonzero().max().item() for i in range(64)])
    assert widths[lengths.numpy() >= 5].mean() > 2 * widths[lengths.numpy() <= 2].mean()


def test_compose_lines_is_seeded_and_honours_lengths(mnist):
    a = compose_lines(mnist.train_images[:500], mnist.train_labels[:500], 8, min_digits=3, max_digits=3,
                      gen=torch.Generator().manual_seed(5))
    b = compose_lines(mnist.train_images[:500], mnist.train_labels[:500], 8, min_digits=3, max_digits=3,
                      gen=torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert (a[2] == 3).all() and a[1].shape == (8, 3)


def test_decode_collapses_repeats_and_needs_a_blank_between_equal_digits():
    def frames(seq):
        lp = torch.full((1, len(seq), 11), math.log(0.01 / 10))
        for t, c in enumerate(seq):
            lp[0, t, c] = math.log(0.99)
        return lp

    got = decode(frames([BLANK, 1, 1, BLANK, 1, 7, 7, BLANK, BLANK, 0]))[0]
    assert [d.digit for d in got] == [1, 1, 7, 0]
    assert [(d.start, d.end) for d in got] == [(1, 3), (4, 5), (5, 7), (9, 10)]
    assert all(0.98 < d.confidence <= 1 and abs(float(d.probabilities.sum()) - 1) < 1e-5 for d in got)
    assert decode(frames([BLANK] * 5))[0] == []


def test_linecnn_reads_any_width_one_frame_per_two_columns():
    model = create_model("linecnn").eval()
    for width in (16, 60, 204):
        out = model(torch.zeros(2, 1, STRIP_HEIGHT, width))
        assert out.shape == (2, width // STRIDE, 11)
        assert torch.allclose(out.exp().sum(-1), torch.ones(2, width // STRIDE), atol=1e-5)


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("reader")
    metrics = train_reader(ReaderConfig(steps=6, batch_size=16, val_lines=14, max_digits=3), out, data_dir=mnist_dir,
                           log=lambda s: None)
    return out / "reader.pt", metrics


def test_train_reader_saves_a_self_describing_reader(tiny_reader):
    path, metrics = tiny_reader
    ckpt = load_checkpoint(path)
    assert ckpt.arch == "linecnn" and ckpt.classes[-1] == "blank"
    assert ckpt.meta["config"]["steps"] == 6 and ckpt.meta["metrics"]["val"] == metrics["val"]
    assert not list(path.parent.glob("*.tmp"))


def test_recogniser_reads_with_a_given_reader_and_refuses_a_digit_model(tiny_reader, small_model_path):
    from PIL import Image, ImageDraw

    img = Image.new("L", (300, 100), 255)
    ImageDraw.Draw(img).line([(40, 20), (40, 80)], fill=0, width=6)
    r = load_reader(reader=tiny_reader[0]).read(img)
    assert r.error is None and all(0 <= d.confidence <= 1 for d in r.digits)  # untrained: any reading
    with pytest.raises(CheckpointError, match="not a line reader"):
        load_reader(reader=small_model_path).read(img)


def test_cli_train_reader_and_read_with_it(tmp_path, mnist_dir, small_model_path):
    out = tmp_path / "r"
    args = ("train-reader", "--steps", "4", "--batch-size", "8", "--max-digits", "2", "--out", str(out),
            "--data-dir", str(mnist_dir))
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "saved" in proc.stdout and (out / "reader.pt").is_file()
    again = run_cli(*args)
    assert again.returncode != 0 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    from PIL import Image

    Image.new("L", (200, 80), 255).save(tmp_path / "blank.png")
    wrong = run_cli("read", "--reader", str(small_model_path), str(tmp_path / "blank.png"))
    assert wrong.returncode == 1 and "not a line reader" in wrong.stderr
    for command in ("evaluate", "predict"):  # and the other way round: a reader is no digit model
        proc = run_cli(command, "--model", str(out / "reader.pt"), *(["x.png"] if command == "predict" else []))
        assert proc.returncode == 1 and "a line reader" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
