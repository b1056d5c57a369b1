"""Train recipes side by side in one run and print one table: wall time, throughput, accuracy.

    python benchmarks/train_recipes.py                      # tutorial once, fast over seeds 0 1 2
    python benchmarks/train_recipes.py --recipes fast --seeds 0 1 2 3 4 --json results.json

Timings are training wall time only (data loading and the final test pass excluded), measured in
the same process so recipes are compared on the same machine state.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from digitrec.data import load_mnist
from digitrec.train import recipe, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=["tutorial", "fast"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--tutorial-seeds", nargs="+", type=int, default=[42], help="seeds for the tutorial recipe")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args()

    data = load_mnist(args.data_dir)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            for seed in (args.tutorial_seeds if name == "tutorial" else args.seeds):
                cfg = recipe(name, seed=seed, device=args.device, out=f"{tmp}/{name}-{seed}")
                t0 = time.perf_counter()
                res = train(cfg, data=data, progress=False)
                wall = time.perf_counter() - t0
                n = len(data.train_labels) - cfg.val_size
                rows.append({"recipe": name, "arch": cfg.arch, "seed": seed, "epochs": res.epochs_done,
                             "train_s": round(res.train_time_s, 1), "wall_s": round(wall, 1),
                             "train_img_s": round(n * res.epochs_done / res.train_time_s),
                             "val_acc": res.best_val_accuracy, "test_acc": res.test_accuracy})
                r = rows[-1]
                print(f"{name:<9} seed {seed:<3} {r['epochs']} epochs  train {r['train_s']:>6.1f}s  "
                      f"{r['train_img_s']:>7,} img/s  val {r['val_acc']:.4f}  test {r['test_acc']:.4f}", flush=True)

    print("\n| recipe | arch | seeds | epochs | train time (s) | train img/s | val acc | test acc (mean ± sd) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.recipes:
        rs = [r for r in rows if r["recipe"] == name]
        acc = [r["test_acc"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {name} | {rs[0]['arch']} | {len(rs)} | {rs[0]['epochs']} | "
              f"{statistics.mean(r['train_s'] for r in rs):.1f} | {statistics.mean(r['train_img_s'] for r in rs):,.0f} | "
              f"{statistics.mean(r['val_acc'] for r in rs):.4f} | {statistics.mean(acc):.4f} ± {sd:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
