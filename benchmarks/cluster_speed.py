"""Images per second through Ray Data (`digitrec predict-cluster`'s library path) on a local Ray
with N workers, against `Recogniser.predict` in one process, on the same user-style JPEG files;
and whether the two give the same answers.

    python benchmarks/cluster_speed.py [--n 1000] [--workers 2] [--batch-size 64]

The files are MNIST test digits rendered as photos (`synth.save_user_style_set(..., fmt="jpg")`).
Ray's run is timed twice: the first call starts the local Ray, the second finds it running (what
a cluster that is already up costs per job: actors started, models loaded, files read and written).
Needs the ray extra.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitrec.cluster import predict_cluster
from digitrec.data import load_mnist
from digitrec.device import use_inference_threads
from digitrec.loading import load_model
from digitrec.synth import save_user_style_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="Ray actors (one CPU each)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    data = load_mnist(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp, "images")
        save_user_style_set(images, data.test_images, data.test_labels, args.n, seed=0, fmt="jpg")
        files = sorted(str(f) for f in images.glob("*.jpg"))
        print(f"{len(files)} user-style JPEGs; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        decode = _rate(files, lambda: [Image.open(f).convert("L") for f in files])
        print(f"| what | images/s |\n|---|---|\n| decoding alone (PIL, one process) | {decode:.0f} |")

        use_inference_threads()  # as `digitrec predict` runs it
        rec = load_model()
        t0 = time.perf_counter()
        local = {f: p for f, p in zip(files, rec.predict(files))}
        print(f"| `Recogniser.predict`, one process (model loaded) | {len(files) / (time.perf_counter() - t0):.0f} |")

        for run in ("first, starting Ray", "second, Ray running"):
            out = Path(tmp, f"out-{run[:5]}")
            t0 = time.perf_counter()
            predict_cluster([images], out, fmt="jsonl", workers=args.workers, batch_size=args.batch_size)
            dt = time.perf_counter() - t0
            print(f"| Ray Data, {args.workers} workers, {run} ({dt:.1f} s) | {len(files) / dt:.0f} |")
        rows = [json.loads(line) for f in out.glob("*.json") for line in f.read_text().splitlines()]
        print()
        on_ray = {r["path"]: (r["digit"], r["confidence"]) for r in rows}
        _compare("Ray Data against one process", _answers(local.values()), on_ray)
        # The yardstick: on a few images preprocessing itself is not bit-exact from call to call
        # (the same file, preprocessed twice in one process, can give two slightly different views).
        _compare("one process against itself", _answers(local.values()), _answers(rec.predict(files)))


def _answers(preds) -> dict:
    return {p.source: (p.digit, p.confidence) for p in preds}


def _rate(files: list[str], work) -> float:
    t0 = time.perf_counter()
    work()
    return len(files) / (time.perf_counter() - t0)


def _compare(what: str, a: dict, b: dict) -> None:
    """How many files got another digit, and the largest confidence difference."""
    assert a.keys() == b.keys(), "not one answer per file"
    differ = [f for f in a if a[f][0] != b[f][0]]
    gaps = {f: abs(a[f][1] - b[f][1]) for f in a}
    worst = max(gaps, key=gaps.get)
    print(f"{what}: {len(a) - len(differ)} of {len(a)} digits equal; {sum(g > 1e-6 for g in gaps.values())} "
          f"confidences differ by more than 1e-6, the most {gaps[worst]:.1e} ({Path(worst).name})")


if __name__ == "__main__":
    main()
