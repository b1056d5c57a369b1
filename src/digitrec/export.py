"""ONNX: export a model for other runtimes, or convert one in memory to run on onnxruntime.

The file describes itself as a checkpoint does (its metadata carries the task, architecture,
normalisation, class names, calibration, metrics and training config); `onnx_model.load_onnx`
reads it back, without PyTorch. The graph computes exactly what the PyTorch model does: a digit
model takes normalised images (N, 1, 28, 28) and returns logits (N, 10), the batch dynamic; a line
reader takes normalised lines (N, 1, 28, W) and returns log-probabilities (N, W/2, classes), the
batch and the width dynamic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path

import torch

from .errors import require
from .model_file import Checkpoint
from .onnx_model import FILE_HASH_KEY, HASH_KEY, META_KEY, UNHASHED, OnnxModel, initializers_sha256
from .storage import atomic_write

OPSET = 17


def _metadata(ck: Checkpoint) -> dict:
    # The checkpoint's weights_sha256 hashes torch tensors; the file gets its own (HASH_KEY, FILE_HASH_KEY).
    meta = {k: v for k, v in ck.meta.items() if k not in ("state_dict", "train_state", "backend", "weights_sha256")}
    return {**meta, "task": ck.task, "arch": ck.arch, "arch_args": ck.arch_args, "normalization": {"mean": ck.mean, "std": ck.std},
            "classes": ck.classes, "input_size": ck.input_size, "source_kind": ck.kind}


def onnx_bytes(ck: Checkpoint) -> bytes:
    """The checkpoint's model as an ONNX file's bytes, with digitrec's metadata attached."""
    onnx = require("onnx", "onnx")
    model = ck.model.cpu().eval()
    if ck.task == "line":  # any width: traced at 56 columns (two digits' worth), a multiple of 4
        example, names, axes = torch.zeros(1, 1, 28, 56), ["line", "log_probs"], {0: "batch", 3: "width"}
        out_axes = {0: "batch", 1: "frames"}
    else:
        example, names, axes = torch.zeros(1, *ck.input_size), ["image", "logits"], {0: "batch"}
        out_axes = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(model, (example,), buf, dynamo=False, opset_version=OPSET, input_names=names[:1],
                          output_names=names[1:], dynamic_axes={names[0]: axes, names[1]: out_axes})
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in ((META_KEY, json.dumps(_metadata(ck), default=str)), (HASH_KEY, initializers_sha256(proto)),
                       (FILE_HASH_KEY, UNHASHED.decode())):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "digitrec"
    data = proto.SerializeToString()
    if data.count(UNHASHED) != 1:  # 64 zero digits in the weights' bytes too: no file hash rather than a wrong one
        del proto.metadata_props[-1]
        return proto.SerializeToString()
    return data.replace(UNHASHED, hashlib.sha256(data).hexdigest().encode())  # what `file_sha256` gives back


def export_onnx(ck: Checkpoint, out: str | Path) -> Path:
    """Write a model's checkpoint (a digit model or a line reader) to `out` as ONNX (atomically: temp file, then rename)."""
    out = Path(out)
    atomic_write(out, onnx_bytes(ck))
    return out


def as_onnx(ck: Checkpoint) -> Checkpoint:
    """The same checkpoint with its model converted to ONNX in memory and run on onnxruntime."""
    return dataclasses.replace(ck, model=OnnxModel(onnx_bytes(ck)), backend="onnx")
