"""Files in and out for the command line: which files a user's paths name, and where outputs go.

`expand_paths` turns files, folders and globs into a list of images to read; the rest write what
`predict --save-preprocessed` and `read --annotate` promise, named after their sources.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import OutputError, os_error_message
from .images import load_image

if TYPE_CHECKING:  # only a type here: importing read would import torch, which `predict` does without
    from .read import Reading

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".avif",
                  ".heic", ".heif"}


def expand_paths(paths) -> list[tuple[str, str | None]]:
    """Files as given, folders walked recursively for images, globs expanded (sorted); each real
    file once, however it is reached (through symlinks, as `a.png` and `./a.png`). Returns (path,
    error) pairs: error is set for a path that matches nothing or a folder that cannot be read."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for raw in paths:
        for path, err in _expand(str(raw)):
            real = os.path.realpath(path)
            if err is not None or real not in seen:
                seen.add(real)
                out.append((path, err))
    return out


def _expand(raw: str) -> list[tuple[str, str | None]]:
    """What one argument names, as (path, error) pairs."""
    if os.path.isdir(raw):
        unreadable: list[str] = []
        found = sorted(os.path.join(d, e.name) for d, entries in _real_folders(raw, unreadable, hidden=True)
                       for e in entries if e.suffix.lower() in IMAGE_SUFFIXES and os.path.isfile(e))
        errors = [(d, f"permission denied: {d}") for d in unreadable]
        return [(f, None) for f in found] + errors or [(raw, f"{raw}: folder has no image files")]
    if os.path.lexists(raw) or not _has_magic(raw):
        return [(raw, None)]  # a missing or unreadable plain path is reported when it is read
    matches = sorted(m for m in _glob(raw) if os.path.isfile(m))
    return [(m, None) for m in matches] or [(raw, f"{raw}: no files match")]


def _glob(pattern: str) -> list[str]:
    """glob.glob(pattern, recursive=True), except that "**" enters each real folder once: through a
    symlink loop glob.glob goes round until the path is too long, and with two links, for ever."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return glob.glob(pattern)
    i = parts.index("**")
    head = os.sep.join(parts[:i]) if parts[:i] != [""] else os.sep  # "/**/x": from the root
    tail = os.sep.join(parts[i + 1:]) or "*"
    bases = glob.glob(head) if _has_magic(head) else [head]
    return [m for base in bases for d, _ in _real_folders(base, [], hidden=False)
            for m in _glob(os.path.join(glob.escape(d), tail))]


def _real_folders(top: str, unreadable: list[str], *, hidden: bool):
    """(folder, its entries as Paths) for `top` and every folder below it, symlinks followed but
    each real folder once; folders that cannot be listed are added to `unreadable`. Folders whose
    names start with a dot are skipped unless `hidden`, as glob's "**" skips them."""
    seen: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder or ".")
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(Path(folder or ".", name) for name in os.listdir(folder or "."))
        except OSError:
            unreadable.append(folder)
            continue
        yield folder, entries
        stack += [os.path.join(folder, e.name) for e in reversed(entries)
                  if (hidden or not e.name.startswith(".")) and os.path.isdir(e)]


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


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


def save_png(img: Image.Image, source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """Write `img` as OUT_DIR/<source's stem>.png (see unique_png_path); OutputError, one line, when
    it cannot be written (a read-only folder, a full disk)."""
    try:
        path = unique_png_path(source, out_dir, taken)
        img.save(path)
    except OSError as e:
        raise OutputError(os_error_message(e, e.filename or out_dir)) from None
    return path


def save_preprocessed_image(image: np.ndarray, source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """Write the 28x28 view as a PNG named after its source; a name already taken gets a suffix."""
    return save_png(Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="L"), source, out_dir,
                    taken)


def annotate(path: str, reading: Reading | list[Reading], out_dir, taken: set[str]):
    """Write the image at `path` with each digit's box and reading drawn on it (of every reading, for
    a list of them: `read --all`); return the new path."""
    readings = reading if isinstance(reading, list) else [reading]
    digits, separators = [d for r in readings for d in r.digits], [m for r in readings for m in r.separators]
    img = load_image(path).convert("RGB")
    draw = ImageDraw.Draw(img)
    lw = max(1, round(max(img.size) / 300))
    # Labels scale with the writing: a third of the digits' height, at least 11 px, so they stay
    # readable on a 4000-px photo (Pillow's default font is scalable).
    heights = [d.box[3] - d.box[1] for d in digits] or [img.height]
    font = ImageFont.load_default(size=max(11, round(0.35 * float(np.median(heights)))))
    size = font.size
    marks = [(m.box, m.mark, m.confidence, (30, 60, 220)) for m in separators]  # marks in blue
    for box, what, confidence, colour in [(d.box, d.digit, d.confidence, (220, 30, 30)) for d in digits] + marks:
        draw.rectangle(box, outline=colour, width=lw)
        draw.text((box[0] + lw, max(0, box[1] - size - lw)), f"{what} {confidence:.2f}", fill=colour, font=font)
    return save_png(img, path, out_dir, taken)
