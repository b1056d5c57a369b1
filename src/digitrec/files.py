"""Files in and out for the command line: which files a user's paths name, and where outputs go.

`expand_paths` turns files, folders and globs into a list of images to read; the rest write what
`predict --save-preprocessed` and `read --annotate` promise, named after their sources.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .images import load_image
from .read import Reading

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


def expand_paths(paths) -> list[tuple[str, str | None]]:
    """Files as given, folders walked recursively for images, globs expanded (sorted, deduplicated).
    Returns (path, error) pairs: error is set for a path that matches nothing."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(p: str, err: str | None = None):
        if err is not None or p not in seen:
            seen.add(p)
            out.append((p, err))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                add(str(raw), f"{raw}: folder has no image files")
            for f in found:
                add(f)
        elif p.exists() or not any(c in str(raw) for c in "*?["):
            add(str(raw))  # a missing plain path is reported when it is read
        else:
            matches = sorted(m for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matches:
                add(str(raw), f"{raw}: no files match")
            for m in matches:
                add(m)
    return out


def unique_png_path(source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """OUT_DIR/<source's stem>.png, creating OUT_DIR; a name already in `taken` gets a -2, -3, ... suffix."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(source).stem or "image"
    name, k = f"{stem}.png", 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}.png"
    taken.add(name)
    return out_dir / name


def save_preprocessed_image(image: np.ndarray, source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """Write the 28x28 view as a PNG named after its source; a name already taken gets a suffix."""
    path = unique_png_path(source, out_dir, taken)
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="L").save(path)
    return path


def annotate(path: str, reading: Reading, out_dir, taken: set[str]):
    """Write the image at `path` with each digit's box and reading drawn on it; return the new path."""
    img = load_image(path).convert("RGB")
    draw = ImageDraw.Draw(img)
    lw = max(1, round(max(img.size) / 300))
    # Labels scale with the writing: a third of the digits' height, at least 11 px, so they stay
    # readable on a 4000-px photo (Pillow's default font is scalable).
    heights = [d.box[3] - d.box[1] for d in reading.digits] or [img.height]
    font = ImageFont.load_default(size=max(11, round(0.35 * float(np.median(heights)))))
    size = font.size
    marks = [(m.box, m.mark, m.confidence, (30, 60, 220)) for m in reading.separators]  # marks in blue
    for box, what, confidence, colour in [(d.box, d.digit, d.confidence, (220, 30, 30)) for d in reading.digits] + marks:
        draw.rectangle(box, outline=colour, width=lw)
        draw.text((box[0] + lw, max(0, box[1] - size - lw)), f"{what} {confidence:.2f}", fill=colour, font=font)
    out = unique_png_path(path, out_dir, taken)
    img.save(out)
    return out
