"""Read a handwritten number: find the digits written along a line, read each, left to right.

    rec = digitrec.load_model()
    r = read(rec, "meter.jpg")      # or rec.read("meter.jpg")
    r.text                          # "2026"
    [(d.digit, d.confidence, d.box) for d in r.digits]

The page becomes an ink map exactly as for a single digit (`preprocess.ink_map`, with shadows,
specks and ruled lines set aside by `preprocess.ink_components`). Then:

1. The line grows from its largest piece of ink: pieces in its band of rows and near its ends
   join; specks, marks above or below it and the page's edge do not. Pieces that share columns
   are grouped (a 5 whose bar lifted off, a 4 drawn in two strokes) for the digits' boxes.
2. The line is framed like MNIST, but as a strip: writing 20 px tall, stroke width and contrast
   normalised as for one digit, any width (`lines.frame_line`).
3. The line reader (`models.linecnn`, trained by `digitrec train-reader` on lines composed from
   MNIST's training digits) reads the strip column by column, and CTC's best path gives the
   digits. It never has to decide where one digit ends: digits that touch or overlap are read
   from the columns they share, a digit broken in two is still one.
4. Each digit's box is its group's ink, split at the midpoints between digits read in the same
   group. A digit alone in its group is also framed as a single digit (`frame_like_mnist`) and
   read by the digit model; its answer is the product of the two models' probabilities.

Cutting touching digits apart and scoring the cuts with the single-digit classifier was tried
first and fails: a digit classifier is confident on almost any slice of ink (0% of touching
4-digit numbers right against the reader's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .lines import MARGIN, STRIDE, decode, frame_line
from .preprocess import NoDigitFound, _resize, frame_like_mnist, ink_components, ink_map, load_image, to_rgb

READ_HEIGHT = 160  # working height: ample for digits (they are framed at 20 px), cheap to filter
READ_WIDTH = 2400


@dataclass
class DigitRead:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the source image's pixels
    probabilities: list[float] = field(default_factory=list)  # ten, for 0-9, where the reader was surest

    def to_dict(self) -> dict:
        return {"digit": self.digit, "confidence": round(self.confidence, 6), "box": list(self.box)}


@dataclass
class Reading:
    source: str
    text: str = ""
    digits: list[DigitRead] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error:
            return {"path": self.source, "error": self.error}
        return {"path": self.source, "text": self.text, "digits": [d.to_dict() for d in self.digits]}


def _groups(slices: list, pieces: list[int]) -> list[list[int]]:
    """Pieces whose column ranges overlap (by a quarter of the narrower one) belong to the same digit."""
    spans = sorted(((slices[i][1].start, slices[i][1].stop), i) for i in pieces)
    groups: list[tuple[int, int, list[int]]] = []
    for (a, b), i in spans:
        if groups:
            g0, g1, members = groups[-1]
            overlap = min(b, g1) - max(a, g0)
            # A quarter is enough: a 5's lifted bar juts out right; digits side by side barely
            # share columns, and a group that is too wide is cut apart again below.
            if overlap >= 0.25 * min(b - a, g1 - g0):
                groups[-1] = (min(a, g0), max(b, g1), members + [i])
                continue
        groups.append((a, b, [i]))
    return [members for _, _, members in groups]


def _line_pieces(ink: np.ndarray) -> tuple[list[np.ndarray], np.ndarray] | None:
    """The line's ink as one mask per group of pieces that share columns (left to right), and
    their union; None when there is no writing.

    The line grows from its largest piece of pen stroke (blobs such as a shadow's edge only when
    there is nothing else): pieces join when they sit in the line's band of rows and near its
    ends, so a speck above the line, a mark in the margin or the page's edge does not stretch
    the line's height, which sets the scale the reader sees."""
    try:
        comp = ink_components(ink)
    except NoDigitFound:
        return None
    keep, mass, slices = comp.keep, comp.mass, comp.slices
    if not keep.any():
        return None
    # Start from a stroke, not a blob (a shadow's edge), unless blobs are all there is; a thick
    # digit can look like a blob too, so blobs may still join the line.
    strokes = keep & ~comp.blob
    start = strokes if strokes.any() and mass[strokes].max() >= 0.25 * mass[keep].max() else keep
    main = int(np.argmax(np.where(start, mass, -1)))
    chosen = {main}
    y0, y1, x0, x1 = slices[main][0].start, slices[main][0].stop, slices[main][1].start, slices[main][1].stop
    grew = True
    while grew:
        grew = False
        band = y1 - y0
        for i in np.nonzero(keep)[0]:
            if i in chosen:
                continue
            sy, sx = slices[i]
            overlap = min(sy.stop, y1) - max(sy.start, y0)
            if overlap < 0.5 * min(sy.stop - sy.start, band):
                continue  # above or below the line
            gap = max(sx.start - x1, x0 - sx.stop, 0)
            # A digit of its own (a 1 beside an 8 has a third of its ink) may stand a digit's width
            # off; a fragment (a lifted bar, a broken stroke) only right beside the line.
            if (mass[i] >= 0.08 * mass[main] and gap <= 1.5 * band) or (mass[i] >= 0.01 * mass[main] and gap <= 0.1 * band):
                chosen.add(int(i))
                grew = True
                y0, y1 = min(y0, sy.start), max(y1, sy.stop)
                x0, x1 = min(x0, sx.start), max(x1, sx.stop)
    masks = []
    for members in _groups(slices, sorted(chosen)):
        m = np.isin(comp.labels, np.array(members) + 1)
        if comp.cut is not None and comp.cut.any():  # ink under a ruled line that was set aside
            m |= comp.cut & ndi.binary_dilation(m, iterations=2)
        masks.append(m)
    return masks, np.logical_or.reduce(masks)


