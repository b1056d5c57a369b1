"""Images in: any file, bytes, PIL image or array a user has -> pixels digitrec can work on.

Decoding is the one place that knows about file formats: EXIF rotation (phones store photos
sideways plus a tag), 16-bit scans, palettes and transparency (a stroke on a transparent canvas
must stay visible), and the limits that keep a decompression bomb out. Everything after this
works on (H, W, 3) float32 RGB in [0, 1].
"""

from __future__ import annotations

import importlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import DigitrecError, os_error_message

MAX_PIXELS = 50_000_000  # larger images are refused: a decompression bomb, not a photo of a digit
# Larger files are refused before they are read: MAX_PIXELS of 8-bit RGBA, uncompressed, is 200 MB.
MAX_FILE_BYTES = 256 * 2**20
_NOT_AN_IMAGE = "not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)"
# The brands of an ISO media file's `ftyp` box that say HEIF: HEIC is an iPhone's default photo
# format, which Pillow reads through the pillow-heif plugin (the `heic` extra).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


class ImageError(DigitrecError):
    """The input could not be read as an image."""



def load_image(source) -> Image.Image:
    """Open a path, bytes, a binary file object (an upload, `open(path, "rb")`), PIL image, or
    array (HxW, HxWx3, HxWx4; uint8, uint16, bool or float in [0, 1]) as a PIL image with EXIF
    orientation applied. Raises ImageError with a clear reason."""
    return _decoded(_opened(source))


def rereadable(source):
    """`source` in a form that can be read twice: a file object's bytes (read here, once), anything
    else as it is. Raises ImageError for a file object that cannot be read."""
    return _read_stream(source) if hasattr(source, "read") and not isinstance(source, Image.Image) else source


def load_reduced(source, need: Callable[[int, int], tuple[int, int]]) -> tuple[Image.Image, int, tuple[int, int]]:
    """`load_image`, where a JPEG file at least twice the size `need(width, height)` asks for (in the
    picture's upright orientation) is decoded at 1/2, 1/4 or 1/8 of its size, the least that still
    gives that size: libjpeg scales inside its inverse DCT, so a phone photo decodes in a fraction
    of the time, and everything after it works on fewer pixels. Returns the image, the factor it was
    reduced by (source pixels per pixel: 1, 2, 4 or 8) and the source's upright (width, height).
    A PIL image passed in is used as it is."""
    img = _opened(source)
    w, h = img.size
    if isinstance(source, Image.Image) or img.format != "JPEG":
        img = _decoded(img)
        return img, 1, img.size
    sideways = _orientation(img) in (5, 6, 7, 8)  # stored turned a quarter: upright width is its height
    nw, nh = need(h, w)[::-1] if sideways else need(w, h)
    factor = 1
    if 2 * nw <= w and 2 * nh <= h:
        img.draft(img.mode, (nw, nh))
        factor = max(1, round(w / img.width))  # the draft's size, as stored
    return _decoded(img), factor, (h, w) if sideways else (w, h)


def _opened(source) -> Image.Image:
    """`source` as a PIL image, not yet decoded, its size within the limits."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, os.PathLike):
        img = _open_file(Path(source))
    elif isinstance(source, (str, bytes, bytearray, memoryview)):
        img = _open_file(source)
    elif hasattr(source, "read"):
        img = _open_file(_read_stream(source))
    elif hasattr(source, "__array__"):
        img = _from_array(np.asarray(source))
    else:
        raise ImageError(f"cannot read a {type(source).__name__} as an image; pass a path, bytes, a file "
                         "object, a PIL image or an array")
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"image is {img.width}x{img.height} pixels, more than the {MAX_PIXELS:,} allowed; scale it down first")
    if img.width < 1 or img.height < 1:
        raise ImageError("image has no pixels")
    return img


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1: upright), read from the header; 1 when it cannot be read."""
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a damaged EXIF block: decoding will say what is wrong, if anything is
        return 1


def _decoded(img: Image.Image) -> Image.Image:
    """An opened image decoded, with its EXIF orientation applied."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            # Photos from phones are stored sideways plus a rotation tag. (Without one, exif_transpose
            # would return a copy of the image, which a busy server paid for on every request.)
            if img.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
                img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError,
            EOFError, MemoryError) as e:
        raise ImageError(f"cannot decode the image ({_reason(e)}); is the file complete?") from None
    return img


def _reason(e: BaseException) -> str:
    return " ".join(str(e).split())[:160] or type(e).__name__


def _open_file(source) -> Image.Image:
    # A path names itself in the message; bytes have no name here, so the caller gives theirs.
    name = str(source) if isinstance(source, (str, Path)) else None
    data = _read_image_file(Path(source)) if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageError(_named(name, "empty file"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
            except UnidentifiedImageError:
                if not _heif(data):
                    raise
                img = _open_heif(data, name)
    except UnidentifiedImageError:
        raise ImageError(_named(name, _not_an_image(data))) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageError(_named(name, f"refused, {_reason(e)}")) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(_named(name, f"cannot read the image ({_reason(e)}); is the file complete?")) from None
    return img


def _not_an_image(data: bytes) -> str:
    """Why `data` is not an image Pillow reads, and what to do, for the documents users mistake for one."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return ("a PDF document, not an image: render its page as one first, e.g. `pdftoppm -png -r 300 "
                "scan.pdf page` (poppler-utils), or export it as PNG from the viewer")
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG drawing, not a picture of pixels: export it as PNG first"
    return _NOT_AN_IMAGE


