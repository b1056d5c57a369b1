"""Synthetic whole numbers on paper, to measure reading (`digitrec read`) end to end.

Two writers of a number, both finished by `synth.ink_on_paper` (paper, light, a notebook's ruling
or a check's printed pattern, camera) so that they share the single digits' look:

* :func:`render_number` sets MNIST digits side by side, with a clear gap, touching or overlapping,
  and says where each digit is (`iter_number_set` draws a set of them); :func:`render_page` writes
  several such numbers on one page, as a form or a register holds them (`iter_page_set`);
* :func:`write_number` writes a number in a handwriting font (`digitrec.fonts`): hands that are
  not MNIST's;
* :func:`in_field` prints a form's field around a written number: a row of cells, one digit to a
  cell, or a comb.

As in `synth`, every random choice comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .synth import (TAIL_SIZE, Box, StyleConfig, as_numpy, by_the_table, dropout_ink, ink_on_paper, place_digit,
                    printed_ink, printed_line_width)

if TYPE_CHECKING:  # only for annotations: torch tensors are read through duck typing
    import torch

SPACINGS = ("gap", "touching", "overlapping")
FIELDS = ("boxes", "comb", "dropout", "amount")
PAGES = ("crop", "edge", "table")  # `render_number`'s page: small in a crop of the sheet, by its edge, by the table


def render_number(digits: list[np.ndarray], rng: np.random.Generator, spacing: str = "gap",
                  style: StyleConfig = StyleConfig(), page: str | None = None) -> tuple[Image.Image, list[Box]]:
    """Write MNIST digits side by side as one number on paper; return the picture and each digit's box.

    spacing: "gap" (clear space between digits), "touching" (each digit slid left until its ink
    meets its neighbour's) or "overlapping" (slid further, strokes crossing). Sizes vary by
    +-15% (and `style.small_tail` of the numbers are written smaller from one digit on), baselines
    jitter, each digit has its own slant; the paper, light and camera effects are `ink_on_paper`'s.
    `page`: "crop" sets the number small in a bigger crop of its sheet (a register's row number),
    "edge" the same with the page's edge along one side, "table" with the table past the sheet's
    edge along a side, as a phone photo of a note shows it (`PAGES`).
    """
    if page is not None and page not in PAGES:
        raise ValueError(f"page must be one of {PAGES}, got {page!r}")
    acc, boxes, base, dh = _write(digits, rng, spacing, style, float(rng.uniform(36, 110)))
    if style.turn > 0:  # the paper's ruling, if any, stays level: only the writing is turned
        acc, boxes = _turned(acc, boxes, float(rng.uniform(style.turn / 3, style.turn) * rng.choice([-1, 1])))
    if page is not None:
        acc, boxes, base = _on_a_page(acc, boxes, base, rng)
    img = ink_on_paper(acc, rng, replace(style, thickness_px=0), ruling=_ruling(base, dh, style.paper, rng))
    if page == "edge":
        img = _past_the_edge(img, rng)
    elif page == "table":
        img = by_the_table(img, _around(boxes), rng)
    return img, boxes


def _around(boxes: list[Box]) -> Box:
    """The box around all of `boxes`."""
    x0, y0, x1, y1 = zip(*boxes)
    return min(x0), min(y0), max(x1), max(y1)


def _on_a_page(acc: np.ndarray, boxes: list[Box], base: float,
               rng: np.random.Generator) -> tuple[np.ndarray, list[Box], float]:
    """The number's ink (`acc`) set small in a bigger sheet, as a register's row number is cut out
    with its page around it: 2.5-4x as tall and 3-5x as wide, the number near the left. Its boxes
    and baseline moved with it."""
    h, w = acc.shape
    H, W = int(h * rng.uniform(2.5, 4)), int(w * rng.uniform(3, 5))
    y, x = int(rng.uniform(0.3, 0.6) * (H - h)), int(rng.uniform(0.08, 0.2) * W)
    page = np.zeros((H, W), np.float32)
    page[y:y + h, x:x + w] = acc
    return page, [(x0 + x, y0 + y, x1 + x, y1 + y) for x0, y0, x1, y1 in boxes], base + y


def _past_the_edge(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """`img` with the page's edge along one side, chosen at random: past it, 2-6% of the picture
    across, the table or the next page, dark grey."""
    a = np.array(img.convert("RGB"))
    side, share, grey = int(rng.integers(4)), rng.uniform(0.02, 0.06), int(rng.integers(20, 91))
    band = max(1, int(share * a.shape[1 if side % 2 == 0 else 0]))  # sides: 0 left, 1 top, 2 right, 3 bottom
    lines = slice(0, band) if side < 2 else slice(-band, None)
    (a[:, lines] if side % 2 == 0 else a[lines])[:] = grey
    return Image.fromarray(a)


def _turned(acc: np.ndarray, boxes: list[Box], degrees: float) -> tuple[np.ndarray, list[Box]]:
    """The ink turned by `degrees` (counter-clockwise) on a canvas grown to hold it, and each box
    the upright box around its turned corners."""
    img = Image.fromarray(acc.astype(np.float32), mode="F")
    turned = img.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True)
    h, w = acc.shape
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)

    def moved(x: float, y: float) -> tuple[float, float]:  # about the centres, y down: as PIL turns
        dx, dy = x - w / 2, y - h / 2
        return dx * c + dy * s + turned.width / 2, -dx * s + dy * c + turned.height / 2

    out = []
    for x0, y0, x1, y1 in boxes:
        xs, ys = zip(*(moved(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))))
        out.append((int(np.floor(min(xs))), int(np.floor(min(ys))), int(np.ceil(max(xs))), int(np.ceil(max(ys)))))
    return np.asarray(turned, dtype=np.float32), out


def render_page(numbers: list[list[np.ndarray]], rng: np.random.Generator, spacing: str = "gap",
                style: StyleConfig = StyleConfig()) -> tuple[Image.Image, list[Box]]:
    """Write several numbers on one page, as one hand fills in a form or a register: one writing
    height throughout, one or two numbers to a row (the second a few writing heights to the right
    of the first), rows a line's pitch apart, on the ruling of "ruled" or "squared" paper. Returns
    the picture and each number's ink box, in reading order (rows top to bottom, left to right)."""
    dh = float(rng.uniform(30, 60))
    pitch = dh * float(rng.uniform(1.6, 2.4))
    written = [_write(d, rng, spacing, style, dh) for d in numbers]
    rows: list[list[int]] = []
    for i in range(len(written)):
        if rows and len(rows[-1]) == 1 and rng.random() < 0.3:
            rows[-1].append(i)
        else:
            rows.append([i])
    first = 2.2 * dh  # the first row's baseline: a number's mask reaches ~2.1 writing heights above its own
    at: list[tuple[int, int]] = []
    for r, row in enumerate(rows):
        x = int(dh)
        for i in row:
            acc, _, base, _ = written[i]
            at.append((x, int(round(first + r * pitch - base))))
            x += acc.shape[1] + int(dh * rng.uniform(1.5, 4.0))
    page = np.zeros((max(y + w[0].shape[0] for (_, y), w in zip(at, written)),
                     max(x + w[0].shape[1] for (x, _), w in zip(at, written)) + int(dh)), np.float32)
    boxes: list[Box] = []
    for (x, y), (acc, digit_boxes, _, _) in zip(at, written):
        h, w = acc.shape
        page[y:y + h, x:x + w] = np.maximum(page[y:y + h, x:x + w], acc)
        boxes.append((x + min(b[0] for b in digit_boxes), y + min(b[1] for b in digit_boxes),
                      x + max(b[2] for b in digit_boxes), y + max(b[3] for b in digit_boxes)))
    line = first + rng.uniform(0, 0.06) * dh
    ruling = (line, pitch) if style.paper in ("ruled", "squared") else _ruling(first, dh, style.paper, rng)
    return ink_on_paper(page, rng, replace(style, thickness_px=0), ruling=ruling), boxes


def _write(digits: list[np.ndarray], rng: np.random.Generator, spacing: str, style: StyleConfig,
           dh: float) -> tuple[np.ndarray, list[Box], float, float]:
    """A number's ink (float mask) written `dh` px tall as `render_number` describes; its digits'
    boxes, the row its digits sit on, and `dh`."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    patches = []
    # A share of numbers is written smaller from one digit on (TAIL_SIZE as tall), on the same baseline.
    small = (style.small_tail > 0 and len(digits) > 1 and rng.random() < style.small_tail)
    tail_from, tail = (int(rng.integers(1, len(digits))), rng.uniform(*TAIL_SIZE)) if small else (len(digits), 1.0)
    for i, d in enumerate(digits):
        size = dh * rng.uniform(0.85, 1.15) * (tail if i >= tail_from else 1.0)
        side = int(size * 1.7) + 16
        st = replace(style, digit_frac=(size / side, size / side), rotation=5.0, shear=0.15, thickness_px=0)
        mask, (x0, y0, x1, y1) = place_digit(d, (side, side), rng, st)
        patches.append(mask[y0:y1, x0:x1])
    if style.faint_digit > 0 and rng.random() < style.faint_digit:  # grey ballpoint beside black marker
        i = int(rng.integers(len(patches)))
        patches[i] = patches[i] * rng.uniform(0.3, 0.5)
    height = int(dh * 2.0 + max(p.shape[0] for p in patches))
    width = int(sum(p.shape[1] for p in patches) + dh * (0.6 * len(patches) + 1.5))
    acc = np.zeros((height, width), np.float32)
    boxes: list[Box] = []
    base = height * 0.5 + dh * 0.5  # where bottoms of the digits sit
    x = int(dh * rng.uniform(0.3, 0.7))
    for i, p in enumerate(patches):
        ph, pw = p.shape
        y = int(np.clip(base - ph + rng.uniform(-0.08, 0.08) * dh, 1, height - ph - 1))
        if i:
            prev = boxes[-1]
            if spacing == "gap":
                x = prev[2] + int(rng.uniform(0.12, 0.45) * dh)
            else:  # slide left from a small gap until the inks meet
                x = prev[2] + 2
                while x > prev[0] and not (acc[y:y + ph, x:x + pw] * p > 0.25).any():
                    x -= 1
                if spacing == "overlapping":
                    x -= int(rng.uniform(0.06, 0.16) * dh)
                x = max(x, prev[0] + 1)
        acc[y:y + ph, x:x + pw] = np.maximum(acc[y:y + ph, x:x + pw], p)
        boxes.append((x, y, x + pw, y + ph))
    right = max(b[2] for b in boxes) + int(dh * rng.uniform(0.3, 0.7))
    acc = acc[:, :min(right, width)]
    if style.sign > 0 and rng.random() < style.sign:
        acc, boxes = _signed(acc, boxes, base, dh, rng)
    return acc, boxes, base, dh


def _signed(acc: np.ndarray, boxes: list[Box], base: float, dh: float,
            rng: np.random.Generator) -> tuple[np.ndarray, list[Box]]:
    """A printed "$" or "#" (Pillow's own font, 0.4-1x the digits' height) set before a number's
    ink, sitting on its baseline, a third to most of a digit's height apart; the boxes moved with it."""
    sign = "$" if rng.random() < 0.6 else "#"
    font = ImageFont.load_default(size=max(8, int(dh * rng.uniform(0.4, 1.0) * 1.25)))
    x0, y0, x1, y1 = font.getbbox(sign)
    pic = Image.new("L", (x1 - x0 + 2, acc.shape[0]), 0)
    ImageDraw.Draw(pic).text((1 - x0, int(base) - y1), sign, fill=255, font=font)
    gap = np.zeros((acc.shape[0], int(dh * rng.uniform(0.3, 0.8))), np.float32)
    shift = pic.width + gap.shape[1]
    out = np.concatenate([np.asarray(pic, np.float32) / 255, gap, acc], 1)
    return out, [(bx0 + shift, by0, bx1 + shift, by1) for bx0, by0, bx1, by1 in boxes]


def _ruling(base: float, dh: float, paper: str, rng: np.random.Generator) -> tuple[float, float] | None:
    """`ink_on_paper`'s ruling for digits `dh` px tall sitting on row `base`: a notebook's writer sits
    them on a line, the lines ~1.3 writing heights apart; a check's pattern is much finer, lines a
    tenth of the writing's height apart; a tint band crosses the writing's middle, a tenth to a
    third of its height."""
    if paper == "plain":
        return None
    if paper == "band":
        return base - rng.uniform(0.35, 0.65) * dh, rng.uniform(0.1, 0.35) * dh
    line = base + rng.uniform(0, 0.06) * dh
    return line, dh * (rng.uniform(0.06, 0.14) if paper == "security" else rng.uniform(1.2, 1.5))


def write_number(text: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                 style: StyleConfig = StyleConfig(), height: tuple[float, float] = (36, 110)) -> Image.Image:
    """Write `text` in a handwriting font as one person writes a number on paper: the font's own
    digits and spacing (one writer's hand, not MNIST's), each glyph spaced a little wider or closer
    and jittered about the baseline, the whole leaning and turned a little; the paper, light and
    camera effects (and a notebook's ruling, `style.paper`) are `ink_on_paper`'s, as for `render_number`.
    `height`: the range of the digits' height in px (a bank check's field is scanned with them 20-40 px tall)."""
    dh = float(rng.uniform(*height))
    probe = font.getbbox("0", anchor="ls")
    font = font.font_variant(size=max(8, round(font.size * dh / max(1, probe[3] - probe[1]))))
    pad = int(dh)
    width = int(font.getlength(text) + dh * (0.3 * len(text) + 2)) + 2 * pad
    tall = int(3 * dh) + 2 * pad
    canvas = Image.new("L", (width, tall), 0)
    draw = ImageDraw.Draw(canvas)
    base = tall * 0.5 + dh * 0.5  # where the digits sit
    x = pad + dh * rng.uniform(0.3, 0.7)
    for ch in text:
        draw.text((x, base + rng.uniform(-0.05, 0.05) * dh), ch, fill=255, font=font, anchor="ls")
        x += font.getlength(ch) + dh * rng.uniform(-0.05, 0.2)
    shear, turn = rng.uniform(-0.2, 0.2), rng.uniform(-4, 4)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * base, 0, 1, 0),
                              Image.Resampling.BILINEAR).rotate(turn, Image.Resampling.BILINEAR, center=(width / 2, base))
    x0, y0, x1, y1 = canvas.getbbox() or (0, 0, width, tall)
    left = max(0, x0 - int(dh * rng.uniform(0.3, 0.7)))  # paper either side, as a writer leaves it
    right = min(width, x1 + int(dh * rng.uniform(0.3, 0.7)))
    top, bottom = min(max(0, int(base - 1.5 * dh)), y0), max(min(tall, int(base + 1.0 * dh)), y1)
    mask = np.asarray(canvas.crop((left, top, right, bottom)), np.float32) / 255.0
    return ink_on_paper(mask, rng, replace(style, thickness_px=0), ruling=_ruling(base - top, dh, style.paper, rng))


