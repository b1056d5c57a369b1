"""Ensembles (`ensemble`): a run of N members saved as one checkpoint, and trained checkpoints combined."""

import shutil

import torch

from digitrec.checkpoint import load_checkpoint
from digitrec.ensemble import ENSEMBLE_CONFIG, combine_checkpoints
from digitrec.evaluate import accuracy_and_loss
from digitrec.recipes import recipe
from digitrec.train import train


def _quick(tmp_path, name, **kw):
    base = dict(arch="mlp", epochs=1, subset=3000, val_size=1000, batch_size=64, out=str(tmp_path / name), device="cpu")
    return recipe("tutorial", **{**base, **kw})


def test_ensemble_run_saves_one_checkpoint_and_resumes_member_by_member(tmp_path, mnist):
    cfg = _quick(tmp_path, "ens", members=2, arch="cnn", arch_args={"channels": [4, 8]})
    res = train(cfg, data=mnist, progress=False)
    out = tmp_path / "ens"
    assert (out / ENSEMBLE_CONFIG).exists()
    ck = load_checkpoint(out / "model.pt")
    assert ck.arch == "ensemble" and len(ck.model.members) == 2
    seeds = [torch.load(out / f"member{i}" / "model.pt", weights_only=True)["config"]["seed"] for i in range(2)]
    assert seeds == [cfg.seed, cfg.seed + 1]
    assert ck.meta["metrics"]["test"]["accuracy"] == res.test_accuracy > 0.8
    assert len(ck.meta["metrics"]["members"]) == 2
    # The saved ensemble scores what the run reported.
    acc, _ = accuracy_and_loss(ck.model, mnist.test_images, mnist.test_labels, ck.mean, ck.std)
    assert acc == res.test_accuracy
    # Lose the second member and the ensemble: resuming retrains only that member, to the same result.
    shutil.rmtree(out / "member1")
    (out / "model.pt").unlink()
    first = (out / "member0" / "model.pt").stat().st_mtime_ns
    again = train(resume=out, data=mnist, progress=False)
    assert again.test_accuracy == res.test_accuracy
    assert (out / "member0" / "model.pt").stat().st_mtime_ns == first

    # The same two members combined from their files: the same model, with what it was made from.
    paths = [str(out / f"member{i}" / "model.pt") for i in range(2)]
    combined = combine_checkpoints(paths, tmp_path / "pair.pt", mnist, device="cpu", command="digitrec ensemble x")
    assert combined["config"] == {"recipe": "combined", "members_from": paths}
    assert combined["command"] == "digitrec ensemble x"
    assert combined["metrics"]["test"]["accuracy"] == res.test_accuracy
    pair = torch.load(tmp_path / "pair.pt", weights_only=True)["state_dict"]
    saved = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert set(pair) == set(saved) and all(torch.equal(pair[k], saved[k]) for k in pair)
