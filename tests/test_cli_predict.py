"""`digitrec predict`, run as a user runs it: `python -m digitrec` in a subprocess."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED, bound_by_permissions, run_cli
from conftest import on_paper as paper_digit

USER_DIGITS = SHARED / "data" / "user-digits"
LINE = re.compile(r"^(?P<path>.+): (?P<digit>\d)(?P<mark>\??)  confidence (?P<conf>[01]\.\d{3})(?P<rest>.*)$")


@pytest.fixture(scope="session")
def cli_model(small_model_path) -> str:
    return str(small_model_path)


def on_paper(digit, scale=6, size=(240, 220), at=(30, 20)):
    return paper_digit(digit, scale, size, at)


@pytest.fixture(scope="module")
def digits(mnist):
    """The first MNIST test image of each digit, by label."""
    labels = mnist.test_labels.numpy()
    return {d: mnist.test_images[int(np.nonzero(labels == d)[0][0])].numpy() for d in range(10)}


@pytest.fixture(scope="module")
def scans(tmp_path_factory, digits):
    """scans/two.png, scans/seven.jpg, scans/readme.txt, scans/more/zero.png, loose/three.png,
    loose/four.png, blank.png, and bad/ with files that are not readable images."""
    root = tmp_path_factory.mktemp("cli")
    scans, loose, bad = root / "scans", root / "loose", root / "bad"
    (scans / "more").mkdir(parents=True)
    loose.mkdir()
    bad.mkdir()
    on_paper(digits[2]).save(scans / "two.png")
    on_paper(digits[7]).convert("RGB").save(scans / "seven.jpg", quality=95)
    on_paper(digits[0]).save(scans / "more" / "zero.png")
    (scans / "readme.txt").write_text("not an image, not listed")
    on_paper(digits[3]).save(loose / "three.png")
    on_paper(digits[4]).save(loose / "four.png")
    Image.new("L", (200, 150), 255).save(root / "blank.png")
    (bad / "empty.png").write_bytes(b"")
    (bad / "letter.png").write_text("Dear user, this is not a PNG.\n")
    data = (scans / "two.png").read_bytes()
    (bad / "half.png").write_bytes(data[: len(data) // 2])
    return root


def _bad(root):
    """Inputs that cannot be read, with what their error must say."""
    return [(str(root / "missing.png"), "no such file"), (str(root / "bad" / "empty.png"), "empty"),
            (str(root / "bad" / "letter.png"), "not an image"), (str(root / "bad" / "half.png"), "complete"),
            (str(root / "nothing-*.png"), "no files match")]


def _lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def _json_lines(proc):
    return [json.loads(ln) for ln in _lines(proc.stdout)]


# ---------------------------------------------------------------------------------------------
# Plain text: folders (recursively), globs, a blank image


@pytest.fixture(scope="module")
def text_run(scans, cli_model):
    return run_cli("predict", str(scans / "scans"), str(scans / "loose" / "*.png"), str(scans / "blank.png"),
                   "--model", cli_model)


def test_text_one_line_per_image_from_folders_and_globs(text_run, scans):
    assert text_run.returncode == 0, text_run.stderr
    assert text_run.stderr.strip() == ""
    lines = _lines(text_run.stdout)
    assert len(lines) == 6  # five digits and the blank; readme.txt is not an image
    got = {}
    for line in lines[:5]:
        m = LINE.match(line)
        assert m, line
        assert m["mark"] == "" and m["rest"] == ""
        got[m["path"]] = int(m["digit"])
    want = {scans / "scans" / "two.png": 2, scans / "scans" / "seven.jpg": 7, scans / "scans" / "more" / "zero.png": 0,
            scans / "loose" / "three.png": 3, scans / "loose" / "four.png": 4}
    assert got == {str(p): d for p, d in want.items()}


def test_text_blank_image_is_no_digit_found_and_not_a_failure(text_run, scans):
    assert _lines(text_run.stdout)[-1] == f"{scans / 'blank.png'}: no digit found"
    assert text_run.returncode == 0


# ---------------------------------------------------------------------------------------------
# JSON, --top-k, --save-preprocessed


@pytest.fixture(scope="module")
def json_run(scans, cli_model):
    seen = scans / "seen"
    proc = run_cli("predict", str(scans / "scans"), str(scans / "blank.png"), "--model", cli_model, "--json",
                   "--top-k", "3", "--save-preprocessed", str(seen))
    return proc, seen


def test_json_one_object_per_line(json_run):
    proc, _ = json_run
    assert proc.returncode == 0, proc.stderr
    rows = _json_lines(proc)
    assert len(rows) == 4
    by_name = {Path(r["path"]).name: r for r in rows}
    assert {n: r["digit"] for n, r in by_name.items()} == {"two.png": 2, "seven.jpg": 7, "zero.png": 0, "blank.png": None}
    for r in rows[:3]:
        assert {"path", "digit", "confidence", "probabilities"} <= set(r)
        assert isinstance(r["digit"], int) and len(r["probabilities"]) == 10
        assert abs(sum(r["probabilities"]) - 1) < 1e-4
        assert r["confidence"] == max(r["probabilities"]) and r["uncertain"] is False


def test_json_blank_image_has_digit_null(json_run, scans):
    proc, _ = json_run
    blank = _json_lines(proc)[-1]
    assert blank["path"] == str(scans / "blank.png")
    assert blank["digit"] is None and blank.get("no_digit") is True and "error" not in blank


def test_json_top_k(json_run):
    proc, _ = json_run
    for r in _json_lines(proc)[:3]:
        top = r["top_k"]
        assert len(top) == 3 and top[0]["digit"] == r["digit"] and top[0]["probability"] == r["confidence"]
        assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
        assert len({t["digit"] for t in top}) == 3


def test_save_preprocessed_writes_28x28_pngs(json_run):
    proc, seen = json_run
    rows = _json_lines(proc)
    for r in rows[:3]:
        out = Path(r["preprocessed"])
        assert out.parent == seen and out.is_file()
        with Image.open(out) as im:
            assert im.size == (28, 28) and im.mode == "L"
            a = np.asarray(im)
        assert a.max() == 255 and a[0].max() < 13 and a[-1].max() < 13  # a white digit on a black border
    assert "preprocessed" not in rows[-1]  # nothing to save for the blank image
    assert sorted(p.name for p in seen.iterdir()) == ["seven.png", "two.png", "zero.png"]


# ---------------------------------------------------------------------------------------------
# Unreadable inputs among good ones, and --min-confidence


@pytest.fixture(scope="module")
def bad_json_run(scans, cli_model):
    two, three = scans / "scans" / "two.png", scans / "loose" / "three.png"
    return run_cli("predict", str(two), *(p for p, _ in _bad(scans)), str(three), "--model", cli_model, "--json",
                   "--min-confidence", "1.0")


def test_json_bad_inputs_get_error_lines_and_the_others_are_predicted(bad_json_run, scans):
    proc = bad_json_run
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    rows = _json_lines(proc)
    bad = _bad(scans)
    assert [r["path"] for r in rows] == [str(scans / "scans" / "two.png"), *(p for p, _ in bad),
                                         str(scans / "loose" / "three.png")]  # in the order given
    assert rows[0]["digit"] == 2 and rows[-1]["digit"] == 3
    for r, (_, words) in zip(rows[1:-1], bad):
        assert set(r) == {"path", "error"}
        assert words in r["error"], r


def test_json_min_confidence_one_marks_every_answer_uncertain(bad_json_run):
    rows = [r for r in _json_lines(bad_json_run) if "error" not in r]
    assert len(rows) == 2
    assert all(r["uncertain"] is True and isinstance(r["digit"], int) for r in rows)


@pytest.fixture(scope="module")
def bad_text_run(scans, cli_model):
    return run_cli("predict", *(p for p, _ in _bad(scans)), str(scans / "scans" / "two.png"), "--model", cli_model,
                   "--min-confidence", "1.0", "--top-k", "2")


def test_text_errors_go_to_stderr_one_line_each(bad_text_run, scans):
    proc = bad_text_run
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    err = _lines(proc.stderr)
    bad = _bad(scans)
    assert len(err) == len(bad), proc.stderr
    for line, (path, words) in zip(err, bad):
        assert line.startswith("error: ") and words in line, line
        assert line.count(path) == 1, line  # named once, not repeated
    assert len(_lines(proc.stdout)) == 1  # only the good image on stdout


def test_text_min_confidence_and_top_k(bad_text_run, scans):
    m = LINE.match(_lines(bad_text_run.stdout)[0])
    assert m and m["path"] == str(scans / "scans" / "two.png") and m["digit"] == "2"
    assert m["mark"] == "?"
    top = re.fullmatch(r" \(uncertain\)  top: (\d) ([01]\.\d{3}), (\d) ([01]\.\d{3})", m["rest"])
    assert top, m["rest"]
    assert top[1] == "2" and top[2] == m["conf"] and float(top[4]) <= float(top[2])


# ---------------------------------------------------------------------------------------------
# Real images, the tutorial's checkpoint, help


def test_real_user_images(cli_model):
    if not (USER_DIGITS / "labels.csv").is_file():
        pytest.skip(f"no real user images at {USER_DIGITS}")
    with open(USER_DIGITS / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[::47][:10]  # a fixed rule, not a choice
    assert len(rows) == 10 and len({r["source_repo"] for r in rows}) >= 4 and len({r["kind"] for r in rows}) >= 2
    paths = [str(USER_DIGITS / r["file"]) for r in rows]
    proc = run_cli("predict", *paths, "--model", cli_model, "--json")
    assert proc.returncode == 0, proc.stderr
    got = {r["path"]: r["digit"] for r in _json_lines(proc)}
    right = sum(got[p] == int(r["label"]) for p, r in zip(paths, rows))
    assert right >= 8, {Path(p).name: (got[p], r["label"]) for p, r in zip(paths, rows)}


def test_tutorial_checkpoint_via_model_option(scans, seed_model_path):
    proc = run_cli("predict", str(scans / "loose"), "--model", str(seed_model_path))
    assert proc.returncode == 0, proc.stderr
    got = {Path(m["path"]).name: int(m["digit"]) for m in map(LINE.match, _lines(proc.stdout))}
    assert got == {"three.png": 3, "four.png": 4}


def test_predict_help_shows_an_example():
    proc = run_cli("predict", "--help")
    assert proc.returncode == 0
    assert "Usage: digitrec predict" in proc.stdout
    assert "Example" in proc.stdout and "digitrec predict photo.jpg" in proc.stdout
    for option in ("--json", "--top-k", "--min-confidence", "--save-preprocessed", "--model"):
        assert option in proc.stdout


def test_a_number_given_to_predict_suggests_read(tmp_path, mnist):
    from digitrec.synth import StyleConfig
    from digitrec.synth_numbers import iter_number_set

    (img, text, _), = iter_number_set(mnist.test_images, mnist.test_labels, 1, 4, "gap", seed=7, style=StyleConfig.clean())
    img.save(tmp_path / "number.png")
    proc = run_cli("predict", str(tmp_path / "number.png"))
    assert proc.returncode == 0 and "digits found" in proc.stdout and "digitrec read" in proc.stdout
    proc = run_cli("predict", str(tmp_path / "number.png"), "--json")
    assert json.loads(proc.stdout)["digits_found"] >= 2


def test_text_output_says_where_each_preprocessed_view_went(tmp_path, mnist):
    for folder in ("a", "b"):  # two inputs with the same name
        (tmp_path / folder).mkdir()
        paper_digit(mnist.test_images[0].numpy()).save(tmp_path / folder / "x.png")
    seen = tmp_path / "seen"
    proc = run_cli("predict", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "--save-preprocessed", str(seen))
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert lines[0].endswith(f"(saved as {seen / 'x.png'})") and lines[1].endswith(f"(saved as {seen / 'x-2.png'})")


def test_inputs_it_may_not_read_are_one_line_each_and_the_others_are_predicted(tmp_path):
    seven = REPO / "samples" / "seven.jpg"
    for rel in ("good.jpg", "locked/x.png", "unreadable.png", "locked-folder/y.png"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(seven.read_bytes())
    for rel, mode in (("unreadable.png", 0o000), ("locked", 0o000), ("locked-folder", 0o300)):
        (tmp_path / rel).chmod(mode)  # a file, a folder that cannot be entered, one that cannot be listed
    inputs = [str(tmp_path / rel) for rel in ("good.jpg", "locked/x.png", "unreadable.png", "locked-folder")]
    proc = run_cli("predict", *inputs, prefix=bound_by_permissions())
    assert proc.returncode == 1
    assert proc.stdout == f"{inputs[0]}: 7  confidence 0.999\n"
    assert sorted(_lines(proc.stderr)) == sorted(f"error: permission denied: {p}" for p in inputs[1:])


def test_a_save_preprocessed_folder_it_cannot_write_prints_the_answers_then_one_line(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    images = [str(REPO / "samples" / name) for name in ("seven.jpg", "three-drawn.png")]
    proc = run_cli("predict", *images, "--save-preprocessed", str(tmp_path / "ro"), prefix=bound_by_permissions())
    assert proc.returncode == 1
    assert _lines(proc.stdout) == [f"{images[0]}: 7  confidence 0.999", f"{images[1]}: 3  confidence 0.999"]
    assert _lines(proc.stderr) == [f"Error: permission denied: {tmp_path / 'ro' / 'seven.png'}"]


def _stderr_on_a_terminal(*args: str) -> tuple[str, str]:
    """Run `digitrec ARGS` with stderr on a pseudo-terminal (80 columns) and stdout into a pipe:
    (stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        shown += chunk
    out = proc.stdout.read().decode()
    proc.wait(timeout=120)
    os.close(master)
    return out, shown.decode(errors="replace")


@pytest.mark.parametrize("command", ["predict", "read"])
def test_a_big_folder_into_a_pipe_shows_progress_on_the_terminal_unless_quiet(command, tmp_path, one_of_each):
    for i, (img, _) in enumerate(one_of_each):
        Image.fromarray(255 - img).resize((112, 112)).save(tmp_path / f"{i}.png")
    out, shown = _stderr_on_a_terminal(command, str(tmp_path), "--json")
    assert len(out.splitlines()) == 10 and "/10" in shown and "image/s" in shown  # a count of 10, and a rate
    out, shown = _stderr_on_a_terminal(command, str(tmp_path), "--json", "-q")
    assert len(out.splitlines()) == 10 and "/10" not in shown and "image/s" not in shown


def _predict_in_a_fresh_interpreter(*args: str) -> tuple[dict, list[str]]:
    """`digitrec predict ARGS --json` in a new Python: the answer, and which of torch and scipy
    (slow imports the image path does without) were imported."""
    code = ("import json, sys\nfrom digitrec.cli import cli\n"
            "try:\n    cli.main(sys.argv[1:], prog_name='digitrec')\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([m for m in ('scipy', 'torch') if m in sys.modules]), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "predict", *args, "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), json.loads(proc.stderr.splitlines()[-1])


def test_a_cold_predict_runs_the_shipped_model_without_importing_torch():
    # The shipped model's ONNX export on onnxruntime: half a second from a cold start instead of
    # the second that `import torch` alone takes (and no scipy: OpenCV labels the ink, labelling.py).
    # `--backend torch` still runs the checkpoint.
    seven = str(REPO / "samples" / "seven.jpg")
    fast, imported = _predict_in_a_fresh_interpreter(seven)
    assert imported == []
    slow, imported = _predict_in_a_fresh_interpreter(seven, "--backend", "torch")
    assert "torch" in imported
    assert fast["digit"] == slow["digit"] == 7
    assert np.abs(np.array(fast["probabilities"]) - np.array(slow["probabilities"])).max() <= 1e-5


def test_predict_in_worker_processes_prints_what_one_process_prints(tmp_path, mnist):
    from digitrec.synth import save_user_style_set

    save_user_style_set(tmp_path / "photos", mnist.test_images, mnist.test_labels, 30, seed=4, fmt="jpg")
    (tmp_path / "photos" / "zz-broken.png").write_bytes(b"not a png")
    outs = [run_cli("predict", str(tmp_path / "photos"), "--json", "-q", "--processes", n) for n in ("1", "2")]
    assert [o.returncode for o in outs] == [1, 1]  # the broken file, in both
    assert outs[0].stdout == outs[1].stdout and outs[0].stdout.count("\n") == 31
