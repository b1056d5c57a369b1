"""Self-describing checkpoints: save atomically, load safely, rebuild the model from the file alone.

A checkpoint is a plain dict of tensors and primitives, so `torch.load(weights_only=True)` reads it
and no code from the file ever runs. Besides the weights it carries everything needed to use the
model (architecture and its arguments, normalisation, input size, class names) and to trust it
(training config, validation and test metrics, the data's checksum, versions).

The tutorial's `mnist_model.pth` (a bare `SimpleNN` state dict) is recognised and loaded as `mlp`
with the tutorial's normalisation.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import pickle
import warnings
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import __version__
from .device import run_numpy
from .errors import CheckpointError, ConfigError
from .model_file import CLASSES, MNIST_MEAN, MNIST_STD, Checkpoint, normalization, probe
from .models import count_parameters, create_model, model_task
from .storage import atomic_write

FORMAT = "digitrec.checkpoint"
FORMAT_VERSION = 1
# Wrappers that prefix parameter names: DDP (`module.`) and torch.compile (`_orig_mod.`).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def clean_state_dict(state: dict) -> dict:
    """Strip wrapper prefixes and return CPU tensors, so every checkpoint looks like an unwrapped model's."""
    out = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value.detach().cpu() if isinstance(value, torch.Tensor) else value
    return out


def checkpoint_bytes(obj: Any) -> bytes:
    """`torch.save(obj)` as bytes. Serialised in memory first, so that a write the disk refuses
    fails as the OSError that says why (a full disk), not as torch's "unexpected pos" from inside
    its zip writer."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def atomic_save(obj: Any, path: str | Path) -> None:
    """`torch.save` to `path` atomically (temp file, then rename); OutputError when it cannot be written."""
    atomic_write(path, checkpoint_bytes(obj))


def weights_sha256(state_dict: dict) -> str:
    """SHA-256 of a state dict: each entry's name, dtype, shape and bytes, in name order. A
    checkpoint records it when saved and `read_checkpoint` compares it, because torch's zip reader
    does not check its CRCs: flipped bytes in a weight would otherwise load as a different model."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        if isinstance(value, torch.Tensor):
            h.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
            h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        else:  # not a tensor (a module's extra state): its printed form
            h.update(f"{name}\0{value!r}\0".encode())
    return h.hexdigest()


def _verify_weights(obj: Any, path: Path) -> None:
    """Refuse a checkpoint whose weights are not the ones it recorded at save (files written before
    digitrec recorded a hash, and the tutorial's bare state dict, have none to compare)."""
    expected = obj.get("weights_sha256") if isinstance(obj, dict) else None
    if expected is None or obj.get("format_version", 0) > FORMAT_VERSION:  # a newer format may hash differently
        return
    try:
        ok = isinstance(obj.get("state_dict"), dict) and weights_sha256(obj["state_dict"]) == expected
    except (RuntimeError, TypeError, ValueError):  # a tensor damaged beyond hashing
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: damaged model file (its weights do not match the SHA-256 recorded when it "
                              "was saved: the file was changed or corrupted); restore a good copy or retrain it")


def add_weights_hash(path: str | Path, out: str | Path | None = None) -> str:
    """Record the SHA-256 of its weights in a digitrec checkpoint saved before digitrec recorded
    one (every other entry is kept as it is), at `out` (default: in place, atomically); returns it."""
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a digitrec checkpoint; only those record a hash of their weights")
    obj["weights_sha256"] = weights_sha256(obj["state_dict"])
    atomic_save(obj, out or path)
    return obj["weights_sha256"]


def make_checkpoint(model: nn.Module, arch: str, arch_args: dict, *, mean: float = MNIST_MEAN,
                    std: float = MNIST_STD, config: dict | None = None, metrics: dict | None = None,
                    data_sha256: str | None = None, extra: dict | None = None) -> dict:
    """Build the checkpoint dict for `model` (use `atomic_save` to write it)."""
    state_dict = clean_state_dict(model.state_dict())
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_args": dict(arch_args),
        "state_dict": state_dict,
        "weights_sha256": weights_sha256(state_dict),
        "normalization": {"mean": float(mean), "std": float(std)},
        "input_size": [1, 28, 28],
        "classes": list(CLASSES),
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "data_sha256": data_sha256,
        "digitrec_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        ckpt.update(extra)
    return ckpt


def require_digit_model(ckpt: Checkpoint) -> Checkpoint:
    """`ckpt`, if it classifies single digits; the line reader (for `read`) is refused clearly."""
    return ckpt.require("digit")


