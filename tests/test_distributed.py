"""Data-parallel training with torchrun: two CPU processes (gloo) on this machine."""

import json
import os
import subprocess
import sys

import torch

from conftest import MNIST_DIR
from digitrec.checkpoint import load_checkpoint
from digitrec.distributed import distributed_env
from digitrec.errors import ConfigError
from digitrec.train import train


def _torchrun(*args, out):
    env = {**os.environ, "DIGITREC_DATA": str(MNIST_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "digitrec", "train", "--out", str(out), "-q", *args],
                          capture_output=True, text=True, env=env, timeout=900)


def test_two_processes_train_one_valid_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    proc = _torchrun("--arch", "cnn", "--epochs", "2", "--subset", "6000", "--batch-size", "64",
                     "--optimizer", "adamw", "--lr", "0.003", "--device", "cpu", out=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best validation accuracy") == 1  # rank 0 alone reports
    ck = load_checkpoint(out / "model.pt")
    assert ck.arch == "cnn" and ck.meta["processes"] == 2
    assert ck.meta["metrics"]["test"]["accuracy"] > 0.9  # it converged: chance is 0.1
    # The same format as a single-process checkpoint: plain keys, loadable with weights_only.
    raw = torch.load(out / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in raw["state_dict"])
    assert raw["config"]["batch_size"] == 64  # the global batch; each rank took 32
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]  # one writer
    assert lines[1]["train_loss"] < lines[0]["train_loss"]
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.jsonl", "model.pt"]


def test_resume_needs_the_same_number_of_processes(tmp_path):
    out = tmp_path / "ddp"
    assert _torchrun("--arch", "mlp", "--epochs", "1", "--subset", "2000", "--device", "cpu", out=out).returncode == 0
    try:
        train(resume=out, progress=False)
    except ConfigError as e:
        assert "2 process(es)" in str(e)
    else:
        raise AssertionError("resuming a 2-process run in one process must be refused")


def test_a_plain_process_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_env() == (0, 1, 0)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_env() == (1, 2, 1)
