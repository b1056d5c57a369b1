import dataclasses
import json
import os
import signal
import threading
import time

import pytest
import torch

from digitrec.checkpoint import load_checkpoint
from digitrec.errors import ConfigError
from digitrec.train import DEFAULT_RECIPE, OPTIMIZERS, RECIPES, config_from_flags, recipe, train


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
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe("turbo")
    with pytest.raises(ConfigError, match="unknown training settings: colour"):
        recipe("fast", colour="red")
    with pytest.raises(ConfigError, match="unknown model"):
        train(_quick(tmp_path, arch="vit"), data=mnist, progress=False)
    with pytest.raises(ConfigError, match="train-reader"):
        train(_quick(tmp_path, arch="linecnn"), data=mnist, progress=False)
    assert not (tmp_path / "run").exists()


def test_recipes_are_valid():
    for name, cfg in RECIPES.items():
        cfg.validate()
        assert cfg.recipe == name
    t = RECIPES["tutorial"]
    assert (t.arch, t.optimizer, t.lr, t.batch_size, t.epochs, t.schedule, t.augment) == ("mlp", "adam", 1e-3, 64, 5, "none", 0.0)


@pytest.mark.slow
def test_tutorial_recipe_reaches_the_tutorial_accuracy(tmp_path, mnist):
    res = train(recipe("tutorial", out=str(tmp_path / "tut"), device="cpu"), data=mnist, progress=False)
    assert 0.970 <= res.test_accuracy <= 0.982


def test_flags_resolve_like_the_issue_says():
    # The tutorial's run, spelled out in flags, is exactly the tutorial recipe.
    spelled = config_from_flags(None, arch="mlp", optimizer="adam", lr=0.001, batch_size=64, epochs=5)
    assert dataclasses.replace(spelled, recipe="tutorial", out="x") == dataclasses.replace(RECIPES["tutorial"], out="x")
    # No recipe and no arch: the default recipe, with flags on top; unset flags (None) change nothing.
    cfg = config_from_flags(None, epochs=2, lr=None)
    assert cfg.recipe == DEFAULT_RECIPE and cfg.epochs == 2 and cfg.lr == RECIPES[DEFAULT_RECIPE].lr
    assert cfg.out == f"runs/{DEFAULT_RECIPE}"
    assert config_from_flags("robust", seed=7).arch_args == RECIPES["robust"].arch_args


def test_ensemble_run_saves_one_checkpoint_and_resumes_member_by_member(tmp_path, mnist):
    cfg = _quick(tmp_path, "ens", members=2, arch="cnn", arch_args={"channels": [4, 8]})
    res = train(cfg, data=mnist, progress=False)
    out = tmp_path / "ens"
    ck = load_checkpoint(out / "model.pt")
    assert ck.arch == "ensemble" and len(ck.model.members) == 2
    seeds = [torch.load(out / f"member{i}" / "model.pt", weights_only=True)["config"]["seed"] for i in range(2)]
    assert seeds == [cfg.seed, cfg.seed + 1]
    assert ck.meta["metrics"]["test"]["accuracy"] == res.test_accuracy > 0.8
    assert len(ck.meta["metrics"]["members"]) == 2
    # The saved ensemble scores what the run reported.
    from digitrec.evaluate import accuracy_and_loss
    acc, _ = accuracy_and_loss(ck.model, mnist.test_images, mnist.test_labels, ck.mean, ck.std)
    assert acc == res.test_accuracy
    # Lose the second member and the ensemble: resuming retrains only that member, to the same result.
    import shutil
    shutil.rmtree(out / "member1")
    (out / "model.pt").unlink()
    first = (out / "member0" / "model.pt").stat().st_mtime_ns
    again = train(resume=out, data=mnist, progress=False)
    assert again.test_accuracy == res.test_accuracy
    assert (out / "member0" / "model.pt").stat().st_mtime_ns == first
