"""The line reader's trainer (`reader_train`), on real MNIST: tiny runs, the checkpoint it saves,
the CLI command, and reading with what it trained."""

import json
from pathlib import Path

import matplotlib
import pytest
import torch

from conftest import run_cli
from digitrec.checkpoint import load_checkpoint
from digitrec.errors import CheckpointError, ConfigError
from digitrec.lines import compose_lines
from digitrec.read import load_reader
from digitrec.reader_train import ReaderConfig, line_accuracy, prepare_reader_dir, train_reader


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("reader")
    metrics = train_reader(ReaderConfig(steps=6, batch_size=16, val_lines=14, max_digits=3), out, data_dir=mnist_dir,
                           progress=False)
    return out / "reader.pt", metrics


def test_train_reader_saves_a_self_describing_reader(tiny_reader):
    path, metrics = tiny_reader
    ckpt = load_checkpoint(path)
    assert ckpt.arch == "linecnn" and ckpt.classes[-1] == "blank"
    assert "lstm" not in ckpt.arch_args and ckpt.model.lstm is None  # the arguments older readers were saved with
    assert ckpt.meta["config"]["steps"] == 6 and ckpt.meta["metrics"]["val"] == metrics["val"]
    assert not list(path.parent.glob("*.tmp"))


def test_train_reader_logs_every_validation_like_the_digit_trainer(tiny_reader):
    path, metrics = tiny_reader
    records = [json.loads(x) for x in (path.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))  # every max(1, steps // 10) steps
    assert max(r["val_line_accuracy"] for r in records) == metrics["val"]["line_accuracy"]
    assert metrics["val"]["lines"] == 12  # 14 // 3 lines of each length 1..3


def test_fewer_validation_lines_than_lengths_still_validates_one_line_of_each_length(tmp_path, mnist):
    metrics = train_reader(ReaderConfig(steps=1, batch_size=8, val_lines=1, max_digits=3), tmp_path, data=mnist,
                           progress=False)
    assert metrics["val"]["lines"] == 3  # one line of each length 1..3, not none (which crashed the sampler)


