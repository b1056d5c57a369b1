"""Calibration: the temperature is fitted, kept in the checkpoint and applied everywhere; the
metrics (ECE, reliability, accuracy at coverage) measure what they say."""

import shutil

import numpy as np
import pytest
import torch

from conftest import run_cli
from digitrec.calibration import calibrate, calibrate_reader, fit_platt, fit_temperature, save_calibrated
from digitrec.checkpoint import load_checkpoint
from digitrec.errors import CheckpointError
from digitrec.evaluate import accuracy_at_coverage, calibration_summary, expected_calibration_error, reliability
from digitrec.export import as_onnx
from digitrec.loading import TorchRecogniser
from digitrec.model_file import shipped_path
from digitrec.predict import Recogniser
from digitrec.read import NumberReader, load_reader, number_confidence
from digitrec.synth_numbers import render_number


def _sampled(temperature: float, n: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits, and labels drawn from softmax(logits / temperature): T is the temperature that fits them."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=g) * 4
    labels = torch.multinomial((logits / temperature).softmax(1), 1, generator=g)[:, 0]
    return logits, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(temperature):
    logits, labels = _sampled(temperature)
    assert fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.06)


def test_temperature_scaling_calibrates_and_never_changes_the_answer():
    logits, labels = _sampled(2.5)
    t = fit_temperature(logits, labels)
    raw, scaled = calibration_summary(logits.softmax(1), labels), calibration_summary((logits / t).softmax(1), labels)
    assert scaled["ece"] < 0.02 < raw["ece"] and scaled["nll"] < raw["nll"]
    assert torch.equal((logits / t).argmax(1), logits.argmax(1))


def test_ece_and_reliability_by_hand():
    conf = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    right = np.array([1, 1, 1, 0, 1, 0], bool)
    bins = [b for b in reliability(conf, right) if b["n"]]
    assert [(b["n"], b["accuracy"]) for b in bins] == [(2, 0.5), (4, 0.75)]
    assert expected_calibration_error(conf, right) == pytest.approx(2 / 6 * 0.05 + 4 / 6 * 0.2)
    assert accuracy_at_coverage(conf, right, 4 / 6) == 0.75  # the four 0.95s kept, the two 0.55s set aside
    assert accuracy_at_coverage(conf, right, 1.0) == pytest.approx(4 / 6)


