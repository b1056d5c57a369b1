"""Any image of a handwritten digit -> what the model saw in training (MNIST's recipe).

MNIST digits are white ink on black, scaled to fit a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in 28x28 so that their centre of mass is the centre. A user's photo is
none of that, so resizing it to 28x28 (the tutorial's way) reads about one digit in ten. Here:

1. decode anything Pillow reads: EXIF rotation, transparency, 16-bit, palettes (`load_image`);
2. measure "ink" as colour distance from the paper, with the paper's colour estimated locally so
   shadows and uneven light cancel out; either polarity, any ink colour (`ink_map`);
3. keep the digit: threshold, drop specks, ruled lines and edge shadows, keep broken strokes;
4. crop, normalise stroke width and contrast, fit 20x20, centre by mass in 28x28 (`to_mnist`).

`preprocess(source)` does all of it; an image with no ink raises NoDigitFound, never a guess.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage as ndi

from .errors import DigitrecError

MAX_PIXELS = 50_000_000  # larger images are refused: a decompression bomb, not a photo of a digit
WORK_SIDE = 192  # long side of the working resolution: ample for a 20 px result, cheap to filter
BOX, CANVAS = 20, 28  # MNIST: the digit fits a 20x20 box inside a 28x28 image
MNIST_CENTRE = 14.0  # where MNIST's centres of mass are, in pixel-index coordinates
TARGET_STROKE = 0.125  # MNIST's median stroke width relative to the digit's long side (2.5 px of 20)
THIN_STROKE, THICK_STROKE = 0.09, 0.18
HYSTERESIS = 0.7  # faint ink down to this fraction of the threshold counts if it touches firm ink  # outside this range a stroke is brought to TARGET_STROKE


class ImageError(DigitrecError):
    """The input could not be read as an image."""


class NoDigitFound(DigitrecError):
    """The image was read, but it holds no ink that could be a digit."""


@dataclass
class Preprocessed:
    """The 28x28 view the model gets, and what was found on the way."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like MNIST
    box: tuple[int, int, int, int]  # the digit's bounding box in the source image (x0, y0, x1, y1)
    polarity: str  # "dark-on-light" or "light-on-dark"
    source_size: tuple[int, int]  # (width, height) of the decoded source


# ---------------------------------------------------------------------------------------------
# 1. Decoding


def load_image(source) -> Image.Image:
    """Open a path, bytes, PIL image, or array (HxW, HxWx3, HxWx4; uint8, uint16, bool or float in
    [0, 1]) as a PIL image with EXIF orientation applied. Raises ImageError with a clear reason."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, Path, bytes, bytearray, memoryview)):
        img = _open_file(source)
    elif hasattr(source, "__array__"):
        img = _from_array(np.asarray(source))
    else:
        raise ImageError(f"cannot read a {type(source).__name__} as an image; pass a path, bytes, a PIL image or an array")
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"image is {img.width}x{img.height} pixels, more than the {MAX_PIXELS:,} allowed; scale it down first")
    if img.width < 1 or img.height < 1:
        raise ImageError("image has no pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)  # photos from phones are stored sideways plus a rotation tag
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError,
            EOFError, MemoryError) as e:
        raise ImageError(f"cannot decode the image ({_reason(e)}); is the file complete?") from None
    return img


def _reason(e: BaseException) -> str:
    return " ".join(str(e).split())[:160] or type(e).__name__


def _open_file(source) -> Image.Image:
    name = str(source) if isinstance(source, (str, Path)) else "image bytes"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(f"{path}: not a file")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageError(f"{name}: refused, {_reason(e)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: cannot read the image ({_reason(e)})") from None
    return img


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
    ink_is_dark = opaque.any() and _luma(rgb[opaque]).mean() < 0.5
    background = 1.0 if ink_is_dark or not opaque.any() else 0.0
    return rgb * alpha + background * (1 - alpha)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# 2. Ink


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W) array to (w, h) = size with area averaging when shrinking (anti-aliasing)."""
    img = Image.fromarray(a.astype(np.float32), mode="F")
    shrinking = size[0] < a.shape[1] or size[1] < a.shape[0]
    return np.asarray(img.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR), dtype=np.float32)


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=128, range=(0.0, float(values.max()) + 1e-6))
    w = np.cumsum(hist).astype(np.float64)
    m = np.cumsum(hist * (edges[:-1] + edges[1:]) / 2)
    w0, w1 = w[:-1], w[-1] - w[:-1]
    between = np.where((w0 > 0) & (w1 > 0), (m[:-1] * w[-1] - m[-1] * w0) ** 2 / np.maximum(w0 * w1, 1e-12), 0)
    return float(edges[1:-1][np.argmax(between)])


