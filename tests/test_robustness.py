import json

import pytest
import torch
from PIL import Image

from conftest import run_cli
from digitrec.loading import load_model
from digitrec.robustness import (CORRUPTIONS, axis_floor, chart_figure, format_table, robustness, save_chart,
                                 short_names, split_images)
from digitrec.tensors import split_train_val


def corrupt(x, name, seed):
    return CORRUPTIONS[name](x, torch.Generator().manual_seed(seed))


def test_fifteen_corruptions_of_mnist_c():
    assert len(CORRUPTIONS) == 15
    assert {"shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
            "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges"} == set(CORRUPTIONS)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_seeded_and_changes_the_digits(mnist, name):
    x = mnist.test_images[:32].float().div(255).unsqueeze(1)
    a, b = corrupt(x, name, 1), corrupt(x, name, 1)
    assert a.shape == x.shape and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    assert (a - x).abs().mean() > 0.005  # (a dotted line is a small change: ~0.01)
    if name not in ("brightness", "canny_edges"):  # deterministic given the image, by design
        assert not torch.equal(a, corrupt(x, name, 2))


def test_robustness_report(mnist, seed_model_path):
    rec = load_model(seed_model_path)
    r = robustness(rec, mnist.test_images[:1000], mnist.test_labels[:1000])
    assert set(r["corruptions"]) == set(CORRUPTIONS)
    clean = rec.probabilities(mnist.test_images[:1000].float().div(255)).argmax(1) == mnist.test_labels[:1000].numpy()
    assert r["clean"] == pytest.approx(clean.mean())
    assert r["mean_corrupted"] == pytest.approx(sum(r["corruptions"].values()) / 15)
    assert r["mean_corrupted"] < r["clean"]  # corruptions do hurt an MLP
    done = []
    assert r == robustness(rec, mnist.test_images[:1000], mnist.test_labels[:1000], progress=done.append)  # seeded
    assert sum(done) == 16 * 1000  # the progress bar's count: clean and 15 corruptions, every image


def test_robustness_cli(tmp_path, seed_model_path):
    chart = tmp_path / "rob.png"
    proc = run_cli("robustness", "--model", str(seed_model_path), "--limit", "300", "--json", "--chart", str(chart))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["n"] == 300 and len(r["corruptions"]) == 15 and 0 < r["mean_corrupted"] < 1
    assert chart.stat().st_size > 10_000
    assert "it/s" not in proc.stderr and "image/s" not in proc.stderr  # no progress bar into a pipe
    text = run_cli("robustness", "--model", str(seed_model_path), "--limit", "200").stdout
    assert "mean corrupted" in text and "canny_edges" in text


def test_split_images_test_or_held_out_validation(mnist, mnist_dir):
    images, labels = split_images("test", 300, mnist_dir, download=False)
    assert torch.equal(images, mnist.test_images[:300]) and torch.equal(labels, mnist.test_labels[:300])
    images, labels = split_images("val", data_dir=mnist_dir, download=False)
    _, idx = split_train_val(60000)
    assert len(labels) == 5000 and torch.equal(images, mnist.train_images[idx])
    assert torch.equal(labels, mnist.train_labels[idx])
    with pytest.raises(ValueError):
        split_images("train", data_dir=mnist_dir)


def _fake(acc: float) -> dict:
    return {"clean": acc, "corruptions": {c: acc - 0.01 * k for k, c in enumerate(CORRUPTIONS)},
            "mean_corrupted": acc - 0.07}


def test_table_has_a_row_per_corruption_and_a_column_per_model():
    lines = format_table({"runs/a/model.pt": _fake(0.99), "runs/b/other.pt": _fake(0.5)}).splitlines()
    assert len(lines) == 1 + 1 + 15 + 1 + 2
    assert lines[0].split() == ["corruption", "model", "other"]
    assert lines[1].split() == ["clean", "0.9900", "0.5000"]
    assert lines[17].startswith("mean corrupted") and lines[17].split()[-2:] == ["0.9200", "0.4300"]
    assert lines[18:] == ["model: runs/a/model.pt", "other: runs/b/other.pt"]  # the full paths, below
    # Two files with the same name are told apart by their folders.
    header = format_table({"runs/a/model.pt": _fake(0.9), "runs/b/model.pt": _fake(0.9)}).splitlines()[0]
    assert header.split() == ["corruption", "a/model", "b/model"]


def test_a_long_model_path_is_never_cut():
    long = "runs/a-very-long-experiment-name-for-the-sweep/model-with-a-long-name.pt"
    lines = format_table({long: _fake(0.99)}).splitlines()
    assert lines[0].split() == ["corruption", "model-with-a-long-name"]
    assert lines[-1] == f"model-with-a-long-name: {long}"
    assert len({len(line) for line in lines[:-1]}) == 1  # the column is as wide as its name


def test_short_names():
    assert short_names(["runs/fast/model.pt"]) == ["model"]
    assert short_names(["x/a/m.pt", "y/a/m.pt", "z.pt"]) == ["x/a/m", "y/a/m", "z"]
    assert short_names(["runs/m.pt", "runs/m.onnx"]) == ["runs/m.pt", "runs/m.onnx"]  # nothing shorter tells them apart


def test_chart_axis_is_zoomed_to_the_data_and_says_so():
    fig = chart_figure({"runs/a/model.pt": _fake(0.99), "runs/b/model.pt": _fake(0.97)}, "test", 300)
    ax = fig.axes[0]
    lowest = 0.97 - 0.14  # the last corruption of the worse model
    assert ax.get_ylim() == (0.8, 1.0) and ax.get_ylim()[0] < lowest < ax.get_ylim()[0] + 0.05
    assert "axis from 0.80, not 0" in ax.get_ylabel()
    assert ax.get_title(loc="left") == "MNIST test accuracy under MNIST-C corruptions on 300 images"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a/model", "b/model"]
    assert fig.texts[0].get_text() == "a/model: runs/a/model.pt; b/model: runs/b/model.pt"
    # Accuracies far from 1 keep the axis from 0, and then it needs no note.
    ax = chart_figure({"m.pt": _fake(0.3)}).axes[0]
    assert ax.get_ylim() == (0.0, 1.0) and "not 0" not in ax.get_ylabel()
    assert axis_floor([0.93, 0.99]) == 0.9


def test_chart_is_a_png(tmp_path):
    path = save_chart({"a.pt": _fake(0.99), "b.pt": _fake(0.8)}, tmp_path / "sub" / "chart.png", "val", 500)
    assert path == tmp_path / "sub" / "chart.png"
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1440, 540)  # 12 x 4.5 inches at 120 dpi


def test_robustness_on_validation_split(seed_model_path, mnist):
    # --split val scores the held-out training images, so recipes can be compared without the test set.
    proc = run_cli("robustness", "--model", str(seed_model_path), "--split", "val", "--limit", "200", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["split"] == "val" and r["n"] == 200
    _, idx = split_train_val(60000)
    expected = robustness(load_model(seed_model_path), mnist.train_images[idx][:200], mnist.train_labels[idx][:200])
    assert r["clean"] == expected["clean"] and r["mean_corrupted"] == expected["mean_corrupted"]
