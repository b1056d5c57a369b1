"""Digit classifiers and the registry that names them.

Every model takes a normalised batch of shape (B, 1, 28, 28) and returns logits of shape (B, 10).
A model is rebuilt from its registry name and keyword arguments alone, which is what a checkpoint
stores (timm-style: `create_model(name, **args)`), so a checkpoint never needs pickled classes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model factory under its function name; a duplicate name is a bug."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name; unknown names and bad arguments raise ConfigError."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None


def model_description(name: str) -> str:
    """First line of a model factory's docstring, for `digitrec models`."""
    doc = _REGISTRY[name].__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class SimpleNN(nn.Module):
    """The tutorial's two-layer network, kept exactly: parameter names `fc1`/`fc2` must not change,
    because the tutorial's `mnist_model.pth` is a bare state dict keyed by them."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 28 * 28)  # (B, 784)
        return self.fc2(torch.relu(self.fc1(x)))  # (B, 10)


class ConvNet(nn.Module):
    """Two conv blocks and a small head.

    Sized for CPUs: 5x5 kernels see a whole stroke width at 28x28 while keeping the channel count
    (and so the cost per image) low; batch norm lets a high learning rate converge in few epochs.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2, bias=False)  # bias is redundant before BN
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # (B, c1, 14, 14)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # (B, c2, 7, 7)
        x = self.drop(F.relu(self.fc1(x.flatten(1))))  # (B, hidden)
        return self.fc2(x)  # (B, 10)


@register_model
def mlp(hidden: int = 128) -> nn.Module:
    """The tutorial's SimpleNN: 784 -> 128 -> 10 with ReLU (the baseline to beat)."""
    return SimpleNN(hidden=hidden)


@register_model
def cnn(channels: tuple[int, int] | list[int] = (16, 32), hidden: int = 128, dropout: float = 0.25) -> nn.Module:
    """Default model: two 5x5 conv+BN+pool blocks, then 128 hidden units with dropout."""
    return ConvNet(channels=tuple(channels), hidden=hidden, dropout=dropout)
