"""images: decoding any file, bytes, PIL image or array a user has, and refusing what cannot be."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import on_paper
from digitrec.errors import DigitrecError
from digitrec.files import expand_paths
from digitrec.images import MAX_PIXELS, ImageError, describe, header_check, load_image, load_reduced, resize, to_rgb
from digitrec.loading import load_model


def draw_zero():
    im = Image.new("L", (400, 300), 255)
    ImageDraw.Draw(im).ellipse((250, 60, 330, 200), outline=0, width=14)
    return im


def png_bytes(im: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Bad inputs: one clear line each


def _truncated(fmt):
    data = png_bytes(draw_zero(), fmt)
    return data[: len(data) // 2]


def _png_claiming(width, height):
    """A real small PNG whose header (IHDR, with a valid CRC) claims another size."""
    data = bytearray(png_bytes(Image.new("L", (8, 8), 255)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, words", [
    pytest.param(lambda t: t / "missing.png", ["missing.png", "no such file"], id="missing-path"),
    pytest.param(lambda t: str(t / "missing.png"), ["missing.png", "no such file"], id="missing-str"),
    pytest.param(lambda t: t, ["not a file"], id="folder"),
    pytest.param(lambda t: _write(t, "empty.png", b""), ["empty"], id="empty-file"),
    pytest.param(lambda t: b"", ["empty"], id="empty-bytes"),
    pytest.param(lambda t: _write(t, "notes.png", b"this is a text file, not a picture\n"), ["not an image"],
                 id="text-file"),
    pytest.param(lambda t: b"\x00\x01 not an image at all" * 10, ["not an image"], id="junk-bytes"),
    # A scan saved as a PDF (Pillow writes PDFs but cannot read them), a drawing as SVG: say what to do.
    pytest.param(lambda t: _write(t, "scan.pdf", _pdf_bytes()), ["scan.pdf", "PDF", "PNG"], id="pdf"),
    pytest.param(lambda t: _write(t, "seven.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'),
                 ["SVG", "PNG"], id="svg"),
    pytest.param(lambda t: _write(t, "half.png", _truncated("PNG")), ["complete"], id="truncated-png"),
    pytest.param(lambda t: _write(t, "half.jpg", _truncated("JPEG")), ["complete"], id="truncated-jpeg"),
    # Cut inside its header: PIL's header reader then fails with an OSError of its own.
    pytest.param(lambda t: _write(t, "head.jpg", png_bytes(draw_zero(), "JPEG")[:300]), ["head.jpg", "complete"],
                 id="jpeg-cut-in-its-header"),
    pytest.param(lambda t: _png_claiming(30000, 30000), ["pixels"], id="bomb-30000x30000"),
    pytest.param(lambda t: _png_claiming(math.isqrt(MAX_PIXELS) + 100, math.isqrt(MAX_PIXELS) + 100),
                 ["pixels", "allowed"], id="bomb-over-MAX_PIXELS"),
    pytest.param(lambda t: np.zeros(3), ["shape", "(3,)"], id="array-1d"),
    pytest.param(lambda t: np.zeros((5, 5, 7)), ["shape", "(5, 5, 7)"], id="array-7-channels"),
    pytest.param(lambda t: np.zeros((2, 5, 5, 3)), ["shape"], id="array-4d"),
    pytest.param(lambda t: np.zeros((0, 5)), ["shape"], id="array-empty"),
    pytest.param(lambda t: np.zeros((10, 10), complex), ["dtype", "complex"], id="array-complex"),
    pytest.param(lambda t: np.array([["a", "b"]]), ["dtype"], id="array-str"),
    pytest.param(lambda t: np.full((10, 10), np.nan), ["NaN"], id="array-nan"),
    pytest.param(lambda t: np.where(np.eye(10) > 0, np.inf, 0.5), ["infinite"], id="array-inf"),
    pytest.param(lambda t: {"image": 1}, ["dict"], id="dict"),
    pytest.param(lambda t: io.StringIO("not bytes"), ["text", "'rb'"], id="text-file-object"),
    pytest.param(lambda t: _closed(io.BytesIO(png_bytes(draw_zero()))), ["file object", "closed"], id="closed-file-object"),
    pytest.param(lambda t: io.BytesIO(b"junk" * 10), ["not an image"], id="junk-file-object"),
    pytest.param(lambda t: None, ["NoneType"], id="None"),
    pytest.param(lambda t: 42, ["int"], id="int"),
])
def test_bad_input_raises_image_error_with_a_clear_message(make, words, tmp_path):
    with pytest.raises(ImageError) as info:
        load_image(make(tmp_path))
    msg = str(info.value)
    assert isinstance(info.value, DigitrecError)
    assert "\n" not in msg and len(msg) < 300
    for w in words:
        assert w in msg, msg


def _pdf_bytes() -> bytes:
    return png_bytes(draw_zero().convert("RGB"), "PDF")


def _closed(f):
    f.close()
    return f


def test_a_file_object_reads_as_its_bytes_do(tmp_path):
    # An upload (a web framework's file), or a file a caller opened: read as the same bytes would be.
    data = png_bytes(draw_zero())
    want = np.asarray(load_image(data))
    (tmp_path / "zero.png").write_bytes(data)
    with open(tmp_path / "zero.png", "rb") as f:
        assert np.array_equal(np.asarray(load_image(f)), want)
        assert describe(f, 0) == str(tmp_path / "zero.png")
    assert np.array_equal(np.asarray(load_image(io.BytesIO(data))), want)
    assert describe(io.BytesIO(data), 1) == "<BytesIO #1>"


def test_a_tiny_real_image_is_not_a_bomb():
    # The same trick at a legal size: decoding fails on the pixel data, not on the size check.
    with pytest.raises(ImageError) as info:
        load_image(_png_claiming(300, 300)).load()
    assert "allowed" not in str(info.value)


def test_load_image_and_to_rgb():
    img = load_image(png_bytes(draw_zero()))
    assert isinstance(img, Image.Image) and img.size == (400, 300)
    rgb = to_rgb(img)
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.float32 and rgb.min() >= 0 and rgb.max() <= 1


def _jpeg(size, orientation=1) -> bytes:
    """A JPEG of a dark diagonal bar on light paper, stored at `size`, with an EXIF orientation tag."""
    img = Image.new("RGB", size, (235, 232, 225))
    ImageDraw.Draw(img).line([(0, 0), size], fill=(20, 20, 60), width=max(2, size[0] // 100))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def _half(w, h):
    return w // 2, h // 2


@pytest.mark.parametrize("need,factor", [(lambda w, h: (w // 2, h // 2), 2), (lambda w, h: (w // 5, h // 5), 4),
                                         (lambda w, h: (w // 100, h // 100), 8), (lambda w, h: (w, h), 1),
                                         (lambda w, h: (w // 3 * 2, h // 3 * 2), 1)])
def test_a_big_jpeg_is_decoded_reduced_as_far_as_the_size_asked_for_allows(need, factor):
    data = _jpeg((1600, 1200))
    img, k, size = load_reduced(data, need)
    assert k == factor and size == (1600, 1200)
    assert img.size == (1600 // factor, 1200 // factor)
    assert img.size[0] >= need(1600, 1200)[0] and img.size[1] >= need(1600, 1200)[1]
    full = np.asarray(load_image(data).reduce(factor), np.float32)
    assert np.abs(np.asarray(img, np.float32) - full).mean() < 4  # the same picture, a little differently smoothed


def test_a_reduced_phone_photo_stored_sideways_is_upright_with_its_upright_size():
    # Stored 1600x1200 with "rotate 90" (6): upright it is 1200x1600, and `need` is asked in those terms.
    asked = []
    img, k, size = load_reduced(_jpeg((1600, 1200), orientation=6), lambda w, h: asked.append((w, h)) or (w // 4, h // 4))
    assert asked == [(1200, 1600)] and size == (1200, 1600) and k == 4 and img.size == (300, 400)


def test_only_jpeg_files_are_reduced():
    png = png_bytes(draw_zero())
    img, k, size = load_reduced(png, _half)
    assert k == 1 and img.size == size == (400, 300)
    given = Image.open(io.BytesIO(_jpeg((1600, 1200))))  # a user's PIL image is used as it is, not drafted
    img, k, size = load_reduced(given, _half)
    assert k == 1 and img.size == size == (1600, 1200)


def test_header_check_refuses_by_the_header_before_decoding():
    bomb, pixels = header_check(_png_claiming(30000, 30000), 25_000_000)
    assert "decompression bomb" in bomb and pixels == 0
    big, pixels = header_check(_png_claiming(6000, 6000), 25_000_000)
    assert big.startswith("image is 6000x6000 pixels") and pixels == 0
    zero = draw_zero()
    assert header_check(png_bytes(zero), 25_000_000) == (None, zero.width * zero.height)
    assert header_check(b"junk", 100) == (None, 0)  # unreadable: left to decoding, which says why


def test_describe_names_paths_and_in_memory_images():
    assert describe("a/b.png", 3) == "a/b.png" and describe(Path("c.jpg"), 0) == "c.jpg"
    assert describe(b"..", 2) == "<bytes #2>" and describe(np.zeros(2), 0) == "<ndarray #0>"


def test_resize_averages_when_shrinking():
    a = np.zeros((40, 40), np.float32)
    a[:, :20] = 1.0
    small = resize(a, (4, 4))
    assert small.shape == (4, 4) and np.allclose(small[:, :2], 1) and np.allclose(small[:, 2:], 0)



@pytest.mark.parametrize("start, says", [(b"\0", "not an image"), (b"png", "larger than any image")])
def test_a_huge_file_is_refused_before_it_is_read(tmp_path, start, says):
    # 300 MB named .png (sparse: no disk used), junk or a real PNG's start: it used to be read whole.
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.write(png_bytes(Image.new("L", (8, 8))) if start == b"png" else start)
        f.truncate(300 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=f"{path}: .*{says}"):
            load_image(path)
        assert tracemalloc.get_traced_memory()[1] < 20 * 2**20  # peak: the header, not the file
    finally:
        tracemalloc.stop()


def test_an_iphone_heic_photo_reads_as_the_same_picture_in_png(tmp_path, one_of_each):
    """HEIC, an iPhone's default photo format, through pillow-heif (the heic extra): found in a
    folder, decoded to the picture a PNG of it gives (to within the codec's loss), read as its digit."""
    pillow_heif = pytest.importorskip("pillow_heif")
    photo = on_paper(one_of_each[3][0]).convert("RGB")
    photo.save(tmp_path / "three.png")
    heif = pillow_heif.from_pillow(photo)
    heif.save(tmp_path / "three.heic", quality=95)
    assert (tmp_path / "three.heic").read_bytes()[4:12] == b"ftypheic"
    assert sorted(Path(p).name for p, _ in expand_paths([str(tmp_path)])) == ["three.heic", "three.png"]
    heic = np.asarray(load_image(tmp_path / "three.heic").convert("L"), np.float32)
    png = np.asarray(load_image(tmp_path / "three.png").convert("L"), np.float32)
    assert heic.shape == png.shape and np.abs(heic - png).mean() < 3
    a, b = load_model().predict([tmp_path / "three.heic", (tmp_path / "three.heic").read_bytes()])
    assert a.digit == b.digit == 3


def test_a_heic_photo_without_pillow_heif_says_what_to_install(tmp_path):
    # A HEIF file's start (an ftyp box of brand heic); pillow-heif hidden from the import system.
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + bytes(200))
    script = ("import sys; sys.modules['pillow_heif'] = None\n"
              "from digitrec.images import load_image\n"
              f"load_image({str(path)!r})")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "IMG_0001.HEIC" in last and "HEIC" in last and "pip install 'digitrec[heic]'" in last, last
