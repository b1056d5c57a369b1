"""model_file: what every loader shares, without torch (the record, normalisation, probe, threads)."""

import subprocess
import sys

import numpy as np
import pytest

from digitrec.errors import CheckpointError, ConfigError
from digitrec.model_file import MNIST_MEAN, MNIST_STD, inference_threads, normalise, probe


def test_the_onnx_path_imports_no_torch():
    # What a cold `digitrec predict` with an ONNX model imports: none of it may pull in torch (a second).
    code = ("import sys\nimport digitrec.cli, digitrec.files, digitrec.model_file, digitrec.onnx_model, "
            "digitrec.predict, digitrec.preprocess\nprint(sorted(m for m in sys.modules if m.startswith('torch')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout[:300], proc.stderr)


def test_normalise_is_the_tutorials_on_numpy_keeping_float32():
    x = np.array([0.0, MNIST_MEAN, 1.0], np.float32)
    y = normalise(x)
    assert y.dtype == np.float32 and np.allclose(y, [-MNIST_MEAN / MNIST_STD, 0, (1 - MNIST_MEAN) / MNIST_STD])


def test_probe_refuses_outputs_that_are_not_ten_finite_scores(tmp_path):
    probe(lambda x: np.zeros((len(x), 10)), tmp_path / "ok")
    with pytest.raises(CheckpointError, match=r"not a digit model \(it gives \(3,\) values"):
        probe(lambda x: np.zeros((len(x), 3)), tmp_path / "three")
    with pytest.raises(CheckpointError, match="not finite"):
        probe(lambda x: np.full((len(x), 10), np.nan), tmp_path / "nan")
    seen = []
    probe(lambda x: seen.append(x.shape) or np.zeros((len(x), 5)), tmp_path / "line", task="line")
    assert seen == [(2, 1, 28, 56)]  # a line reader gets a line, and its width of scores is its own


def test_inference_threads_from_the_argument_or_the_environment(monkeypatch):
    monkeypatch.delenv("DIGITREC_THREADS", raising=False)
    assert inference_threads() == 1 and inference_threads(3) == 3
    monkeypatch.setenv("DIGITREC_THREADS", "2")
    assert inference_threads() == 2
    for bad in ("two", "0"):
        monkeypatch.setenv("DIGITREC_THREADS", bad)
        with pytest.raises(ConfigError, match="DIGITREC_THREADS|at least 1"):
            inference_threads()
