"""evaluate_read: scoring number reading on a folder of labelled images, and its command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from digitrec.errors import DataError
from digitrec.evaluate_read import (accuracy_at_coverage, edit_distance, edit_operations, evaluate_folder,
                                    format_report, read_labels, save_gallery, score)
from digitrec.read import DigitRead, Reading, load_reader
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import iter_number_set


def test_edit_distance():
    assert edit_distance("", "") == 0 and edit_distance("123", "") == 3 and edit_distance("", "12") == 2
    assert edit_distance("12345", "12345") == 0 and edit_distance("1234", "12345") == 1
    assert edit_distance("71771", "2026") == 5 and edit_distance("1199", "100") == 3


def test_edit_operations_name_each_edit_and_count_as_the_distance():
    assert edit_operations("15700", "15700") == []
    assert edit_operations("116", "176") == [("1", "7")]
    assert edit_operations("15700", "1570") == [("0", "")]
    assert edit_operations("1008", "11008") == [("", "1")]
    assert edit_operations("", "12") == [("", "1"), ("", "2")] and edit_operations("34", "") == [("3", ""), ("4", "")]
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, b = ("".join(rng.choice(list("0123"), rng.integers(0, 7))) for _ in range(2))
        ops = edit_operations(a, b)
        assert len(ops) == edit_distance(a, b)
        assert all(w != r for w, r in ops)
        for text, said in ((a, "".join(w for w, _ in ops)), (b, "".join(r for _, r in ops))):
            rest = iter(text)
            assert all(c in rest for c in said)  # the edited digits, in their order, are the texts' own


def _reading(text, confidence):
    return Reading("x", text, [DigitRead(int(c), confidence, (0, 0, 1, 1)) for c in text])


def test_score_whole_digit_errors_and_coverage():
    readings = [_reading("123", 0.99), _reading("45", 0.9), _reading("789", 0.3), _reading("", 0.0)]
    report = score(readings, ["123", "456", "788", "1"])
    assert report["right"] == 1 and report["whole"] == 0.25
    assert report["digit_error_rate"] == pytest.approx((0 + 1 + 1 + 1) / 10)
    # The most confident reading is the right one: at 25% coverage every kept reading is right.
    conf = np.array([r.confidence for r in readings])
    right = np.array([True, False, False, False])
    assert accuracy_at_coverage(conf, right, 0.25) == 1.0 and accuracy_at_coverage(conf, right, 1.0) == 0.25
    assert report["accuracy_at_coverage"]["100%"] == 0.25 and report["accuracy_at_coverage"]["50%"] == 0.5
    # The errors by kind: 6 missed, 8 read as 9, 1 missed (nothing read).
    assert report["errors"] == {"substituted": 1, "missed": 2, "extra": 0,
                                "commonest": [["6", "", 1], ["8", "9", 1], ["1", "", 1]]}
    assert "digit errors: 1 read wrong, 2 missed, 0 extra; commonest: 6 missed (1), 8 read as 9 (1)" in format_report(report)


def test_read_labels_keeps_the_digits_and_says_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="labels.csv"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("name,number\na.png,12\n")
    with pytest.raises(DataError, match="file.*text"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("file,text\na.png,3.975\nb.png,29/11\n")
    assert read_labels(tmp_path) == [("a.png", "3975"), ("b.png", "2911")]


@pytest.fixture(scope="module")
def numbers_folder(tmp_path_factory, mnist):
    """Eight generated 3-digit numbers with clear gaps, as a user's labelled folder."""
    folder = tmp_path_factory.mktemp("numbers")
    rows = ["file,text"]
    for i, (img, text, _) in enumerate(iter_number_set(mnist.test_images, mnist.test_labels, 8, 3, "gap", seed=11,
                                                       style=StyleConfig.clean())):
        img.save(folder / f"n{i}.png")
        rows.append(f"n{i}.png,{text}")
    Image.new("L", (100, 40), 255).save(folder / "blank.png")
    rows.append("blank.png,7")  # a label the image does not hold: always wrong
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_evaluate_folder_and_gallery(numbers_folder, tmp_path):
    report, readings, labels = evaluate_folder(load_reader(), numbers_folder)
    assert report["n"] == 9 and len(report["readings"]) == 9 and labels[-1] == "7"
    assert 6 <= report["right"] <= 8 and readings[-1].text == ""
    assert report["readings"][-1]["right"] is False and report["readings"][0]["label"] == labels[0]
    out = save_gallery(numbers_folder, readings, labels, tmp_path / "g" / "worst.png")
    with Image.open(out) as im:
        assert im.width >= 400 and im.height >= 96 * (9 - report["right"])


def test_cli_evaluate_read(numbers_folder, tmp_path):
    proc = run_cli("evaluate-read", str(numbers_folder), "--json", "--gallery", str(tmp_path / "worst.png"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 9 and set(report["accuracy_at_coverage"]) == {"100%", "90%", "80%", "50%"}
    assert (tmp_path / "worst.png").is_file()
    text = run_cli("evaluate-read", str(numbers_folder), "-q")
    assert text.returncode == 0 and "numbers read whole" in text.stdout and "accuracy at coverage" in text.stdout
    plain = run_cli("evaluate-read", str(numbers_folder))  # stderr is a pipe here: no progress bar in it
    assert plain.returncode == 0 and plain.stderr == ""
    missing = run_cli("evaluate-read", str(tmp_path))
    assert missing.returncode == 1 and "labels.csv" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_cli_evaluate_read_shares_a_folder_with_a_worker_and_reports_the_same(numbers_folder):
    # Two processes read the folder (as `digitrec read` does): the same report, readings named by
    # their labels.csv entries, as the library's `evaluate_folder` gives them.
    alone = run_cli("evaluate-read", str(numbers_folder), "--json", "--processes", "1")
    shared = run_cli("evaluate-read", str(numbers_folder), "--json", "--processes", "2")
    assert alone.returncode == shared.returncode == 0, shared.stderr
    assert json.loads(shared.stdout) == json.loads(alone.stdout)
    report, _, _ = evaluate_folder(load_reader(), numbers_folder)
    assert json.loads(shared.stdout)["readings"] == json.loads(json.dumps(report["readings"]))
