"""Digits rendered from fonts and framed like MNIST (`fonts`), on the fonts matplotlib ships, and
`scripts/fetch-fonts` with a stand-in for curl (the npm registry is not needed to test it)."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch
from PIL import ImageFont
from scipy import ndimage as ndi

from digitrec.checkpoint import load_checkpoint
from digitrec.errors import ConfigError
from digitrec.fonts import FONTS, RENDER_SIZE, font_digits, load_fonts, with_font_digits
from digitrec.model_file import normalise, shipped_path

REPO = Path(__file__).resolve().parents[1]
TTF = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
def dejavu():
    return font_digits([ImageFont.truetype(str(TTF / f), RENDER_SIZE) for f in FACES])


def test_font_digits_are_stored_as_mnist_stores_its_digits(dejavu):
    x, y = dejavu
    assert x.shape == (40, 28, 28) and x.dtype == torch.uint8
    assert y.tolist() == list(range(10)) * 4
    for im in x.float():
        rows, cols = im.sum(1).nonzero(), im.sum(0).nonzero()
        assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21  # fits MNIST's 20x20 box
        cy, cx = ndi.center_of_mass(im.numpy())
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1  # centred by mass, as MNIST is


def test_the_digit_model_reads_font_digits_as_their_labels(dejavu):
    """Framed as MNIST's are, printed digits are plain digits to a model trained on MNIST alone."""
    x, y = dejavu
    model = load_checkpoint(shipped_path()).model.eval()
    with torch.inference_mode():
        read = model(normalise(x[:, None].float() / 255)).argmax(1)
    assert (read == y).sum() >= 38


def test_font_digits_join_training_digits_in_their_share(tmp_path, mnist):
    for face in FACES[:2]:
        (tmp_path / face).write_bytes((TTF / face).read_bytes())
    images, labels = mnist.train_images[:4000], mnist.train_labels[:4000]
    pool, pool_labels, names = with_font_digits(images, labels, tmp_path, 0.2)
    assert names == ["DejaVu Sans Book", "DejaVu Serif Book"]
    assert len(pool) == len(pool_labels) and torch.equal(pool[:4000], images)
    assert abs((len(pool) - 4000) / len(pool) - 0.2) < 0.01
    assert torch.bincount(pool_labels[4000:]).tolist() == [(len(pool) - 4000) // 10] * 10  # every digit alike
    assert with_font_digits(images, labels, "", 0.2)[0] is images  # no fonts: MNIST alone
    assert with_font_digits(images, labels, tmp_path, 0.0)[0] is images


def test_load_fonts_reads_a_folder_sorted_and_ignores_other_files(tmp_path):
    for name in ("b.ttf", "a.ttf"):
        (tmp_path / name).write_bytes((TTF / "DejaVuSans.ttf").read_bytes())
    (tmp_path / "a.LICENSE").write_text("OFL")
    (tmp_path / "c.woff.part").write_bytes(b"half a download")
    fonts = load_fonts(tmp_path)
    assert len(fonts) == 2 and [Path(f.path).name for f in fonts] == ["a.ttf", "b.ttf"]


def test_a_folder_without_fonts_says_how_to_fetch_them(tmp_path):
    with pytest.raises(ConfigError, match="scripts/fetch-fonts"):
        load_fonts(tmp_path)


def test_a_corrupt_font_is_named(tmp_path):
    (tmp_path / "broken.woff").write_bytes(b"not a font")
    with pytest.raises(ConfigError, match="broken.woff"):
        load_fonts(tmp_path)


def test_fonts_are_pinned_fontsource_packages():
    assert len(FONTS) >= 50 and all(v.count(".") == 2 for v in FONTS.values())


# curl as scripts/fetch-fonts calls it (`curl -fsSL --retry 3 URL -o OUT`): a Fontsource-like package
# whose font is $STUB_FONT; $STUB_FAIL makes it fail as curl -f does on an HTTP error.
CURL = """#!/usr/bin/env bash
url=${@: -3:1}; out=${@: -1}
echo "$url" >> "$STUB_LOG"
[ -n "${STUB_FAIL:-}" ] && exit 22
name=$(basename "$url"); name=${name%-*}
d=$(mktemp -d); mkdir -p "$d/package/files"; echo OFL > "$d/package/LICENSE"
cp "$STUB_FONT" "$d/package/files/$name-latin-400-normal.woff"
tar czf "$out" -C "$d" package
"""


def _fetch(tmp_path, dest, **env):
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "curl").write_text(CURL)
    (tmp_path / "bin" / "curl").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "STUB_LOG": str(tmp_path / "curl.log"), "STUB_FONT": str(TTF / "DejaVuSans.ttf"), **env}
    return subprocess.run(["bash", str(REPO / "scripts" / "fetch-fonts"), str(dest)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_fetch_fonts_takes_each_pinned_package_once_with_its_licence(tmp_path):
    proc = _fetch(tmp_path, tmp_path / "fonts")
    assert proc.returncode == 0, proc.stderr
    urls = (tmp_path / "curl.log").read_text().splitlines()
    assert urls == [f"https://registry.npmjs.org/@fontsource/{n}/-/{n}-{v}.tgz" for n, v in FONTS.items()]
    assert sorted(p.stem for p in (tmp_path / "fonts").glob("*.woff")) == sorted(FONTS)
    assert len(list((tmp_path / "fonts").glob("*.LICENSE"))) == len(FONTS)
    assert len(load_fonts(tmp_path / "fonts")) == len(FONTS)
    assert _fetch(tmp_path, tmp_path / "fonts").returncode == 0
    assert len((tmp_path / "curl.log").read_text().splitlines()) == len(FONTS)  # nothing fetched twice


def test_fetch_fonts_stops_on_a_failed_download_and_leaves_no_font(tmp_path):
    proc = _fetch(tmp_path, tmp_path / "fonts", STUB_FAIL="1")
    assert proc.returncode != 0 and not list((tmp_path / "fonts").glob("*"))
