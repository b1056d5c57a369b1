"""Open any model file digitrec reads, as the task and backend a caller needs.

    load()                                   # the shipped digit model, on PyTorch
    load("runs/best/model.pt", backend="onnx")   # a checkpoint, converted to run on onnxruntime
    load("digitrec.onnx")                    # an export: onnxruntime, whatever `backend` says
    load(task="line")                        # the shipped line reader behind `read`

A digitrec checkpoint, the tutorial's `mnist_model.pth` and an `.onnx` file from `digitrec
export` all come back as a `checkpoint.Checkpoint` that says what it is (`task`, `backend`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_checkpoint, shipped_path
from .errors import CheckpointError
from .export import as_onnx, load_onnx

BACKENDS = ("torch", "onnx")


def load(path: str | Path | None = None, *, task: str | None = "digit", backend: str = "torch",
         device: str | torch.device = "cpu") -> Checkpoint:
    """The model at `path` (the shipped one for `task` when None), refused with one line unless it
    does `task` (None: any task). backend="onnx" runs a checkpoint on onnxruntime; `device` is
    where a PyTorch model lives."""
    if backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if path is None:
        path = shipped_path(task or "digit")
        if not path.is_file():
            raise CheckpointError(f"the shipped model is missing from this installation ({path}); "
                                  "reinstall digitrec or pass --model")
    if Path(path).suffix.lower() == ".onnx":
        ck = load_onnx(path)
    else:
        ck = load_checkpoint(path, device="cpu" if backend == "onnx" else device)
    if task is not None:
        ck.require(task)
    return as_onnx(ck) if backend == "onnx" and ck.backend != "onnx" else ck
