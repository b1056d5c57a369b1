import json
import os
import signal
import threading
import time
from pathlib import Path

import matplotlib
import pytest
import torch

from digitrec.checkpoint import atomic_save, load_checkpoint, make_checkpoint
from digitrec.errors import CheckpointError, ConfigError
from digitrec.fonts import font_digits, load_fonts
from digitrec.loop import TrainState
from digitrec.model_file import normalise, shipped_path
from digitrec.models import create_model
from digitrec.recipes import OPTIMIZERS, recipe
from digitrec.train import prepare_run_dir, train


def _quick(tmp_path, name="run", **kw):
    base = dict(arch="mlp", epochs=1, subset=3000, val_size=1000, batch_size=64, out=str(tmp_path / name), device="cpu")
    return recipe("tutorial", **{**base, **kw})


def test_run_writes_metrics_best_and_last(tmp_path, mnist):
    res = train(_quick(tmp_path, epochs=2), data=mnist, progress=False)
    out = tmp_path / "run"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "val_accuracy", "val_loss", "lr", "images_per_s"} <= set(lines[0])
    assert lines[1]["train_loss"] < lines[0]["train_loss"]
    best = torch.load(out / "model.pt", weights_only=True)
    assert best["metrics"]["val"]["accuracy"] == max(r["val_accuracy"] for r in lines) == res.best_val_accuracy
    assert best["metrics"]["test"]["accuracy"] == res.test_accuracy > 0.85
    assert best["config"]["arch"] == "mlp" and best["config"]["subset"] == 3000
    assert best["data_sha256"] == mnist.fingerprint
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["train_state"]["epoch"] == 2 and not last["train_state"]["interrupted"]
    assert load_checkpoint(out / "model.pt").arch == "mlp"


def test_threads_sets_torchs_cpu_threads_and_is_recorded(tmp_path, mnist):
    before = torch.get_num_threads()
    n = before + 1  # a number torch is not already at, whatever this machine's default
    try:
        train(_quick(tmp_path, threads=n), data=mnist, progress=False)
        assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["config"]["threads"] == n


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, mnist):
    a = train(_quick(tmp_path, "a", seed=3, arch="cnn", arch_args={"channels": [4, 8]}, augment=0.5), data=mnist, progress=False)
    b = train(_quick(tmp_path, "b", seed=3, arch="cnn", arch_args={"channels": [4, 8]}, augment=0.5), data=mnist, progress=False)
    c = train(_quick(tmp_path, "c", seed=4, arch="cnn", arch_args={"channels": [4, 8]}, augment=0.5), data=mnist, progress=False)
    sa, sb, sc = (torch.load(tmp_path / n / "last.pt", weights_only=True)["state_dict"] for n in "abc")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.history[0]["train_loss"] != c.history[0]["train_loss"]


def _interrupt_during_second_epoch(out):
    def fire():
        deadline = time.time() + 120
        while not (out / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


def test_interrupt_then_resume_gives_the_uninterrupted_result(tmp_path, mnist):
    kw = dict(epochs=3, subset=20000, arch="mlp", augment=0.3, schedule="onecycle", optimizer="adamw", lr=2e-3)
    full = train(_quick(tmp_path, "full", **kw), data=mnist, progress=False)
    cfg = _quick(tmp_path, "cut", **kw)
    t = _interrupt_during_second_epoch(tmp_path / "cut")
    cut = train(cfg, data=mnist, progress=False)
    t.join()
    assert cut.interrupted and cut.epochs_done == 1
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["train_state"]
    assert state["interrupted"] and state["epoch"] == 1 and state["step"] > 0  # stopped mid-epoch
    resumed = train(resume=tmp_path / "cut", data=mnist, progress=False)
    assert not resumed.interrupted and resumed.epochs_done == 3
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]
    assert resumed.test_accuracy == full.test_accuracy
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(tmp_path, mnist, optimizer):
    lr = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05, "adadelta": 1.0}[optimizer]
    res = train(_quick(tmp_path, optimizer=optimizer, lr=lr), data=mnist, progress=False)
    assert res.best_val_accuracy > 0.8  # chance is 0.1


def test_bad_settings_are_config_errors(tmp_path, mnist):
    with pytest.raises(ConfigError, match="optimizer 'lbfgs'"):
        train(_quick(tmp_path, optimizer="lbfgs"), data=mnist, progress=False)
    with pytest.raises(ConfigError, match="unknown model"):
        train(_quick(tmp_path, arch="vit"), data=mnist, progress=False)
    with pytest.raises(ConfigError, match="train-reader"):
        train(_quick(tmp_path, arch="linecnn"), data=mnist, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tutorial_recipe_reaches_the_tutorial_accuracy(tmp_path, mnist):
    res = train(recipe("tutorial", out=str(tmp_path / "tut"), device="cpu"), data=mnist, progress=False)
    assert 0.970 <= res.test_accuracy <= 0.982


def test_train_state_round_trips_through_last_pt(tmp_path, mnist):
    train(_quick(tmp_path, epochs=1, optimizer="adamw", schedule="onecycle"), data=mnist, progress=False)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]
    model = create_model("mlp")
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=100)
    st = TrainState(model, opt, sched, torch.Generator())
    rng = torch.get_rng_state()
    try:
        st.load_state_dict(saved)
        again = st.state_dict()
    finally:
        torch.set_rng_state(rng)
    assert set(again) == set(saved)
    for key in ("epoch", "step", "best_val", "history", "elapsed", "loss_sum", "seen", "world", "interrupted"):
        assert again[key] == saved[key], key
    for key in ("gen_state", "torch_rng_state", "epoch_gen_state"):
        assert torch.equal(again[key], saved[key]), key
    assert again["scheduler"] == saved["scheduler"]


