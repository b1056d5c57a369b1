import json

import pytest
import torch
from PIL import Image

from digitrec.checkpoint import load_checkpoint
from digitrec.evaluate import classification_report, evaluate_checkpoint, format_report, save_figures

CLASSES = [str(d) for d in range(10)]


def test_report_figures_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 2])
    r = classification_report(labels, preds, ["0", "1", "2"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert r["per_class"]["1"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["1"]["recall"] == pytest.approx(2 / 3)
    assert r["per_class"]["2"]["precision"] == pytest.approx(1 / 2)
    assert r["per_class"]["2"]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert r["per_class"]["0"]["support"] == 2
    assert [m["index"] for m in r["misclassified"]] == [1, 4]
    json.dumps(r)  # plain data, ready for --json


def test_seed_model_scores_what_the_tutorial_code_scores(mnist, seed_model_path):
    ckpt = load_checkpoint(seed_model_path)
    r = evaluate_checkpoint(ckpt, mnist.test_images, mnist.test_labels)
    assert r["accuracy"] == 0.9755  # the tutorial's own evaluation of this file (fixtures/README.md)
    assert len(r["misclassified"]) == 245
    assert sum(map(sum, r["confusion_matrix"])) == 10000
    text = format_report(r, CLASSES)
    assert "test accuracy 0.9755" in text and "confusion matrix" in text


def test_figures_are_real_pngs(tmp_path, mnist, seed_model_path):
    ckpt = load_checkpoint(seed_model_path)
    r = evaluate_checkpoint(ckpt, mnist.test_images[:500], mnist.test_labels[:500])
    paths = save_figures(r, mnist.test_images[:500], CLASSES, tmp_path / "figs")
    assert [p.name for p in paths] == ["confusion_matrix.png", "misclassified.png", "reliability.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 100
            # Not a blank canvas: a real plot has many distinct colours.
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 20


def test_the_report_says_how_well_confidence_predicts_being_right(mnist, seed_model_path):
    ckpt = load_checkpoint(seed_model_path)  # never calibrated: temperature 1
    r = evaluate_checkpoint(ckpt, mnist.test_images[:2000], mnist.test_labels[:2000])
    cal = r["calibration"]
    assert r["temperature"] == 1.0 and 0 <= cal["ece"] < 0.2
    assert sum(b["n"] for b in cal["reliability"]) == 2000 and len(cal["reliability"]) == 15
    # Setting the least confident aside leaves fewer errors among the rest.
    assert cal["accuracy_at_coverage"]["80%"] >= cal["accuracy_at_coverage"]["90%"] >= r["accuracy"]
    assert "calibration error (ECE, 15 bins)" in format_report(r, CLASSES)
