"""Accuracy on digits that reach a user framed in other ways than a photo (`synth.frame_digit`):
cropped tight to the digit, inside a printed box, in a form's comb field, cut from a row of
printed cells with a sliver of its neighbours, written with a thick
marker, scanned at low resolution and blown up; MNIST **test** digits,
rendered by our generator (so this measures the cases, not the real world: see user_digits.py).

    python benchmarks/framed_digits.py [--model MODEL] [--n 1000] [--seed 0] [--frames marker upscaled]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from digitrec.data import load_mnist
from digitrec.loading import load_model
from digitrec.synth import FRAMES, iter_framed_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", nargs="+", default=list(FRAMES), choices=FRAMES)
    p.add_argument("--digits", default="test", choices=["test", "val"],
                   help="render MNIST test digits (to report) or the validation digits held out of the training "
                        "set (to choose settings on)")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    data = load_mnist(args.data_dir)
    images, labels = data.digits(args.digits)
    rec = load_model(args.model)
    print("| frame | accuracy | no digit found | images/s |")
    print("|---|---|---|---|")
    for frame in args.frames:
        pictures = list(iter_framed_set(images, labels, args.n, frame, args.seed))
        t0 = time.perf_counter()
        preds = rec.predict([img for img, _ in pictures])
        seconds = time.perf_counter() - t0
        right = np.mean([pr.digit == label for pr, (_, label) in zip(preds, pictures)])
        print(f"| {frame} | {right:.4f} | {sum(pr.digit is None for pr in preds)} | {len(preds) / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
