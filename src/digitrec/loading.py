"""Open any model file digitrec reads, as the task and backend a caller needs.

    load()                                   # the shipped digit model, on PyTorch
    load("runs/best/model.pt", backend="onnx")   # a checkpoint, converted to run on onnxruntime
    load("digitrec.onnx")                    # an export: onnxruntime, whatever `backend` says
    load(backend="auto")                     # the shipped model's ONNX export, where onnxruntime is installed
    load(task="line")                        # the shipped line reader behind `read`
    load(task="line", backend="auto")        # ... as its ONNX export, where onnxruntime is installed
    load_model("runs/best/model.pt")         # a Recogniser: the model plus preprocessing

A digitrec checkpoint, the tutorial's `mnist_model.pth` and an `.onnx` file from `digitrec
export` all come back as a `model_file.Checkpoint` that says what it is (`task`, `backend`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .device import resolve_device, run_numpy
from .errors import CheckpointError
from .export import as_onnx
from .model_file import Checkpoint, shipped_path
from .onnx_model import load_onnx
from .predict import BACKENDS, Recogniser, onnx_file


def load(path: str | Path | None = None, *, task: str | None = "digit", backend: str = "torch",
         device: str | torch.device = "cpu") -> Checkpoint:
    """The model at `path` (the shipped one for `task` when None), refused with one line unless it
    does `task` (None: any task). backend="onnx" runs a checkpoint on onnxruntime, "auto" runs the
    shipped model's ONNX export where it can (`predict.onnx_file`); `device` is where a PyTorch
    model lives."""
    if backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    onnx = onnx_file(path, backend, str(device), task or "digit")
    if onnx is not None:
        ck = load_onnx(onnx)
    else:
        if path is None:
            path = shipped_path(task or "digit")
            if not path.is_file():
                raise CheckpointError(f"the shipped model is missing from this installation ({path}); "
                                      "reinstall digitrec or pass --model")
        ck = load_checkpoint(path, device="cpu" if backend == "onnx" else device)
    if task is not None:
        ck.require(task)
    return as_onnx(ck) if backend == "onnx" and ck.backend != "onnx" else ck


class TorchRecogniser(Recogniser):
    """A Recogniser whose model runs on PyTorch, on `device`."""

    runs = "torch"

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device = "cpu", **options):
        super().__init__(checkpoint, **options)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        model = checkpoint.model.to(self.device).eval()
        if self.device.type == "cpu" and any(p.dim() == 4 for p in model.parameters()):
            model = model.to(memory_format=torch.channels_last)  # oneDNN's fast layout: ~1.4x on CPU
        self.model = model

    def logits(self, x: np.ndarray) -> np.ndarray:
        return run_numpy(self.model, x, self.device)


def load_model(path: str | Path | None = None, *, device: str = "cpu", min_confidence: float = 0.0,
               backend: str = "torch") -> Recogniser:
    """A Recogniser for the digit model at `path`: a digitrec model.pt, the tutorial's mnist_model.pth,
    or an .onnx file from `digitrec export`; the model shipped with the package when `path` is None.
    backend="onnx" runs the model on onnxruntime (a checkpoint is converted in memory); "auto" runs
    the shipped model's ONNX export when onnxruntime is installed and `device` is the CPU."""
    dev = resolve_device(device)
    ck = load(path, task="digit", backend=backend, device=dev)
    if ck.backend == "onnx":
        return Recogniser(ck, min_confidence=min_confidence)
    return TorchRecogniser(ck, device=dev, min_confidence=min_confidence)
