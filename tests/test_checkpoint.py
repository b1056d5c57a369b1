import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import REPO, flip_bytes, run_cli
from digitrec.checkpoint import FORMAT_VERSION, add_weights_hash, atomic_save, load_checkpoint, make_checkpoint, weights_sha256
from digitrec.errors import CheckpointError, OutputError
from digitrec.model_file import MNIST_MEAN, MNIST_STD, shipped_path
from digitrec.models import create_model


def _saved(tmp_path, **kw):
    torch.manual_seed(1)
    model = create_model("cnn", channels=[8, 16], hidden=32)
    ckpt = make_checkpoint(model, "cnn", {"channels": [8, 16], "hidden": 32}, config={"epochs": 3, "lr": 0.01},
                           metrics={"val": {"accuracy": 0.5}}, data_sha256="abc", **kw)
    path = tmp_path / "model.pt"
    atomic_save(ckpt, path)
    return model, path


def test_round_trip_through_weights_only(tmp_path):
    model, path = _saved(tmp_path)
    raw = torch.load(path, weights_only=True)  # must not need any pickled class
    assert raw["arch"] == "cnn" and raw["format_version"] == FORMAT_VERSION
    assert raw["normalization"] == {"mean": MNIST_MEAN, "std": MNIST_STD}
    assert raw["classes"] == [str(d) for d in range(10)] and raw["input_size"] == [1, 28, 28]
    assert raw["config"]["epochs"] == 3 and raw["metrics"]["val"]["accuracy"] == 0.5
    assert raw["data_sha256"] == "abc" and raw["digitrec_version"]
    loaded = load_checkpoint(path)
    assert loaded.kind == "digitrec" and not loaded.model.training
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), loaded.model(x))
    assert not [p for p in os.listdir(tmp_path) if p != "model.pt"], "temp files left behind"


def test_tutorial_state_dict_loads_as_mlp(seed_model_path):
    ckpt = load_checkpoint(seed_model_path)
    assert (ckpt.kind, ckpt.arch, ckpt.mean, ckpt.std) == ("tutorial", "mlp", 0.1307, 0.3081)
    sd = torch.load(seed_model_path, weights_only=True)
    assert torch.equal(ckpt.model.fc1.weight, sd["fc1.weight"])


def test_wrapper_prefixes_are_stripped(tmp_path, seed_model_path):
    sd = torch.load(seed_model_path, weights_only=True)
    path = tmp_path / "ddp.pth"
    torch.save({f"module._orig_mod.{k}": v for k, v in sd.items()}, path)
    assert torch.equal(load_checkpoint(path).model.fc2.bias, sd["fc2.bias"])


def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Evil()}, path)  # what a malicious "model" download looks like
    with pytest.raises(CheckpointError, match="refused to load.*posix.system"):
        load_checkpoint(path)
    for protocol in (2, 4):  # a raw pickle, not a torch zip file, is refused too
        with open(path, "wb") as f:
            pickle.dump({"state_dict": Evil()}, f, protocol=protocol)
        with pytest.raises(CheckpointError, match="evil.pt"):
            load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10, os.urandom(4096)])
