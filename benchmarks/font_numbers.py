"""`digitrec read` on numbers written in 64 handwriting fonts on plain, ruled and squared paper.

    bash scripts/fetch-fonts runs/fonts                        # once: the fonts (about 2 MB)
    python benchmarks/font_numbers.py --fonts runs/fonts       # 3 papers x lengths 3-6, 128 numbers each
    python benchmarks/font_numbers.py --fonts runs/fonts --out runs/font-numbers --gallery worst.png

Each number is written by `synth_numbers.write_number` in one font (each font in turn, so every hand counts
alike), with the font's own digits and spacing, on paper photographed as the user-style sets are.
The fonts are 64 people's hands that are not MNIST's writers: European 1s, crossed 7s, open 4s,
hooked 9s, print and cursive, thin pen and marker. So this measures what the generated MNIST
numbers (`read_numbers.py`) cannot: handwriting the reader never saw, on a notebook's paper. It is
not a photo of real ink either; the bank checks (`bank_checks.py`) stay the real test.

The images and a labels.csv per paper are written to --out (a temp folder by default), so
`digitrec evaluate-read OUT/ruled` scores them again. Prints, per paper: numbers read whole per
length, the digit error rate, accuracy at 80% coverage, the calibration error, and the fonts read worst.
A reader trained with `--fonts` must be judged on fonts it did not train on (`--skip`).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from digitrec.device import use_inference_threads
from digitrec.evaluate_read import evaluate_folder, save_gallery, score
from digitrec.fonts import load_fonts
from digitrec.read import load_reader
from digitrec.synth import StyleConfig
from digitrec.synth_numbers import write_number

PAPERS = ("plain", "ruled", "squared", "security")


def write_set(fonts: list, out: Path, paper: str, lengths: list[int], n: int, seed: int,
              height: tuple[float, float]) -> list[str]:
    """n numbers of each length on `paper` in out/, with out/labels.csv; returns each image's font."""
    out.mkdir(parents=True, exist_ok=True)
    rows, used = [], []
    for length in lengths:
        for i, child in enumerate(np.random.SeedSequence([seed, length, PAPERS.index(paper)]).spawn(n)):
            rng = np.random.default_rng(child)
            text = str(rng.integers(1, 10)) + "".join(str(d) for d in rng.integers(0, 10, length - 1))
            font = fonts[(i + length) % len(fonts)]
            name = f"{length}-{i:04d}.jpg"
            write_number(text, font, rng, StyleConfig(paper=paper), height).save(out / name, quality=92)
            rows.append((name, text))
            used.append(" ".join(font.getname()))
    with open(out / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file", "text"), *rows])
    return used


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fonts", required=True, help="folder of handwriting fonts (bash scripts/fetch-fonts DIR)")
    p.add_argument("--skip", nargs="*", default=[], help="font files (stems) to leave out, e.g. those a reader trained on")
    p.add_argument("--model", default=None, help="digit model (default: the shipped one)")
    p.add_argument("--reader", action="append", help="line reader; again for readers that vote (default: the shipped pair)")
    p.add_argument("--papers", nargs="+", default=["plain", "ruled", "squared"], choices=PAPERS,
                   help="a notebook's paper, or a check's printed security pattern")
    p.add_argument("--lengths", nargs="+", type=int, default=[3, 4, 5, 6])
    p.add_argument("--n", type=int, default=128, help="numbers per paper and length")
    p.add_argument("--height", nargs=2, type=float, default=[36, 110], metavar=("LO", "HI"),
                   help="range of the digits' height in px (20 40: as small as on a scanned check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the images and labels (default: a temp folder)")
    p.add_argument("--gallery", default=None, help="write a PNG of the wrong readings (of the last paper)")
    args = p.parse_args()

    fonts = [f for f in load_fonts(args.fonts) if Path(f.path).stem not in args.skip]
    out = Path(args.out or tempfile.mkdtemp(prefix="digitrec-font-numbers-"))
    use_inference_threads()  # as `digitrec read` runs: one thread unless DIGITREC_THREADS says
    reader = load_reader(args.model, args.reader)
    print(f"{len(fonts)} fonts; images in {out}\n")
    print(f"| paper | {' | '.join(f'{k} digits' for k in args.lengths)} | all | digit error rate | acc. at 80% | ECE |")
    print("|---|" + "---|" * (len(args.lengths) + 4))
    misses: dict[str, int] = defaultdict(int)
    for paper in args.papers:
        used = write_set(fonts, out / paper, paper, args.lengths, args.n, args.seed, tuple(args.height))
        report, readings, labels = evaluate_folder(reader, out / paper)
        cells = [score(readings[i * args.n:(i + 1) * args.n], labels[i * args.n:(i + 1) * args.n])["whole"]
                 for i in range(len(args.lengths))]
        print(f"| {paper} | {' | '.join(f'{c:.3f}' for c in cells)} | **{report['whole']:.3f}** | "
              f"{report['digit_error_rate']:.3f} | {report['accuracy_at_coverage']['80%']:.3f} | "
              f"{report['calibration_error']:.3f} |", flush=True)
        for r, t, font in zip(readings, labels, used):
            misses[font] += r.text != t
        if args.gallery and paper == args.papers[-1]:
            save_gallery(out / paper, readings, labels, args.gallery)
    worst = [(name, k) for name, k in sorted(misses.items(), key=lambda kv: -kv[1])[:8] if k]
    total = len(args.papers) * len(args.lengths) * args.n
    print(f"\nfonts read worst (wrong numbers, of about {total / len(fonts):.2g} each): "
          + (", ".join(f"{name} {k}" for name, k in worst) or "none"))


if __name__ == "__main__":
    main()