def ink_map(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """Ink strength in [0, ~1] per pixel (H, W) and the polarity, for an RGB float image.

    Paper is what the border mostly looks like; that decides the polarity. The paper's colour
    under every pixel is then estimated with a morphological closing (opening for light ink):
    a window wider than any pen stroke wipes the strokes out but keeps what is larger than
    strokes, such as a shadow falling across the page. Ink is how far a pixel is from its own
    paper, relative to the light that paper gets, so shaded and lit strokes read the same.
    """
    h, w = rgb.shape[:2]
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    paper = np.median(ring, axis=0)
    dist = np.linalg.norm(rgb - paper, axis=2)
    if dist.max() < 0.06:
        raise NoDigitFound("no digit found: the image is blank (no ink stands out from the background)")
    # Ink is the minority that departs furthest from the typical pixel; which way it departs is the
    # polarity. (Counting pixels instead would be fooled by a vignette: a page lit in the middle
    # has many pixels lighter than its border.)
    lum = _luma(rgb)
    lo, mid, hi = np.percentile(lum, [0.3, 50, 99.7])
    polarity = "dark-on-light" if mid - lo >= hi - mid else "light-on-dark"
    # A quarter of the short side is wider than the strokes of a digit that fills the frame.
    k = max(5, round(0.25 * min(h, w))) | 1
    if polarity == "dark-on-light":
        field = ndi.minimum_filter(ndi.maximum_filter(rgb, size=(k, k, 1)), size=(k, k, 1))  # closing
        ink = (field - rgb) / np.maximum(field, 0.15)  # relative darkening, per channel
    else:
        field = ndi.maximum_filter(ndi.minimum_filter(rgb, size=(k, k, 1)), size=(k, k, 1))  # opening
        ink = rgb - field
    ink = np.clip(ink, 0, None).max(axis=2)  # the channel where the ink stands out most
    return ink.astype(np.float32), polarity


# ---------------------------------------------------------------------------------------------
# 3. The digit among the marks


@dataclass
class Components:
    """The marks on a page, as connected pieces of ink (see `ink_components`)."""

    labels: np.ndarray  # (H, W) int: 0 = paper, i = piece i
    slices: list  # bounding slices of each piece
    mass: np.ndarray  # total ink of each piece
    keep: np.ndarray  # bool per piece: not a ruled line, table edge or shadow
    blob: np.ndarray  # bool per piece: solid rather than a pen stroke
    cut: np.ndarray | None  # ink removed with ruled lines, to give back where strokes cross them


def ink_components(ink: np.ndarray) -> Components:
    """Threshold the ink map and split it into pieces, setting aside ruled lines and shadows."""
    h, w = ink.shape
    peak = float(np.percentile(ink, 99.9))
    if peak < 0.08:
        raise NoDigitFound("no digit found: the marks are too faint")
    threshold = max(_otsu(ink), 0.25 * peak)
    # Hysteresis: faint ink (a pencil's light stroke) counts where it touches firm ink.
    weak_labels, _ = ndi.label(ink > HYSTERESIS * threshold, structure=np.ones((3, 3)))
    firm = np.unique(weak_labels[ink > threshold])
    mask = np.isin(weak_labels, firm[firm > 0])
    # Ruled lines (and the edge of a page or a canvas) run from edge to edge, often through the
    # digit, so they are not separate components: find rows where (even faint) ink covers 90% of
    # the width, allowing a little tilt and a few gaps.
    cut = None
    if w >= 8:
        band = ndi.binary_dilation(ink > 0.5 * threshold, structure=np.ones((5, 1), bool))
        lines = mask & (band.mean(axis=1) >= 0.9)[:, None]
        if lines.any() and (mask & ~lines).sum() > 0.3 * mask.sum():
            cut = mask & ndi.binary_dilation(lines, structure=np.ones((3, 1), bool))
            mask &= ~cut
            # Where a stroke overlaps a line, its ink is darker than the line's: give it back below.
            cut &= ink > 1.5 * float(np.median(ink[lines]))
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise NoDigitFound("no digit found")
    idx = np.arange(1, n + 1)
    mass = ndi.sum_labels(ink, labels, idx)
    # Half the thickest stroke of each component: pen strokes are thin for their length, while a
    # shadow's edge or a dark corner of the photo is a solid blob.
    half_width = ndi.maximum(ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1], labels, idx)
    slices = ndi.find_objects(labels)
    keep, blob = np.ones(n, bool), np.zeros(n, bool)
    for i, sl in enumerate(slices):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        blob[i] = 2 * half_width[i] > 0.45 * max(bh, bw) and max(bh, bw) > 0.2 * min(h, w)
        # Ruled lines run across the page and are thin; a shadow or a table edge hugs two borders.
        if (bw > 0.7 * w and bh < 0.08 * h) or (bh > 0.7 * h and bw < 0.04 * w and bh == h):
            keep[i] = False
        edges = (sl[0].start == 0) + (sl[0].stop == h) + (sl[1].start == 0) + (sl[1].stop == w)
        if edges >= 2 and bh * bw > 0.5 * h * w and (labels[sl] == i + 1).mean() > 0.6:
            keep[i] = False
    return Components(labels, slices, mass, keep, blob, cut)


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of the digit's strokes: threshold, then keep the components that make the digit."""
    h, w = ink.shape
    comp = ink_components(ink)
    labels, slices, mass, keep, blob, cut = comp.labels, comp.slices, comp.mass, comp.keep.copy(), comp.blob, comp.cut
    n = len(slices)
    if not keep.any():
        raise NoDigitFound("no digit found: only lines or shadows")
    # Prefer strokes to blobs, unless the blob is all there is (a thick, blurred digit is a blob too).
    strokes = keep & ~blob
    if strokes.any() and mass[strokes].max() >= 0.25 * mass[keep].max():
        keep = strokes
    main = int(np.argmax(np.where(keep, mass, -1)))
    if mass[main] < 1e-3 * h * w:
        raise NoDigitFound("no digit found: only specks")
    # Grow the digit from its largest piece: pieces of a broken stroke (or of a stroke cut by a
    # ruled line) sit close to what is already chosen; specks are too small to count.
    chosen = np.zeros(n, bool)
    chosen[main] = True
    box = [slices[main][0].start, slices[main][0].stop, slices[main][1].start, slices[main][1].stop]
    grew = True
    while grew:
        grew = False
        size = max(box[1] - box[0], box[3] - box[2])
        for i, sl in enumerate(slices):
            if chosen[i] or not keep[i]:
                continue
            gap = max(sl[0].start - box[1], box[0] - sl[0].stop, sl[1].start - box[3], box[2] - sl[1].stop, 0)
            if (mass[i] >= 0.03 * mass[main] and gap <= 0.25 * size) or (mass[i] >= 0.3 * mass[main] and gap <= 0.6 * size):
                chosen[i] = grew = True
                box = [min(box[0], sl[0].start), max(box[1], sl[0].stop), min(box[2], sl[1].start), max(box[3], sl[1].stop)]
    digit = np.concatenate([[False], chosen])[labels]
    if cut is not None and cut.any():
        digit |= cut & ndi.binary_dilation(digit, iterations=2)
    return digit


