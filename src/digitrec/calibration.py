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

The line reader (`calibrate_reader`) is fitted the same way on whole numbers written with those
validation digits (`synth_numbers.iter_number_set`: every length, spacing and paper): a temperature for
each digit's probabilities, and a logistic map (Platt scaling) from the product of the digits'
confidences to the probability that the whole number is right, which also counts the digits a
reading misses or adds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import FORMAT, Checkpoint, atomic_save, read_checkpoint
from .data import MNIST
from .errors import CheckpointError
from .evaluate import BINS, calibration_summary, expected_calibration_error, predict_logits
from .preprocess import NoDigitFound, preprocess
from .read import NumberReader, Reading, number_confidence, tempered
from .synth import StyleConfig, iter_user_style_set
from .synth_numbers import SPACINGS, iter_number_set
from .tensors import VAL_SIZE, split_train_val, to_float_images

T_RANGE = (0.05, 20.0)  # the temperatures considered
STYLED = 1500  # validation digits also rendered as photos and scans for fitting
NUMBER_LENGTHS = tuple(range(1, 9))  # the reader's numbers are fitted on every length it reads well
PAPERS = ("plain", "ruled", "squared", "security")
PER_CELL = 16  # numbers per length, spacing and paper
READING_SET = PER_CELL * len(PAPERS) * len(NUMBER_LENGTHS) * len(SPACINGS)  # 1,536 numbers


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


def fit_platt(score: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * score + b) against right (0/1): Platt scaling."""
    z, y = torch.as_tensor(score, dtype=torch.float64), torch.as_tensor(right, dtype=torch.float64)
    ab = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = F.binary_cross_entropy_with_logits(ab[0] * z + ab[1], y)
        out.backward()
        return out

    opt.step(loss)
    a, b = ab.detach().tolist()
    return float(a), float(b)


def reading_set(data: MNIST, val_size: int = VAL_SIZE, per_cell: int = PER_CELL, seed: int = 0):
    """Yield (picture, digits) numbers written with the validation digits held out of training:
    `per_cell` of each length in NUMBER_LENGTHS, spacing and paper."""
    _, va = split_train_val(len(data.train_images), val_size)
    images, labels = data.train_images[va], data.train_labels[va]
    for i, paper in enumerate(PAPERS):
        for length in NUMBER_LENGTHS:
            for spacing in SPACINGS:
                yield from ((img, text) for img, text, _ in
                            iter_number_set(images, labels, per_cell, length, spacing, seed + 1000 * i, StyleConfig(paper=paper)))


def calibrate_reader(reader: NumberReader, data: MNIST, *, per_cell: int = PER_CELL, seed: int = 0,
                     progress: Callable[[int], object] | None = None) -> dict:
    """Fit the line reader's calibration (with `reader.digits` as its digit model, and its other
    readers voting) on `reading_set`; returns the record its first reader's checkpoint keeps under
    "calibration". `progress(1)` is called per number read."""
    raw = NumberReader(reader.digits, reader.readers, calibrated=False)
    val_size = int((reader.reader.meta.get("config") or {}).get("val_size") or VAL_SIZE)
    readings, labels = [], []
    for img, text in reading_set(data, val_size, per_cell, seed):
        readings.append(raw.read(img))
        labels.append(text)
        if progress:
            progress(1)
    right = np.array([r.text == text for r, text in zip(readings, labels)])
    # Digits of readings with the right number of digits line up with their labels.
    aligned = [(d.probabilities, int(c)) for r, t in zip(readings, labels) if len(r.text) == len(t)
               for d, c in zip(r.digits, t)]
    p = torch.tensor([q for q, _ in aligned], dtype=torch.float64).clamp_min(1e-12)  # (D, 10)
    y = torch.tensor([c for _, c in aligned])
    t = fit_temperature(p.log(), y)
    # The number's map, on readings with a digit (one with none has confidence 0 whatever the map).
    some = [i for i, r in enumerate(readings) if r.digits]
    prods = np.clip([np.prod(_confidences(readings[i], t)) for i in some], 1e-9, 1 - 1e-9)
    a, b = fit_platt(np.log(prods / (1 - prods)), right[some])
    after = np.array([number_confidence(_confidences(r, t), (a, b)) if r.digits else 0.0 for r in readings])
    before = np.array([r.confidence for r in readings])
    return {"temperature": round(t, 6), "number": [round(a, 6), round(b, 6)], "n": len(readings), "bins": BINS,
            "fitted_on": (f"{len(readings)} numbers of 1-8 digits written with the {val_size} validation digits held "
                          f"out of training (synth, every spacing, papers {', '.join(PAPERS)}, seed {seed})"),
            "digit_model": Path(reader.digits.checkpoint.path or "").name,  # a name: no local paths in files we ship
            "readers": ["/".join(Path(r.path or "").parts[-2:]) for r in reader.readers],  # run/reader.pt: which voted
            "number_accuracy": round(float(right.mean()), 6),
            "before": {"ece": round(expected_calibration_error(before, right), 6)},
            "after": {"ece": round(expected_calibration_error(after, right), 6),
                      "digit_ece": round(calibration_summary((p.log() / t).softmax(1), y)["ece"], 6)}}


def _confidences(r: Reading, t: float) -> list[float]:
    """A raw reading's digit confidences as the reader calibrated at temperature t would give them."""
    return [float(np.max(tempered(np.asarray(d.probabilities), t))) for d in r.digits]
