"""`digitrec read` on real handwriting: the 300 bank-check amounts in ../shared/data/number-strings,
beside an off-the-shelf OCR on the same images.

    python benchmarks/bank_checks.py [--model MODEL] [--reader READER] [--json out.json] [--gallery worst.png]
    pip install -e '.[bench]'; python benchmarks/bank_checks.py --peer     # RapidOCR's row too

Prints, per reader: the share of amounts read whole (every digit right, none missing or extra),
the digit error rate (edit distance over digits / digits in the labels), accuracy at 90% and 80%
coverage (the least confident readings set aside first), the mean confidence beside the share read
whole, the calibration error (ECE, 15 bins) and images per second (start-up excluded); then
digitrec's digit errors by kind (read wrong, missed, extra) and the commonest of them.
The labels hold the digits only: separators written on the check are not digits. The peer is
RapidOCR 1.4.4's recogniser alone on each field (PP-OCRv4, offline), its output kept to its
digits; it has no per-number confidence we can compare, so its coverage columns are its mean
character score's. For evaluation and error analysis only: never tune on these images.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from digitrec.device import use_inference_threads
from digitrec.evaluate import expected_calibration_error
from digitrec.evaluate_read import (accuracy_at_coverage, edit_distance, evaluate_folder, format_errors, read_labels,
                                    save_gallery)
from digitrec.read import load_reader

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "number-strings" / "bank-checks"


def _row(name: str, report: dict, seconds: float) -> str:
    cov = report["accuracy_at_coverage"]
    lo, hi = binomtest(report["right"], report["n"]).proportion_ci(0.95, method="wilson")  # chance's reach, 300 images
    return (f"| {name} | {report['right']}/{report['n']} = {report['whole']:.3f} ({lo:.2f}-{hi:.2f}) | "
            f"{report['digit_error_rate']:.3f} | "
            f"{cov['90%']:.3f} | {cov['80%']:.3f} | {report['mean_confidence']:.3f} | {report['calibration_error']:.3f} | "
            f"{report['n'] / seconds:.1f} |")


def rapidocr(folder: Path, rows: list[tuple[str, str]]) -> tuple[dict, float]:
    """RapidOCR's recogniser on each image, digits kept; scored like `evaluate_read.score`."""
    from rapidocr_onnxruntime import RapidOCR  # the optional peer: pip install -e '.[bench]'

    engine = RapidOCR()
    engine(str(folder / rows[0][0]), use_det=False, use_cls=False, use_rec=True)  # warm up: start-up excluded
    t0 = time.perf_counter()
    texts, scores = [], []
    for file, _ in rows:
        res, _ = engine(str(folder / file), use_det=False, use_cls=False, use_rec=True)
        texts.append(re.sub(r"\D", "", "".join(r[0] for r in res or [])))
        scores.append(float(np.mean([r[1] for r in res])) if res else 0.0)
    seconds = time.perf_counter() - t0
    right = np.array([a == t for a, (_, t) in zip(texts, rows)])
    errors = sum(edit_distance(a, t) for a, (_, t) in zip(texts, rows))
    report = {"n": len(rows), "right": int(right.sum()), "whole": float(right.mean()),
              "digit_error_rate": errors / sum(len(t) for _, t in rows),
              "accuracy_at_coverage": {f"{c:.0%}": accuracy_at_coverage(np.array(scores), right, c) for c in (0.9, 0.8)},
              "mean_confidence": float(np.mean(scores)), "calibration_error": expected_calibration_error(np.array(scores), right)}
    return report, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="digit model (default: the shipped one)")
    p.add_argument("--reader", action="append", help="line reader; again for readers that vote (default: the shipped pair)")
    p.add_argument("--data", type=Path, default=DEFAULT_DIR)
    p.add_argument("--peer", action="store_true", help="also run RapidOCR (pip install -e '.[bench]')")
    p.add_argument("--json", type=Path, default=None, help="write the report, every image's reading included")
    p.add_argument("--gallery", type=Path, default=None, help="write a PNG of the wrong readings")
    args = p.parse_args()

    use_inference_threads()  # as `digitrec read` runs
    reader = load_reader(args.model, args.reader)
    reader.read(str(args.data / read_labels(args.data)[0][0]))  # warm up: start-up excluded
    t0 = time.perf_counter()
    report, readings, labels = evaluate_folder(reader, args.data)
    seconds = time.perf_counter() - t0
    print("| reader | read whole (95% interval) | digit error rate | acc. at 90% | acc. at 80% | mean confidence | ECE | images/s |")
    print("|---|---|---|---|---|---|---|---|")
    print(_row("digitrec", report, seconds))
    print(format_errors(report["errors"]).strip())  # the error analysis: what to work on next
    if args.peer:
        peer, peer_seconds = rapidocr(args.data, read_labels(args.data))
        print(_row("RapidOCR 1.4.4 (recogniser, digits kept)", peer, peer_seconds))
    if args.gallery:
        print(f"wrote {save_gallery(args.data, readings, labels, args.gallery)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