def _heif(data: bytes) -> bool:
    """Whether `data` is a HEIF (HEIC) image, by the brand in its `ftyp` box."""
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _open_heif(data: bytes, name: str | None) -> Image.Image:
    """A HEIF photo opened by Pillow once pillow-heif has registered itself with it (the first time
    one is met: no image reader is added to Pillow by importing digitrec)."""
    try:
        pillow_heif = importlib.import_module("pillow_heif")
    except ImportError:
        raise ImageError(_named(name, "a HEIC (HEIF) photo, an iPhone's default format, which needs pillow-heif: "
                                      "pip install 'digitrec[heic]', or save the photo as JPEG")) from None
    pillow_heif.register_heif_opener()
    return Image.open(io.BytesIO(data))


def _read_stream(f) -> bytes:
    """The bytes of a file object opened for reading, at most MAX_FILE_BYTES of them."""
    try:
        data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as e:  # closed, or not readable
        raise ImageError(f"cannot read the file object ({_reason(e)})") from None
    if not isinstance(data, (bytes, bytearray)):
        raise ImageError("the file object gives text, not bytes: open the image with mode 'rb'")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file object holds more than {MAX_FILE_BYTES >> 20} MB, larger than any image "
                         "digitrec reads")
    return bytes(data)


def _named(name: str | None, message: str) -> str:
    return f"{name}: {message}" if name else message


def _read_image_file(path: Path) -> bytes:
    """The bytes of the file at `path`, if its size is one an image can have: a 1.5 GB file named
    .png is refused after a few bytes, not after reading it all (its header says whether it is an
    image too large or not an image at all). A file of a size an image can have is read whole and
    opened once, by the caller: most files are images, and opening a header twice cost a tenth
    of decoding a small JPEG."""
    try:
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(f"{path}: not a file")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not size:
                raise ImageError(f"{path}: empty file")
            if size <= MAX_FILE_BYTES:
                return f.read()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    Image.open(f)  # reads the header alone
            except UnidentifiedImageError:
                raise ImageError(f"{path}: {_NOT_AN_IMAGE}") from None
            except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
                pass  # an image, but a damaged or huge one: too large either way
            raise ImageError(f"{path}: {size / 2**20:,.0f} MB, larger than any image digitrec reads "
                             f"({MAX_FILE_BYTES >> 20} MB)")
    except OSError as e:  # no permission, say
        raise ImageError(os_error_message(e, path)) from None


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW (torch style) -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or a.size == 0:
        raise ImageError(f"cannot read an array of shape {a.shape} as an image; use HxW, HxWx3 or HxWx4")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("array has NaN or infinite values")
        a = np.clip(a * 255 if a.max(initial=0) <= 1.0 else a, 0, 255).astype(np.uint8)
    elif a.dtype.kind in "iu" and a.max(initial=0) > 255:  # 16-bit data: scale by its own range
        a = (np.clip(a, 0, None) * (255.0 / a.max())).astype(np.uint8)
    elif a.dtype.kind in "iu":
        a = np.clip(a, 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"cannot read an array of dtype {a.dtype} as an image")
    return Image.fromarray(np.ascontiguousarray(a))


def to_rgb(img: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]. Transparent pixels become a background that contrasts with the
    opaque ones, so a stroke drawn on a transparent canvas stays visible whatever its colour."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(img, dtype=np.float32)
        top = a.max(initial=0)
        # 16-bit scans often use only part of the range (a 10- or 12-bit sensor): scale by the data.
        a = a / (top if top > 255 else 1.0 if img.mode == "F" and top <= 1 else 255.0)
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info) \
        or (img.mode in ("L", "RGB") and "transparency" in img.info)
    rgba = np.asarray(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if not has_alpha:
        return rgba
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if alpha.min() > 0.98:
        return rgb
    opaque = alpha[..., 0] > 0.5
    ink_is_dark = opaque.any() and luma(rgb[opaque]).mean() < 0.5
    background = 1.0 if ink_is_dark or not opaque.any() else 0.0
    return rgb * alpha + background * (1 - alpha)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W) array to (w, h) = size with area averaging when shrinking (anti-aliasing)."""
    img = Image.fromarray(a.astype(np.float32), mode="F")
    shrinking = size[0] < a.shape[1] or size[1] < a.shape[0]
    return np.array(img.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR), dtype=np.float32)


def describe(source, i: int) -> str:
    """How results name an input: its path (a file object's too), or its type and position for
    in-memory images."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if hasattr(source, "read") and isinstance(getattr(source, "name", None), str):
        return source.name
    return f"<{type(source).__name__} #{i}>"


def header_check(data: bytes, max_pixels: int) -> tuple[str | None, int]:
    """(why an encoded image is refused by its header's size alone, or None; the pixels its header
    declares), before anything is decoded: a decompression bomb is a few KB on the wire and
    gigabytes in memory. An unreadable header gives (None, 0): decoding then fails too, and says why."""
    try:
        w, h = _header_size(data)
    except Image.DecompressionBombError as e:
        return f"refused, a decompression bomb ({' '.join(str(e).split())[:100]})", 0
    except Exception:
        return None, 0
    if w * h > max_pixels:
        return f"image is {w}x{h} pixels, more than the {max_pixels:,} this server accepts; scale it down", 0
    return None, w * h


def _header_size(data: bytes) -> tuple[int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we judge the size ourselves
        with Image.open(io.BytesIO(data)) as img:
            return img.size
