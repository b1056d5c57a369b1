"""Choosing the device to run on from a user's string, and how many CPU threads inference uses."""

from __future__ import annotations

import os

import torch

from .errors import ConfigError


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
    """Run the models' CPU work on `n` threads (default: $DIGITREC_THREADS, else 1); returns n.

    Reading is small batches (one image's digits, one line), where a second thread saves little on
    a quiet machine, while on a busy one torch's spinning OpenMP threads fight the other work: on 2
    busy cores `read` went from 6-9 to 65 bank checks/s and a one-digit model call from 7-50 ms to
    1.3-1.6 ms with one thread (`python benchmarks/image_path.py`). Training keeps torch's default.
    """
    if n is None:
        try:
            n = int(os.environ.get("DIGITREC_THREADS", "1"))
        except ValueError:
            raise ConfigError(f"DIGITREC_THREADS must be a whole number, got {os.environ['DIGITREC_THREADS']!r}") from None
    if n < 1:
        raise ConfigError(f"inference threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    return n