def test_same_seed_same_reader(tmp_path, mnist):
    cfg = ReaderConfig(steps=3, batch_size=8, val_lines=6, max_digits=2, seed=5)
    for name in ("a", "b"):
        train_reader(cfg, tmp_path / name, data=mnist, progress=False)
    a, b = (torch.load(tmp_path / n / "reader.pt", weights_only=True)["state_dict"] for n in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_line_accuracy_counts_only_lines_read_exactly(tiny_reader, mnist):
    model = load_checkpoint(tiny_reader[0]).model
    g = torch.Generator().manual_seed(0)
    batches = [compose_lines(mnist.train_images[:200], mnist.train_labels[:200], 4, max_digits=2, gen=g)]
    assert 0.0 <= line_accuracy(model, batches) <= 1.0
    assert line_accuracy(model, []) == 0.0


def test_prepare_reader_dir_refuses_a_reader_without_force(tiny_reader):
    out = tiny_reader[0].parent
    with pytest.raises(ConfigError, match="--force"):
        prepare_reader_dir(out)
    prepare_reader_dir(out, force=True)
    assert tiny_reader[0].exists()  # the new reader replaces it when saved, not before


def test_recogniser_reads_with_a_given_reader_and_refuses_a_digit_model(tiny_reader, small_model_path):
    from PIL import Image, ImageDraw

    img = Image.new("L", (300, 100), 255)
    ImageDraw.Draw(img).line([(40, 20), (40, 80)], fill=0, width=6)
    r = load_reader(reader=tiny_reader[0]).read(img)
    assert r.error is None and all(0 <= d.confidence <= 1 for d in r.digits)  # untrained: any reading
    with pytest.raises(CheckpointError, match="not a line reader"):
        load_reader(reader=small_model_path).read(img)


def test_cli_train_reader_and_read_with_it(tmp_path, mnist_dir, small_model_path):
    out = tmp_path / "r"
    args = ("train-reader", "--steps", "4", "--batch-size", "8", "--max-digits", "2", "--out", str(out),
            "--data-dir", str(mnist_dir))
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "saved" in proc.stdout and (out / "reader.pt").is_file()
    again = run_cli(*args)
    assert again.returncode != 0 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    from PIL import Image

    Image.new("L", (200, 80), 255).save(tmp_path / "blank.png")
    for processes in ("1", "2"):  # read here alone, and with a worker process loading its own reader
        wrong = run_cli("read", "--reader", str(small_model_path), "--processes", processes, str(tmp_path / "blank.png"))
        assert wrong.returncode == 1 and "not a line reader" in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
    for command in ("evaluate", "predict"):  # and the other way round: a reader is no digit model
        proc = run_cli(command, "--model", str(out / "reader.pt"), *(["x.png"] if command == "predict" else []))
        assert proc.returncode == 1 and "a line reader" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_then_resume_gives_the_uninterrupted_reader(tmp_path, mnist_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--steps", "40", "--batch-size", "8", "--val-lines", "6", "--max-digits", "2", "--data-dir", str(mnist_dir),
            "-q"]
    whole = run_cli("train-reader", *args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "train-reader", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 300
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr
    step = torch.load(out / "last.pt", weights_only=True)["reader_state"]["step"]
    assert 1 <= step < 40
    assert run_cli("train-reader", "--out", str(out), "--resume", "--steps", "9").returncode == 2  # settings are its own
    done = run_cli("train-reader", "--out", str(out), "--resume", "-q")
    assert done.returncode == 0, done.stderr
    a, b = (torch.load(tmp_path / n / "reader.pt", weights_only=True) for n in ("whole", "cut"))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # no validation recorded twice


def test_init_starts_from_another_readers_weights_and_refuses_a_digit_model(tiny_reader, tmp_path, mnist,
                                                                              small_model_path):
    cfg = dict(steps=1, batch_size=8, val_lines=6, max_digits=2, lr=1e-12)
    train_reader(ReaderConfig(**cfg, init=str(tiny_reader[0])), tmp_path / "warm", data=mnist, progress=False)
    train_reader(ReaderConfig(**cfg), tmp_path / "cold", data=mnist, progress=False)
    saved = torch.load(tiny_reader[0], weights_only=True)["state_dict"]
    start = {k: v for k, v in saved.items() if "running" not in k and "batches" not in k}  # a step moves BN's stats
    warm, cold = (torch.load(tmp_path / n / "reader.pt", weights_only=True) for n in ("warm", "cold"))
    assert all(torch.allclose(warm["state_dict"][k].float(), start[k].float(), atol=1e-6) for k in start)
    assert not all(torch.allclose(cold["state_dict"][k].float(), start[k].float(), atol=1e-6) for k in start)
    assert warm["config"]["init"] == str(tiny_reader[0])
    # It keeps what it started from, so the shipped fine-tuned reader can be followed back to its first run.
    first = torch.load(tiny_reader[0], weights_only=True)
    assert warm["init"] == {"file": tiny_reader[0].name, "weights_sha256": first["weights_sha256"],
                            "config": first["config"], "command": first.get("command")}
    assert "init" not in cold
    with pytest.raises(CheckpointError, match="not linecnn"):
        train_reader(ReaderConfig(**cfg, init=str(small_model_path)), tmp_path / "bad", data=mnist, progress=False)


def test_a_reader_trained_with_fonts_lists_them_in_its_checkpoint(tmp_path, mnist):
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for face in ("DejaVuSans.ttf", "DejaVuSerif.ttf"):
        (tmp_path / face).write_bytes((ttf / face).read_bytes())
    train_reader(ReaderConfig(steps=1, batch_size=8, val_lines=6, max_digits=2, fonts=str(tmp_path)), tmp_path / "r",
                 data=mnist, progress=False)
    assert torch.load(tmp_path / "r" / "reader.pt", weights_only=True)["fonts"] == ["DejaVu Sans Book", "DejaVu Serif Book"]


def test_a_reader_with_an_lstm_trains_saves_and_runs_on_onnx_as_on_torch(tmp_path, mnist):
    import numpy as np

    from digitrec.export import as_onnx

    train_reader(ReaderConfig(steps=2, batch_size=8, val_lines=6, max_digits=2, lstm=8), tmp_path, data=mnist,
                 progress=False)
    ckpt = load_checkpoint(tmp_path / "reader.pt")
    assert ckpt.arch_args["lstm"] == 8 and ckpt.model.lstm.hidden_size == 8
    onnx = as_onnx(ckpt)
    x = np.random.default_rng(0).random((1, 1, 28, 64), np.float32)
    for w in (8, 64):  # the LSTM runs over however many columns the line has
        with torch.no_grad():
            want = ckpt.model.eval()(torch.from_numpy(x[..., :w])).numpy()
        assert np.abs(onnx.model(x[..., :w]) - want).max() < 1e-4
