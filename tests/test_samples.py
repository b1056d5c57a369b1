"""The sample images the README's first commands use: they are in the repository and read as it says."""

import csv
from pathlib import Path

from conftest import run_cli

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _rows(name: str) -> list[dict]:
    with open(SAMPLES / name, newline="") as f:
        return list(csv.DictReader(f))


def test_the_sample_digits_are_read_as_labelled():
    rows = _rows("labels.csv")
    proc = run_cli("predict", *[str(SAMPLES / r["file"]) for r in rows])
    assert proc.returncode == 0, proc.stderr
    for r, line in zip(rows, proc.stdout.splitlines()):
        assert line.startswith(f"{SAMPLES / r['file']}: {r['label']} "), line
    proc = run_cli("evaluate-images", str(SAMPLES))
    assert proc.returncode == 0 and proc.stdout.startswith(f"{len(rows)}/{len(rows)} digits right"), proc.stdout


def test_the_sample_numbers_are_read_as_labelled():
    rows = _rows("numbers.csv")
    proc = run_cli("read", *[str(SAMPLES / r["file"]) for r in rows])
    assert proc.returncode == 0, proc.stderr
    for r, line in zip(rows, proc.stdout.splitlines()):
        assert line.startswith(f"{SAMPLES / r['file']}: {r['text']} "), line
