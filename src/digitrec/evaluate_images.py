"""Honest evaluation of single digits on a user's own labelled images (the counterpart of
`evaluate_read` for numbers).

A folder of images with a `labels.csv` (`file,label`; `label` is the digit 0-9) is predicted by a
`predict.Recogniser`, then scored: accuracy (an image with no digit found, or unreadable, counts as
wrong), the calibration error of the confidences, and accuracy against coverage: with the least
confident answers set aside first (for a person to check), how often the rest are right.
`save_error_gallery` draws the errors beside the 28x28 view the model got.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .errors import DataError
from .evaluate import BINS, accuracy_at_coverage, expected_calibration_error, read_labels_csv, reliability
from .images import load_image
from .predict import Prediction, Recogniser

COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.5)  # reported: accuracy when only this share of answers is kept


def read_digit_labels(folder: str | Path) -> list[tuple[str, int]]:
    """(file, digit) rows of FOLDER/labels.csv, which needs the columns `file` and `label`."""
    rows = read_labels_csv(folder, "label", "the digit, 0-9, in each image", "evaluate-images")
    bad = [label for _, label in rows if label.strip() not in {str(d) for d in range(10)}]
    if bad:
        raise DataError(f"{Path(folder) / 'labels.csv'}: a label must be one digit 0-9; found {bad[0]!r}")
    return [(file, int(label)) for file, label in rows]


def score_digits(preds: list[Prediction], labels: list[int]) -> dict:
    """Accuracy, calibration error (ECE, 15 bins), reliability bins and accuracy at coverage."""
    right = np.array([p.digit == t for p, t in zip(preds, labels)], bool)
    # No answer is an answer nobody can act on: confidence 0, so it is set aside first.
    conf = np.array([p.confidence if p.digit is not None else 0.0 for p in preds])
    return {"n": len(labels), "right": int(right.sum()), "accuracy": float(right.mean()) if len(right) else float("nan"),
            "ece": expected_calibration_error(conf, right), "bins": BINS,
            "accuracy_at_coverage": {f"{c:.0%}": accuracy_at_coverage(conf, right, c) for c in COVERAGES},
            "reliability": reliability(conf, right),
            "no_digit": sum(p.no_digit for p in preds), "unreadable": sum(p.error is not None for p in preds)}


def evaluate_images(rec: Recogniser, folder: str | Path) -> tuple[dict, list[Prediction], list[int]]:
    """Predict every image listed in FOLDER/labels.csv; return (the `score_digits` report with every
    image's prediction under "predictions", the Predictions (with their 28x28 views), the labels)."""
    folder = Path(folder)
    rows = read_digit_labels(folder)
    preds = rec.predict([str(folder / f) for f, _ in rows], keep_preprocessed=True)
    for p, (f, _) in zip(preds, rows):
        p.source = f
    labels = [t for _, t in rows]
    report = score_digits(preds, labels)
    report["predictions"] = [{**p.to_dict(), "label": t, "right": p.digit == t} for p, t in zip(preds, labels)]
    return report, preds, labels


def format_report(report: dict) -> str:
    cov = "  ".join(f"{k} {v:.4f}" for k, v in report["accuracy_at_coverage"].items())
    missing = [f"{report[k]} {what}" for k, what in (("no_digit", "with no digit found"), ("unreadable", "unreadable"))
               if report[k]]
    return (f"{report['right']}/{report['n']} digits right ({report['accuracy']:.4f}); calibration error "
            f"(ECE, {report['bins']} bins) {report['ece']:.4f}\naccuracy at coverage: {cov}"
            + (f"\nimages {', '.join(missing)} (counted wrong)" if missing else ""))


def save_error_gallery(folder: str | Path, preds: list[Prediction], labels: list[int], out: str | Path,
                       cell: int = 72) -> Path:
    """A PNG of the wrong answers, the most confident first (those a threshold lets through): each
    image beside the 28x28 view the model got, with "label -> answer (confidence)"."""
    wrong = sorted((i for i, (p, t) in enumerate(zip(preds, labels)) if p.digit != t),
                   key=lambda i: -preds[i].confidence)
    cols = 4
    rows = max(1, -(-len(wrong) // cols))
    sheet = Image.new("RGB", (cols * 2 * cell, rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(wrong):
        x, y = (k % cols) * 2 * cell, (k // cols) * (cell + 14)
        sheet.paste(_thumb(Path(folder) / preds[i].source, cell), (x, y))
        if preds[i].preprocessed is not None:
            view = Image.fromarray((preds[i].preprocessed.image * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
            sheet.paste(view.convert("RGB"), (x + cell, y))
        p = preds[i]
        answer = "error" if p.error else "none" if p.digit is None else f"{p.digit} ({p.confidence:.2f})"
        draw.text((x + 2, y + cell), f"{labels[i]} -> {answer}", fill=(200, 0, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def _thumb(path: Path, cell: int) -> Image.Image:
    try:
        img = load_image(path).convert("RGBA")
    except Exception:  # an unreadable image still gets its place, in grey
        return Image.new("RGB", (cell, cell), "grey")
    # Transparent pixels on magenta: a stroke drawn on a transparent canvas stays visible.
    img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 0, 255, 255)), img).convert("RGB")
    img.thumbnail((cell, cell))
    tile = Image.new("RGB", (cell, cell), "white")
    tile.paste(img, ((cell - img.width) // 2, (cell - img.height) // 2))
    return tile
