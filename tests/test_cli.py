import json
import os
import re
import signal
import subprocess
import sys
import time

import click
import numpy as np
import pytest
import torch

from conftest import MNIST_DIR, run_cli
from digitrec.cli import cli
from digitrec.models import count_parameters, create_model
from digitrec.recipes import DEFAULT_RECIPE, RECIPES

COMMANDS = sorted(cli.commands)  # every registered command, so a new one cannot go without help


def _one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr  # one line, no traceback
    for n in needles:
        assert n in err[0], err[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    from click.testing import CliRunner

    # In process: --help exits before a command imports anything heavy; an interpreter per command is slow.
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="digitrec")
    assert result.exit_code == 0, result.output
    assert "Usage: digitrec " + command in result.output and "Example" in result.output


def test_version_and_group_help():
    assert run_cli("--version").stdout.startswith("digitrec, version")
    proc = run_cli("--help")
    assert proc.returncode == 0
    intro, listed = proc.stdout.split("Commands:")
    # A newcomer is shown where to start: the commands that read their images, and the server.
    assert all(f"digitrec {c} " in intro for c in ("predict", "read", "serve")), intro
    missing = [c for c in COMMANDS if not re.search(rf"^  {re.escape(c)}( |$)", listed, re.MULTILINE)]
    assert not missing, proc.stdout


def test_models_lists_the_registry_with_parameter_counts():
    proc = run_cli("models")
    assert proc.returncode == 0
    assert "mlp" in proc.stdout and "101,770 parameters" in proc.stdout and "cnn" in proc.stdout
    # What the default recipe really builds is listed too, with its own count.
    cfg = RECIPES[DEFAULT_RECIPE]
    built = count_parameters(create_model(cfg.arch, **cfg.arch_args))
    assert f"{built:,} parameters  as `--recipe {DEFAULT_RECIPE}` builds it" in proc.stdout


