"""ONNX: export a digit model for other runtimes, or convert one in memory to run on onnxruntime.

The file describes itself as a checkpoint does (its metadata carries the architecture,
normalisation, class names, calibration, metrics and training config); `onnx_model.load_onnx`
reads it back, without PyTorch. The graph takes normalised images (N, 1, 28, 28) and returns
logits (N, 10), exactly as the PyTorch model does; the batch dimension is dynamic.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path

import torch

from .errors import require
from .model_file import Checkpoint
from .onnx_model import HASH_KEY, META_KEY, OnnxModel, initializers_sha256
from .storage import atomic_write

OPSET = 17


def _metadata(ck: Checkpoint) -> dict:
    # The checkpoint's weights_sha256 hashes torch tensors; the file gets its own (HASH_KEY).
    meta = {k: v for k, v in ck.meta.items() if k not in ("state_dict", "train_state", "backend", "weights_sha256")}
    return {**meta, "arch": ck.arch, "arch_args": ck.arch_args, "normalization": {"mean": ck.mean, "std": ck.std},
            "classes": ck.classes, "input_size": ck.input_size, "source_kind": ck.kind}


def onnx_bytes(ck: Checkpoint) -> bytes:
    """The checkpoint's model as an ONNX file's bytes, with digitrec's metadata attached."""
    onnx = require("onnx", "onnx")
    model = ck.require("digit").model.cpu().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(model, (torch.zeros(1, *ck.input_size),), buf, dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in ((META_KEY, json.dumps(_metadata(ck), default=str)), (HASH_KEY, initializers_sha256(proto))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "digitrec"
    return proto.SerializeToString()


def export_onnx(ck: Checkpoint, out: str | Path) -> Path:
    """Write a digit model's checkpoint to `out` as ONNX (atomically: temp file, then rename)."""
    out = Path(out)
    atomic_write(out, onnx_bytes(ck))
    return out


def as_onnx(ck: Checkpoint) -> Checkpoint:
    """The same checkpoint with its model converted to ONNX in memory and run on onnxruntime."""
    return dataclasses.replace(ck, model=OnnxModel(onnx_bytes(ck)), backend="onnx")
