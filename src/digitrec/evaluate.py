"""Honest evaluation: accuracy, per-class precision/recall/F1, confusion matrix, the misclassified
images, and whether the confidences can be trusted (calibration error, accuracy at coverage).

`evaluate_checkpoint` scores a loaded checkpoint on the MNIST test set with the checkpoint's own
normalisation and temperature; `format_report` renders the result as text and `save_figures` as PNGs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import DataError
from .model_file import normalise
from .tensors import to_float_images

BINS = 15  # equal-width confidence bins for the expected calibration error (the usual choice)


@torch.no_grad()
def read_labels_csv(folder: str | Path, column: str, what: str, command: str) -> list[tuple[str, str]]:
    """(file, `column`) rows of FOLDER/labels.csv, a user's labels for their own images; `what` says
    what the column holds and `command` which command needs it, for the error a user sees."""
    path = Path(folder) / "labels.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file; {command} needs FOLDER/labels.csv with a header `file,{column}`")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", column} <= set(rows[0]):
        raise DataError(f"{path}: needs the columns `file` and `{column}` ({what})")
    return [(r["file"], r[column]) for r in rows]


def predict_logits(model: nn.Module, images: torch.Tensor, mean: float, std: float, *,
                   batch_size: int = 1000, device: torch.device | str | None = None, progress=None) -> torch.Tensor:
    """Logits (N, 10) on the CPU for uint8 images (N, 28, 28) or float images (N, 1, 28, 28) in [0, 1].

    Normalises exactly as the tutorial's ToTensor + Normalize did: x / 255, minus mean, over std.
    `progress(n)`, if given, is called with the number of images done after each batch.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        if x.dtype == torch.uint8:
            x = to_float_images(x)  # (B, 1, 28, 28)
        out.append(model(normalise(x, mean, std)).float().cpu())
        if progress:
            progress(len(x))
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def accuracy_and_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float,
                      *, device=None, batch_size: int = 1000) -> tuple[float, float]:
    """Accuracy (a fraction) and mean cross-entropy of `model` on labelled images."""
    logits = predict_logits(model, images, mean, std, batch_size=batch_size, device=device)
    labels = labels.cpu()
    correct = (logits.argmax(1) == labels).sum().item()
    return correct / max(len(labels), 1), F.cross_entropy(logits, labels).item()


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width confidence bin (0, 1/bins], ...: its range, count, mean confidence and accuracy."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        s = which == i
        out.append({"low": float(edges[i]), "high": float(edges[i + 1]), "n": int(s.sum()),
                    "confidence": float(confidence[s].mean()) if s.any() else None,
                    "accuracy": float(correct[s].mean()) if s.any() else None})
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over `bins` equal-width bins."""
    n = max(len(confidence), 1)
    return float(sum(b["n"] / n * abs(b["confidence"] - b["accuracy"]) for b in reliability(confidence, correct, bins)
                     if b["n"]))


def accuracy_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy on the `coverage` share of answers a user keeps when the least confident are set aside."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    if len(correct) == 0:
        return float("nan")
    keep = max(1, int(round(coverage * len(correct))))
    order = np.argsort(-confidence, kind="stable")
    return float(correct[order[:keep]].mean())


def calibration_summary(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Calibration figures of class probabilities (N, C) against labels: ECE, NLL, Brier score,
    accuracy at 90% and 80% coverage, and the reliability bins."""
    probs, labels = probs.detach().float().cpu(), labels.detach().cpu()
    conf, pred = probs.max(1)
    correct = (pred == labels).numpy()
    conf_np = conf.numpy()
    onehot = F.one_hot(labels.long(), probs.shape[1]).float()
    return {"ece": expected_calibration_error(conf_np, correct),
            "nll": F.nll_loss(probs.clamp(min=1e-12).log(), labels.long()).item(),
            "brier": ((probs - onehot) ** 2).sum(1).mean().item(),
            "accuracy_at_coverage": {f"{c:.0%}": accuracy_at_coverage(conf_np, correct, c) for c in (0.9, 0.8)},
            "reliability": reliability(conf_np, correct)}


