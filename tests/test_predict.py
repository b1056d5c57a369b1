"""predict: the library API (load_model, Recogniser.predict, Prediction)."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import ballpoint_page, on_paper as paper_digit
from digitrec.checkpoint import load_checkpoint
from digitrec.errors import CheckpointError
from digitrec.loading import load_model
from digitrec.model_file import shipped_onnx_path
from digitrec.onnx_model import load_onnx
from digitrec.predict import Prediction, Recogniser, onnx_file
from digitrec.preprocess import NoDigitFound, Preprocessed, naive_preprocess, preprocess
from digitrec.synth import save_user_style_set

@pytest.fixture(scope="session")
def model_path(small_model_path) -> Path:
    return small_model_path


@pytest.fixture(scope="module")
def rec(model_path) -> Recogniser:
    return load_model(model_path)


def on_paper(digit, scale=8, size=(360, 300), at=(40, 30)):
    return paper_digit(digit, scale, size, at)


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _check_prediction(p: Prediction):
    assert isinstance(p.digit, int) and 0 <= p.digit <= 9
    assert len(p.probabilities) == 10 and all(isinstance(v, float) for v in p.probabilities)
    assert abs(sum(p.probabilities) - 1) < 1e-4
    assert p.confidence == max(p.probabilities) == p.probabilities[p.digit]
    assert p.error is None and not p.no_digit


# ---------------------------------------------------------------------------------------------
# Loading and predicting


def test_load_model_fixture_and_tutorial_checkpoint(model_path, seed_model_path, one_of_each):
    papers = [on_paper(x) for x, _ in one_of_each]
    for path, need in ((model_path, 9), (seed_model_path, 8)):
        r = load_model(path)
        assert isinstance(r, Recogniser)
        assert r.min_confidence == 0.0
        preds = r.predict(papers)
        for p in preds:
            _check_prediction(p)
        right = sum(p.digit == d for p, (_, d) in zip(preds, one_of_each))
        assert right >= need, (path, [p.digit for p in preds])
    assert load_model(seed_model_path).checkpoint.kind == "tutorial"
    assert load_model(model_path, min_confidence=0.5).min_confidence == 0.5


def test_predict_accepts_a_mix_of_inputs_and_keeps_their_order(rec, one_of_each, tmp_path):
    (x3, _), (x5, _), (x8, _), (x0, _), (x6, _) = (one_of_each[d] for d in (3, 5, 8, 0, 6))
    path = tmp_path / "three.png"
    on_paper(x3).save(path)
    rgb = np.asarray(on_paper(x6).convert("RGB"))
    inputs = [str(path), png_bytes(on_paper(x5)), on_paper(x8), np.asarray(on_paper(x0)), rgb, Path(path)]
    preds = rec.predict(inputs)
    assert [p.digit for p in preds] == [3, 5, 8, 0, 6, 3]
    for p in preds:
        _check_prediction(p)
        assert p.uncertain is False and p.preprocessed is None
    assert preds[0].source == str(path) and preds[5].source == str(path)
    assert [p.source for p in preds[1:5]] == ["<bytes #1>", "<Image #2>", "<ndarray #3>", "<ndarray #4>"]

    # The same numbers as preprocess + probabilities, by hand.
    by_hand = rec.probabilities(np.stack([preprocess(s).image for s in inputs]))
    assert np.allclose(by_hand, np.array([p.probabilities for p in preds]), atol=1e-5)

    # File objects (an upload, a file the caller opened) read as their bytes; an open file is named by its path.
    with open(path, "rb") as f:
        from_files = rec.predict([io.BytesIO(png_bytes(on_paper(x5))), f])
    assert [(p.digit, p.source) for p in from_files] == [(5, "<BytesIO #0>"), (3, str(path))]

    # One input (not a list) gives a list of one.
    single = rec.predict(str(path))
    assert len(single) == 1 and single[0].digit == 3
    assert rec.predict(on_paper(x8))[0].digit == 8
    kept = rec.predict([str(path)], keep_preprocessed=True)[0].preprocessed
    assert isinstance(kept, Preprocessed) and kept.image.shape == (28, 28)
    assert rec.predict([]) == []


def test_accuracy_on_paper_digits_and_better_than_the_tutorial_pipeline(rec, mnist):
    rng = np.random.default_rng(1)
    images, labels = mnist.test_images[1000:1100].numpy(), mnist.test_labels[1000:1100].numpy()
    papers = []
    for x in images:
        scale = int(rng.integers(3, 12))
        side = 28 * scale
        w, h = side + int(rng.integers(20, 200)), side + int(rng.integers(20, 160))
        papers.append(on_paper(x, scale, (w, h), (int(rng.integers(0, w - side)), int(rng.integers(0, h - side)))))
    preds = rec.predict(papers)
    accuracy = np.mean([p.digit == y for p, y in zip(preds, labels)])
    naive = rec.probabilities(np.stack([naive_preprocess(im) for im in papers])).argmax(1)
    naive_accuracy = float((naive == labels).mean())
    assert accuracy >= 0.95, accuracy
    assert naive_accuracy <= accuracy - 0.4, (naive_accuracy, accuracy)


# ---------------------------------------------------------------------------------------------
# Inputs that are not digits


def test_blank_and_unreadable_inputs_do_not_stop_the_others(rec, one_of_each, tmp_path):
    (x2, _), (x7, _) = one_of_each[2], one_of_each[7]
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    inputs = [on_paper(x2), np.full((200, 300), 255, np.uint8), str(text), b"junk", str(tmp_path / "gone.png"),
              {"not": "an image"}, on_paper(x7)]
    preds = rec.predict(inputs)
    assert len(preds) == len(inputs)
    assert preds[0].digit == 2 and preds[-1].digit == 7

    blank = preds[1]
    assert blank.digit is None and blank.no_digit is True and blank.error is None
    assert blank.probabilities == [] and blank.confidence == 0.0

    for p, words in zip(preds[2:6], (["notes.png", "not an image"], ["not an image"], ["gone.png", "no such file"],
                                      ["dict"])):
        assert p.digit is None and not p.no_digit and p.probabilities == []
        assert p.error and all(w in p.error for w in words), p.error


def test_an_image_without_a_digit_leaves_no_reference_cycle(rec):
    # "No digit" must not keep its exception's traceback: its frames hold the decoded image and close
    # a cycle, so a big photo's memory waited for the garbage collector (the server grew by GBs).
    # Other threads of the test session may leave garbage of their own meanwhile: what counts is that
    # none of it is this image's pixels or its "no digit" exception.
    blank = png_bytes(Image.new("L", (400, 300), 255))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage to look at
    try:
        preds = rec.prepare([blank, blank])
        assert all(p.no_digit for p in preds)
        del preds
        gc.collect()
        held = [o for o in gc.garbage if (isinstance(o, np.ndarray) and o.size >= 300 * 400)
                or isinstance(o, NoDigitFound)]
        assert held == []  # everything of the image was freed as soon as it was dropped
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_an_image_that_crashes_preprocessing_does_not_stop_the_others(rec, one_of_each):
    dash = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(dash).rectangle((75, 100, 224, 121), fill=0)
    preds = rec.predict([on_paper(one_of_each[4][0]), dash], keep_preprocessed=True)
    assert preds[0].digit == 4 and len(preds) == 2
    # Not an error, and not read from an empty 28x28 either (the bug's other face).
    assert preds[1].error is None
    assert preds[1].no_digit or preds[1].preprocessed.image.max() > 0.5


def test_min_confidence_marks_low_confidence_answers_uncertain(model_path, one_of_each):
    strict = load_model(model_path, min_confidence=0.99)
    clear = [on_paper(x) for x, _ in one_of_each]
    # Two digits written on top of each other: the model cannot be sure which one it is.
    ambiguous = [np.maximum(one_of_each[a][0], one_of_each[b][0]) for a, b in ((3, 8), (5, 6), (4, 9), (0, 6))]
    preds = strict.predict(clear + ambiguous)
    for p in preds:
        _check_prediction(p)
        assert p.uncertain == (p.confidence < 0.99)
    assert any(p.uncertain for p in preds) and not all(p.uncertain for p in preds)
    assert any(p.uncertain for p in preds[len(clear):])
    assert not any(p.uncertain for p in load_model(model_path).predict(ambiguous))  # default 0: never


# ---------------------------------------------------------------------------------------------
# Prediction's views


def test_prediction_top_and_to_dict(rec, one_of_each):
    p, = rec.predict(on_paper(one_of_each[3][0]))
    top = p.top(3)
    assert len(top) == 3 and top[0] == (p.digit, p.confidence)
    assert [q for _, q in top] == sorted((q for _, q in top), reverse=True)
    assert all(isinstance(d, int) and isinstance(q, float) for d, q in top)
    everything = p.top(10)
    assert sorted(d for d, _ in everything) == list(range(10))
    assert [q for _, q in everything] == sorted(p.probabilities, reverse=True)

    d = p.to_dict(top_k=3)
    assert set(d) == {"path", "digit", "confidence", "probabilities", "uncertain", "digits_found", "top_k"}
    assert d["digits_found"] == 1
    assert d["path"] == p.source and d["digit"] == p.digit and abs(d["confidence"] - p.confidence) < 1e-6
    assert len(d["probabilities"]) == 10 and d["uncertain"] is False
    assert [t["digit"] for t in d["top_k"]] == [k for k, _ in top]
    assert [t["probability"] for t in d["top_k"]] == sorted((t["probability"] for t in d["top_k"]), reverse=True)
    assert "top_k" not in p.to_dict()
    json.dumps(d)  # plain types only

    err, blank = rec.predict([b"junk", np.zeros((50, 50), np.uint8)])
    assert set(err.to_dict(top_k=3)) == {"path", "error"} and err.to_dict()["error"] == err.error
    bd = blank.to_dict(top_k=3)
    assert bd["digit"] is None and bd["no_digit"] is True and bd["probabilities"] == []
    json.dumps(bd)


@pytest.mark.parametrize("as_jpeg", [False, True])
def test_a_small_ballpoint_digit_in_a_full_size_phone_photo_is_found(as_jpeg):
    # A 3000x4000 page with a 2-3 px ballpoint 7, 150 px tall, off-centre: at the first 144-px look
    # its strokes are a tenth of a pixel; predict must still find and read it (with the shipped model).
    # As a JPEG file, the first look's picture is decoded at an eighth, and the finer look's again.
    page = ballpoint_page([[(0, 0.05), (0.6, 0.0), (0.25, 1.0)], [(0.12, 0.5), (0.5, 0.5)]], at=(1700, 2300))
    if as_jpeg:
        buf = io.BytesIO()
        page.save(buf, "JPEG", quality=90)
        page = buf.getvalue()
    p, = load_model().predict([page], keep_preprocessed=True)
    assert p.digit == 7 and p.confidence > 0.5, (p.digit, p.confidence, p.no_digit)
    x0, y0, x1, y1 = p.preprocessed.box
    assert abs(x0 - 1700) < 12 and abs(y0 - 2300) < 12 and 80 < x1 - x0 < 110 and 140 < y1 - y0 < 165
    assert p.preprocessed.source_size == (3000, 4000)


def test_a_blank_full_size_photo_still_has_no_digit():
    p, = load_model().predict([ballpoint_page([])])
    assert p.no_digit and p.digit is None


# ---------------------------------------------------------------------------------------------
# The package


def test_load_model_is_an_attribute_of_the_package():
    import digitrec
    import digitrec.loading

    assert digitrec.load_model is digitrec.loading.load_model
    import digitrec.read

    assert digitrec.load_reader is digitrec.read.load_reader
    with pytest.raises(AttributeError):
        digitrec.no_such_thing  # noqa: B018


def test_importing_the_package_does_not_import_torch():
    code = "import digitrec, sys; print('torch' in sys.modules, 'PIL' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


def test_a_number_given_to_predict_is_said_to_be_a_number(mnist):
    from digitrec.synth import StyleConfig
    from digitrec.synth_numbers import iter_number_set

    rec = load_model()
    numbers = [img for img, _, _ in iter_number_set(mnist.test_images, mnist.test_labels, 10, 3, "gap", seed=7,
                                                    style=StyleConfig.clean())]
    found = [p.digits_found for p in rec.predict(numbers)]
    assert sum(n >= 2 for n in found) >= 9, found
    singles = [p.digits_found for p in rec.predict([paper_digit(mnist.test_images[i].numpy()) for i in range(30)])]
    assert singles == [1] * 30


def test_onnx_file_says_which_models_run_without_torch(model_path, tmp_path):
    # An .onnx file always does; the shipped model does as its export, unless torch or a GPU is asked for.
    assert onnx_file(tmp_path / "m.onnx", "torch") == tmp_path / "m.onnx"
    assert onnx_file(model_path, "auto") is None and onnx_file(model_path, "onnx") is None  # converted by torch
    assert onnx_file(None, "auto") == onnx_file(None, "auto", "cpu") == onnx_file(None, "onnx") == shipped_onnx_path()
    assert onnx_file(None, "torch") is None and onnx_file(None, "auto", "cuda") is None
    with pytest.raises(CheckpointError, match="unknown backend 'tf'"):
        onnx_file(None, "tf")
    assert load_model(backend="auto").checkpoint.path == shipped_onnx_path()


def test_a_torch_checkpoint_is_refused_by_the_onnx_recogniser_in_one_line(model_path):
    with pytest.raises(CheckpointError, match="a torch model, which Recogniser does not run; load it with loading.load_model"):
        Recogniser(load_checkpoint(model_path))


def test_many_files_preprocessed_in_worker_processes_give_the_same_answers(mnist, tmp_path):
    save_user_style_set(tmp_path, mnist.test_images, mnist.test_labels, 40, seed=3, fmt="jpg")
    files = sorted(str(p) for p in tmp_path.glob("*.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    files.append(str(tmp_path / "broken.jpg"))  # an error comes back from a worker as from a thread
    one = Recogniser(load_onnx(shipped_onnx_path()), processes=1).predict(files)
    rec = Recogniser(load_onnx(shipped_onnx_path()), processes=2)
    try:
        two = rec.predict(files)
        assert rec._pool is not None  # the work did go to the processes
    finally:
        rec.close()
    assert [p.to_dict() for p in one] == [p.to_dict() for p in two]
    assert two[-1].error and sum(p.digit is not None for p in two) >= 36
