"""The sample images the README's first commands use: they are in the repository and read as it says."""

import csv
from pathlib import Path

import pytest

from conftest import run_cli

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.parametrize("command, labels, column", [("predict", "labels.csv", "label"), ("read", "numbers.csv", "text")])
def test_the_samples_are_read_as_labelled(command, labels, column):
    with open(SAMPLES / labels, newline="") as f:
        rows = list(csv.DictReader(f))
    proc = run_cli(command, *[str(SAMPLES / r["file"]) for r in rows])
    assert proc.returncode == 0, proc.stderr
    for r, line in zip(rows, proc.stdout.splitlines()):
        assert line.startswith(f"{SAMPLES / r['file']}: {r[column]} "), line


def test_the_sample_digits_score_with_evaluate_images():
    proc = run_cli("evaluate-images", str(SAMPLES))
    assert proc.returncode == 0 and proc.stdout.startswith("2/2 digits right"), proc.stdout


def test_the_sample_page_is_read_number_by_number_in_reading_order():
    with open(SAMPLES / "page.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    page = SAMPLES / row["file"]
    proc = run_cli("read", str(page), "--all")
    assert proc.returncode == 0, proc.stderr
    assert [ln.split("  ")[0] for ln in proc.stdout.splitlines()] == [
        f"{page} #{k}: {text}" for k, text in enumerate(row["numbers"].split(), 1)]
