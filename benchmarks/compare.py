"""The tutorial, pytorch/examples and our recipes side by side, in one run, as one table.

    python benchmarks/compare.py                          # all rows; ~45 min on a 2-core CPU
    python benchmarks/compare.py --rows tutorial-script fast --fast-seeds 0 1 2 --json out.json

Rows:
  tutorial-script   the tutorial's script as written: its per-sample DataLoader pipeline and loop
                    (reimplemented without torchvision, see benchmarks/tutorial_script.py), 60,000 images
  tutorial          the tutorial's recipe through digitrec (in-memory tensors, no DataLoader)
  pytorch-examples  pytorch/examples' MNIST CNN recipe (its Net, Adadelta lr 1.0, StepLR 0.7, 14 epochs)
  fast, best        our recipes (`fast` once per --fast-seeds, then summarised as mean ± sd)

Every row runs in its own fresh process, one after another, so that its peak memory (the
process's maximum resident set) is its own and no row slows another. Columns: training wall
time (the whole `train()` call: per-epoch validation and checkpoint writes included, data loading
excluded, as in the tutorial's timing), time until validation accuracy first reached 99.0%
(digitrec rows; the tutorial's script has no validation split), test accuracy (reported, never used
to choose), training throughput, inference throughput at batch 1 and batch 1,024, peak memory.
Recipes here train on 55,000 images (5,000 held out); the tutorial's script on all 60,000.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def inference_rate(model, batch: int, seconds: float = 2.0) -> float:
    """Images per second through `model` (a torch module, or any callable on tensors such as
    digitrec's onnxruntime model) at a fixed batch size, preprocessing excluded."""
    if hasattr(model, "eval"):
        model.eval()
    x = torch.rand(batch, 1, 28, 28)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += 1
    return n * batch / (time.perf_counter() - t0)


def _row(name: str, seed: int, data_dir: str | None) -> dict:
    """Runs in a fresh child process: train one row, measure it, return its figures."""
    from digitrec.checkpoint import load_checkpoint
    from digitrec.data import load_mnist
    from digitrec.train import recipe, train

    data = load_mnist(data_dir)
    if name == "tutorial-script":
        sys.path.insert(0, str(Path(__file__).parent))
        import tutorial_script

        r = tutorial_script.run(data)
        model, row = r["model"], {"epochs": 5, "train_s": r["train_s"], "to_99_s": None,
                                  "train_img_s": r["train_img_s"], "val_acc": None, "test_acc": r["test_acc"]}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = recipe(name, seed=seed, device="cpu", out=tmp)
            t0 = time.perf_counter()
            res = train(cfg, data=data, progress=False)
            wall = time.perf_counter() - t0
            to_99 = next((h["elapsed_s"] for h in res.history if h["val_accuracy"] >= 0.99), None)
            n = len(data.train_labels) - cfg.val_size
            model = load_checkpoint(Path(tmp) / "model.pt").model
        row = {"epochs": res.epochs_done, "train_s": wall, "to_99_s": to_99, "train_img_s": n * res.epochs_done / res.train_time_s,
               "val_acc": res.best_val_accuracy, "test_acc": res.test_accuracy}
    if any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)  # as predict runs convolutional models
    row["infer_b1"] = inference_rate(model, 1)
    row["infer_b1024"] = inference_rate(model, 1024)
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    row["params"] = sum(p.numel() for p in model.parameters())
    return row


def run_row(name: str, seed: int, data_dir: str | None) -> dict:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return {"row": name, "seed": seed, **pool.submit(_row, name, seed, data_dir).result()}


def _fmt(v, spec: str, none: str = "—") -> str:
    return none if v is None else format(v, spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=["tutorial-script", "tutorial", "pytorch-examples", "fast", "best"])
    p.add_argument("--fast-seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None, help="also write every row's figures to this file")
    args = p.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU", flush=True)
    rows = []
    for name in args.rows:
        for seed in (args.fast_seeds if name == "fast" else [0]):
            r = run_row(name, seed, args.data_dir)
            rows.append(r)
            print(f"{name} seed {seed}: train {r['train_s']:.1f}s, test {r['test_acc']:.4f}", flush=True)

    print("\n| row | epochs | params | train wall (s) | to 99.0% val (s) | test acc | train img/s "
          "| infer img/s (b=1) | infer img/s (b=1024) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.rows:
        rs = [r for r in rows if r["row"] == name]
        acc = [r["test_acc"] for r in rs]
        mean = lambda k: statistics.mean(r[k] for r in rs)  # noqa: E731
        acc_s = f"{statistics.mean(acc):.4f}" + (f" ± {statistics.stdev(acc):.4f} ({len(rs)} seeds)" if len(rs) > 1 else "")
        to99 = [r["to_99_s"] for r in rs]
        to99_s = "never" if name != "tutorial-script" and None in to99 else _fmt(None if None in to99 else statistics.mean(to99), ".1f")
        print(f"| {name} | {rs[0]['epochs']} | {rs[0]['params']:,} | {mean('train_s'):.1f} | {to99_s} | {acc_s} | "
              f"{mean('train_img_s'):,.0f} | {mean('infer_b1'):,.0f} | {mean('infer_b1024'):,.0f} | {max(r['peak_mb'] for r in rs):,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
