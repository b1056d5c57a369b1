"""Accuracy on MNIST test digits rendered as photos of ink on paper (digitrec.synth), after
digitrec's preprocessing and after the tutorial's naive resize, with the same model; and the
speed of `digitrec predict` on image files.

    python benchmarks/user_style_accuracy.py [--model MODEL] [--n 1000] [--seed 0] [--files]

--files also writes the pictures as JPEG files and times the real CLI reading all of them
(`digitrec predict DIR --json`): images per second, end to end, on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import numpy as np

from digitrec.data import load_mnist
from digitrec.loading import load_model
from digitrec.preprocess import naive_preprocess
from digitrec.synth import iter_user_style_set, save_user_style_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--files", action="store_true", help="also time `digitrec predict` on n JPEG files")
    args = p.parse_args()

    data = load_mnist(args.data_dir)
    rec = load_model(args.model)
    pictures = list(iter_user_style_set(data.test_images, data.test_labels, args.n, seed=args.seed))
    labels = np.array([label for _, label in pictures])
    t0 = time.perf_counter()
    preds = rec.predict([img for img, _ in pictures])
    dt = time.perf_counter() - t0
    ours = np.array([-1 if p.digit is None else p.digit for p in preds])
    naive = rec.probabilities(np.stack([naive_preprocess(img) for img, _ in pictures])).argmax(1)
    print(f"model {args.model or 'shipped'}; {args.n} user-style pictures of MNIST test digits (seed {args.seed})")
    print(f"| pipeline | accuracy |\n|---|---|\n| digitrec preprocessing | {np.mean(ours == labels):.4f} |\n"
          f"| naive resize (tutorial) | {np.mean(naive == labels):.4f} |")
    print(f"no digit found: {int(np.sum(ours == -1))}; in-memory predict: {args.n / dt:.0f} images/s")
    wrong = np.nonzero(ours != labels)[0]
    print("wrong (index true->predicted):", ", ".join(f"{i} {labels[i]}->{ours[i]}" for i in wrong[:40]))

    if args.files:
        with tempfile.TemporaryDirectory() as tmp:
            save_user_style_set(tmp, data.test_images, data.test_labels, args.n, seed=args.seed, fmt="jpg")
            cmd = [sys.executable, "-m", "digitrec", "predict", tmp, "--json"] + (["--model", args.model] if args.model else [])
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            dt = time.perf_counter() - t0
            lines = out.stdout.strip().splitlines()
            print(f"`digitrec predict DIR --json` on {len(lines)} JPEG files: {dt:.1f}s wall, "
                  f"{len(lines) / dt:.0f} images/s (including start-up and model loading)")


if __name__ == "__main__":
    main()
