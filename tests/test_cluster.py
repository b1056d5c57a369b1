"""`digitrec predict-cluster` and `cluster.predict_cluster`: Ray Data on a local Ray bound to
127.0.0.1 gives the same answers as `digitrec predict` and `digitrec read` on the same files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import REPO, run_cli
from digitrec.cli import cli
from digitrec.cluster import predict_cluster
from digitrec.errors import DigitrecError, OutputError


@pytest.fixture(scope="module")
def local_ray():
    """A Ray of this machine's own: two CPUs, no dashboard, no usage report sent out, and every
    one of its processes listening on 127.0.0.1 only."""
    with pytest.MonkeyPatch.context() as mp:
        # As cluster._start_ray does: read by Ray when imported, hence set first.
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                 log_to_driver=False)
        try:
            assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
            assert set(_listening()) <= {"127.0.0.1", "::ffff:127.0.0.1"}, _listening()
            yield ray
        finally:
            ray.shutdown()


def _listening() -> list[str]:
    """The addresses this process and its children (Ray's) listen on."""
    import psutil

    ours = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    return [c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in ours]


@pytest.fixture(scope="module")
def images(tmp_path_factory, mnist) -> Path:
    """24 MNIST test digits as user-style JPEG photos, a blank page (no digit) and a file that is
    no image, in one folder."""
    from digitrec.synth import save_user_style_set

    folder = tmp_path_factory.mktemp("cluster") / "scans"
    save_user_style_set(folder, mnist.test_images, mnist.test_labels, 24, seed=0, fmt="jpg")
    Image.new("L", (200, 150), 255).save(folder / "blank.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def _by_path(rows) -> dict:
    return {os.path.abspath(r["path"]): r for r in rows}


def _read_rows(out: Path) -> list[dict]:
    """Every row of a result folder, from its JSON lines or Parquet files."""
    import pyarrow.parquet as pq

    if any(out.glob("*.parquet")):
        return pq.read_table(out).to_pylist()
    return [json.loads(line) for f in sorted(out.glob("*.json")) for line in f.read_text().splitlines()]


def _cli_json(*args: str) -> list[dict]:
    proc = run_cli(*args, "--json")
    assert proc.returncode in (0, 1), proc.stderr  # 1: the broken file, reported in its row
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_same_digits_as_predict(local_ray, images, tmp_path):
    """Both formats, the library and the command: every file once, the same digit, confidence
    and probabilities (within 1e-6), the blank page without a digit, the broken file an error."""
    expected = _by_path(_cli_json("predict", str(images)))
    assert len(expected) == 26
    predict_cluster([images], tmp_path / "jsonl", fmt="jsonl")
    run = CliRunner().invoke(cli, ["predict-cluster", str(images), "--out", str(tmp_path / "pq"),
                                   "--format", "parquet", "--workers", "2", "--batch-size", "5"])
    assert run.exit_code == 0, run.output
    assert "26 images read into" in run.output
    for out in ("jsonl", "pq"):
        rows = _read_rows(tmp_path / out)
        assert len(rows) == 26
        got = _by_path(rows)
        assert got.keys() == expected.keys()
        for path, want in expected.items():
            row = got[path]
            assert (row["error"] is not None) == ("error" in want), (path, row, want)
            if "error" in want:
                assert Path(path).name == "broken.png"
                continue
            assert row["digit"] == want["digit"], path
            assert row["no_digit"] == want.get("no_digit", False), path
            assert abs(row["confidence"] - want["confidence"]) <= 1e-6, path
            pairs = zip(row["probabilities"], want["probabilities"], strict=True)
            assert all(abs(a - b) <= 1e-6 for a, b in pairs), path
        assert got[str(images / "blank.png")]["no_digit"]


@pytest.mark.slow
def test_same_numbers_as_read(local_ray, tmp_path):
    samples = [str(REPO / "samples" / name) for name in ("number.jpg", "ruled.jpg", "seven.jpg")]
    expected = _by_path(_cli_json("read", *samples))
    predict_cluster(samples, tmp_path / "out", fmt="parquet", task="number")
    got = _by_path(_read_rows(tmp_path / "out"))
    assert got.keys() == expected.keys()
    for path, want in expected.items():
        assert got[path]["text"] == want["text"] and got[path]["formatted"] == want["formatted"]
        assert abs(got[path]["confidence"] - want["confidence"]) <= 1e-6
        assert got[path]["digits"] == [d["digit"] for d in want["digits"]]
    assert got[samples[0]]["text"] == "2026"


@pytest.mark.slow
def test_every_number_on_a_page_as_read_all(local_ray, tmp_path):
    """`--numbers --all`: a row per number, in `read --all`'s order, with the same texts and
    confidences and the box around each number's digits; a blank page is one row, its number null,
    and so is a broken file, with its error."""
    samples = [str(REPO / "samples" / name) for name in ("page.jpg", "number.jpg")]
    blank, broken = tmp_path / "blank.png", tmp_path / "broken.png"
    Image.new("L", (300, 200), 255).save(blank)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    expected = _by_path(_cli_json("read", "--all", *samples))
    run = CliRunner().invoke(cli, ["predict-cluster", *samples, str(blank), str(broken), "--numbers", "--all",
                                   "--out", str(tmp_path / "out"), "--format", "parquet"])
    assert run.exit_code == 0, run.output
    rows = _read_rows(tmp_path / "out")
    for path, want in expected.items():
        got = sorted((r for r in rows if os.path.abspath(r["path"]) == path), key=lambda r: r["number"])
        assert [r["number"] for r in got] == list(range(1, len(want["numbers"]) + 1))
        for row, number in zip(got, want["numbers"]):
            assert row["text"] == number["text"] and abs(row["confidence"] - number["confidence"]) <= 1e-6
            boxes = [d["box"] for d in number["digits"] + number["separators"]]
            assert row["box"] == [min(b[0] for b in boxes), min(b[1] for b in boxes),
                                  max(b[2] for b in boxes), max(b[3] for b in boxes)]
    assert len([r for r in rows if r["path"].endswith("page.jpg")]) == 4  # samples/page.csv: four numbers
    (empty,) = [r for r in rows if r["path"].endswith("blank.png")]
    assert empty["number"] is None and empty["text"] is None and empty["error"] is None
    (bad,) = [r for r in rows if r["path"].endswith("broken.png")]
    assert bad["number"] is None and "not an image" in bad["error"]


def test_all_without_numbers_is_a_usage_error(tmp_path):
    proc = run_cli("predict-cluster", str(REPO / "samples" / "page.jpg"), "--all", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "--numbers" in proc.stderr


def test_nothing_to_read_is_one_error_before_ray_starts(tmp_path):
    with pytest.raises(DigitrecError, match="no files match"):
        predict_cluster([str(tmp_path / "*.png")], tmp_path / "out")
    proc = run_cli("predict-cluster", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "missing" in proc.stderr


def test_refuses_to_mix_into_earlier_results(tmp_path, images):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.json").write_text("{}\n")
    with pytest.raises(OutputError, match="--force"):
        predict_cluster([images], out)
    with pytest.raises(DigitrecError, match="fmt must be"):
        predict_cluster([images], tmp_path / "new", fmt="csv")
