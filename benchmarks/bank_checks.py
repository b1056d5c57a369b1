"""`digitrec read` on real handwriting: the 300 bank-check amounts in ../shared/data/number-strings.

    python benchmarks/bank_checks.py [--model MODEL] [--reader READER] [--json out.json]

Prints the share of amounts read whole (every digit right, none missing or extra), the digit error
rate (edit distance over digits / digits in the labels) and the reading speed. The labels hold the
digits only: separators (`.`, `,`, `-`) written on the check are not digits to read. For evaluation
and error analysis only: never tune on these images.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from digitrec.read import load_reader

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "number-strings" / "bank-checks"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions to turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="digit model (default: the shipped one)")
    p.add_argument("--reader", default=None, help="line reader (default: the shipped one)")
    p.add_argument("--data", type=Path, default=DEFAULT_DIR)
    p.add_argument("--json", type=Path, default=None, help="write every image's reading here")
    args = p.parse_args()

    rows = list(csv.DictReader(open(args.data / "labels.csv")))
    reader = load_reader(args.model, args.reader)
    t0 = time.perf_counter()
    readings = [reader.read(str(args.data / r["file"])) for r in rows]
    seconds = time.perf_counter() - t0
    whole = sum(r.text == row["text"] for r, row in zip(readings, rows))
    errors = sum(edit_distance(r.text, row["text"]) for r, row in zip(readings, rows))
    digits = sum(len(row["text"]) for row in rows)
    print(f"bank checks: {whole}/{len(rows)} = {whole / len(rows):.3f} read whole; digit error rate "
          f"{errors}/{digits} = {errors / digits:.3f}; {len(rows) / seconds:.1f} images/s")
    if args.json:
        out = [{"file": row["file"], "label": row["text"], **r.to_dict()} for r, row in zip(readings, rows)]
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