def test_evaluate_the_tutorial_checkpoint(seed_model_path, tmp_path):
    proc = run_cli("evaluate", "--model", str(seed_model_path), "--json", "--figures", str(tmp_path / "figs"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accuracy"] == 0.9755
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    assert len(report["confusion_matrix"]) == 10 and len(report["misclassified"]) == 245
    assert (tmp_path / "figs" / "confusion_matrix.png").stat().st_size > 10_000
    text = run_cli("evaluate", "--model", str(seed_model_path)).stdout
    assert "test accuracy 0.9755" in text and "confusion matrix" in text
    # The test set's two files are all it needs (no training images, no download).
    only_test = tmp_path / "only-test"
    only_test.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (only_test / name).symlink_to(MNIST_DIR / name)
    proc = run_cli("evaluate", "--model", str(seed_model_path), "--data-dir", str(only_test))
    assert proc.returncode == 0 and "test accuracy 0.9755" in proc.stdout, proc.stderr


def test_info_describes_the_tutorial_checkpoint(seed_model_path):
    proc = run_cli("info", str(seed_model_path), "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    assert meta["kind"] == "tutorial" and meta["arch"] == "mlp" and meta["parameters"] == 101770
    assert meta["normalization"] == {"mean": 0.1307, "std": 0.3081}


def test_train_evaluate_info_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--recipe", "tutorial", "--epochs", "1", "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "epoch 1/1" in proc.stderr
    acc = torch.load(out / "model.pt", weights_only=True)["metrics"]["test"]["accuracy"]
    assert acc > 0.94  # one epoch of the tutorial recipe; chance is 0.1
    report = json.loads(run_cli("evaluate", "--model", str(out / "model.pt"), "--json").stdout)
    assert report["accuracy"] == acc  # evaluate agrees with what training recorded
    info = json.loads(run_cli("info", str(out / "model.pt"), "--json").stdout)
    assert info["config"]["recipe"] == "tutorial" and info["metrics"]["test"]["accuracy"] == acc
    # A second run into the same folder must not silently mix runs.
    again = run_cli("train", "--recipe", "tutorial", "--epochs", "1", "--out", str(out))
    _one_line_error(again, "already holds a training run", "--resume")


@pytest.mark.parametrize("args,code,needle", [
    (["train", "--optimizer", "lbfgs"], 2, "lbfgs"),
    (["train", "--epochs", "0"], 2, "--epochs"),
    (["train", "--arch", "vit", "--epochs", "1"], 1, "unknown model 'vit'"),
    (["train", "--device", "tpu"], 1, "device"),
    (["train", "--recipe", "turbo"], 1, "unknown recipe 'turbo'"),
    (["evaluate", "--batch-size", "0"], 2, "--batch-size"),
    (["predict"], 2, "PATHS"),
])
def test_bad_flags(tmp_path, args, code, needle):
    proc = run_cli(*args, "--out", str(tmp_path / "o")) if args[0] == "train" else run_cli(*args)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr


def test_cuda_asked_for_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _one_line_error(run_cli("train", "--device", "cuda", "--out", str(tmp_path / "o")), "CUDA is not available")
    _one_line_error(run_cli("train-reader", "--device", "cuda", "--out", str(tmp_path / "r")), "CUDA is not available")


def test_bad_checkpoint_one_line_error(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    _one_line_error(run_cli("evaluate", "--model", str(bad)), "model.pt", "not a readable PyTorch checkpoint")
    _one_line_error(run_cli("info", str(tmp_path / "missing.pt")), "no such checkpoint")


def test_corrupt_data_file_one_line_error(tmp_path, seed_model_path):
    data = tmp_path / "mnist"
    data.mkdir()
    for f in MNIST_DIR.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    labels = data / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-100])  # truncated download
    proc = run_cli("evaluate", "--model", str(seed_model_path), "--data-dir", str(data))
    _one_line_error(proc, "t10k-labels-idx1-ubyte")


def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    env = {"DIGITREC_DATA": str(MNIST_DIR), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "train", "--recipe", "tutorial", "--epochs", "4",
                             "--subset", "20000", "--out", str(out), "--device", "cpu", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    deadline = time.time() + 300
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    state = torch.load(out / "last.pt", weights_only=True)["train_state"]
    assert state["interrupted"] and 1 <= state["epoch"] < 4
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temp files left behind"
    done = run_cli("train", "--resume", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert torch.load(out / "last.pt", weights_only=True)["train_state"]["epoch"] == 4
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4


def test_a_run_killed_while_saving_resumes_with_one_line_per_epoch_and_no_temp_files(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--arch", "mlp", "--epochs", "3", "--subset", "3000", "--out", str(out), "--device", "cpu", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "DIGITREC_DATA": str(MNIST_DIR)})
    deadline = time.time() + 300
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.002)
    proc.kill()  # SIGKILL, the moment epoch 1's line is written
    proc.communicate(timeout=60)
    # What a kill in the middle of saving epoch 2 leaves besides: its metrics line, and a temp file.
    first = (out / "metrics.jsonl").read_text().splitlines()[0]
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**json.loads(first), "epoch": 2}) + "\n")
    (out / ".last.pt.k2j4x9.tmp").write_bytes((out / "last.pt").read_bytes()[:5000])
    done = run_cli("train", "--resume", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert [json.loads(ln)["epoch"] for ln in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert sorted(os.listdir(out)) == ["last.pt", "metrics.jsonl", "model.pt"]
    # --force starts again from a clean folder, temp files included.
    (out / ".model.pt.0a1b2c.tmp").write_bytes(b"")
    again = run_cli(*args[:4], "1", *args[5:], "--force")
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(out)) == ["last.pt", "metrics.jsonl", "model.pt"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def _started(proc, ready, timeout=300):
    """Wait until `ready()` or the process ends."""
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.002)


def test_ctrl_c_during_start_up_is_exit_130_in_one_line(seed_model_path):
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "evaluate", "--model", str(seed_model_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DIGITREC_DATA": str(MNIST_DIR)})
    maps = f"/proc/{proc.pid}/maps"  # torch's library mapped: the command is importing torch
    _started(proc, lambda: "libtorch" in open(maps).read() if os.path.exists(maps) else time.sleep(1) is None)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stdout, stderr) == (130, "", "interrupted\n")  # it was 1 and "Aborted!"


def test_ctrl_c_again_and_again_is_exit_130_in_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "train", "--arch", "mlp", "--epochs", "30", "--subset",
                             "20000", "--out", str(out), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "DIGITREC_DATA": str(MNIST_DIR)})
    _started(proc, (out / "metrics.jsonl").exists)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:  # a user pressing Ctrl-C until it stops
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stdout == ""  # it was -2 (killed by SIGINT), with "Exception ignored in ..."
    assert len(stderr.splitlines()) == 1 and "interrupted" in stderr, stderr


