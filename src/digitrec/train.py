"""Training runs: `train` runs a config (one model, or an ensemble with `members` > 1) or resumes
the run in a folder, and `prepare_run_dir` guards a run folder before a fresh run.

The parts live beside it: `recipes` (TrainConfig and the named recipes), `loop` (one model's
training loop and its TrainState), `ensemble` (N models as one), `distributed` (torchrun), `optim`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .data import MNIST
from .distributed import distributed_env
from .ensemble import ENSEMBLE_CONFIG, assemble_ensemble, holds_ensemble, train_ensemble
from .errors import ConfigError
from .loop import BEST, LAST, METRICS, TrainResult, TrainState, train_model
from .recipes import DEFAULT_RECIPE, OPTIMIZERS, RECIPES, SCHEDULES, TrainConfig, config_from_flags, recipe
from .storage import remove_stale_temps, writable_folder

__all__ = ["train", "prepare_run_dir", "TrainResult", "TrainState", "TrainConfig", "RECIPES", "DEFAULT_RECIPE",
           "OPTIMIZERS", "SCHEDULES", "recipe", "config_from_flags", "distributed_env", "assemble_ensemble"]


def train(cfg: TrainConfig | None = None, *, data: MNIST | None = None, resume: str | Path | None = None,
          progress: bool = True, command: str | None = None) -> TrainResult:
    """Train as `cfg` says (the default recipe if None), or continue the run saved in folder `resume`,
    and return its metrics. An ensemble run (`members` > 1) trains its members one after another.

    Writes OUT/metrics.jsonl, OUT/last.pt and OUT/model.pt (best on validation, with its test accuracy).
    `command`, if given, is recorded in the checkpoints as the command line that made them.
    """
    if resume is not None and holds_ensemble(resume):
        return train_ensemble(data=data, resume=resume, progress=progress, command=command)
    if cfg is not None and cfg.members > 1:
        return train_ensemble(cfg, data=data, progress=progress, command=command)
    return train_model(cfg, data=data, resume=resume, progress=progress, command=command)


def prepare_run_dir(out: str | Path, force: bool = False) -> None:
    """Make folder `out` ready for a fresh run: create it, or say in one line why it cannot be
    written; refuse one that already holds a run unless `force`, which deletes that run's files,
    temp files included (under torchrun, rank 0 alone deletes)."""
    out = writable_folder(out)  # before any data loads: a folder that cannot be written is one line at once
    if ((out / LAST).exists() or (out / ENSEMBLE_CONFIG).exists()) and not force:
        raise ConfigError(f"{out} already holds a training run; continue it with --resume {out}, "
                          "overwrite it with --force, or choose another --out")
    if force and distributed_env()[0] == 0:
        for name in (LAST, BEST, METRICS, ENSEMBLE_CONFIG):
            (out / name).unlink(missing_ok=True)
        remove_stale_temps(out, (LAST, BEST, METRICS))  # left by a process killed while saving
        for member in out.glob("member[0-9]*"):
            shutil.rmtree(member)
