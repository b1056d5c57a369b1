"""Accuracy on real handwritten digits (../shared/data/user-digits): digitrec's preprocessing
against the tutorial's naive resize, with the same model, overall, per kind and per source.

    python benchmarks/user_digits.py [--model MODEL] [--backend torch] [--sheet errors.png] [--json out.json]

The images are for evaluation only: never train or tune on one source until it is perfect.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from digitrec.evaluate import BINS, accuracy_at_coverage, expected_calibration_error
from digitrec.loading import load_model
from digitrec.preprocess import naive_preprocess

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "user-digits"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"],
                   help="what runs the model (default: as `digitrec predict` does)")
    p.add_argument("--data", type=Path, default=DEFAULT_DIR)
    p.add_argument("--sheet", type=Path, default=None, help="PNG of the preprocessed views, errors first")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data / 'labels.csv'}: not found; this benchmark reads ../shared/data/user-digits "
                         "beside the clone, or pass --data FOLDER (images and a labels.csv with file,label,kind,source_repo)")
    rows = list(csv.DictReader(open(args.data / "labels.csv")))
    rec = load_model(args.model, backend=args.backend)
    preds = rec.predict([str(args.data / r["file"]) for r in rows], keep_preprocessed=True)
    naive = rec.probabilities(np.stack([naive_preprocess(args.data / r["file"]) for r in rows])).argmax(1).tolist()

    results = []
    for r, pr, nv in zip(rows, preds, naive):
        label = int(r["label"])
        results.append({"file": r["file"], "label": label, "kind": r["kind"], "source": r["source_repo"],
                        "digit": pr.digit, "confidence": pr.confidence, "error": pr.error,
                        "ok": pr.digit == label, "naive_ok": nv == label, "naive_digit": nv,
                        "_image": pr.preprocessed.image if pr.preprocessed else None})

    def table(key):
        groups = defaultdict(list)
        for x in results:
            groups[x[key]].append(x)
        print(f"\n| {key} | n | digitrec | naive resize |")
        print("|---|---|---|---|")
        for g, xs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            print(f"| {g} | {len(xs)} | {np.mean([x['ok'] for x in xs]):.3f} | {np.mean([x['naive_ok'] for x in xs]):.3f} |")

    n = len(results)
    ok, nok = sum(x["ok"] for x in results), sum(x["naive_ok"] for x in results)
    # The interval says how far a figure from 467 images can move by chance (Wilson's score interval).
    lo, hi = binomtest(ok, n).proportion_ci(0.95, method="wilson")
    print(f"model {args.model or 'shipped'}: {n} images; digitrec preprocessing {ok}/{n} = {ok / n:.4f} "
          f"(95% interval {lo:.3f}-{hi:.3f}); naive resize {nok}/{n} = {nok / n:.4f}")
    conf = np.array([x["confidence"] if x["error"] is None else 0.0 for x in results])
    right = np.array([x["ok"] for x in results])
    cov = "  ".join(f"{c:.0%} {accuracy_at_coverage(conf, right, c):.4f}" for c in (0.9, 0.8))
    print(f"calibration error (ECE, {BINS} bins) {expected_calibration_error(conf, right):.4f}; "
          f"accuracy at coverage: {cov}")
    table("kind")
    table("source")
    wrong = [x for x in results if not x["ok"]]
    if wrong:
        print("\nwrong:", ", ".join(f"{x['file']} ({x['label']}->{x['digit']})" for x in wrong))
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in x.items() if k != "_image"} for x in results], indent=1))
    if args.sheet:
        _sheet(wrong + [x for x in results if x["ok"]][: max(0, 120 - len(wrong))], args.data, args.sheet)


def _sheet(items, data_dir: Path, out: Path) -> None:
    from PIL import Image, ImageDraw

    cell, cols = 64, 12
    rows = -(-len(items) // (cols // 2)) if items else 1
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 12)), "grey")
    draw = ImageDraw.Draw(sheet)
    for i, x in enumerate(items):
        cx, cy = (i % (cols // 2)) * 2 * cell, (i // (cols // 2)) * (cell + 12)
        src = Image.open(data_dir / x["file"]).convert("RGBA")
        bg = Image.new("RGBA", src.size, (255, 0, 255, 255))
        bg.alpha_composite(src)
        src = bg.convert("RGB")
        src.thumbnail((cell - 2, cell - 2))
        sheet.paste(src, (cx + 1, cy + 1))
        if x["_image"] is not None:
            sheet.paste(Image.fromarray((x["_image"] * 255).astype(np.uint8)).resize((cell - 2, cell - 2), Image.NEAREST),
                        (cx + cell + 1, cy + 1))
        draw.text((cx + 2, cy + cell), f"{x['label']}->{x['digit']} {x['source'][:10]}",
                  fill="white" if x["ok"] else "red")
    sheet.save(out)


if __name__ == "__main__":
    main()
