"""Inference speed and memory of trained checkpoints, one table: for models too slow to train inside
`compare.py` (the 3-model ensemble is ~95 min of a 2-core CPU), measured on the files they wrote.

    python benchmarks/model_speed.py runs/ensemble/model.pt runs/best-x/model.pt

Each checkpoint is measured in its own fresh process (so peak memory is its own): parameters,
inference throughput at batch 1 and 1,024 (as `compare.py` measures it), the process's peak
resident memory, and what the checkpoint recorded: test accuracy and training time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import resource
import sys
from pathlib import Path

import torch


def _measure(path: str) -> dict:
    """Runs in a fresh child process."""
    sys.path.insert(0, str(Path(__file__).parent))
    from compare import inference_rate
    from digitrec.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    model = ckpt.model
    if any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)  # as predict runs convolutional models
    return {"model": path, "arch": ckpt.arch, "params": sum(p.numel() for p in model.parameters()),
            "test_acc": ckpt.meta.get("metrics", {}).get("test", {}).get("accuracy"),
            "train_s": ckpt.meta.get("train_time_s"),
            "infer_b1": inference_rate(model, 1), "infer_b1024": inference_rate(model, 1024),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="checkpoints to measure")
    args = p.parse_args()
    print("| model | arch | params | test acc | train (s) | infer img/s (b=1) | infer img/s (b=1024) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.models:
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
            r = pool.submit(_measure, path).result()
        acc = "—" if r["test_acc"] is None else f"{r['test_acc']:.4f}"
        train = "—" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['model']} | {r['arch']} | {r['params']:,} | {acc} | {train} | {r['infer_b1']:,.0f} | "
              f"{r['infer_b1024']:,.0f} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
