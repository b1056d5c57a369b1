"""The model that ships inside the package: present, safe to load, accurate, and self-describing."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import REPO, run_cli
from digitrec.checkpoint import load_checkpoint, weights_sha256
from digitrec.evaluate import evaluate_checkpoint
from digitrec.export import onnx_bytes
from digitrec.loading import load_model
from digitrec.model_file import SHIPPED, shipped_onnx_path, shipped_path
from digitrec.onnx_model import load_onnx
from digitrec.recipes import ReaderConfig, matching_recipe
from digitrec.train import RECIPES


def test_shipped_model_is_in_the_package_and_loads_weights_only():
    path = shipped_path()
    assert path.is_file() and path.stat().st_size < 4_000_000  # small enough to ship
    raw = torch.load(path, weights_only=True)
    assert raw["command"].startswith("digitrec train --recipe") and "train_state" not in raw  # how it was made
    # ... and `--recipe robust` (scripts/build-model) trains exactly that configuration again.
    assert matching_recipe(raw["config"]) == "robust"


@pytest.mark.parametrize("task", sorted(SHIPPED))
def test_shipped_files_record_the_sha256_of_their_weights_and_verify(task):
    # Recorded by scripts/hash-weights (the files predate hashes); load_checkpoint compares it.
    raw = torch.load(shipped_path(task), weights_only=True)
    assert raw["weights_sha256"] == weights_sha256(raw["state_dict"])
    assert load_checkpoint(shipped_path(task)).meta["weights_sha256"] == raw["weights_sha256"]


def test_shipped_model_mnist_test_accuracy(mnist):
    ckpt = load_checkpoint(shipped_path())
    report = evaluate_checkpoint(ckpt, mnist.test_images, mnist.test_labels)
    assert report["accuracy"] >= 0.993
    assert report["accuracy"] == ckpt.meta["metrics"]["test"]["accuracy"]  # what it claims is true


def test_predict_and_info_use_the_shipped_model_by_default(tmp_path, mnist):
    # An MNIST "3", drawn as dark ink on a white page, off-centre.
    digit = Image.fromarray(255 - mnist.test_images[18].numpy()).resize((140, 140), Image.BICUBIC)
    page = Image.new("L", (400, 300), 255)
    page.paste(digit, (220, 40))
    ImageDraw.Draw(page).line([(0, 250), (400, 250)], fill=200)  # a ruled line
    path = tmp_path / "three.png"
    page.save(path)
    assert int(mnist.test_labels[18]) == 3
    proc = run_cli("predict", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digit"] == 3
    info = json.loads(run_cli("info", "--json").stdout)
    assert info["arch"] == RECIPES["robust"].arch and info["path"] == str(shipped_path())
    # Started as `--recipe best --extremes 1` (config.recipe says so), with the `robust` recipe's settings.
    assert info["config"]["recipe"] == "best" and info["matches_recipe"] == "robust"
    assert "\n  recipe: best\nmatches_recipe: robust\n" in run_cli("info").stdout
    assert load_model().predict([page])[0].digit == 3
    assert np.isclose(sum(load_model().predict([page])[0].probabilities), 1.0)


def _same_weights(fresh, shipped) -> bool:
    """Whether two ONNX graphs hold the same weights, up to float rounding. Not bit for bit: the
    exporter folds batch norm into the convolutions, and that arithmetic differs by an ulp from one
    CPU to another (seen: 1.2e-7 on a new machine); the shipped file's own hash still guards its bytes."""
    numpy_helper = pytest.importorskip("onnx.numpy_helper")
    a, b = ({t.name: numpy_helper.to_array(t) for t in g.graph.initializer} for g in (fresh, shipped))
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
                                        for k in a)