def test_init_starts_from_a_checkpoint_of_the_same_architecture(tmp_path, mnist):
    first = train(_quick(tmp_path, "first"), data=mnist, progress=False)
    again = train(_quick(tmp_path, "again", init=str(tmp_path / "first" / "model.pt"), lr=1e-9), data=mnist,
                  progress=False)
    assert again.best_val_accuracy == pytest.approx(first.best_val_accuracy, abs=0.002)  # it kept what it had learned
    with pytest.raises(CheckpointError, match="not cnn"):
        train(_quick(tmp_path, "bad", arch="cnn", init=str(tmp_path / "first" / "model.pt")), data=mnist, progress=False)


def test_a_student_learns_what_its_teacher_says_not_only_the_labels(tmp_path, mnist):
    # A teacher that is right but one digit off: its weights for digit d moved to d + 1.
    trained = train(_quick(tmp_path, "trained", epochs=2), data=mnist, progress=False)
    ckpt = torch.load(tmp_path / "trained" / "model.pt", weights_only=True)
    model = create_model("mlp")
    model.load_state_dict({k: v.roll(1, dims=0) if k.startswith("fc2.") else v for k, v in ckpt["state_dict"].items()})
    atomic_save(make_checkpoint(model, "mlp", {}), tmp_path / "off-by-one.pt")
    assert trained.best_val_accuracy > 0.85

    labels = train(_quick(tmp_path, "labels", teacher=str(tmp_path / "off-by-one.pt"), distill=0.0), data=mnist,
                   progress=False)
    teacher = train(_quick(tmp_path, "teacher", teacher=str(tmp_path / "off-by-one.pt"), distill=1.0), data=mnist,
                    progress=False)
    assert labels.best_val_accuracy > 0.8  # weight 0: the labels alone, as without a teacher
    assert teacher.best_val_accuracy < 0.1  # weight 1: the teacher's answers, one digit off the labels
    student = load_checkpoint(tmp_path / "teacher" / "model.pt").model
    x = mnist.test_images[:500].float().div(255).unsqueeze(1)
    agree = (student(normalise(x)).argmax(1) == (mnist.test_labels[:500] + 1) % 10).float().mean()
    assert agree > 0.8
    assert torch.load(tmp_path / "teacher" / "model.pt", weights_only=True)["config"]["teacher"].endswith("off-by-one.pt")


def test_a_teacher_that_reads_lines_is_refused(tmp_path, mnist):
    with pytest.raises(CheckpointError, match="line"):
        train(_quick(tmp_path, teacher=str(shipped_path("line"))), data=mnist, progress=False)


def test_prepare_run_dir_refuses_a_run_unless_forced(tmp_path, mnist):
    out = tmp_path / "run"
    prepare_run_dir(out)  # an empty or missing folder is fine
    train(_quick(tmp_path, epochs=1), data=mnist, progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        prepare_run_dir(out)
    (out / "member0").mkdir()
    (out / "notes.txt").write_text("mine")
    prepare_run_dir(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the run's files only


def test_resume_needs_a_training_state(tmp_path, mnist):
    (tmp_path / "x").mkdir()
    torch.save({"state_dict": {}}, tmp_path / "x" / "last.pt")
    with pytest.raises(CheckpointError, match="not a digitrec training state"):
        train(resume=tmp_path / "x", data=mnist, progress=False)


def test_fonts_digits_join_the_training_images_and_are_named_in_the_checkpoint(tmp_path, mnist):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for face in ("DejaVuSans.ttf", "DejaVuSerif.ttf"):
        (fonts / face).write_bytes((Path(matplotlib.get_data_path()) / "fonts" / "ttf" / face).read_bytes())
    res = train(_quick(tmp_path, fonts=str(fonts), font_share=0.2), data=mnist, progress=False)
    best = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert best["fonts"] == ["DejaVu Sans Book", "DejaVu Serif Book"]
    assert res.test_accuracy > 0.85  # validation and test stay MNIST's
    # The fonts' 20 digits were a fifth of its training images: it has learnt them.
    x, y = font_digits(load_fonts(fonts))
    model = load_checkpoint(tmp_path / "run" / "model.pt").model.eval()
    with torch.no_grad():
        assert (model(normalise(x[:, None].float() / 255)).argmax(1) == y).sum() >= 19
