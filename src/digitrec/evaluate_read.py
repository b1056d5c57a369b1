"""Honest evaluation of reading whole numbers, on a user's own labelled documents.

A folder of images with a `labels.csv` (`file,text`; `text` holds the digits, left to right) is read
by a `read.NumberReader`, then scored: the share of numbers read whole (every digit right, none
missing or extra), the digit error rate (edit distance over digits / digits in the labels), and
accuracy against coverage: with the least confident readings set aside first (for a person to
check), how often the rest are right. `save_gallery` draws the worst readings.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .evaluate import accuracy_at_coverage, expected_calibration_error, read_labels_csv
from .images import load_image
from .read import NumberReader, Reading

COVERAGES = (1.0, 0.9, 0.8, 0.5)  # reported: accuracy when only this share of readings is kept


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions that turn `a` into `b`."""
    return len(edit_operations(a, b))


def edit_operations(truth: str, read: str) -> list[tuple[str, str]]:
    """A shortest edit from `truth` to `read` as (written, read) pairs: ("9", "8") a digit read
    wrong, ("9", "") one missed, ("", "1") one too many."""
    n, m = len(truth), len(read)
    d = [[i + j if i * j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]  # edits of the prefixes
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] != read[j - 1]))
    ops, i, j = [], n, m
    while i or j:  # back from the corner; a substitution first where edits tie, as people count them
        if i and j and d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != read[j - 1]):
            i, j = i - 1, j - 1
            if truth[i] != read[j]:
                ops.append((truth[i], read[j]))
        elif i and d[i][j] == d[i - 1][j] + 1:
            i -= 1
            ops.append((truth[i], ""))
        else:
            j -= 1
            ops.append(("", read[j]))
    return ops[::-1]


def error_kinds(readings: list[Reading], labels: list[str], top: int = 10) -> dict:
    """What the digit errors are: how many digits were read wrong, missed and read where none was
    written, and the commonest of each ([written, read, count], most frequent first)."""
    ops = Counter(op for r, t in zip(readings, labels) for op in edit_operations(t, r.text))
    return {"substituted": sum(n for (a, b), n in ops.items() if a and b),
            "missed": sum(n for (_, b), n in ops.items() if not b),
            "extra": sum(n for (a, _), n in ops.items() if not a),
            "commonest": [[a, b, n] for (a, b), n in ops.most_common(top)]}


def read_labels(folder: str | Path) -> list[tuple[str, str]]:
    """(file, digits) rows of FOLDER/labels.csv; anything but digits in `text` is dropped."""
    rows = read_labels_csv(folder, "text", "the digits written in each image", "evaluate-read")
    return [(file, "".join(c for c in text if c.isdigit())) for file, text in rows]


def score(readings: list[Reading], labels: list[str]) -> dict:
    """Whole-number accuracy, digit error rate and accuracy at coverage of `readings` against `labels`."""
    right = np.array([r.text == t for r, t in zip(readings, labels)])
    confidence = np.array([r.confidence for r in readings])
    errors = sum(edit_distance(r.text, t) for r, t in zip(readings, labels))
    digits = sum(len(t) for t in labels)
    return {"n": len(labels), "whole": float(right.mean()) if len(right) else float("nan"),
            "right": int(right.sum()), "digit_error_rate": errors / max(digits, 1), "digits": digits,
            "accuracy_at_coverage": {f"{c:.0%}": accuracy_at_coverage(confidence, right, c) for c in COVERAGES},
            "mean_confidence": float(confidence.mean()) if len(confidence) else float("nan"),
            "calibration_error": expected_calibration_error(confidence, right) if len(right) else float("nan"),
            "unreadable": sum(r.error is not None for r in readings), "errors": error_kinds(readings, labels)}


def evaluate_folder(reader: NumberReader, folder: str | Path, progress=None) -> tuple[dict, list[Reading], list[str]]:
    """Read every image listed in FOLDER/labels.csv; return (the `score` report with every image's
    reading under "readings", the Readings, the labels). `progress(iterable)` may wrap the loop."""
    folder = Path(folder)
    rows = read_labels(folder)
    items = progress(rows) if progress else rows
    return evaluate_readings([reader.read(str(folder / file), name=file) for file, _ in items], rows)


def evaluate_readings(readings: list[Reading], rows: list[tuple[str, str]]) -> tuple[dict, list[Reading], list[str]]:
    """`evaluate_folder`'s answer for readings already made, one per row (file, text) of its labels."""
    labels = [t for _, t in rows]
    report = score(readings, labels)
    report["readings"] = [{**r.to_dict(), "label": t, "right": r.text == t} for r, t in zip(readings, labels)]
    return report, readings, labels


def format_report(report: dict) -> str:
    cov = "  ".join(f"{k} {v:.3f}" for k, v in report["accuracy_at_coverage"].items())
    return (f"{report['right']}/{report['n']} numbers read whole ({report['whole']:.3f}); digit error rate "
            f"{report['digit_error_rate']:.3f} ({report['digits']} digits)\naccuracy at coverage: {cov}\n"
            f"mean confidence {report['mean_confidence']:.3f}; calibration error (ECE, 15 bins) {report['calibration_error']:.3f}"
            + format_errors(report.get("errors"))
            + (f"\n{report['unreadable']} image(s) could not be read" if report["unreadable"] else ""))


def format_errors(errors: dict | None) -> str:
    """'digit errors: 120 read wrong, 14 missed, 25 extra; commonest: 9 read as 8 (11), 1 extra (9), ...'."""
    if not errors or not errors["commonest"]:
        return ""
    said = [(f"{a} read as {b}" if a and b else f"{a} missed" if a else f"{b} extra") + f" ({n})"
            for a, b, n in errors["commonest"][:5]]
    return (f"\ndigit errors: {errors['substituted']} read wrong, {errors['missed']} missed, {errors['extra']} extra; "
            "commonest: " + ", ".join(said))


def save_gallery(folder: str | Path, readings: list[Reading], labels: list[str], out: str | Path,
                 worst: int = 40, height: int = 80) -> Path:
    """A PNG of the wrong readings, the most confident first (those a threshold lets through): each
    image with its digits' boxes (marks in blue) and "label -> read (confidence)"."""
    wrong = sorted((i for i, (r, t) in enumerate(zip(readings, labels)) if r.text != t),
                   key=lambda i: -readings[i].confidence)[:worst]
    tiles = [_tile(Path(folder) / readings[i].source, readings[i], labels[i], height) for i in wrong]
    width = max([t.width for t in tiles] + [400])
    sheet = Image.new("RGB", (width, max(1, sum(t.height for t in tiles))), "white")
    y = 0
    for t in tiles:
        sheet.paste(t, (0, y))
        y += t.height
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def _tile(path: Path, r: Reading, label: str, height: int) -> Image.Image:
    try:
        img = load_image(path).convert("RGB")
    except Exception:  # an unreadable image still gets its row, with the reason
        img = Image.new("RGB", (height, height), "grey")
    k = height / img.height
    img = img.resize((max(1, round(img.width * k)), height))
    draw = ImageDraw.Draw(img)
    for box, colour in [(d.box, (220, 30, 30)) for d in r.digits] + [(m.box, (30, 60, 220)) for m in r.separators]:
        draw.rectangle([v * k for v in box], outline=colour)
    tile = Image.new("RGB", (max(img.width, 400), height + 16), "white")
    tile.paste(img, (0, 16))
    what = r.error or f"{r.formatted or '(nothing)'}  confidence {r.confidence:.2f}"
    ImageDraw.Draw(tile).text((2, 2), f"{r.source}: {label} -> {what}", fill=(0, 0, 0))
    return tile