def test_augment_preview_writes_a_grid(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    proc = run_cli("augment-preview", "--out", str(out), "--n", "8", "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        import torch

        from digitrec.augment import preview

        rows = len(preview(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)))  # one per augmentation
        assert im.size == (90 + 8 * 56, rows * 56) and rows >= 15
        assert len(im.getcolors(maxcolors=256) or []) > 50  # real digits, not a blank canvas


def test_ensemble_combines_checkpoints_and_flattens_ensembles(tmp_path, seed_model_path, small_model_path, mnist):
    from digitrec.checkpoint import load_checkpoint
    from digitrec.evaluate import accuracy_and_loss

    pair = tmp_path / "pair.pt"
    proc = run_cli("ensemble", str(seed_model_path), str(small_model_path), "--out", str(pair), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "2 members" in proc.stdout and not list(tmp_path.glob("*.tmp*"))
    ck = load_checkpoint(pair)
    assert ck.arch == "ensemble" and [m["arch"] for m in ck.arch_args["members"]] == ["mlp", "cnn"]
    # The recorded test accuracy is the averaged model's, and the members keep their own weights.
    acc, _ = accuracy_and_loss(ck.model, mnist.test_images, mnist.test_labels, ck.mean, ck.std)
    assert ck.meta["metrics"]["test"]["accuracy"] == acc
    small = load_checkpoint(small_model_path)
    x = (mnist.test_images[:64].float() / 255 - ck.mean) / ck.std
    with torch.no_grad():
        assert torch.equal(ck.model.members[1](x[:, None]), small.model(x[:, None]))
    assert ck.meta["command"].startswith("digitrec ensemble")
    # An ensemble given as a member contributes its members: 2 + 1 = 3, not a nested ensemble.
    proc = run_cli("ensemble", str(pair), str(small_model_path), "--out", str(tmp_path / "three.pt"), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert len(load_checkpoint(tmp_path / "three.pt").arch_args["members"]) == 3


def test_ensemble_of_one_model_with_tilts_reads_each_digit_turned_too(tmp_path, small_model_path, mnist):
    from digitrec.checkpoint import load_checkpoint
    from digitrec.loading import load_model

    out = tmp_path / "tilted.pt"
    proc = run_cli("ensemble", str(small_model_path), "--tilt", "8", "--tilt", "-8", "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "1 member, 3 views each" in proc.stdout
    ck = load_checkpoint(out)
    assert ck.arch_args["tilts"] == [8.0, -8.0] and ck.meta["config"]["tilts"] == [8.0, -8.0]
    # It reads MNIST as well as the model alone, and runs the same on onnxruntime (views and all).
    images = mnist.test_images[:500].numpy().astype(np.float32) / 255
    labels = mnist.test_labels[:500].numpy()
    alone = (load_model(small_model_path).probabilities(images).argmax(1) == labels).mean()
    p_torch = load_model(out).probabilities(images)
    assert (p_torch.argmax(1) == labels).mean() >= alone - 0.004
    assert np.abs(p_torch - load_model(out, backend="onnx").probabilities(images)).max() < 1e-4


def test_ensemble_refuses_a_line_reader(tmp_path, seed_model_path):
    from digitrec.model_file import shipped_path

    proc = run_cli("ensemble", str(seed_model_path), str(shipped_path("line")), "--out", str(tmp_path / "e.pt"))
    _one_line_error(proc, "line reader")
    assert not (tmp_path / "e.pt").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_says_what_it_does(command):
    """Every option of every command has help text (a bare `--seed INTEGER` tells a user nothing)."""
    bare = [p.opts[0] for p in cli.commands[command].params
            if isinstance(p, click.Option) and not p.help and p.opts[0] not in ("--help",)]
    assert not bare, (command, bare)
