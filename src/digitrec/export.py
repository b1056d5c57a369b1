"""ONNX: export a digit model for other runtimes, and run an exported model with onnxruntime.

The .onnx file is as self-describing as a checkpoint: its metadata (`digitrec` key, JSON) carries
the architecture, normalisation, class names, metrics and training config, so `load_onnx` needs
nothing but the file. The graph takes normalised images (N, 1, 28, 28) and returns logits (N, 10),
exactly as the PyTorch model does; the batch dimension is dynamic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint, _normalization, probe
from .errors import CheckpointError, require
from .storage import atomic_write

OPSET = 17
META_KEY = "digitrec"
HASH_KEY = "digitrec.weights_sha256"  # beside META_KEY in metadata_props: see initializers_sha256


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


def initializers_sha256(proto) -> str:
    """SHA-256 of an ONNX graph's weights: each initializer's name, type, shape and raw data, in
    name order. Recorded by `onnx_bytes` and compared by `load_onnx`, so that flipped bytes in a
    weight are a clear error rather than a model that reads a 7 as an 8."""
    numpy_helper = require("onnx.numpy_helper", "onnx")
    h = hashlib.sha256()
    for init in sorted(proto.graph.initializer, key=lambda t: t.name):
        h.update(f"{init.name}\0{init.data_type}\0{tuple(init.dims)}\0".encode())
        h.update(np.ascontiguousarray(numpy_helper.to_array(init)).tobytes())  # the same bytes however it is stored
    return h.hexdigest()


def export_onnx(ck: Checkpoint, out: str | Path) -> Path:
    """Write a digit model's checkpoint to `out` as ONNX (atomically: temp file, then rename)."""
    out = Path(out)
    atomic_write(out, onnx_bytes(ck))
    return out


class OnnxModel:
    """An onnxruntime session behind the interface Recogniser uses: normalised (N, 1, 28, 28) in,
    logits (N, 10) out, as torch tensors."""

    def __init__(self, data: bytes, threads: int | None = None):
        ort = require("onnxruntime", "onnx")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: x})[0])


def load_onnx(path: str | Path) -> Checkpoint:
    """An exported .onnx file as a Checkpoint whose `model` runs on onnxruntime."""
    onnx = require("onnx", "onnx")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file; make one with `digitrec export --out {path.name}`")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
        props = {p.key: p.value for p in proto.metadata_props}
        meta = json.loads(props[META_KEY])
        damaged = HASH_KEY in props and props[HASH_KEY] != initializers_sha256(proto)  # no hash: exported before
        model = None if damaged else OnnxModel(data)
    except KeyError:
        raise CheckpointError(f"{path}: an ONNX model without digitrec's metadata; export it with `digitrec export`") from None
    except Exception as e:  # onnx/onnxruntime raise their own assorted types for a damaged file
        raise CheckpointError(f"{path}: not a readable ONNX model ({' '.join(str(e).split())[:160]})") from None
    if damaged:
        raise CheckpointError(f"{path}: damaged model file (its weights do not match the SHA-256 recorded when it was "
                              "exported: the file was changed or corrupted); export it again")
    if HASH_KEY in props:
        meta["weights_sha256"] = props[HASH_KEY]
    mean, std = _normalization(meta.get("normalization"), path)
    probe(model, path, std)
    return Checkpoint(model, meta["arch"], meta["arch_args"], mean, std, list(meta["classes"]),
                      list(meta["input_size"]), meta, path, kind=meta.get("source_kind", "digitrec"), backend="onnx")


def as_onnx(ck: Checkpoint) -> Checkpoint:
    """The same checkpoint with its model converted to ONNX in memory and run on onnxruntime."""
    return dataclasses.replace(ck, model=OnnxModel(onnx_bytes(ck)), backend="onnx")
