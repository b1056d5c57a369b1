"""evaluate-images: a user's own labelled digits, scored with accuracy, calibration and coverage."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import on_paper, run_cli
from digitrec.errors import DataError
from digitrec.evaluate_images import evaluate_images, read_digit_labels, save_error_gallery
from digitrec.loading import load_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist):
    """Twenty MNIST test digits photographed on paper, one blank page and one broken file."""
    root = tmp_path_factory.mktemp("digits")
    rows = []
    for i in range(20):
        on_paper(mnist.test_images[i].numpy()).save(root / f"d{i}.png")
        rows.append(f"d{i}.png,{int(mnist.test_labels[i])}")
    Image.new("RGB", (200, 200), "white").save(root / "blank.png")
    (root / "broken.png").write_bytes(b"not an image")
    (root / "labels.csv").write_text("file,label\n" + "\n".join(rows + ["blank.png,3", "broken.png,5"]) + "\n")
    return root


def test_a_folder_is_scored_with_calibration_and_coverage(folder):
    report, preds, labels = evaluate_images(load_model(), folder)
    assert report["n"] == 22 and report["no_digit"] == 1 and report["unreadable"] == 1
    assert report["right"] == sum(p.digit == t for p, t in zip(preds, labels)) >= 19  # the two without a digit are wrong
    cov = report["accuracy_at_coverage"]
    assert cov["100%"] == pytest.approx(report["accuracy"]) and cov["90%"] == 1.0  # the two without a digit go first
    assert 0 <= report["ece"] <= 1 and sum(b["n"] for b in report["reliability"]) == 22
    assert [p["path"] for p in report["predictions"]][:2] == ["d0.png", "d1.png"]


def test_error_gallery_shows_the_wrong_answers(folder, tmp_path):
    _, preds, labels = evaluate_images(load_model(), folder)
    out = save_error_gallery(folder, preds, labels, tmp_path / "errors.png")
    with Image.open(out) as im:
        assert im.width > 200 and len(np.unique(np.asarray(im.convert("L")))) > 10


def test_cli_evaluate_images_text_json_and_bad_labels(folder, tmp_path):
    proc = run_cli("evaluate-images", str(folder), "--gallery", str(tmp_path / "g.png"))
    assert proc.returncode == 0, proc.stderr
    assert "calibration error (ECE, 15 bins)" in proc.stdout and "accuracy at coverage" in proc.stdout
    assert (tmp_path / "g.png").is_file()
    proc = run_cli("evaluate-images", str(folder), "--json")
    report = json.loads(proc.stdout)
    assert report["n"] == 22 and len(report["predictions"]) == 22
    (tmp_path / "labels.csv").write_text("file,label\nx.png,12\n")
    proc = run_cli("evaluate-images", str(tmp_path))
    assert proc.returncode != 0 and "one digit 0-9" in proc.stderr and "Traceback" not in proc.stderr


def test_labels_need_a_file_and_a_label_column(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_digit_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("file,text\nx.png,7\n")
    with pytest.raises(DataError, match="`file` and `label`"):
        read_digit_labels(tmp_path)