def in_field(img: Image.Image, boxes: list[Box], field: str, rng: np.random.Generator) -> Image.Image:
    """`img` with a form's field printed around the digits in `boxes` (written with a clear gap):
    "boxes", a row of closed cells, one digit to a cell, its walls midway between the digits; or
    "comb", a baseline with ticks a third to a half of a cell's height standing on it; "dropout",
    the cells printed in a form's light dropout colour (`synth.dropout_ink`); or "amount", one box
    around the whole number (a check's or an invoice's amount box), its sides from a quarter of the
    digits' height away to just into the first and last digit (writers fill the box). The lines
    are 1-3 px (heavier on big scans), in a printing ink's dark grey or blue unless dropout."""
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    img = img.convert("RGB")
    top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
    h = bottom - top
    y0, y1 = top - h * rng.uniform(0.08, 0.2), bottom + h * rng.uniform(0.08, 0.2)
    if field == "amount":
        walls = [boxes[0][0] - h * rng.uniform(-0.05, 0.25), boxes[-1][2] + h * rng.uniform(-0.05, 0.25)]
    else:
        walls = [boxes[0][0] - h * rng.uniform(0.1, 0.25)] + [(a[2] + b[0]) / 2 for a, b in zip(boxes, boxes[1:])] + [
            boxes[-1][2] + h * rng.uniform(0.1, 0.25)]
    t, colour = printed_line_width(h, rng), printed_ink(rng)
    colour = dropout_ink(rng) if field == "dropout" else colour
    draw = ImageDraw.Draw(img)
    draw.line([(walls[0], y1), (walls[-1], y1)], fill=colour, width=t)
    tick = y1 - (y1 - y0) * rng.uniform(0.33, 0.5) if field == "comb" else y0
    if field != "comb":
        draw.line([(walls[0], y0), (walls[-1], y0)], fill=colour, width=t)
    for x in walls:
        draw.line([(x, tick), (x, y1)], fill=colour, width=t)
    return img


