"""GPU check: `fast` and `best` on one CUDA device, in under 5 minutes, as one table.

    bash benchmarks/gpu_check.sh            # sets up .venv if needed, then runs this
    python benchmarks/gpu_check.py [--device cuda:0] [--compile] [--recipes fast best]

Per recipe: time until validation accuracy first reached 99.4%, final validation and test
accuracy, training throughput (images per second over the run), and inference throughput at
batch 1,024 (bf16 autocast, as training runs). The dataset and the augmentation stay on the GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from digitrec.checkpoint import load_checkpoint
from digitrec.data import load_mnist
from digitrec.train import recipe, train


def inference_rate(model: torch.nn.Module, device: torch.device, batch: int = 1024, seconds: float = 2.0) -> float:
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    x = torch.rand(batch, 1, 28, 28, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        for _ in range(5):
            model(x)
        torch.cuda.synchronize(device)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += 1
        torch.cuda.synchronize(device)
    return n * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--recipes", nargs="+", default=["fast", "best"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; this check is for a GPU machine")
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}, bf16 {torch.cuda.is_bf16_supported()}", flush=True)
    data = load_mnist(args.data_dir)
    rows = []
    for name in args.recipes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = recipe(name, device=args.device, out=tmp, compile=args.compile)
            t0 = time.perf_counter()
            res = train(cfg, data=data, progress=False)
            wall = time.perf_counter() - t0
            to_994 = next((h["elapsed_s"] for h in res.history if h["val_accuracy"] >= 0.994), None)
            n = len(data.train_labels) - cfg.val_size
            model = load_checkpoint(f"{tmp}/model.pt").model
        rows.append((name, res.epochs_done, wall, to_994, res.best_val_accuracy, res.test_accuracy,
                     n * res.epochs_done / res.train_time_s, inference_rate(model, device)))
        print(rows[-1], flush=True)
    print("\n| recipe | epochs | wall (s) | to 99.4% val (s) | val acc | test acc | train img/s | infer img/s (b=1024) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ep, wall, t, va, te, tr, inf in rows:
        print(f"| {name} | {ep} | {wall:.1f} | {'never' if t is None else f'{t:.1f}'} | {va:.4f} | {te:.4f} | {tr:,.0f} | {inf:,.0f} |")


if __name__ == "__main__":
    main()