# ---------------------------------------------------------------------------------------------
# 4. MNIST's framing


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the distance-to-background along the strokes' ridges."""
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the crop's edge is background
    ridge = mask & (dist >= ndi.maximum_filter(dist, size=3))
    return 2.0 * float(np.median(dist[ridge])) if ridge.any() else 1.0


def normalise_stroke(ink: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], size: float) -> np.ndarray:
    """Crop `box` (x0, y0, x1, y1) of the ink, set its stroke cores to 1, and return it scaled so
    that `size` pixels become 4 x 20, with the stroke width brought into MNIST's range for writing
    `size` pixels tall (a digit's long side, or a line's height)."""
    x0, y0, x1, y1 = box
    soft = ndi.binary_dilation(mask, iterations=2)  # keep the anti-aliased rim of the strokes
    crop = np.where(soft, ink, 0)[y0:y1, x0:x1]
    cmask = mask[y0:y1, x0:x1]
    # Contrast: stroke cores at 1, like MNIST's saturated 255s.
    crop = np.clip(crop / max(float(np.percentile(crop[cmask], 90)), 1e-6), 0, 1)

    # Work at 4x the final box so morphology has pixels to act on, then shrink with area averaging.
    h, w = crop.shape
    scale = 4 * BOX / size
    mid = (max(1, round(w * scale)), max(1, round(h * scale)))
    crop = _resize(crop, mid)
    mmask = crop > 0.5
    if mmask.any():
        width = _stroke_width(mmask) / (4 * BOX)  # relative to the long side
        # MNIST's strokes are 0.09-0.15 of the digit's size (5th-75th percentile, median 0.125):
        # a thin pen on a big page is thickened, a fat marker thinned, towards that median.
        # Never more than a quarter of the crop: a solid blob has no stroke to speak of.
        r = int(np.clip(round((TARGET_STROKE - width) * 4 * BOX / 2), -min(crop.shape) // 4, BOX))
        if width < THIN_STROKE and r >= 1:
            crop = ndi.grey_dilation(crop, footprint=_disk(r))
        elif width > THICK_STROKE and r <= -1:
            crop = ndi.grey_erosion(crop, footprint=_disk(-r))
    return crop


def frame_like_mnist(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop the digit, normalise its stroke width and contrast, fit it in 20x20 keeping its aspect
    ratio, and place it in 28x28 with its centre of mass at the centre. Returns (image, box)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = normalise_stroke(ink, mask, (x0, y0, x1, y1), max(y1 - y0, x1 - x0))
    h, w = crop.shape
    scale = BOX / max(h, w)
    small = _resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))))
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)

    out = np.zeros((CANVAS, CANVAS), np.float32)
    sh, sw = small.shape
    top, left = (CANVAS - sh) // 2, (CANVAS - sw) // 2
    out[top:top + sh, left:left + sw] = small
    cy, cx = ndi.center_of_mass(out)
    # MNIST's centres of mass sit at (14.0, 14.0) in pixel-index coordinates (measured on its
    # training set), half a pixel below and right of the geometric centre (13.5).
    dy, dx = int(round(MNIST_CENTRE - cy)), int(round(MNIST_CENTRE - cx))
    # MNIST shifts by the centre of mass; clamp so that no ink is pushed off the canvas.
    dy = int(np.clip(dy, -top, CANVAS - top - sh))
    dx = int(np.clip(dx, -left, CANVAS - left - sw))
    out = np.roll(out, (dy, dx), axis=(0, 1))
    return out, (int(x0), int(y0), int(x1), int(y1))


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r + r


def preprocess(source) -> Preprocessed:
    """Any image of one handwritten digit -> MNIST-style 28x28 (see module docstring).

    Raises ImageError if the input cannot be read, NoDigitFound if it holds no digit.
    """
    img = load_image(source)
    rgb = to_rgb(img)
    H, W = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(H, W))
    if scale < 1.0:
        size = (max(1, round(W * scale)), max(1, round(H * scale)))
        rgb = np.stack([_resize(rgb[..., c], size) for c in range(3)], axis=2)
    ink, polarity = ink_map(rgb)
    mask = digit_mask(ink)
    image, (x0, y0, x1, y1) = frame_like_mnist(ink, mask)
    box = (int(x0 / scale), int(y0 / scale), min(W, int(np.ceil(x1 / scale))), min(H, int(np.ceil(y1 / scale))))
    return Preprocessed(image=image, box=box, polarity=polarity, source_size=(W, H))


def naive_preprocess(source) -> np.ndarray:
    """The tutorial's pipeline, for comparison: grey, resize to 28x28, nothing else. (28, 28) float32."""
    grey = load_image(source).convert("L")
    return np.asarray(grey.resize((CANVAS, CANVAS)), dtype=np.float32) / 255.0
