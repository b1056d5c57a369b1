"""Where the time of `digitrec predict` and `digitrec read` goes, against the rate the same files decode at.

    python benchmarks/image_path.py                     # 1,000 user-style JPEGs (made once, in a temp folder)
    python benchmarks/image_path.py --n 300 --top 15

Prints, in one run on the same files (`synth.save_user_style_set(..., seed=0, fmt='jpg')`, 40-600 px):
  * decoding alone (PIL open + convert('L'), one process): the rate to measure against;
  * `preprocess` alone, in this process, and a profile of it: milliseconds per image in each of
    digitrec's functions and in the library calls that cost most;
  * `digitrec predict DIR --json` and a cold one-image `digitrec predict` as whole processes
    (start-up included), as a user runs them; the cold start as the median of --cold runs, with
    the shipped model's ONNX export (the default, no torch imported) and with `--backend torch`;
  * `digitrec read` on the 300 bank-check amounts as a whole process, when ../shared is beside the clone,
    on the shipped models' ONNX exports (the default, no torch imported) and with `--backend torch`;
  * a cold one-image `digitrec read samples/number.jpg` on each backend, the median of --cold runs;
  * with --big N: N phone-photo-sized JPEGs (1,500-4,000 px, `synth.StyleConfig(long_side=...)`),
    decoded alone and preprocessed (a big JPEG is decoded at a reduced scale: `images.load_reduced`).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitrec.data import load_mnist
from digitrec.preprocess import NoDigitFound, preprocess
from digitrec.synth import StyleConfig, save_user_style_set

CHECKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "number-strings" / "bank-checks"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} images/s  ({seconds:.2f} s for {n})"


def whole_process(*args: str) -> float:
    """Seconds a `digitrec` command takes, start-up included; its output is discarded."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digitrec", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def decode_all(files: list[Path]) -> None:
    """Decode every file, as the decode-only rate is measured: PIL open + convert('L')."""
    for f in files:
        Image.open(f).convert("L")


def preprocess_all(files: list[Path]) -> None:
    """Preprocess every file; an image with no digit found is part of the work too."""
    for f in files:
        try:
            preprocess(f)
        except NoDigitFound:
            pass


def profile_preprocess(files: list[Path], top: int) -> float:
    """Preprocess every file under cProfile; print the costliest functions; return the seconds taken without it."""
    t0 = time.perf_counter()
    preprocess_all(files)
    plain = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.enable()
    preprocess_all(files)
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (calls, prim, tottime, cumtime, callers)}
    per = 1000 / len(files)
    ours = sorted(((v[3], f"{Path(k[0]).stem}.{k[2]}") for k, v in stats.items() if "digitrec" in k[0]), reverse=True)
    lib = sorted(((v[2], k[2] if k[0] == "~" else f"{Path(k[0]).stem}.{k[2]}") for k, v in stats.items()
                  if "digitrec" not in k[0]), reverse=True)
    print("\n  digitrec's functions, ms per image (cumulative, under the profiler):")
    for t, name in ours[:top]:
        print(f"    {t * per:7.3f}  {name}")
    print("  library calls, ms per image (own time):")
    for t, name in lib[:top]:
        print(f"    {t * per:7.3f}  {name}")
    return plain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="user-style JPEGs to make and read")
    p.add_argument("--top", type=int, default=12, help="functions to list in each profile")
    p.add_argument("--cold", type=int, default=5, help="cold one-image runs to take the median of")
    p.add_argument("--big", type=int, default=0, help="also time this many phone-photo-sized JPEGs")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="digitrec-image-path-"))
    data = load_mnist(args.data_dir)
    save_user_style_set(folder, data.test_images, data.test_labels, args.n, seed=0, fmt="jpg")
    files = sorted(folder.glob("*.jpg"))
    print(f"{len(files)} user-style JPEGs in {folder}; {os.cpu_count()} CPUs; torch threads as digitrec chooses them\n")

    t0 = time.perf_counter()
    decode_all(files)
    decode = time.perf_counter() - t0
    print(f"decode only (PIL, one process)     {rate(len(files), decode)}")
    plain = profile_preprocess(files, args.top)
    print(f"\npreprocess only (this process)     {rate(len(files), plain)}")
    predict = whole_process("predict", str(folder), "--json")
    print(f"digitrec predict DIR --json         {rate(len(files), predict)}  = {decode / predict:.0%} of the decode rate")
    for backend in ("auto", "torch"):
        cold = statistics.median(whole_process("predict", str(files[0]), "--backend", backend) for _ in range(args.cold))
        print(f"cold one-image predict, {backend:<5}      {cold:.2f} s  (median of {args.cold})")
    if CHECKS.is_dir():
        checks = sorted((CHECKS / "images").glob("*"))
        for backend in ("auto", "torch"):
            read = whole_process("read", *map(str, checks), "--json", "--backend", backend)
            print(f"digitrec read, {len(checks)} bank checks, {backend:<5} {rate(len(checks), read)}")
    number = str(Path(__file__).resolve().parents[1] / "samples" / "number.jpg")
    for backend in ("auto", "torch"):
        cold = statistics.median(whole_process("read", number, "--backend", backend) for _ in range(args.cold))
        print(f"cold one-image read, {backend:<5}         {cold:.2f} s  (median of {args.cold})")
    if args.big:
        big_photos(data, args.big)


def big_photos(data, n: int) -> None:
    """Decoding alone against preprocessing, on phone-photo-sized JPEGs of MNIST test digits."""
    folder = Path(tempfile.mkdtemp(prefix="digitrec-big-photos-"))
    save_user_style_set(folder, data.test_images, data.test_labels, n, seed=0, fmt="jpg",
                        style=StyleConfig(long_side=(1500, 4000)))
    files = sorted(folder.glob("*.jpg"))
    t0 = time.perf_counter()
    decode_all(files)
    print(f"\n{n} photos 1,500-4,000 px: decode only {rate(n, time.perf_counter() - t0)}")
    t0 = time.perf_counter()
    preprocess_all(files)
    print(f"{n} photos 1,500-4,000 px: preprocess  {rate(n, time.perf_counter() - t0)}")


if __name__ == "__main__":
    main()
