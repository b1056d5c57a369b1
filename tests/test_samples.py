"""The sample images the README's first commands use: they are in the repository and read as it says."""

import csv
import re
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


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


def _words_and_numbers(line: str) -> tuple[list[str], list[float]]:
    """A line's words, with its confidences (the numbers with a point) taken out to compare loosely."""
    words = line.replace("(", " ").replace(")", " ").split()
    numbers = [float(w) for w in words if re.fullmatch(r"\d\.\d+", w)]
    return [w for w in words if not re.fullmatch(r"\d\.\d+", w)], numbers


def test_the_readme_shows_the_samples_as_the_cli_reads_them():
    shown = re.findall(r"^# (samples/[^:\n]+: .*confidence.*)$", (ROOT / "README.md").read_text(), re.M)
    assert len(shown) >= 5, shown
    with_all = [s for s in shown if " #" in s.split(":")[0]]
    out = []
    for command, rows, extra in (("predict", "labels.csv", ()), ("read", "numbers.csv", ()), ("read", "page.csv", ("--all",))):
        with open(SAMPLES / rows, newline="") as f:
            files = [f"samples/{r['file']}" for r in csv.DictReader(f)]
        proc = run_cli(command, *files, *extra, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        out += proc.stdout.splitlines()
    for line in shown:
        (ran,) = [o for o in out if o.split(":")[0] == line.split(":")[0]]
        (words, numbers), (ran_words, ran_numbers) = _words_and_numbers(line), _words_and_numbers(ran)
        assert words == ran_words and numbers == pytest.approx(ran_numbers, abs=0.011), (line, ran)
    assert with_all, "the README shows no line of `read --all`"