def _digit_boxes(masks: list[np.ndarray], centres: list[float]) -> list[tuple[list[int], tuple[int, int, int, int]]]:
    """Per digit (by the column its reading came from): its groups (the one it was read from first,
    then any group no digit was read from that lies nearest to it), and the box of their ink, split
    at the midpoints to the neighbouring digits read from the same group."""
    spans = [np.nonzero(m.any(0))[0][[0, -1]] for m in masks]
    group = []
    for c in centres:
        dist = [0.0 if a <= c <= b else min(abs(c - a), abs(c - b)) for a, b in spans]
        group.append(int(np.argmin(dist)))
    out = []
    for i, (g, c) in enumerate(zip(group, centres)):
        a, b = spans[g][0], spans[g][1] + 1
        if i and group[i - 1] == g:
            a = max(a, int(round((centres[i - 1] + c) / 2)))
        if i + 1 < len(centres) and group[i + 1] == g:
            b = min(b, int(round((c + centres[i + 1]) / 2)))
        part = np.zeros_like(masks[g])
        part[:, a:b] = masks[g][:, a:b]
        if not part.any():
            part = masks[g]
        ys, xs = np.nonzero(part)
        out.append(([g], (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    # A group no digit was read from is part of its nearest digit: a 5's bar that lifted off.
    for g in sorted(set(range(len(masks))) - set(group)):
        if not out:
            break
        ys, xs = np.nonzero(masks[g])
        a, b = xs.min(), xs.max() + 1
        i = int(np.argmin([max(box[0] - b, a - box[2], 0) for _, box in out]))
        members, box = out[i]
        out[i] = (members + [g], (min(box[0], int(a)), min(box[1], int(ys.min())), max(box[2], int(b)), max(box[3], int(ys.max()) + 1)))
    return out


def read(rec, source, *, name: str | None = None) -> Reading:
    """Read the number written in one image (a path, bytes, PIL image or array) with `rec`."""
    from .predict import _describe

    reading = Reading(source=name or _describe(source, 0))
    try:
        img = load_image(source)
    except Exception as e:  # ImageError and friends: one clear line, as predict gives
        reading.error = str(e)
        return reading
    rgb = to_rgb(img)
    H, W = rgb.shape[:2]
    scale = min(1.0, READ_HEIGHT / H, READ_WIDTH / W)
    if scale < 1.0:
        size = (max(1, round(W * scale)), max(1, round(H * scale)))
        rgb = np.stack([_resize(rgb[..., c], size) for c in range(3)], axis=2)
    try:
        ink, _ = ink_map(rgb)
    except NoDigitFound:
        return reading
    found = _line_pieces(ink)
    if found is None:
        return reading
    masks, line = found
    strip, (lx0, _, _, _), s = frame_line(ink, line)
    logp = rec.read_line(strip)  # (T, 11)
    digits = decode(logp[None])[0]
    # Frame t saw strip columns [2t, 2t + 2); back to working pixels.
    centres = [lx0 + ((d.start + d.end) * STRIDE / 2 - MARGIN) / s for d in digits]
    boxes = _digit_boxes(masks, centres)
    probs = [d.probabilities.numpy() for d in digits]
    # A digit alone in its piece of ink is also framed as a single digit and read by the digit
    # model; the two opinions are multiplied (both must agree), which reads clear gaps better than
    # either alone (on validation numbers: 0.975 of 4-digit numbers, reader 0.965, classifier 0.95).
    groups = [members[0] for members, _ in boxes]
    alone = [i for i, g in enumerate(groups) if groups.count(g) == 1]
    if alone:
        own = [np.logical_or.reduce([masks[g] for g in boxes[i][0]]) for i in alone]  # with a lifted-off bar
        framed = [frame_like_mnist(np.where(m, ink, 0), m)[0] for m in own]
        for i, pc in zip(alone, rec.probabilities(np.stack(framed)).numpy()):
            both = probs[i] * pc
            probs[i] = both / max(float(both.sum()), 1e-12) if both.sum() > 0 else probs[i]
    for p, (_, (x0, y0, x1, y1)) in zip(probs, boxes):
        box = (int(x0 / scale), int(y0 / scale), min(W, int(np.ceil(x1 / scale))), min(H, int(np.ceil(y1 / scale))))
        reading.digits.append(DigitRead(int(p.argmax()), float(p.max()), box, [float(v) for v in p]))
    reading.text = "".join(str(d.digit) for d in reading.digits)
    return reading


def annotate(path: str, reading: Reading, out_dir, taken: set[str]):
    """Write the image at `path` with each digit's box and reading drawn on it; return the new path."""
    from PIL import ImageDraw

    from .predict import unique_png_path

    img = load_image(path).convert("RGB")
    draw = ImageDraw.Draw(img)
    lw = max(1, round(max(img.size) / 300))
    for d in reading.digits:
        draw.rectangle(d.box, outline=(220, 30, 30), width=lw)
        draw.text((d.box[0] + lw, max(0, d.box[1] - 12 * lw)), f"{d.digit} {d.confidence:.2f}", fill=(220, 30, 30))
    out = unique_png_path(path, out_dir, taken)
    img.save(out)
    return out
