"""Ensembles: N models whose probabilities are averaged, saved as one `ensemble` checkpoint.

`train_ensemble` trains the members of a run (`--members N`) one after another in OUT/member0,
member1, ... and resumes member by member; `assemble_ensemble` saves trained checkpoints as one;
`combine_checkpoints` is `digitrec ensemble`: the same for checkpoint files, with what made it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .checkpoint import atomic_save, load_checkpoint, make_checkpoint, read_checkpoint, require_digit_model
from .data import MNIST, load_mnist
from .device import resolve_device
from .distributed import distributed_env
from .errors import ConfigError
from .evaluate import accuracy_and_loss
from .loop import BEST, LAST, TrainResult, train_model
from .models import count_parameters, create_model, model_tasks
from .recipes import TrainConfig
from .storage import writable_folder
from .tensors import VAL_SIZE, split_train_val

ENSEMBLE_CONFIG = "ensemble.json"  # in an ensemble run's folder: its config, so that --resume finds it


def holds_ensemble(out: str | Path) -> bool:
    """Whether folder `out` holds an ensemble run (finished or not)."""
    return (Path(out) / ENSEMBLE_CONFIG).exists()


def train_ensemble(cfg: TrainConfig | None = None, *, data: MNIST | None = None, resume: str | Path | None = None,
                   progress: bool = True, command: str | None = None) -> TrainResult:
    """Train `cfg.members` models in OUT/member0, member1, ... (seeds seed, seed+1, ...), then save
    them as one `ensemble` checkpoint in OUT/model.pt. `resume=OUT` continues the run in OUT: it
    skips finished members and continues an interrupted one."""
    if resume is not None:
        cfg = TrainConfig(**{**json.loads((Path(resume) / ENSEMBLE_CONFIG).read_text()), "out": str(resume)})
    cfg.validate(model_tasks())
    out = Path(cfg.out)
    main = distributed_env()[0] == 0
    if main:
        writable_folder(out)
        (out / ENSEMBLE_CONFIG).write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    data = data or load_mnist(cfg.data_dir)
    results, elapsed = [], 0.0
    for i in range(cfg.members):
        mcfg = dataclasses.replace(cfg, members=1, seed=cfg.seed + i, out=str(out / f"member{i}"))
        res = _train_member(mcfg, data, resume is not None, progress, command)
        results.append(res)
        elapsed += res.train_time_s
        if res.interrupted:
            return TrainResult(out, res.epochs_done, float("nan"), None, elapsed, True)
    if not main:  # under torchrun, rank 0 assembles the ensemble
        return TrainResult(out, sum(r.epochs_done for r in results), float("nan"), None, elapsed)

    ckpt = assemble_ensemble([load_checkpoint(r.out / BEST) for r in results], out / BEST, data,
                             val_size=cfg.val_size, device=cfg.device, config=dataclasses.asdict(cfg),
                             extra={"train_time_s": elapsed, **({"command": command} if command else {})})
    val_acc, test_acc = ckpt["metrics"]["val"]["accuracy"], ckpt["metrics"]["test"]["accuracy"]
    return TrainResult(out, sum(r.epochs_done for r in results), val_acc, test_acc, elapsed)


def _train_member(mcfg: TrainConfig, data: MNIST, resume: bool, progress: bool, command: str | None) -> TrainResult:
    """Train one member; when resuming, read a finished one's result back, or continue a started one."""
    last = Path(mcfg.out) / LAST
    if not (resume and last.exists()):
        return train_model(mcfg, data=data, progress=progress, command=command)
    ts = read_checkpoint(last)["train_state"]
    if ts["epoch"] >= mcfg.epochs and not ts["interrupted"]:
        best = read_checkpoint(Path(mcfg.out) / BEST)
        return TrainResult(Path(mcfg.out), ts["epoch"], ts["best_val"], best["metrics"]["test"]["accuracy"],
                           ts["elapsed"], history=ts["history"])
    return train_model(resume=mcfg.out, data=data, progress=progress, command=command)


def assemble_ensemble(members: list, out: str | Path, data: MNIST, *, val_size: int = VAL_SIZE, device: str = "auto",
                      config: dict | None = None, extra: dict | None = None, tilts: tuple[float, ...] = ()) -> dict:
    """Save loaded digit-model checkpoints (`checkpoint.Checkpoint`s; an ensemble counts as its
    members) as one `ensemble` checkpoint at `out`, probabilities averaged, with its accuracy on the
    validation split and the test set and each member's recorded metrics. With `tilts` (degrees)
    every member also reads the digit turned by each angle (a member ensemble's own tilts are
    replaced by these). Returns the checkpoint dict."""
    flat = []
    for m in members:
        require_digit_model(m)
        flat += list(zip(m.arch_args["members"], m.model.members)) if m.arch == "ensemble" else [
            ({"arch": m.arch, "arch_args": dict(m.arch_args)}, m.model)]
    norms = {(m.mean, m.std) for m in members}
    if len(norms) != 1:
        raise ConfigError(f"members normalise their input differently ({sorted(norms)}); an ensemble shares one")
    (mean, std), = norms
    device = resolve_device(device)
    args = {"members": [spec for spec, _ in flat], **({"tilts": [float(t) for t in tilts]} if tilts else {})}
    model = create_model("ensemble", **args)
    for sub, (_, trained) in zip(model.members, flat):
        sub.load_state_dict(trained.state_dict())
    model.to(device)
    _, val_idx = split_train_val(len(data.train_labels), val_size)
    val_acc, val_loss = accuracy_and_loss(model, data.train_images[val_idx], data.train_labels[val_idx],
                                          mean, std, device=device) if len(val_idx) else (float("nan"),) * 2
    test_acc, test_loss = accuracy_and_loss(model, data.test_images, data.test_labels, mean, std, device=device)
    metrics = {"val": {"accuracy": val_acc, "loss": val_loss}, "test": {"accuracy": test_acc, "loss": test_loss},
               "members": [{k: m.meta.get("metrics", {}).get(k) for k in ("val", "test")} for m in members]}
    ckpt = make_checkpoint(model, "ensemble", args, mean=mean, std=std,
                           config=config, metrics=metrics, data_sha256=data.fingerprint,
                           extra={"parameters": count_parameters(model), **(extra or {})})
    atomic_save(ckpt, Path(out))
    return ckpt


def combine_checkpoints(paths: list[str], out: str | Path, data: MNIST, *, device: str = "auto",
                        command: str | None = None, tilts: tuple[float, ...] = ()) -> dict:
    """`digitrec ensemble`: the checkpoint files at `paths` as one ensemble at `out` (each member
    also reading the digit turned by each of `tilts`, in degrees), recording which files it was
    made from (and `command`). Returns the checkpoint dict."""
    members = [load_checkpoint(p) for p in paths]
    return assemble_ensemble(members, out, data, device=device, tilts=tilts,
                             config={"recipe": "combined", "members_from": list(paths),
                                     **({"tilts": list(tilts)} if tilts else {})},
                             extra={"command": command} if command else {})