def classification_report(labels: torch.Tensor, preds: torch.Tensor, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, confusion matrix (rows = true, columns = predicted),
    and the indices of the misclassified samples."""
    k = len(classes)
    labels, preds = labels.cpu().long(), preds.cpu().long()
    cm = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    tp = cm.diag().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), torch.zeros_like(tp))
    per_class = {c: {"precision": precision[i].item(), "recall": recall[i].item(), "f1": f1[i].item(),
                     "support": int(support[i].item())} for i, c in enumerate(classes)}
    wrong = (labels != preds).nonzero().flatten()
    return {
        "n": len(labels),
        "accuracy": (tp.sum() / max(len(labels), 1)).item(),
        "per_class": per_class,
        "macro_f1": f1.mean().item(),
        "confusion_matrix": cm.tolist(),
        "misclassified": [{"index": int(i), "true": int(labels[i]), "predicted": int(preds[i])} for i in wrong],
    }


def evaluate_checkpoint(ckpt, images: torch.Tensor, labels: torch.Tensor, *, device=None, batch_size: int = 1000,
                        progress=None) -> dict:
    """Score a loaded `checkpoint.Checkpoint` on labelled uint8 images; returns `classification_report`
    plus the mean loss, the calibration figures (`calibration_summary`, with the checkpoint's
    temperature applied) and each misclassified image's confidence in its wrong answer."""
    logits = predict_logits(ckpt.model, images, ckpt.mean, ckpt.std, batch_size=batch_size, device=device,
                            progress=progress)
    probs = (logits / ckpt.temperature).softmax(1)
    report = classification_report(labels, logits.argmax(1), ckpt.classes)
    report["loss"] = F.cross_entropy(logits, labels.cpu().long()).item()
    report["temperature"] = ckpt.temperature
    report["calibration"] = calibration_summary(probs, labels.cpu())
    for m in report["misclassified"]:
        m["confidence"] = round(probs[m["index"], m["predicted"]].item(), 4)
    return report


def _calibration_lines(report: dict) -> list[str]:
    cal = report.get("calibration")
    if not cal:
        return []
    cov = "  ".join(f"{k} {v:.4f}" for k, v in cal["accuracy_at_coverage"].items())
    return [f"calibration error (ECE, {BINS} bins) {cal['ece']:.4f} at temperature {report['temperature']:.3g}; "
            f"accuracy at coverage: {cov}"]


def format_report(report: dict, classes: list[str]) -> str:
    """Human-readable summary: accuracy, per-class table, confusion matrix, a sample of errors."""
    n_wrong = len(report["misclassified"])
    lines = [f"test accuracy {report['accuracy']:.4f}  ({report['n'] - n_wrong}/{report['n']} right, "
             f"{n_wrong} wrong)  loss {report['loss']:.4f}  macro F1 {report['macro_f1']:.4f}", "",
             *_calibration_lines(report), "", "class  precision  recall     f1  support"]
    for c in classes:
        p = report["per_class"][c]
        lines.append(f"{c:>5}  {p['precision']:9.4f}  {p['recall']:6.4f}  {p['f1']:.4f}  {p['support']:7d}")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)",
              "      " + "".join(f"{c:>6}" for c in classes)]
    for c, row in zip(classes, report["confusion_matrix"]):
        lines.append(f"{c:>6}" + "".join(f"{v:>6}" for v in row))
    if n_wrong:
        shown = ", ".join(f"{m['index']} ({m['true']}->{m['predicted']})" for m in report["misclassified"][:20])
        lines += ["", f"misclassified test images (index true->predicted): {shown}"
                  + (f", ... and {n_wrong - 20} more (use --json for all)" if n_wrong > 20 else "")]
    return "\n".join(lines)


def save_figures(report: dict, images: torch.Tensor, classes: list[str], out_dir: str | Path, *,
                 max_gallery: int = 100) -> list[Path]:
    """Write confusion_matrix.png and misclassified.png into `out_dir`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cm = torch.tensor(report["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(7, 6))
    # Colour by log count: the diagonal (~1,000) would otherwise wash out the errors that matter (~1-10).
    im = ax.imshow(torch.log10(cm.float() + 1).numpy(), cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            v = int(cm[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if i == j else ("#b00020" if v else "black"))
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (accuracy {report['accuracy']:.4f}, n={report['n']})")
    fig.colorbar(im, ax=ax, label="log10(count + 1)")
    fig.tight_layout()
    cm_path = out_dir / "confusion_matrix.png"
    fig.savefig(cm_path, dpi=120)
    plt.close(fig)

    wrong = report["misclassified"][:max_gallery]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m in zip(axes.flat, wrong):
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(images[m["index"]].cpu().numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_xlabel(f"true {m['true']} pred {m['predicted']}\n#{m['index']}", fontsize=7)
    total = len(report["misclassified"])
    fig.suptitle(f"Misclassified test images ({len(wrong)} of {total} shown)" if total else "No misclassified images")
    fig.tight_layout()
    gal_path = out_dir / "misclassified.png"
    fig.savefig(gal_path, dpi=120)
    plt.close(fig)
    paths = [cm_path, gal_path]
    if report.get("calibration"):
        paths.append(save_reliability_diagram(report["calibration"], out_dir / "reliability.png"))
    return paths


def save_reliability_diagram(calibration: dict, path: str | Path, title: str = "MNIST test") -> Path:
    """A reliability diagram: accuracy against confidence per bin (a calibrated model lies on the
    diagonal), with each bin's count, from a `calibration_summary`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in calibration["reliability"] if b["n"]]
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / len(calibration["reliability"])
    ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
           edgecolor="black", color="#4c72b0", label="accuracy")
    ax.bar([b["low"] for b in bins], [b["confidence"] - b["accuracy"] for b in bins], bottom=[b["accuracy"] for b in bins],
           width=width, align="edge", color="#dd8452", alpha=0.6, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(f"Reliability, {title} (ECE {calibration['ece']:.4f}, {len(calibration['reliability'])} bins)")
    axn.bar([b["low"] for b in bins], [b["n"] for b in bins], width=width, align="edge", color="grey")
    axn.set_yscale("log")
    axn.set_xlabel("confidence")
    axn.set_ylabel("images")
    axn.set_xlim(0, 1)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
