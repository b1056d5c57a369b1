"""Confidences that mean what they say: temperature scaling, and how to measure calibration.

A network's softmax is not a probability: one trained with label smoothing (as our recipes are)
says 0.9 for digits it gets right 99.9% of the time, one trained without says 1.00 to digits it
gets wrong. Temperature scaling (Guo et al., 2017) divides the logits by one number T, fitted to
minimise the negative log-likelihood on held-out digits; it never changes which digit wins, only
how sure the model says it is. The checkpoint keeps T (`calibration.temperature`), and every
path that turns logits into probabilities (predict, read, the server, torch and ONNX) applies it.

T is fitted on the validation split (digits held out of training) as MNIST has them, and the same
digits rendered as photos and scans (`synth`) and preprocessed as a user's image would be: the
confidence a user sees is for their images, not for MNIST's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import FORMAT, Checkpoint, atomic_save, read_checkpoint
from .data import MNIST
from .errors import CheckpointError
from .evaluate import BINS, calibration_summary, predict_logits
from .preprocess import NoDigitFound, preprocess
from .synth import iter_user_style_set
from .tensors import VAL_SIZE, split_train_val, to_float_images

T_RANGE = (0.05, 20.0)  # the temperatures considered
STYLED = 1500  # validation digits also rendered as photos and scans for fitting


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T > 0 that minimises the mean NLL of softmax(logits / T) (N, C) against labels (N,)."""
    logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
    # The NLL is smooth and unimodal in log T: a coarse grid finds the basin, Newton-free golden
    # section narrows it (deterministic, no optimiser state, no learning rate to choose).
    nll = lambda log_t: F.cross_entropy(logits / float(np.exp(log_t)), labels).item()  # noqa: E731
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    grid = np.linspace(lo, hi, 61)
    best = int(np.argmin([nll(g) for g in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    golden = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - golden * (b - a), a + golden * (b - a)
        a, b = (a, d) if nll(c) < nll(d) else (c, b)
    return float(np.exp((a + b) / 2))


def calibration_set(data: MNIST, val_size: int = VAL_SIZE, styled: int = STYLED,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The digits T is fitted on: the validation split as MNIST has it, and its first `styled`
    digits rendered as photos and scans (`synth.iter_user_style_set`) and preprocessed as a user's
    image is. Returns (float images (N, 1, 28, 28) in [0, 1], labels (N,), a description)."""
    _, va = split_train_val(len(data.train_images), val_size)
    images, labels = data.train_images[va], data.train_labels[va]
    clean = to_float_images(images)
    views, kept = [], []
    for img, label in iter_user_style_set(images, labels, min(styled, len(images)), seed=seed):
        try:
            views.append(preprocess(img).image)
            kept.append(label)
        except NoDigitFound:  # a render too faint to find: a user would get "no digit found", not a guess
            continue
    styled_x = torch.from_numpy(np.stack(views))[:, None] if views else torch.empty(0, 1, 28, 28)
    what = (f"{len(images)} validation digits held out of training, and {len(views)} of them rendered as photos and "
            f"scans (synth, seed {seed}) and preprocessed")
    return torch.cat([clean, styled_x]), torch.cat([labels, torch.tensor(kept, dtype=torch.long)]), what


def calibrate(ck: Checkpoint, data: MNIST, *, styled: int = STYLED, seed: int = 0) -> dict:
    """Fit the temperature of a digit model on `calibration_set`; returns the record a checkpoint
    keeps under "calibration": the temperature, what it was fitted on, and the figures before and after."""
    val_size = int((ck.meta.get("config") or {}).get("val_size") or VAL_SIZE)
    x, y, what = calibration_set(data, val_size, styled, seed)
    logits = predict_logits(ck.require("digit").model, x, ck.mean, ck.std)
    t = fit_temperature(logits, y)
    before, after = calibration_summary(logits.softmax(1), y), calibration_summary((logits / t).softmax(1), y)
    return {"temperature": round(t, 6), "fitted_on": what, "n": len(y), "bins": BINS,
            "before": {k: before[k] for k in ("ece", "nll", "brier")},
            "after": {k: after[k] for k in ("ece", "nll", "brier")}}


def save_calibrated(path: str | Path, record: dict, out: str | Path | None = None) -> Path:
    """Write the checkpoint at `path` again, with `record` as its "calibration", to `out` (default:
    in place), atomically. Only digitrec checkpoints: the tutorial's bare state dict has nowhere to keep it."""
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a digitrec checkpoint, so it cannot keep a temperature; "
                              "`digitrec train` one, or pass its model.pt")
    obj["calibration"] = record
    out = Path(out or path)
    atomic_save(obj, out)
    return out
