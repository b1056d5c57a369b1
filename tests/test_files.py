"""files: the command line's inputs (files, folders, globs) and outputs (views, annotated images)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import on_paper
from digitrec.files import annotate, expand_paths, save_preprocessed_image
from digitrec.preprocess import preprocess
from digitrec.read import DigitRead, Reading


def test_save_preprocessed_image(tmp_path, one_of_each):
    pre = preprocess(on_paper(one_of_each[9][0]))
    taken: set[str] = set()
    first = save_preprocessed_image(pre.image, "scans/a/photo.jpg", tmp_path / "seen", taken)
    second = save_preprocessed_image(pre.image, "scans/b/photo.png", tmp_path / "seen", taken)
    assert first == tmp_path / "seen" / "photo.png" and second == tmp_path / "seen" / "photo-2.png"
    for path in (first, second):
        with Image.open(path) as im:
            assert im.size == (28, 28) and im.mode == "L"
            assert np.abs(np.asarray(im) / 255.0 - pre.image).max() <= 0.5 / 255 + 1e-6


# ---------------------------------------------------------------------------------------------
# expand_paths


@pytest.fixture
def tree(tmp_path):
    """root/a.png, root/b.jpg, root/notes.txt, root/sub/c.PNG, root/sub/deeper/d.bmp, root/sub/data.csv"""
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    img = Image.new("L", (8, 8), 255)
    for rel, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("sub/c.PNG", "PNG"), ("sub/deeper/d.bmp", "BMP")):
        img.save(root / rel, fmt)
    (root / "notes.txt").write_text("hello")
    (root / "sub" / "data.csv").write_text("a,b\n")
    (tmp_path / "empty").mkdir()
    return root


def test_expand_paths_walks_folders_recursively_for_images(tree):
    got = expand_paths([str(tree)])
    assert got == [(str(tree / rel), None) for rel in ("a.png", "b.jpg", "sub/c.PNG", "sub/deeper/d.bmp")]


def test_expand_paths_globs(tree):
    assert expand_paths([str(tree / "*.png")]) == [(str(tree / "a.png"), None)]
    assert expand_paths([str(tree / "**" / "*.bmp")]) == [(str(tree / "sub/deeper/d.bmp"), None)]
    assert expand_paths([str(tree / "sub" / "?.PNG")]) == [(str(tree / "sub/c.PNG"), None)]


def test_expand_paths_reports_what_matches_nothing(tree):
    pattern = str(tree / "*.gif")
    (path, err), = expand_paths([pattern])
    assert path == pattern and err and pattern in err and "no files match" in err
    (path, err), = expand_paths([str(tree.parent / "empty")])
    assert err and "no image files" in err


def test_expand_paths_passes_missing_plain_paths_through(tree):
    missing = str(tree / "not-there.png")
    assert expand_paths([missing]) == [(missing, None)]
    assert expand_paths([str(tree / "notes.txt")]) == [(str(tree / "notes.txt"), None)]  # named: kept


def test_expand_paths_removes_duplicates_keeping_the_first(tree):
    a = str(tree / "a.png")
    got = expand_paths([a, str(tree / "sub" / "c.PNG"), a, str(tree), str(tree / "*.png")])
    paths = [p for p, _ in got]
    assert paths == [a, str(tree / "sub/c.PNG"), str(tree / "b.jpg"), str(tree / "sub/deeper/d.bmp")]
    assert all(err is None for _, err in got)


def test_each_real_file_once_through_symlink_loops(tree):
    (tree / "self").symlink_to(".")
    (tree / "sub" / "up").symlink_to("..")  # two loops: glob.glob went round them for ever
    a = (str(tree / "a.png"), None)
    assert expand_paths([str(tree / "**" / "a.png")]) == [a]  # it used to be read 42 times
    via_link = [p for p, _ in expand_paths([str(tree / "self" / "a.png"), str(tree), f"{tree}/./a.png"])]
    assert via_link == [str(tree / rel) for rel in ("self/a.png", "b.jpg", "sub/c.PNG", "sub/deeper/d.bmp")]
    assert [p for p, _ in expand_paths([str(tree)])] == [str(tree / rel) for rel in ("a.png", "b.jpg", "sub/c.PNG",
                                                                                     "sub/deeper/d.bmp")]


def test_annotate_draws_each_digit_box_on_a_copy(tmp_path, one_of_each):
    src = tmp_path / "n.png"
    on_paper(one_of_each[4][0]).save(src)
    reading = Reading(str(src), "4", [DigitRead(4, 0.9, (40, 30, 240, 250))])
    taken: set[str] = set()
    out = annotate(str(src), reading, tmp_path / "seen", taken)
    again = annotate(str(src), reading, tmp_path / "seen", taken)
    assert out == tmp_path / "seen" / "n.png" and again == tmp_path / "seen" / "n-2.png"
    with Image.open(out) as im:
        a = np.asarray(im.convert("RGB")).astype(int)
    assert im.size == (400, 300)
    red = (a[..., 0] > 180) & (a[..., 1] < 80)
    assert red[30:250, 40].mean() > 0.9 and not red[:, 300:].any()  # the box's left edge, nothing beyond it