def iter_number_set(images: torch.Tensor | np.ndarray, labels, n: int, length: int, spacing: str = "gap",
                    seed: int = 0, style: StyleConfig = StyleConfig(), field: str | None = None,
                    page: str | None = None) -> Iterator[tuple[Image.Image, str, list[Box]]]:
    """Yield n (picture, text, boxes) numbers of `length` digits drawn at random from `images`;
    written in a form's `field` (`in_field`: spacing "gap" only, but in one "amount" box) when one is
    given, small in a crop of their page when `page` is (`render_number`)."""
    if field not in (None, "amount") and spacing != "gap":
        raise ValueError("a number is written in a form's cells with a clear gap between its digits")
    images, labels = as_numpy(images), as_numpy(labels)
    for child in np.random.SeedSequence([seed, length, SPACINGS.index(spacing)]).spawn(n):
        rng = np.random.default_rng(child)
        idx = rng.integers(0, len(images), length)
        img, boxes = render_number([images[i] for i in idx], rng, spacing, style, page)
        img = in_field(img, boxes, field, rng) if field else img
        yield img, "".join(str(int(labels[i])) for i in idx), boxes


def iter_page_set(images: torch.Tensor | np.ndarray, labels, n: int, numbers: int, length: int, spacing: str = "gap",
                  seed: int = 0, style: StyleConfig = StyleConfig(),
                  table: bool = False) -> Iterator[tuple[Image.Image, list[str], list[Box]]]:
    """Yield n (page, texts, boxes) pages of `numbers` numbers of `length` digits each (`render_page`);
    `table`: photographed by the table, past the sheet's edge along a side (`synth.by_the_table`)."""
    images, labels = as_numpy(images), as_numpy(labels)
    for child in np.random.SeedSequence([seed, numbers, length, SPACINGS.index(spacing), 1]).spawn(n):
        rng = np.random.default_rng(child)
        idx = rng.integers(0, len(images), (numbers, length))
        page, boxes = render_page([[images[i] for i in row] for row in idx], rng, spacing, style)
        page = by_the_table(page, _around(boxes), rng) if table else page
        yield page, ["".join(str(int(labels[i])) for i in row) for row in idx], boxes
