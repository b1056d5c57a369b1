"""Every number on a page (`digitrec read --all`): generated pages of MNIST test digits, and the real
bank-check amounts laid out several to a page.

    python benchmarks/read_pages.py                      # 50 pages of 4 numbers a paper and spacing
    python benchmarks/read_pages.py --n 100 --numbers 6 --length 5
    python benchmarks/read_pages.py --table             # each page photographed by the table

Generated pages come from `synth_numbers.render_page`: one hand writes 4-digit numbers (MNIST test
digits, or the validation digits with `--digits val`), one or two to a row, on plain, ruled or
squared paper; with `--table`, photographed by the table past the sheet's edge along a side. A
page counts as found when `read_all` returns exactly as many numbers as were written; a number
counts as read when its reading, in reading order, is right in every digit. Beside them, the
same numbers' figure one to an image is `benchmarks/read_numbers.py`'s.

With ../shared beside the clone, the 300 real bank checks are also read three to a page (each pasted
on a white sheet, 30 px apart, as a scanner bed holds them), and each alone through `read_all`,
against `digitrec read` (one number an image) on the same files.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from PIL import Image

from digitrec.data import load_mnist
from digitrec.device import use_inference_threads
from digitrec.read import load_reader
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import iter_page_set

CHECKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "number-strings" / "bank-checks"


def generated(rec, data, args) -> None:
    images, labels = data.digits(args.digits)
    print("| paper | spacing | pages with every number found | numbers read whole | s a page |")
    print("|---|---|---|---|---|")
    for paper in ("plain", "ruled", "squared"):
        for spacing in args.spacings:
            found = right = 0
            t0 = time.perf_counter()
            for page, texts, _ in iter_page_set(images, labels, args.n, args.numbers, args.length, spacing, args.seed,
                                                style=StyleConfig(paper=paper), table=args.table):
                got = [r.text for r in rec.read_all(page)]
                found += len(got) == len(texts)
                right += sum(a == b for a, b in zip(got, texts)) if len(got) == len(texts) else 0
            took = (time.perf_counter() - t0) / args.n
            total = args.n * args.numbers
            print(f"| {paper} | {spacing} | {found}/{args.n} | {right}/{total} = {right / total:.3f} | {took:.3f} |")


def checks(rec, per_page: int) -> None:
    labels = {Path(r["file"]).name: r["text"] for r in csv.DictReader(open(CHECKS / "labels.csv"))}
    files = sorted((CHECKS / "images").glob("*"))
    alone = sum(rec.read(f).text == labels[f.name] for f in files)
    alone_all = [rec.read_all(f) for f in files]
    one = sum(len(r) == 1 for r in alone_all)
    right_all = sum(len(r) == 1 and r[0].text == labels[f.name] for r, f in zip(alone_all, files))
    found = right = 0
    for i in range(0, len(files), per_page):
        ims = [Image.open(f).convert("RGB") for f in files[i:i + per_page]]
        page = Image.new("RGB", (max(im.width for im in ims) + 40, sum(im.height for im in ims) + 30 * (len(ims) + 1)),
                         (250, 250, 250))
        y = 30
        for im in ims:
            page.paste(im, (20, y))
            y += im.height + 30
        got = [r.text for r in rec.read_all(page)]
        texts = [labels[f.name] for f in files[i:i + per_page]]
        found += len(got) == len(texts)
        right += sum(a == b for a, b in zip(got, texts)) if len(got) == len(texts) else 0
    print(f"\nbank checks, {len(files)} real amounts:")
    print(f"  one an image, `read`:          {alone}/{len(files)} read whole")
    print(f"  one an image, `read_all`:      one number found in {one}, {right_all}/{len(files)} read whole")
    print(f"  {per_page} to a white page, `read_all`: every number found on {found}/{-(-len(files) // per_page)} pages, "
          f"{right}/{len(files)} read whole")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="pages per paper and spacing")
    p.add_argument("--numbers", type=int, default=4, help="numbers on a page")
    p.add_argument("--length", type=int, default=4, help="digits in a number")
    p.add_argument("--spacings", nargs="+", default=["gap", "touching"])
    p.add_argument("--per-page", type=int, default=3, help="bank checks on a page")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--digits", default="test", choices=["test", "val"],
                   help="write MNIST test digits (to report) or the validation digits held out of the training set "
                        "(to choose settings on)")
    p.add_argument("--table", action="store_true",
                   help="photograph each page by the table, past the sheet's edge along a side")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    use_inference_threads()  # as `digitrec read` runs
    rec = load_reader()
    generated(rec, load_mnist(args.data_dir), args)
    if CHECKS.is_dir() and not args.table:  # the checks are pasted on a white sheet, no table
        checks(rec, args.per_page)


if __name__ == "__main__":
    main()