def test_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="x.pt"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_foreign_state_dicts_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc1.weight": torch.zeros(256, 100), "fc1.bias": torch.zeros(256),
                "fc2.weight": torch.zeros(10, 256), "fc2.bias": torch.zeros(10)}, path)
    with pytest.raises(CheckpointError, match="matches no digitrec model"):
        load_checkpoint(path)
    torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    with pytest.raises(CheckpointError, match="matches no digitrec model"):
        load_checkpoint(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a digitrec checkpoint"):
        load_checkpoint(path)


def test_damaged_and_future_checkpoints_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    raw["state_dict"].pop("fc2.bias")
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    raw["format_version"] = FORMAT_VERSION + 1
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_failed_save_leaves_the_old_file_and_no_temp(tmp_path):
    _, path = _saved(tmp_path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        atomic_save({"bad": lambda: None}, path)  # lambdas cannot be pickled: fails mid-write
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


def test_unwritable_destination_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"{blocker}: exists and is not a folder"):
        atomic_save({"a": 1}, blocker / "model.pt")


def test_describe_says_what_a_checkpoint_is(seed_model_path):
    from digitrec.model_file import shipped_path

    tutorial = load_checkpoint(seed_model_path).describe()
    assert tutorial["kind"] == "tutorial" and tutorial["task"] == "digit" and tutorial["backend"] == "torch"
    assert tutorial["parameters"] == 101770 and tutorial["normalization"] == {"mean": MNIST_MEAN, "std": MNIST_STD}
    reader = load_checkpoint(shipped_path("line")).describe()
    assert reader["task"] == "line" and reader["arch"] == "linecnn" and "train_state" not in reader
    assert "metrics" in reader and "config" in reader and json.dumps(reader, default=str)


def _damaged(tmp_path, change) -> Path:
    """The shipped model changed as if digitrec had saved it so (its weights' hash recorded again)."""
    obj = torch.load(shipped_path(), weights_only=True)
    change(obj)
    obj["weights_sha256"] = weights_sha256(obj["state_dict"])
    path = tmp_path / "damaged.pt"
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("change, says", [
    (lambda o: o.update(state_dict={k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                                    for k, v in o["state_dict"].items()}), "not finite"),
    (lambda o: o.update(normalization="0.1307"), "normalization is not a mean and a std"),
    (lambda o: o["normalization"].update(std=0.0), "std must be a positive number"),
])
def test_a_model_that_cannot_give_probabilities_is_refused_at_load(tmp_path, change, says):
    path = _damaged(tmp_path, change)
    with pytest.raises(CheckpointError, match=says):
        load_checkpoint(path)
    for args in (["predict", "--model", str(path), str(path)], ["info", str(path)], ["predict", "--json", "--model", str(path), str(path)]):
        proc = run_cli(*args)
        assert proc.returncode != 0 and says in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stdout == ""  # no NaN answer, no invalid JSON


def test_a_checkpoint_records_the_sha256_of_its_weights(tmp_path):
    _, path = _saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    assert raw["weights_sha256"] == weights_sha256(raw["state_dict"])
    raw["state_dict"]["fc2.bias"][0] += 1e-3  # one weight changed by a little
    assert weights_sha256(raw["state_dict"]) != raw["weights_sha256"]


def test_corrupted_weights_are_refused_naming_the_file(tmp_path):
    # torch's zip reader checks no CRC: these flipped bytes used to load, and read a 7 as a 0.
    bad = flip_bytes(shipped_path(), tmp_path / "digits.pt", 2000)
    with pytest.raises(CheckpointError, match="digits.pt: damaged model file .*SHA-256"):
        load_checkpoint(bad)
    for args in (["info", str(bad)], ["predict", "--model", str(bad), str(REPO / "samples" / "seven.jpg")]):
        proc = run_cli(*args)
        assert proc.returncode == 1 and proc.stdout == "", proc.stdout
        assert proc.stderr.count("\n") == 1 and f"{bad}: damaged model file" in proc.stderr


def test_files_saved_without_a_hash_still_load_and_can_be_given_one(tmp_path, seed_model_path):
    assert load_checkpoint(seed_model_path).kind == "tutorial"  # a bare state dict has nowhere to keep one
    _, path = _saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    del raw["weights_sha256"]  # as digitrec saved checkpoints before it recorded one
    torch.save(raw, path)
    assert load_checkpoint(path).arch == "cnn"
    digest = add_weights_hash(path)
    again = torch.load(path, weights_only=True)
    assert again["weights_sha256"] == digest == weights_sha256(raw["state_dict"])
    assert {k: v for k, v in again.items() if k not in ("weights_sha256", "state_dict")} == \
        {k: v for k, v in raw.items() if k != "state_dict"}


def test_a_declared_architecture_that_does_not_fit_its_tensors_is_refused_before_it_is_built(tmp_path):
    ck = make_checkpoint(create_model("mlp", hidden=16), "mlp", {"hidden": 16})
    ck["arch_args"] = {"hidden": 600_000}  # a 1 KB file claiming a 470M-parameter model
    path = tmp_path / "crafted.pt"
    torch.save(ck, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert str(path) in msg and "fc1.weight" in msg and "(16, 784)" in msg and "(600000, 784)" in msg
    r = run_cli("info", str(path))
    assert r.returncode == 1 and "fc1.weight" in r.stderr and "Traceback" not in r.stderr
