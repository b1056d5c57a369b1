"""The optimizers and learning-rate schedules that `recipes.OPTIMIZERS` and `SCHEDULES` name,
built in one place for both trainers (digit models and the line reader)."""

from __future__ import annotations

import torch

from .recipes import OPTIMIZERS, SCHEDULES


def make_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """One of OPTIMIZERS over `params`; `momentum` is sgd's (Nesterov when positive)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def make_schedule(name: str, opt: torch.optim.Optimizer, *, lr: float, total_steps: int, pct_start: float = 0.25,
                  step_gamma: float = 0.7):
    """One of SCHEDULES for `opt`, or None for "none". onecycle (warm-up for `pct_start` of the
    steps to `lr`, then down) and cosine step once per batch; step is stepped once per epoch (x
    `step_gamma`, like pytorch/examples' MNIST) by the caller: see `steps_per_batch`."""
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=pct_start)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=step_gamma)
    if name == "none":
        return None
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def steps_per_batch(name: str) -> bool:
    """Whether schedule `name` steps after every batch (else once per epoch, or never)."""
    return name in ("onecycle", "cosine")