@pytest.fixture(scope="module")
def calibrated_path(small_model_path, mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated") / "model.pt"
    record = calibrate(load_checkpoint(small_model_path), mnist, styled=300)
    return save_calibrated(small_model_path, record, out), record


def test_calibrate_fits_on_held_out_digits_and_the_checkpoint_keeps_it(calibrated_path, small_model_path):
    path, record = calibrated_path
    ck = load_checkpoint(path)
    assert ck.temperature == pytest.approx(record["temperature"]) and ck.temperature != 1.0
    assert load_checkpoint(small_model_path).temperature == 1.0  # written to --out: the original is untouched
    assert record["after"]["nll"] < record["before"]["nll"]
    assert "validation" in record["fitted_on"] and record["n"] > 5000


def test_predict_and_onnx_apply_the_temperature(calibrated_path, small_model_path, mnist):
    path, record = calibrated_path
    x = mnist.test_images[:64].float().numpy() / 255
    raw = TorchRecogniser(load_checkpoint(small_model_path)).probabilities(x)
    cal = TorchRecogniser(load_checkpoint(path)).probabilities(x)
    onnx = Recogniser(as_onnx(load_checkpoint(path))).probabilities(x)
    expected = (torch.from_numpy(raw).clamp(min=1e-30).log() / record["temperature"]).softmax(1).numpy()  # same logits up to a constant
    assert np.allclose(cal, expected, atol=1e-4) and np.allclose(onnx, cal, atol=1e-4)
    assert np.array_equal(cal.argmax(1), raw.argmax(1))


def test_cli_calibrate_and_evaluate_report_the_calibration_error(small_model_path, tmp_path, seed_model_path):
    model = tmp_path / "model.pt"
    shutil.copy(small_model_path, model)
    proc = run_cli("calibrate", str(model), "--styled", "100")
    assert proc.returncode == 0, proc.stderr
    assert "temperature" in proc.stdout and str(model) in proc.stdout
    assert load_checkpoint(model).temperature != 1.0
    proc = run_cli("evaluate", "--model", str(model), "--figures", str(tmp_path / "fig"))
    assert proc.returncode == 0 and "calibration error (ECE, 15 bins)" in proc.stdout
    assert (tmp_path / "fig" / "reliability.png").stat().st_size > 1000
    # The tutorial's bare state dict has nowhere to keep a temperature: one clear line, nothing written.
    tutorial = tmp_path / "mnist_model.pth"
    shutil.copy(seed_model_path, tutorial)
    before = tutorial.read_bytes()
    proc = run_cli("calibrate", str(tutorial), "--styled", "0")
    assert proc.returncode != 0 and "cannot keep a temperature" in proc.stderr and "Traceback" not in proc.stderr
    assert tutorial.read_bytes() == before


def test_the_shipped_model_is_calibrated():
    ck = load_checkpoint(shipped_path())
    assert 0.2 < ck.temperature < 1.0  # trained with label smoothing: its raw softmax is underconfident
    assert ck.meta["calibration"]["after"]["ece"] < 0.01


def test_save_calibrated_refuses_what_is_not_a_digitrec_checkpoint(seed_model_path, tmp_path):
    with pytest.raises(CheckpointError, match="cannot keep a temperature"):
        save_calibrated(seed_model_path, {"temperature": 1.0}, tmp_path / "x.pt")


@pytest.mark.parametrize("a, b", [(0.5, -0.2), (1.0, 0.0), (2.0, 1.0)])
def test_platt_scaling_finds_the_map_the_outcomes_were_drawn_with(a, b):
    rng = np.random.default_rng(0)
    score = rng.normal(0, 3, 20000)
    right = rng.random(20000) < 1 / (1 + np.exp(-(a * score + b)))
    fa, fb = fit_platt(score, right)
    assert fa == pytest.approx(a, abs=0.08) and fb == pytest.approx(b, abs=0.08)


@pytest.fixture(scope="module")
def reader_record(mnist):
    # One number per length, spacing and paper (96): enough to fit two numbers and check the plumbing.
    return calibrate_reader(load_reader(), mnist, per_cell=1)


def test_calibrate_reader_fits_on_numbers_written_with_held_out_digits(reader_record):
    r = reader_record
    assert r["n"] == 96 and "validation digits" in r["fitted_on"] and r["digit_model"] in ("digitrec-digits.pt", "digitrec-digits.onnx")  # the shipped one, or its ONNX export
    assert 0.05 < r["temperature"] < 20 and r["number"][0] > 0
    assert [name.split(".")[0] for name in r["readers"]] == ["weights/digitrec-reader", "weights/digitrec-reader-b"]  # which voted
    # Fitted by log loss on these very numbers: the calibration error they leave is no larger.
    assert r["after"]["ece"] <= r["before"]["ece"] + 0.02


def test_a_calibrated_reader_applies_its_temperature_and_number_map(reader_record, tmp_path, mnist):
    out = save_calibrated(shipped_path("line"), {**reader_record, "temperature": 2.0, "number": [0.5, -1.0]},
                          tmp_path / "reader.pt")
    raw = load_reader(reader=shipped_path("line"))
    raw = NumberReader(raw.digits, raw.reader, calibrated=False)
    cal = load_reader(reader=out)
    image = render_number([d.numpy() for d in mnist.test_images[:3]], np.random.default_rng(0))[0]
    a, b = raw.read(image), cal.read(image)
    assert a.text == b.text and len(b.digits) == 3
    for da, db in zip(a.digits, b.digits):  # a warmer temperature: less sure of each digit, same answer
        assert db.digit == da.digit and (db.confidence < da.confidence or da.confidence > 0.999999)
    assert b.confidence == pytest.approx(number_confidence([d.confidence for d in b.digits], (0.5, -1.0)))
    assert b.confidence < a.confidence


@pytest.mark.parametrize("name, readers", [("line", ["reader-ft/reader.pt", "reader-b/reader.pt"]),
                                           ("line-b", ["reader-b/reader.pt"])])
def test_the_shipped_readers_are_calibrated(name, readers):
    # scripts/build-reader: the first reader for the pair reading together, the second for reading alone.
    ck = load_checkpoint(shipped_path(name))
    cal = ck.meta["calibration"]
    assert ck.temperature == cal["temperature"] != 1.0 and len(cal["number"]) == 2
    assert cal["after"]["ece"] < cal["before"]["ece"]
    assert cal["readers"] == readers