def read_checkpoint(path: str | Path) -> dict:
    """Read a file with `weights_only=True`; anything that is not plain tensors and primitives is
    refused, and so are weights that do not match the SHA-256 the file recorded."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; train one with `digitrec train --out DIR` and pass DIR/model.pt")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about unusual pickle protocols; we report errors ourselves
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            UnicodeDecodeError, KeyError, AttributeError, IndexError) as e:
        # torch's weights_only message is a paragraph; keep the line that names the reason.
        lines = [ln.strip() for ln in str(e).split("WeightsUnpickler error:")[-1].splitlines() if ln.strip()]
        code = [ln for ln in lines if "GLOBAL" in ln or "global" in ln]
        reason = (code or lines or [type(e).__name__])[0][:160]
        if code:  # weights_only refused a pickled class or function: that is code, not data
            raise CheckpointError(f"{path}: refused to load, the file contains Python objects, not only tensors "
                                  f"({reason}); digitrec never executes code from a checkpoint") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason or type(e).__name__}); "
                              "is the file complete, and is it a model saved by digitrec or torch.save?") from None
    _verify_weights(obj, path)
    return obj


def initial_weights(path: str | Path, arch: str, arch_args: dict) -> dict:
    """The weights of checkpoint `path`, to start a training run from (`initial_checkpoint`)."""
    return initial_checkpoint(path, arch, arch_args)["state_dict"]


def initial_checkpoint(path: str | Path, arch: str, arch_args: dict) -> dict:
    """Checkpoint `path`, to start a training run from (fine-tuning): refused in one line unless it
    holds the same architecture with the same arguments."""
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(f"{path}: not a digitrec checkpoint; --init needs a model.pt or reader.pt that digitrec saved")
    if obj.get("arch") != arch or dict(obj.get("arch_args") or {}) != dict(arch_args):
        raise CheckpointError(f"{path}: holds {obj.get('arch')} {obj.get('arch_args') or {}}, not {arch} {arch_args}; "
                              "--init needs a checkpoint of the architecture being trained")
    return obj


def init_record(obj: dict, path: str | Path) -> dict:
    """What a model fine-tuned from checkpoint `obj` (read from `path`) keeps of it (its "init"): the
    file's name, its weights' hash, the settings and command it was trained with, so a chain of
    fine-tunes can be followed back to the run that started it."""
    return {"file": Path(path).name, "weights_sha256": obj.get("weights_sha256"), "config": obj.get("config"),
            "command": obj.get("command"), **({"init": obj["init"]} if obj.get("init") else {})}


def _tutorial_state_dict(obj: Any) -> dict | None:
    """If `obj` is a bare state dict of the tutorial's SimpleNN (any hidden size), return it cleaned."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    sd = clean_state_dict(obj)
    if set(sd) != {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}:
        return None
    h = sd["fc1.weight"].shape[0]
    shapes_ok = (sd["fc1.weight"].shape == (h, 784) and sd["fc1.bias"].shape == (h,)
                 and sd["fc2.weight"].shape == (10, h) and sd["fc2.bias"].shape == (10,))
    return sd if shapes_ok else None


def _check_shapes(arch: str, arch_args: dict, state: dict, path: Path) -> None:
    """Refuse a checkpoint whose declared architecture does not fit its stored tensors before
    building it: the model is first built on the meta device, which allocates nothing, so a 1 KB
    file declaring a 600,000-unit layer is refused at once rather than after 2 GB and 19 s."""
    with torch.device("meta"):
        skeleton = create_model(arch, **arch_args)
    for name, want in skeleton.state_dict().items():
        got = state.get(name)
        if isinstance(got, torch.Tensor) and tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(f"{path}: damaged digitrec checkpoint ({name} is stored as {tuple(got.shape)}, "
                                  f"but the declared {arch} {arch_args} needs {tuple(want.shape)})")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a digitrec checkpoint or the tutorial's bare state dict; the model is in eval mode."""
    path = Path(path)
    obj = read_checkpoint(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {obj['format_version']} is newer than this digitrec "
                                  f"understands ({FORMAT_VERSION}); upgrade digitrec")
        try:
            arch, arch_args = obj["arch"], dict(obj["arch_args"])
            state = clean_state_dict(obj["state_dict"])
            _check_shapes(arch, arch_args, state, path)
            model = create_model(arch, **arch_args)
            model.load_state_dict(state)
            norm = obj["normalization"]
        except (KeyError, TypeError, RuntimeError, ConfigError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path}: damaged digitrec checkpoint ({msg[:200]})") from None
        meta = {k: v for k, v in obj.items() if k not in ("state_dict", "train_state")}
        mean, std = normalization(norm, path)
        probe(partial(run_numpy, model.eval()), path, std, model_task(arch))
        return Checkpoint(model.to(device).eval(), arch, arch_args, mean, std,
                          list(obj.get("classes", CLASSES)), list(obj.get("input_size", [1, 28, 28])), meta, path,
                          task=model_task(arch), parameters=count_parameters(model))
    sd = _tutorial_state_dict(obj)
    if sd is not None:
        arch_args = {"hidden": sd["fc1.weight"].shape[0]}
        model = create_model("mlp", **arch_args)
        model.load_state_dict(sd)
        meta = {"source": "tutorial state dict (SimpleNN, normalisation 0.1307/0.3081)"}
        return Checkpoint(model.to(device).eval(), "mlp", arch_args, MNIST_MEAN, MNIST_STD, list(CLASSES),
                          [1, 28, 28], meta, path, kind="tutorial", parameters=count_parameters(model))
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = ", ".join(list(obj)[:4])
        raise CheckpointError(f"{path}: a state dict ({keys}, ...) that matches no digitrec model; "
                              "digitrec reads its own checkpoints and the tutorial's SimpleNN mnist_model.pth")
    raise CheckpointError(f"{path}: not a digitrec checkpoint (found {type(obj).__name__}); "
                          "pass a model.pt written by `digitrec train` or the tutorial's mnist_model.pth")
