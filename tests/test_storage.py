"""storage: writes that are whole or absent, and one line when the disk or a folder refuses them."""

from __future__ import annotations

import json
import os
import shlex

import pytest
import torch

from conftest import bound_by_permissions, on_small_disk, run_cli
from digitrec.errors import OutputError
from digitrec.storage import atomic_write, atomic_write_all, remove_stale_temps, writable_folder


def test_atomic_write_all_writes_every_file_and_leaves_no_temp(tmp_path):
    atomic_write(tmp_path / "a", b"old")
    atomic_write_all([(tmp_path / "a", b"new a"), (tmp_path / "sub" / "b", b"new b")])
    assert (tmp_path / "a").read_bytes() == b"new a" and (tmp_path / "sub" / "b").read_bytes() == b"new b"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "sub"]


def test_a_full_disk_keeps_the_old_files_whole_and_leaves_no_temp(tmp_path):
    """A real ENOSPC: the second file of the pair does not fit, so neither is replaced."""
    disk, seen = tmp_path / "disk", tmp_path / "seen.json"
    disk.mkdir()
    code = ("import json, os, sys; from digitrec.storage import atomic_write, atomic_write_all; d = sys.argv[1]\n"
            "atomic_write(d + '/a', b'old a'); atomic_write(d + '/b', b'old b')\n"
            "try: atomic_write_all([(d + '/a', b'x' * 300_000), (d + '/b', b'y' * 400_000)])\n"
            "except Exception as e: err = f'{type(e).__name__}: {e}'\n"
            "json.dump({'error': err, 'files': {n: open(f'{d}/{n}', 'rb').read().decode() for n in os.listdir(d)}},"
            " open(sys.argv[2], 'w'))")
    proc = on_small_disk(disk, "600k", f'"$PY" -c {shlex.quote(code)} {disk} {seen}')
    assert proc.returncode == 0, proc.stderr
    result = json.loads(seen.read_text())
    assert result["error"] == f"OutputError: {disk}/b: the disk is full (no space left to write it)"
    assert result["files"] == {"a": "old a", "b": "old b"}  # no temp file, and the old pair as it was


def test_writable_folder_says_why_not_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=f"^{tmp_path}/afile/sub: part of this path is a file, not a folder$"):
        writable_folder(tmp_path / "afile" / "sub")
    with pytest.raises(OutputError, match=f"^{tmp_path}/afile: exists and is not a folder$"):
        writable_folder(tmp_path / "afile")
    assert writable_folder(tmp_path / "new" / "run").is_dir() and os.listdir(tmp_path / "new" / "run") == []


def test_remove_stale_temps_removes_only_the_temps_of_the_named_files(tmp_path):
    names = [".last.pt.k2j4x9.tmp", ".model.pt.0a1b2c.tmp", ".notes.txt.abcdef.tmp", "last.pt", "x.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = remove_stale_temps(tmp_path, ("last.pt", "model.pt"))
    assert sorted(p.name for p in removed) == names[:2]
    assert sorted(os.listdir(tmp_path)) == sorted(names[2:])


def test_train_on_a_full_disk_is_one_line_and_the_epochs_saved_resume(tmp_path):
    # 2.5 MB holds epoch 1's model.pt (0.4 MB) and last.pt (1.2 MB, Adam's moments), not epoch 2's
    # beside them. It used to end in torch's "unexpected pos" traceback, with a model.pt and no last.pt.
    disk, kept = tmp_path / "small", tmp_path / "kept"
    disk.mkdir()
    train = f'"$PY" -m digitrec train --arch mlp --epochs 2 --subset 5000 --out {disk}/run -q'
    proc = on_small_disk(disk, "2500k", f"{train}; rc=$?; cp -a {disk}/run {kept}; exit $rc")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{disk}/run/" in proc.stderr and "the disk is full" in proc.stderr
    assert f"saved up to epoch 1: once it can be written, continue with `digitrec train --resume {disk}/run`" in proc.stderr
    assert sorted(os.listdir(kept)) == ["last.pt", "metrics.jsonl", "model.pt"]  # no temp files
    assert torch.load(kept / "last.pt", weights_only=True)["train_state"]["epoch"] == 1
    assert torch.load(kept / "model.pt", weights_only=True)["metrics"]["val"]["epoch"] == 1
    assert [json.loads(ln)["epoch"] for ln in (kept / "metrics.jsonl").read_text().splitlines()] == [1]
    done = run_cli("train", "--resume", str(kept), "-q")  # on a disk with room
    assert done.returncode == 0, done.stderr
    assert [json.loads(ln)["epoch"] for ln in (kept / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("out, says", [("afile/sub", "afile/sub: part of this path is a file, not a folder"),
                                       ("readonly/run", "permission denied: {tmp}/readonly/run")])
def test_train_into_a_folder_it_cannot_write_fails_at_once_in_one_line(tmp_path, out, says):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "readonly").mkdir(mode=0o555)
    proc = run_cli("train", "--arch", "mlp", "--epochs", "1", "--subset", "500", "--out", str(tmp_path / out),
                   prefix=bound_by_permissions())
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert says.format(tmp=tmp_path) in proc.stderr
    assert "epoch" not in proc.stderr  # refused before the data loaded and training began
