"""Run an exported .onnx model (a digit model or a line reader) with onnxruntime, without importing PyTorch.

The .onnx file is as self-describing as a checkpoint: its metadata (`digitrec` key, JSON) carries
the task, architecture, normalisation, class names, calibration, metrics and training config, so
`load_onnx` needs nothing but the file. The graph computes what the PyTorch model does (`export`
writes such files): logits (N, 10) for normalised images (N, 1, 28, 28), or a line reader's
log-probabilities (N, W/2, classes) for normalised lines (N, 1, 28, W). Both shipped models come
with one (`model_file.shipped_onnx_path`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from .errors import CheckpointError, require
from .model_file import Checkpoint, inference_threads, normalization, probe

META_KEY = "digitrec"
HASH_KEY = "digitrec.weights_sha256"  # beside META_KEY in metadata_props: see initializers_sha256
# The whole file's SHA-256, taken with this entry's value as 64 zeros (`file_sha256`): checked with
# hashlib alone, where HASH_KEY needs the `onnx` package, whose import takes most of a second.
FILE_HASH_KEY = "digitrec.file_sha256"
UNHASHED = b"0" * 64


def onnx_installed() -> bool:
    """Whether onnxruntime (which runs the file) and onnx (which writes one, and checks an older export) can be
    imported (both come with the onnx extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def initializers_sha256(proto) -> str:
    """SHA-256 of an ONNX graph's weights: each initializer's name, type, shape and raw data, in
    name order. Recorded by `export.onnx_bytes` and compared by `load_onnx`, so that flipped bytes
    in a weight are a clear error rather than a model that reads a 7 as an 8."""
    numpy_helper = require("onnx.numpy_helper", "onnx")
    h = hashlib.sha256()
    for init in sorted(proto.graph.initializer, key=lambda t: t.name):
        h.update(f"{init.name}\0{init.data_type}\0{tuple(init.dims)}\0".encode())
        h.update(np.ascontiguousarray(numpy_helper.to_array(init)).tobytes())  # the same bytes however it is stored
    return h.hexdigest()


def file_sha256(data: bytes, recorded: str) -> str:
    """SHA-256 of an ONNX file's bytes with the hash `recorded` in it put back to zeros, as
    `export.onnx_bytes` took it before writing it in (the same length, so nothing else moves)."""
    return hashlib.sha256(data.replace(recorded.encode(), UNHASHED, 1)).hexdigest()


def _weights_intact(data: bytes, props: dict) -> bool:
    """Whether the file's weights are as exported: by its file hash (fast), else by the hash of its
    initializers (older exports; needs `onnx`); a file exported before either loads unchecked."""
    if FILE_HASH_KEY in props:
        return file_sha256(data, props[FILE_HASH_KEY]) == props[FILE_HASH_KEY]
    if HASH_KEY in props:
        return props[HASH_KEY] == initializers_sha256(require("onnx", "onnx").load_from_string(data))
    return True


class OnnxModel:
    """An onnxruntime session behind the call every digitrec model makes: a normalised float32
    batch in (images (N, 1, 28, 28), or lines (N, 1, 28, W)), the model's output as numpy out."""

    def __init__(self, data: bytes, threads: int | None = None):
        ort = require("onnxruntime", "onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = inference_threads(threads)  # as torch's (device.use_inference_threads)
        # Threads that have no work sleep rather than spin: a big folder's batches come between long
        # stretches of preprocessing on the same cores (`digitrec predict DIR`).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)  # metadata_props

    def __call__(self, x) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})[0]


def load_onnx(path: str | Path, threads: int | None = None) -> Checkpoint:
    """An exported .onnx file as a Checkpoint whose `model` runs on onnxruntime, on `threads` CPU
    threads (`model_file.inference_threads`: one unless $DIGITREC_THREADS says)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file; make one with `digitrec export --out {path.name}`")
    data = path.read_bytes()
    try:
        model = OnnxModel(data, threads)
        props = model.metadata
        meta = json.loads(props[META_KEY])
        damaged = not _weights_intact(data, props)
    except KeyError:
        raise CheckpointError(f"{path}: an ONNX model without digitrec's metadata; export it with `digitrec export`") from None
    except Exception as e:  # onnx/onnxruntime raise their own assorted types for a damaged file
        raise CheckpointError(f"{path}: not a readable ONNX model ({' '.join(str(e).split())[:160]})") from None
    if damaged:
        raise CheckpointError(f"{path}: damaged model file (its weights do not match the SHA-256 recorded when it was "
                              "exported: the file was changed or corrupted); export it again")
    if HASH_KEY in props:
        meta["weights_sha256"] = props[HASH_KEY]
    mean, std = normalization(meta.get("normalization"), path)
    task = meta.get("task", "digit")  # exported before line readers could be: a digit model
    probe(model, path, std, task)
    return Checkpoint(model, meta["arch"], meta["arch_args"], mean, std, list(meta["classes"]),
                      list(meta["input_size"]), meta, path, kind=meta.get("source_kind", "digitrec"), backend="onnx",
                      task=task)
