"""Whole-number accuracy of `digitrec read` on numbers composed from MNIST test digits.

    python benchmarks/read_numbers.py                       # lengths 2 4 6 8, every spacing, 100 each
    python benchmarks/read_numbers.py --lengths 4 --n 300 --model runs/best/model.pt
    python benchmarks/read_numbers.py --lengths 4 6 --spacings gap --field boxes   # in a form's cells
    python benchmarks/read_numbers.py --lengths 3 --spacings gap --page edge       # small by a page's edge
    python benchmarks/read_numbers.py --lengths 4 --spacings gap --page table      # a photo of a note on a table

Numbers come from our own generator (`synth_numbers.render_number`): MNIST test digits written side by
side with a clear gap, touching, or overlapping, with baseline jitter, size changes, slant, and the
same paper, lighting and camera effects as the single-digit user-style set; dark ink on light
paper. A number counts as right only if every digit is right and none is missing or extra.
Prints one table (per length and spacing), how well the confidences match (mean, ECE, accuracy at
80% coverage) and the reading speed in digits per second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from digitrec.data import load_mnist
from digitrec.device import use_inference_threads
from digitrec.evaluate import accuracy_at_coverage, expected_calibration_error
from digitrec.read import load_reader
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import FIELDS, PAGES, SPACINGS, iter_number_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--reader", action="append", help="line reader checkpoint; again for readers that vote (default: the shipped pair)")
    p.add_argument("--digits", default="test", choices=["test", "val"],
                   help="compose from MNIST test digits (to report) or the 5,000 validation digits held out of "
                        "the training set (to choose settings on)")
    p.add_argument("--lengths", nargs="+", type=int, default=[2, 4, 6, 8])
    p.add_argument("--spacings", nargs="+", default=list(SPACINGS), choices=SPACINGS)
    p.add_argument("--n", type=int, default=100, help="numbers per length and spacing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--errors", type=int, default=0, help="print this many wrong readings per cell")
    p.add_argument("--paper", default="plain", choices=["plain", "ruled", "squared", "security", "band"],
                   help="write the numbers on a notebook's ruled or squared paper, a check's security pattern, "
                        "or across a printed tint band")
    p.add_argument("--faint-digit", type=float, default=0.0, metavar="P",
                   help="share of numbers with one digit in a lighter pen (30-50%% of the ink)")
    p.add_argument("--turn", type=float, default=0.0, metavar="DEG",
                   help="turn each whole number by a third of DEG to DEG degrees either way (a photo taken askew)")
    p.add_argument("--specks", type=float, default=0.0, metavar="SHARE",
                   help="set up to this share of each picture's pixels black or white (salt and pepper)")
    p.add_argument("--sign", type=float, default=0.0, metavar="P",
                   help="share of numbers with a printed $ or # before them (0.4-1x the digits' height)")
    p.add_argument("--small-tail", type=float, default=0.0, metavar="P",
                   help="share of numbers written smaller from one digit on (0.45-0.8x), as the zeros of '1.000'")
    p.add_argument("--field", default=None, choices=FIELDS,
                   help="write each number in a form's field, a row of cells (one digit to a cell) or a comb "
                        "(--spacings gap only), or one amount box around the whole number")
    p.add_argument("--page", default=None, choices=PAGES,
                   help="write each number small in a bigger crop of its page, as a register's row number "
                        "(`synth_numbers.render_number`): 'edge' with the page's edge along one side, 'table' with "
                        "the table past the sheet's edge")
    args = p.parse_args()
    if args.field not in (None, "amount") and args.spacings != ["gap"]:
        p.error("--field writes the digits in cells, with a clear gap: add --spacings gap")

    data = load_mnist(args.data_dir)
    images, labels = data.digits(args.digits)
    use_inference_threads()  # as `digitrec read` runs: one thread unless DIGITREC_THREADS says
    rec = load_reader(args.model, args.reader)
    rows, digits, seconds, confidences, correct = [], 0, 0.0, [], []
    for length in args.lengths:
        for spacing in args.spacings:
            right, wrong = 0, []
            for img, text, _ in iter_number_set(images, labels, args.n, length, spacing, args.seed,
                                                style=StyleConfig(paper=args.paper, faint_digit=args.faint_digit, turn=args.turn, specks=args.specks,
                                                                  sign=args.sign, small_tail=args.small_tail),
                                                field=args.field, page=args.page):
                t0 = time.perf_counter()
                reading = rec.read(img)
                seconds += time.perf_counter() - t0
                got = reading.text
                digits += length
                right += got == text
                confidences.append(reading.confidence)
                correct.append(got == text)
                if got != text:
                    wrong.append(f"{text}->{got}")
            rows.append((length, spacing, right / args.n))
            print(f"length {length} {spacing:<11} {right}/{args.n} = {right / args.n:.3f}"
                  + (f"   e.g. {', '.join(wrong[:args.errors])}" if args.errors else ""), flush=True)

    print(f"\n| digits | {' | '.join(args.spacings)} |")
    print("|---|" + "---|" * len(args.spacings))
    for length in args.lengths:
        cells = [f"{acc:.3f}" for ln, _, acc in rows if ln == length]
        print(f"| {length} | {' | '.join(cells)} |")
    print(f"\nconfidence: mean {np.mean(confidences):.3f} beside {np.mean(correct):.3f} read whole; calibration error "
          f"(ECE, 15 bins) {expected_calibration_error(np.array(confidences), np.array(correct)):.3f}; accuracy at 80% "
          f"coverage {accuracy_at_coverage(np.array(confidences), np.array(correct), 0.8):.3f}")
    print(f"\nreading speed: {digits / seconds:.1f} digits/s ({digits} digits, generation excluded)")


if __name__ == "__main__":
    main()