def test_the_shipped_onnx_export_is_the_shipped_model(mnist):
    # scripts/build-onnx wrote it: the weights a fresh export has, the same temperature and the same answers.
    onnx = pytest.importorskip("onnx")
    ck, shipped = load_checkpoint(shipped_path()), load_onnx(shipped_onnx_path())
    assert _same_weights(onnx.load_from_string(onnx_bytes(ck)), onnx.load(str(shipped_onnx_path())))
    assert shipped.temperature == ck.temperature != 1.0 and shipped.meta["metrics"] == ck.meta["metrics"]
    x = mnist.test_images[:2000].numpy() / 255
    a, b = load_model(backend="torch").probabilities(x), load_model(backend="onnx").probabilities(x)
    assert b.dtype == np.float32 and (a.argmax(1) == b.argmax(1)).all() and np.abs(a - b).max() < 1e-5


FINE_TUNE = {"glyphs": 0.15, "flag_length": 1.0, "styles": 0.5, "steps": 3000, "lr": 1e-3, "seed": 1}


def _config(record: dict) -> ReaderConfig:
    """A reader's recorded settings as a ReaderConfig (settings added since it was trained take their
    defaults; CPU threads change nothing it learns)."""
    saved = {**record, "channels": tuple(record["channels"])}
    return dataclasses.replace(ReaderConfig(**saved), threads=0)


def test_the_first_shipped_reader_is_the_default_reader_fine_tuned_as_build_reader_does():
    # scripts/build-reader trains a reader with the defaults, then fine-tunes it on the styles the
    # checks' error analysis named: the shipped first reader must record both runs.
    meta = load_checkpoint(shipped_path("line")).meta
    assert _config(meta["config"]) == ReaderConfig(**FINE_TUNE, init=meta["config"]["init"])
    assert _config(meta["init"]["config"]) == ReaderConfig()  # what it started from
    script = (REPO / "scripts" / "build-reader").read_text()
    assert "train-reader --out runs/reader --force" in script
    assert ("train-reader --init runs/reader/reader.pt --glyphs 0.15 --flag-length 1.0 --styles 0.5 \\\n"
            "    --steps 3000 --lr 1e-3 --seed 1 --out runs/reader-ft --force") in script


def test_the_second_shipped_reader_is_what_build_reader_trains():
    # The defaults with lead-ins up to the whole height.
    assert _config(load_checkpoint(shipped_path("line-b")).meta["config"]) == ReaderConfig(flag_length=1.0)
    assert "train-reader --flag-length 1.0 --out runs/reader-b --force" in (REPO / "scripts" / "build-reader").read_text()


@pytest.mark.parametrize("name", ["line", "line-b"])
def test_the_shipped_reader_onnx_export_is_the_shipped_reader(mnist, name):
    # scripts/build-onnx wrote it: the weights a fresh export has, the same calibration (temperature and
    # number map), and the same log-probabilities at any width.
    onnx = pytest.importorskip("onnx")
    from digitrec.framing import frame_strip
    from digitrec.ink import find_ink
    from digitrec.printed import clean_document
    from digitrec.read import READ_FIT
    from digitrec.writing import line_pieces
    from digitrec.synth_numbers import iter_number_set

    ck, shipped = load_checkpoint(shipped_path(name)), load_onnx(shipped_onnx_path(name))
    assert shipped.task == "line" and shipped.backend == "onnx"
    assert _same_weights(onnx.load_from_string(onnx_bytes(ck)), onnx.load(str(shipped_onnx_path(name))))
    assert shipped.temperature == ck.temperature != 1.0
    assert shipped.meta["calibration"] == ck.meta["calibration"] and shipped.meta["metrics"] == ck.meta["metrics"]
    model = ck.model.eval()
    widths = set()
    for img, _, _ in iter_number_set(mnist.test_images, mnist.test_labels, 12, 6, "touching", seed=1):
        found, (_, line) = find_ink(img, READ_FIT, line_pieces, clean=clean_document)
        x = ((frame_strip(found.ink, line)[0] - ck.mean) / ck.std).astype(np.float32)[None, None]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        got = shipped.model(x)
        assert got.shape == want.shape and got.shape[:2] == (1, x.shape[3] // 2)
        assert np.abs(got - want).max() < 1e-4
        widths.add(x.shape[3])
    assert len(widths) > 3  # strips of many widths through one graph
