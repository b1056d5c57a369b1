"""The sample images the README's first commands use: they are in the repository and read as it says."""

import csv
import re
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


# Each sample set, the command that reads it, and the column of its labels file that says what it holds.
RUNS = {"labels.csv": ("predict", "label", ()), "numbers.csv": ("read", "text", ()), "page.csv": ("read", "numbers", ("--all",))}


def _rows(labels: str) -> list[dict]:
    with open(SAMPLES / labels, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def printed() -> dict[str, list[str]]:
    """What the CLI prints for each sample set, run once from the repository's root as the README
    runs it (paths as `samples/...`)."""
    out = {}
    for labels, (command, _, extra) in RUNS.items():
        proc = run_cli(command, *[f"samples/{r['file']}" for r in _rows(labels)], *extra, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        out[labels] = proc.stdout.splitlines()
    return out


@pytest.mark.parametrize("labels", ["labels.csv", "numbers.csv"])
def test_the_samples_are_read_as_labelled(printed, labels):
    column = RUNS[labels][1]
    for r, line in zip(_rows(labels), printed[labels], strict=True):
        assert line.startswith(f"samples/{r['file']}: {r[column]} "), line


def test_the_sample_digits_score_with_evaluate_images():
    proc = run_cli("evaluate-images", str(SAMPLES))
    assert proc.returncode == 0 and proc.stdout.startswith("2/2 digits right"), proc.stdout


def test_the_sample_page_is_read_number_by_number_in_reading_order(printed):
    (row,) = _rows("page.csv")
    assert [ln.split("  ")[0] for ln in printed["page.csv"]] == [
        f"samples/{row['file']} #{k}: {text}" for k, text in enumerate(row["numbers"].split(), 1)]


def _words_and_numbers(line: str) -> tuple[list[str], list[float]]:
    """A line's words, with its confidences (the numbers with a point) taken out to compare loosely."""
    words = line.replace("(", " ").replace(")", " ").split()
    numbers = [float(w) for w in words if re.fullmatch(r"\d\.\d+", w)]
    return [w for w in words if not re.fullmatch(r"\d\.\d+", w)], numbers


def test_the_readme_shows_the_samples_as_the_cli_reads_them(printed):
    shown = re.findall(r"^# (samples/[^:\n]+: .*confidence.*)$", (ROOT / "README.md").read_text(), re.M)
    assert len(shown) >= 5, shown
    assert any(" #" in s.split(":")[0] for s in shown), "the README shows no line of `read --all`"
    out = [line for lines in printed.values() for line in lines]
    for line in shown:
        (ran,) = [o for o in out if o.split(":")[0] == line.split(":")[0]]
        (words, numbers), (ran_words, ran_numbers) = _words_and_numbers(line), _words_and_numbers(ran)
        assert words == ran_words and numbers == pytest.approx(ran_numbers, abs=0.011), (line, ran)
