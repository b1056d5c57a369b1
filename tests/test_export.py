import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, flip_bytes, run_cli
from digitrec.checkpoint import load_checkpoint
from digitrec.errors import CheckpointError
from digitrec.model_file import shipped_path
from digitrec.export import FILE_HASH_KEY, HASH_KEY, META_KEY, initializers_sha256
from digitrec.loading import load_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "shipped.onnx"
    proc = run_cli("export", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "wrote" in proc.stdout
    return out


def test_onnx_file_describes_itself(exported):
    proto = onnx.load(str(exported))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["digitrec"])
    ck = load_checkpoint(shipped_path())
    assert meta["arch"] == ck.arch and meta["arch_args"] == ck.arch_args
    assert meta["normalization"] == {"mean": ck.mean, "std": ck.std}
    assert meta["classes"] == [str(d) for d in range(10)]
    assert meta["metrics"]["test"]["accuracy"] == ck.meta["metrics"]["test"]["accuracy"]
    assert [i.name for i in proto.graph.input] == ["image"]


def test_onnx_matches_pytorch_on_the_mnist_test_set(exported, mnist):
    """The parity the issue asks for: same digits, probabilities within 1e-4, all 10,000 images."""
    images = mnist.test_images.numpy().astype(np.float32) / 255
    torch_rec, onnx_rec = load_model(None), load_model(exported)
    assert onnx_rec.checkpoint.backend == "onnx" and onnx_rec.checkpoint.kind == "digitrec"
    p_torch, p_onnx = torch_rec.probabilities(images), onnx_rec.probabilities(images)
    assert np.abs(p_torch - p_onnx).max() < 1e-4
    assert (p_torch.argmax(1) == p_onnx.argmax(1)).all()
    assert (p_onnx.argmax(1) == mnist.test_labels.numpy()).mean() > 0.99


def test_an_onnx_model_on_two_threads_gives_the_same_probabilities(exported, mnist):
    # `digitrec predict DIR` classifies a big folder's batches on as many threads as it has processes.
    from digitrec.predict import load_onnx_model

    images = mnist.test_images[:600].numpy().astype(np.float32) / 255
    one, two = load_onnx_model(exported, threads=1), load_onnx_model(exported, threads=2)
    assert one.checkpoint.model.session.get_session_options().intra_op_num_threads == 1
    assert two.checkpoint.model.session.get_session_options().intra_op_num_threads == 2
    assert np.abs(one.probabilities(images) - two.probabilities(images)).max() < 1e-6


def test_onnx_backend_converts_a_checkpoint_in_memory(small_model_path, one_of_each):
    from conftest import on_paper

    pages = [on_paper(x) for x, _ in one_of_each]
    a = load_model(small_model_path).predict(pages)
    b = load_model(small_model_path, backend="onnx").predict(pages)
    assert [p.digit for p in a] == [p.digit for p in b]
    assert np.abs(np.array([p.probabilities for p in a]) - np.array([p.probabilities for p in b])).max() < 1e-4


def test_an_onnx_model_says_what_runs_it(exported):
    # `info` reads a file digitrec wrote, and the server reports onnxruntime, not torch.
    from fastapi.testclient import TestClient

    from digitrec.serve import create_app

    proc = run_cli("info", str(exported), "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    assert meta["backend"] == "onnx" and meta["task"] == "digit" and meta["arch"] == load_checkpoint(shipped_path()).arch
    for rec in (load_model(exported), load_model(None, backend="onnx")):
        with TestClient(create_app(rec)) as client:
            assert client.get("/v1/model").json()["backend"] == "onnx"


def test_cli_predict_with_onnx_gives_the_torch_answers(exported, tmp_path, one_of_each):
    from conftest import on_paper

    for x, d in one_of_each[:4]:
        on_paper(x).save(tmp_path / f"{d}.png")
    runs = [run_cli("predict", str(tmp_path), "--json", *extra)
            for extra in ([], ["--backend", "onnx"], ["--model", str(exported)])]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    answers = [[(o["path"], o["digit"]) for o in map(json.loads, r.stdout.splitlines())] for r in runs]
    assert answers[0] == answers[1] == answers[2] and len(answers[0]) == 4


def test_bad_onnx_files_are_clear_errors(tmp_path, exported):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_model(junk)
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="without digitrec's metadata"):
        load_model(bare)
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        load_model(tmp_path / "missing.onnx")
    proc = run_cli("predict", "x.png", "--model", str(junk))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "ONNX" in proc.stderr


