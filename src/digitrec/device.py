"""Choosing the device to run on from a user's string, setting torch's inference threads, and
calling a torch model on numpy batches."""

from __future__ import annotations

import numpy as np
import torch

from .errors import ConfigError
from .model_file import inference_threads


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda`, `cuda:N` or `mps` into a usable torch.device, or raise ConfigError.

    `auto` prefers CUDA, then Apple's MPS, then the CPU.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' asked for, but MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def use_inference_threads(n: int | None = None) -> int:
    """Run torch models' CPU work on `model_file.inference_threads(n)` threads (default:
    $DIGITREC_THREADS, else 1); returns that number."""
    n = inference_threads(n)
    torch.set_num_threads(n)
    return n


@torch.no_grad()
def run_numpy(model: torch.nn.Module, x: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """A torch model's outputs for a numpy batch, computed on `device`, as float32 numpy on the CPU:
    the call every digitrec model makes through, whichever runtime runs it."""
    return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)).float().cpu().numpy()
