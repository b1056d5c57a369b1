import json

import pytest
import torch

from conftest import run_cli
from digitrec.predict import load_model
from digitrec.robustness import CORRUPTIONS, corrupt, robustness


def test_fifteen_corruptions_of_mnist_c():
    assert len(CORRUPTIONS) == 15
    assert {"shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
            "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges"} == set(CORRUPTIONS)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_seeded_and_changes_the_digits(mnist, name):
    x = mnist.test_images[:32].float().div(255).unsqueeze(1)
    a, b = corrupt(x, name, seed=1), corrupt(x, name, seed=1)
    assert a.shape == x.shape and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    assert (a - x).abs().mean() > 0.005  # (a dotted line is a small change: ~0.01)
    if name not in ("brightness", "canny_edges"):  # deterministic given the image, by design
        assert not torch.equal(a, corrupt(x, name, seed=2))


def test_robustness_report(mnist, seed_model_path):
    rec = load_model(seed_model_path)
    r = robustness(rec, mnist.test_images[:1000], mnist.test_labels[:1000])
    assert set(r["corruptions"]) == set(CORRUPTIONS)
    clean = (rec.probabilities(mnist.test_images[:1000].float().div(255)).argmax(1) == mnist.test_labels[:1000])
    assert r["clean"] == pytest.approx(clean.float().mean().item())
    assert r["mean_corrupted"] == pytest.approx(sum(r["corruptions"].values()) / 15)
    assert r["mean_corrupted"] < r["clean"]  # corruptions do hurt an MLP
    assert r == robustness(rec, mnist.test_images[:1000], mnist.test_labels[:1000])  # seeded end to end


def test_robustness_cli(tmp_path, seed_model_path):
    chart = tmp_path / "rob.png"
    proc = run_cli("robustness", "--model", str(seed_model_path), "--limit", "300", "--json", "--chart", str(chart))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["n"] == 300 and len(r["corruptions"]) == 15 and 0 < r["mean_corrupted"] < 1
    assert chart.stat().st_size > 10_000
    text = run_cli("robustness", "--model", str(seed_model_path), "--limit", "200").stdout
    assert "mean corrupted" in text and "canny_edges" in text


def test_robustness_on_validation_split(seed_model_path, mnist):
    # --split val scores the held-out training images, so recipes can be compared without the test set.
    from digitrec.tensors import split_train_val

    proc = run_cli("robustness", "--model", str(seed_model_path), "--split", "val", "--limit", "200", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["split"] == "val" and r["n"] == 200
    _, idx = split_train_val(60000)
    expected = robustness(load_model(seed_model_path), mnist.train_images[idx][:200], mnist.train_labels[idx][:200])
    assert r["clean"] == expected["clean"] and r["mean_corrupted"] == expected["mean_corrupted"]