def test_export_does_not_overwrite_without_force(exported):
    before = exported.read_bytes()
    proc = run_cli("export", "--out", str(exported))
    assert proc.returncode != 0 and "--force" in proc.stderr and exported.read_bytes() == before
    proc = run_cli("export", "--out", str(exported), "--force")
    assert proc.returncode == 0 and load_model(exported).checkpoint.backend == "onnx"


def test_the_exported_model_keeps_its_calibration(exported):
    assert load_model(exported).checkpoint.temperature == load_checkpoint(shipped_path()).temperature != 1.0


def test_an_export_records_the_sha256_of_its_weights_and_a_corrupted_one_is_refused(exported, tmp_path):
    proto = onnx.load(str(exported))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props[HASH_KEY] == initializers_sha256(proto)
    data = exported.read_bytes()
    assert hashlib.sha256(data.replace(props[FILE_HASH_KEY].encode(), b"0" * 64)).hexdigest() == props[FILE_HASH_KEY]
    # These flipped bytes used to load and answer: only the hash tells them from good weights.
    bad = flip_bytes(exported, tmp_path / "flipped.onnx", 3000)
    with pytest.raises(CheckpointError, match="flipped.onnx: damaged model file .*SHA-256"):
        load_model(bad)
    proc = run_cli("predict", "--model", str(bad), str(REPO / "samples" / "seven.jpg"))
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1 and "damaged" in proc.stderr


def _without(exported, keys, out):
    """`exported` as an older digitrec wrote it: without the metadata entries `keys`."""
    proto = onnx.load(str(exported))
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in keys]
    del proto.metadata_props[:]
    for key, value in keep:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def test_an_export_without_a_hash_still_loads(exported, tmp_path):
    older = _without(exported, (HASH_KEY, FILE_HASH_KEY), tmp_path / "older.onnx")
    assert load_model(older).checkpoint.backend == "onnx"


def test_an_export_with_only_the_weights_hash_is_still_checked(exported, tmp_path):
    older = _without(exported, (FILE_HASH_KEY,), tmp_path / "older.onnx")  # as exported before file hashes
    assert load_model(older).checkpoint.backend == "onnx"
    with pytest.raises(CheckpointError, match="damaged model file"):
        load_model(flip_bytes(older, tmp_path / "flipped.onnx", 3000))


def test_the_shipped_exports_load_without_the_onnx_package():
    """`import onnx` takes most of a second (ml_dtypes): a cold `predict` or `read` checks the
    shipped files' integrity with hashlib, and reads their metadata from onnxruntime."""
    code = ("import sys; from digitrec.loading import load; from digitrec.read import load_reader; "
            "load(backend='auto'); load_reader(backend='auto'); print(sorted(m for m in sys.modules if m.split('.')[0] == 'onnx'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter announces its own end
def test_an_onnx_model_that_does_not_give_ten_scores_is_refused(exported, tmp_path):
    # Three outputs per image used to be read as "0 confidence 0.333".
    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3)), (torch.zeros(1, 1, 28, 28),),
                      buf, dynamo=False, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, {p.key: p.value for p in onnx.load(str(exported)).metadata_props}[META_KEY]
    three = tmp_path / "three.onnx"
    onnx.save(proto, str(three))
    with pytest.raises(CheckpointError, match=r"three.onnx: not a digit model \(it gives \(3,\) values per image"):
        load_model(three)
    proc = run_cli("predict", "--model", str(three), str(REPO / "samples" / "seven.jpg"))
    assert proc.returncode == 1 and proc.stdout == "" and "not a digit model" in proc.stderr


def test_a_line_reader_exports_with_any_width_and_reads_as_it_did(tmp_path):
    from digitrec.onnx_model import load_onnx
    from digitrec.read import NumberReader, load_reader

    out = tmp_path / "reader.onnx"
    proc = run_cli("export", "--model", str(shipped_path("line")), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    ck, line = load_checkpoint(shipped_path("line")), load_onnx(out)
    assert line.task == "line" and line.backend == "onnx" and line.meta["calibration"] == ck.meta["calibration"]
    x = np.random.default_rng(0).random((1, 1, 28, 100), np.float32)
    for w in (8, 56, 100):
        with torch.no_grad():
            want = ck.model.eval()(torch.from_numpy(x[..., :w])).numpy()
        assert line.model(x[..., :w]).shape == want.shape == (1, w // 2, len(ck.classes))
        assert np.abs(line.model(x[..., :w]) - want).max() < 1e-4
    # A reader .pt with --backend onnx is converted in memory; a digit model's export is still a digit model.
    assert load_reader(reader=shipped_path("line"), backend="onnx").reader.backend == "onnx"
    assert isinstance(NumberReader(load_model(backend="onnx"), line), NumberReader)
