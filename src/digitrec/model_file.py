"""What digitrec knows of a loaded model, whatever runs it, said without importing PyTorch.

A digitrec checkpoint, the tutorial's `mnist_model.pth` and an `.onnx` export all load as a
`Checkpoint`: the model and what its file says (architecture, normalisation, classes, metrics).
Here too are the checks every loader makes (the normalisation is two numbers, a probe run gives
finite scores), the normalisation itself, where the shipped models live, and how many CPU threads
inference uses. None of it needs torch, so an ONNX model runs with numpy and onnxruntime alone
(`onnx_model`), and a cold `digitrec predict` does not wait a second for `import torch`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import CheckpointError, ConfigError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the tutorial's (and torchvision's) MNIST statistics
CLASSES = [str(d) for d in range(10)]
# The models that ship inside the package (weights/), by name: the digit classifier behind predict
# and serve ("digit"), and the two line readers behind read ("line", and "line-b", trained to take
# 1s with lead-ins up to their whole height), which vote on a reading the first is unsure of.
SHIPPED = {"digit": "digitrec-digits.pt", "line": "digitrec-reader.pt", "line-b": "digitrec-reader-b.pt"}
SHIPPED_READERS = ("line", "line-b")
# What to pass instead, per task, when a file holds the wrong kind of model.
_WHAT = {"digit": ("a digit model", "a model.pt written by `digitrec train`"),
         "line": ("a line reader", "a reader.pt written by `digitrec train-reader` (`digitrec read --reader`)")}


def shipped_path(task: str = "digit") -> Path:
    """Path of the model that ships inside the package for `task` ("digit", "line"; or "line-b",
    the second line reader)."""
    return Path(str(resources.files("digitrec") / "weights" / SHIPPED[task]))


def shipped_onnx_path(task: str = "digit") -> Path:
    """The shipped model for `task` exported to ONNX (`scripts/build-onnx`), beside the checkpoint:
    the same weights, normalisation and calibration, run by onnxruntime without importing torch."""
    return shipped_path(task).with_suffix(".onnx")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, ready for `eval()`, and everything the file said about it."""

    model: Any  # a torch nn.Module, or an onnxruntime session behind numpy in, numpy out (onnx_model.OnnxModel)
    arch: str
    arch_args: dict
    mean: float
    std: float
    classes: list[str]
    input_size: list[int]
    meta: dict = field(default_factory=dict)  # config, metrics, data checksum, versions, ...
    path: Path | None = None
    kind: str = "digitrec"  # "digitrec" or "tutorial" (a bare state dict)
    backend: str = "torch"  # what runs `model`: "torch", or "onnx" (onnxruntime, see `onnx_model`)
    task: str = "digit"  # "digit" (a classifier of one 28x28 digit) or "line" (the reader of a line of digits)
    parameters: int | None = None  # the torch model's parameter count (`digitrec info`); None for ONNX

    @property
    def temperature(self) -> float:
        """The logits' divisor that makes softmax probabilities calibrated (`calibration`); 1 when
        the file was never calibrated."""
        cal = self.meta.get("calibration")
        t = cal.get("temperature", 1.0) if isinstance(cal, dict) else 1.0
        return float(t) if isinstance(t, (int, float)) and 0 < t < float("inf") else 1.0

    def describe(self) -> dict:
        """Everything the file says about itself, and what it is (`digitrec info`): path, kind, task,
        backend, architecture, parameters, normalisation, classes, config, metrics, versions."""
        own = ("arch", "arch_args", "normalization", "input_size", "classes", "source_kind", "train_state")
        return {"path": str(self.path), "kind": self.kind, "task": self.task, "backend": self.backend, "arch": self.arch,
                "arch_args": self.arch_args,
                **({"parameters": self.parameters} if self.backend == "torch" and self.parameters is not None else {}),
                "normalization": {"mean": self.mean, "std": self.std}, "input_size": self.input_size,
                "classes": self.classes, **{k: v for k, v in self.meta.items() if k not in own}}

    def require(self, task: str) -> Checkpoint:
        """This checkpoint, if it does `task`; otherwise one line saying what it is and what to pass."""
        if self.task != task:
            raise CheckpointError(f"{self.path}: {_WHAT[self.task][0]} ({self.arch}), not {_WHAT[task][0]}; "
                                  f"pass {_WHAT[task][1]}")
        return self


def normalise(x, mean: float = MNIST_MEAN, std: float = MNIST_STD):
    """What the model takes: images in [0, 1] (a numpy array or a torch tensor) shifted by `mean`
    and scaled by `std` (the tutorial's ToTensor + Normalize)."""
    return (x - mean) / std


def normalization(norm: Any, path: Path) -> tuple[float, float]:
    """(mean, std) from a file's "normalization"; one clear line when it is not two finite numbers."""
    try:
        mean, std = float(norm["mean"]), float(norm["std"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise CheckpointError(f"{path}: damaged model file (its normalization is not a mean and a std: "
                              f"{str(norm)[:80]!r}); retrain it or restore a good copy") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise CheckpointError(f"{path}: damaged model file (normalization mean {mean}, std {std}: the std must be a "
                              "positive number); retrain it or restore a good copy")
    return mean, std


def probe(run: Callable[[np.ndarray], Any], path: Path, std: float = 1.0, task: str = "digit") -> None:
    """Run the model once on a blank and a random input; refuse it (one clear line) when a digit
    model's output is not (N, 10), or any output is not a finite number: NaN or infinite weights
    would answer every image with NaN, which is neither a digit nor valid JSON. `run` takes a
    float32 batch (N, 1, 28, W) as numpy; a line reader gets a line (28 x 56)."""
    shape = (1, 28, 56) if task == "line" else (1, 28, 28)
    x = np.stack([np.zeros(shape, np.float32), np.random.default_rng(0).random(shape, np.float32)]) / np.float32(std)
    out = np.asarray(run(x))
    if task == "digit" and out.shape != (len(x), len(CLASSES)):  # one score per digit, or argmax means nothing
        raise CheckpointError(f"{path}: not a digit model (it gives {tuple(out.shape[1:])} values per image, not one "
                              f"score for each of the {len(CLASSES)} digits)")
    if not np.isfinite(out).all():
        raise CheckpointError(f"{path}: damaged model file (its outputs are not finite numbers: NaN or infinite "
                              "weights); retrain it or restore a good copy")


def inference_threads(n: int | None = None) -> int:
    """How many CPU threads a model's inference runs on: `n`, else $DIGITREC_THREADS, else 1.

    Reading is small batches (one image's digits, one line), where a second thread saves little on
    a quiet machine, while on a busy one spinning intra-op threads fight the other work: on 2 busy
    cores `read` went from 6-9 to 65 bank checks/s and a one-digit model call from 7-50 ms to
    1.3-1.6 ms with one thread (`python benchmarks/image_path.py`). Training keeps torch's default.
    """
    if n is None:
        try:
            n = int(os.environ.get("DIGITREC_THREADS", "1"))
        except ValueError:
            raise ConfigError(f"DIGITREC_THREADS must be a whole number, got {os.environ['DIGITREC_THREADS']!r}") from None
    if n < 1:
        raise ConfigError(f"inference threads must be at least 1, got {n}")
    return n
