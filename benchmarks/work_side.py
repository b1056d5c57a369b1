"""How small the working resolution of `preprocess` can be: accuracy and time at several long sides.

    python benchmarks/work_side.py                          # 96 128 144 160 192, validation digits
    python benchmarks/work_side.py --sides 128 192 --n 500  # 500 photos, 375 thin, 250 of each framed kind, 100 + 100 big

The ink of a digit's image is first looked for with the image shrunk to fit WORK_SIDE x WORK_SIDE
(`preprocess.WORK_SIDE`); the work falls with the pixels, and thin strokes fade as they shrink.
For each side, on the same pictures of MNIST **validation** digits (held out of training; the
settings are chosen on these), rendered by our generators:
  * photo: user-style photos (`synth.iter_user_style_set`, 40-600 px);
  * thin: a thin pen on big canvases (300-1,200 px, strokes at the generator's finest);
  * framed: every kind of `synth.iter_framed_set` (tight crops, boxes, combs, cells, markers, ...), summed;
  * big / big-small: phone-photo-sized JPEGs (1,500-4,000 px), the digit large, and small in the page;
and, to report beside them (never to choose by), the real digits of ../shared/data/user-digits: how
many are read right and the mean probability given to the right digit. Each cell: digits read right;
`ms` is preprocessing's mean time per picture over all the validation sets.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from digitrec.data import load_mnist
from digitrec.evaluate_images import read_digit_labels
from digitrec.loading import load_model
from digitrec.preprocess import NoDigitFound, preprocess
from digitrec.synth import FRAMES, StyleConfig, iter_framed_set, iter_user_style_set

USER_DIGITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "user-digits"
THIN = StyleConfig(long_side=(300, 1200), threshold=(0.85, 0.98))
BIG = StyleConfig(long_side=(1500, 4000))
BIG_SMALL = StyleConfig(long_side=(1500, 4000), digit_frac=(0.04, 0.12))


def jpeg(picture) -> bytes:
    """A phone photo as its file's bytes, so that it is decoded as one (at a reduced scale)."""
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def validation_sets(n: int, seed: int, data_dir: str | None) -> dict[str, list]:
    """{set name: [(picture or bytes, label)]}, the same pictures for every side."""
    data = load_mnist(data_dir)
    images, labels = data.digits("val")
    big = max(1, n // 5)  # phone photos are slow to make (a minute or more a hundred) and to read
    return {
        "photo": list(iter_user_style_set(images, labels, n, seed)),
        "thin": list(iter_user_style_set(images, labels, 3 * n // 4, seed, style=THIN)),
        "framed": [item for frame in FRAMES for item in iter_framed_set(images, labels, n // 2, frame, seed)],
        "big": [(jpeg(p), y) for p, y in iter_user_style_set(images, labels, big, seed, style=BIG)],
        "big-small": [(jpeg(p), y) for p, y in iter_user_style_set(images, labels, big, seed, style=BIG_SMALL)],
    }


def read(rec, items: list, side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Whether each item is read right, the probability its own label gets (0 where no digit is
    found), and the seconds preprocessing took."""
    framed, found, seconds = [], [], 0.0
    for source, _ in items:
        t0 = time.perf_counter()
        try:
            framed.append(preprocess(source, work_side=side).image)
            found.append(True)
        except NoDigitFound:
            found.append(False)
        seconds += time.perf_counter() - t0
    p, right = np.zeros(len(items)), np.zeros(len(items), bool)
    if framed:
        probs = rec.probabilities(np.stack(framed))
        labels = np.array([label for (_, label), ok in zip(items, found) if ok])
        p[np.array(found)] = probs[np.arange(len(labels)), labels]
        right[np.array(found)] = probs.argmax(1) == labels
    return right, p, seconds


def user_digits() -> list:
    """(path, digit) of the real user digits, or none where ../shared is not beside the clone."""
    if not (USER_DIGITS / "labels.csv").is_file():
        return []
    return [(USER_DIGITS / file, digit) for file, digit in read_digit_labels(USER_DIGITS)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sides", nargs="+", type=int, default=[96, 128, 144, 160, 192])
    p.add_argument("--n", type=int, default=2000,
                   help="photos; 3/4 as many thin-pen canvases, 1/2 as many of each framed kind, 1/5 of each phone photo set")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    rec = load_model(args.model)
    sets = validation_sets(args.n, args.seed, args.data_dir)
    real = user_digits()
    names = list(sets)
    print("| side | " + " | ".join(f"{k} (of {len(v)})" for k, v in sets.items()) + " | ms | real digits |")
    print("|---|" + "---|" * (len(names) + 2))
    for side in args.sides:
        cells, seconds, count = [], 0.0, 0
        for name in names:
            right, _, s = read(rec, sets[name], side)
            cells.append(str(int(right.sum())))
            seconds, count = seconds + s, count + len(sets[name])
        real_cell = "-"
        if real:
            right, p_true, _ = read(rec, real, side)
            real_cell = f"{int(right.sum())}/{len(real)} (p {p_true.mean():.4f})"
        print(f"| {side} | " + " | ".join(cells) + f" | {1000 * seconds / count:.2f} | {real_cell} |", flush=True)


if __name__ == "__main__":
    main()
