"""Read a handwritten number: find the digits written along a line, read each, left to right.

    reader = digitrec.load_reader()    # the shipped line reader and digit model
    r = reader.read("meter.jpg")
    r.text                             # "2026"
    [(d.digit, d.confidence, d.box) for d in r.digits]
    [n.text for n in reader.read_all("register.jpg")]   # every number on a page, in reading order

The page's ink is found exactly as for a single digit (`ink.find_ink`: the same decoding,
ink map and finer looks, with shadows, specks and ruled lines set aside by
`components.ink_components`), at a working resolution 160 px tall (a smaller picture enlarged to
READ_LEAST first). Then:

1. The line grows from its largest piece of ink (`writing.line_pieces`): pieces in its band of rows
   and near its ends join; specks, marks above or below it and the page's edge do not. Pieces that
   share columns are grouped (a 5 whose bar lifted off, a 4 drawn in two strokes) for the digits' boxes.
2. The line is framed like MNIST, but as a strip: writing 20 px tall, stroke width and contrast
   normalised as for one digit, any width (`framing.frame_strip`).
3. The line reader (`models.linecnn`, trained by `digitrec train-reader` on lines composed from
   MNIST's training digits) reads the strip column by column, and CTC's best path (`ctc.decode`)
   gives the digits. It never has to decide where one digit ends: digits that touch or overlap are read
   from the columns they share, a digit broken in two is still one. An unsure reading is read
   again from the strip squeezed and stretched sideways, and by the second shipped reader (trained
   to take 1s with long lead-ins) from all three, and the six readings vote (`read_strip`).
4. Each digit's box is its group's ink, split at the midpoints between digits read in the same
   group. A digit alone in its group is also framed as a single digit (`frame_like_mnist`) and
   read by the digit model; its answer is the product of the two models' probabilities.

With onnxruntime installed, the shipped models run as their ONNX exports (`backend="auto"`, as for
`predict`) and reading never imports torch; a PyTorch checkpoint (`--reader reader.pt`, given once
or once per reader that votes) runs on torch.

Cutting touching digits apart and scoring the cuts with the single-digit classifier was tried
first and fails: a digit classifier is confident on almost any slice of ink (0% of touching
4-digit numbers right against the reader's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .ctc import CLASSES, DIGITS, MARKS, STRIDE, Decoded, decode
from .errors import DigitrecError
from .framing import MARGIN, frame_like_mnist, frame_strip
from .images import describe, load_image, rereadable, resize
from .ink import Ink, NoDigitFound, find_ink
from .model_file import SHIPPED_READERS, Checkpoint, normalise, shipped_path
from .onnx_model import load_onnx
from .predict import Recogniser, load_onnx_model, onnx_file, softmax
from .printed import clean_document
from .writing import digit_boxes, line_pieces, lines_of_writing, reading_order

READ_FIT = (2400, 160)  # working (width, height): ample for digits (framed 20 px tall), cheap to filter
# A smaller picture (a check's amount scanned at 40-90 px) is enlarged to this height first: its pen
# strokes, a pixel or two wide, are then wider than a printed pattern's lines, which `clean_document`
# wipes. Generated small numbers (digits 18-28 px tall, plain, security-printed or banded paper) read
# alike enlarged to 100-160 px, and the work grows with the pixels.
READ_LEAST = 100
# A page's lines are found at up to 1600 px a side (a line of writing on a phone photo of a page
# stays tens of px tall), then each is cut out of the source and read at READ_FIT.
PAGE_FIT = (1600, 1600)
# ... and measured against the paper within a sixteenth of the page's short side (`ink.ink_map`'s
# window; one digit's picture takes a quarter): a page's writing is small in it, while a field shaded
# grey on a white form, or a check on a scanner's white bed, is larger than that, and stays paper.
PAGE_WINDOW = 1 / 16
PAPER_STEP = 0.1  # a line's cut stops at a change of paper this large (grey, 0-1): `_margin_on_its_paper`
SMALL_LINE = 0.2  # a line under this share of a shrunk picture's height is read again from the source
# An unsure reading is read again from the strip squeezed and stretched sideways, by every reader,
# and the readings vote: a wide digit read as two, or two narrow ones read as one, rarely survives
# both. On validation numbers (4 digits, 150 each) one line reader alone reads 139 vs 135 with a gap
# and 136 vs 134 touching; two readers voting read 184 of the 300 bank checks against one's 179.
# A sure reading is read by the second reader too, and voted on where they differ: 1,460 vs 1,451
# of 1,600 validation numbers (2-8 digits, gap and touching, seed 1), the bank checks the same.
VOTE_SCALES = (0.85, 1.18)
SURE = 0.9  # a reading whose symbols' confidences multiply to this is not read again
# A lone digit the line reader gives this much of its probability is not read again by the digit
# model: its say changed no reading of the checks or the validation numbers there, and it was a
# fifth of `read`'s time (docs/history.md).
ALONE_SURE = 0.99
DATE = re.compile(r"\d{1,2}/\d{1,2}/(\d{2}|\d{4})")


@dataclass
class DigitRead:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the source image's pixels
    probabilities: list[float] = field(default_factory=list)  # ten, for 0-9, where the reader was surest

    def to_dict(self) -> dict:
        return {"digit": self.digit, "confidence": round(self.confidence, 6), "box": list(self.box)}


@dataclass
class MarkRead:
    """A mark written among the digits or a sign before them (one of `ctc.MARKS`: . , - / : = $ #):
    kept in `formatted`."""

    mark: str
    confidence: float
    box: tuple[int, int, int, int]

    def to_dict(self) -> dict:
        return {"mark": self.mark, "confidence": round(self.confidence, 6), "box": list(self.box), "separator": True}


@dataclass
class Reading:
    """The number read in one image: `text` holds its digits, `formatted` the digits with the marks
    written among them ("3.975,00"), `confidence` the probability that the whole number is right
    (every digit, none missing or extra; 0 when nothing was read)."""

    source: str
    text: str = ""
    digits: list[DigitRead] = field(default_factory=list)
    separators: list[MarkRead] = field(default_factory=list)
    formatted: str = ""
    error: str | None = None
    confidence: float = 0.0

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """The box (x0, y0, x1, y1) around the digits and marks read, in the image's pixels; None
        when nothing was read."""
        boxes = [d.box for d in self.digits] + [m.box for m in self.separators]
        if not boxes:
            return None
        return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)

    def to_dict(self) -> dict:
        if self.error:
            return {"path": self.source, "error": self.error}
        return {"path": self.source, "text": self.text, "formatted": self.formatted,
                "confidence": round(self.confidence, 6), "digits": [d.to_dict() for d in self.digits],
                "separators": [m.to_dict() for m in self.separators]}


class NumberReader:
    """Reads the handwritten number in an image: the line readers over the framed line, with the
    digit model's opinion on digits that stand alone. Call `read` with a path, bytes, a binary file
    object, PIL image or array.

    `readers` is one line reader or several (`load_line_readers`): the first reads every line, the
    others only vote on the lines it is unsure of (`read_strip`). The first one's calibration is
    the reading's, fitted for the readers it was fitted with (`calibration.calibrate_reader`)."""

    def __init__(self, digits: Recogniser, readers: Checkpoint | Sequence[Checkpoint], *, calibrated: bool = True,
                 vote: bool = True, alone_sure: float = ALONE_SURE):
        self.digits = digits  # the digit model, for digits alone in their piece of ink...
        self.alone_sure = alone_sure  # ... that the line reader gives less than this (over 1: every one)
        self.vote = vote  # unsure readings read again, squeezed and stretched (`read_strip`)
        self.readers = [r.require("line") for r in ([readers] if isinstance(readers, Checkpoint) else readers)]
        if not self.readers:
            raise ValueError("NumberReader needs at least one line reader")
        self.reader = self.readers[0]
        self._runs = [_runner(r) for r in self.readers]
        # The reader's calibration (`calibration.calibrate_reader`): a temperature for each digit's
        # probabilities and a logistic map for the number's; calibrated=False reads raw (to fit them).
        cal = self.reader.meta.get("calibration") if calibrated else None
        self.temperature = self.reader.temperature if calibrated else 1.0
        self.number_scale = _number_scale(cal)

    @property
    def uses_torch(self) -> bool:
        """Whether any model runs on PyTorch (then its CPU threads are worth setting)."""
        return any(r.backend != "onnx" for r in self.readers) or self.digits.checkpoint.backend != "onnx"

    def read_line(self, strip: np.ndarray, which: int = 0) -> np.ndarray:
        """Line reader `which`'s log-probabilities (T, classes), float32, for a framed line (28, W) in [0, 1]."""
        r = self.readers[which]
        x = normalise(np.asarray(strip, dtype=np.float32)[None, None], r.mean, r.std)
        return np.asarray(self._runs[which](x), dtype=np.float32)[0]

    def read_strip(self, strip: np.ndarray) -> tuple[list[Decoded], float]:
        """The symbols read from a framed line, and the sideways scale of the strip they were read
        from: the first reader's reading of the strip as it is when it is sure (SURE) and the second
        reader reads the same symbols, else the majority of every reader's readings of it and its
        squeezed and stretched copies (VOTE_SCALES); on a tie, the first of them in that order (the
        first reader, as it is). (The first reader can be sure and wrong: it drops some 1s at the
        end of a line, or touching a neighbour, that the second reads.)"""
        first = decode(self.read_line(strip)[None])[0]
        if not self.vote:
            return first, 1.0
        second = decode(self.read_line(strip, 1)[None])[0] if len(self.readers) > 1 else first
        if np.prod([d.confidence for d in first]) >= SURE and _symbols(second) == _symbols(first):
            return first, 1.0
        h, w = strip.shape
        scaled = [resize(strip, (max(4, int(round(w * a / 4)) * 4), h)) for a in VOTE_SCALES]  # widths: multiples of 4
        views = [strip] + scaled
        order = [(which, v) for which in range(len(self.readers)) for v in range(len(views))]
        # The strip as it is, read by the first two readers already; the others are read in order,
        # until the readings left could not change the vote's winner.
        readings = {0: (first, 1.0), len(views) * (len(self.readers) > 1): (second, 1.0)}
        said = [_symbols(readings[k][0]) if k in readings else None for k in range(len(order))]
        for k, (which, v) in enumerate(order):
            if said[k] is None and _winner(said) is None:
                readings[k] = (decode(self.read_line(views[v], which)[None])[0], views[v].shape[1] / w)
                said[k] = _symbols(readings[k][0])
        return readings[_winner(said)]

    def read(self, source, *, name: str | None = None) -> Reading:
        """The number written in one image: a `Reading` with `text` and, per digit, its digit,
        confidence and box; `error` set when the image cannot be read. A number found small in a
        big picture (a row number in a crop of a register's page) is cut out of it and read again
        at its own resolution, as `read_all` reads each line."""
        return self._read(source, name or describe(source, 0), again=True)

    def _read(self, source, label: str, again: bool) -> Reading:
        try:
            source = rereadable(source) if again else source  # a file object may be read twice
            # The table past a photographed sheet is painted as paper before the ink is measured
            # (`ink_map`): left, its inner edge was read as a 1 (docs/history.md).
            found, (masks, line) = find_ink(source, READ_FIT, line_pieces, clean=clean_document, least=READ_LEAST,
                                            past_page=True)
            ys = np.nonzero(line.any(1))[0]
            # Shrunk to fit, a line under a fifth of the picture's height is a few working pixels tall.
            if again and found.scale < 1 and ys[-1] + 1 - ys[0] < SMALL_LINE * line.shape[0]:
                return self._read_cut(load_image(source), found.box_to_source(_ink_box(line)), label)
        except NoDigitFound:
            return Reading(source=label)
        except DigitrecError as e:  # ImageError and friends: one clear line, as predict gives
            return Reading(source=label, error=str(e))
        return self._read_line(found, masks, line, label)

    def _read_cut(self, img: Image.Image, box: tuple[int, int, int, int], label: str) -> Reading:
        """The number along one line whose ink lies in `box` of `img` (source pixels): cut out with a
        third of its height as margin (the strokes' faint ends, little of the next line) and read
        there, its boxes back in `img`'s pixels."""
        crop = _margin_on_its_paper(img, box, max(2, (box[3] - box[1]) // 3))
        return _moved(self._read(img.crop(crop), label, again=False), crop[0], crop[1])

    def _read_line(self, found: Ink, masks: list[np.ndarray], line: np.ndarray, label: str) -> Reading:
        """The number along one line of `found`'s ink (`masks`: its groups of pieces, `line`: their union)."""
        reading = Reading(source=label)
        ink = found.ink
        strip, (lx0, _, _, _), s = frame_strip(ink, line)
        symbols, a = self.read_strip(strip)
        # Frame t saw columns [2t, 2t + 2) of the strip scaled by a; back to working pixels.
        centres = [lx0 + ((d.start + d.end) * STRIDE / 2 / a - MARGIN) / s for d in symbols]
        boxes = digit_boxes(masks, centres)
        digit = _slashes_in_dates([d.is_digit for d in symbols], [CLASSES[d.symbol] for d in symbols])
        probs = [_digit_probabilities(d.probabilities) for d in symbols]
        probs = [tempered(p, self.temperature) for p in self._with_digit_model(probs, boxes, masks, ink, digit)]
        for sym, p, ok, (_, box) in zip(symbols, probs, digit, boxes):
            if ok:
                reading.digits.append(DigitRead(int(p.argmax()), float(p.max()), found.box_to_source(box), [float(v) for v in p]))
            else:
                reading.separators.append(MarkRead(MARKS[sym.symbol - len(DIGITS)], sym.confidence, found.box_to_source(box)))
            reading.formatted += str(reading.digits[-1].digit) if ok else reading.separators[-1].mark
        reading.text = "".join(str(d.digit) for d in reading.digits)
        if reading.digits:
            reading.confidence = number_confidence([d.confidence for d in reading.digits], self.number_scale)
        return reading

    def read_all(self, source, *, name: str | None = None) -> list[Reading]:
        """Every number written in one image (a form's fields, a register's column, a page of
        notes), in reading order: rows top to bottom, each left to right. Each line of writing
        found on the page (`writing.lines_of_writing`) is cut out of the source with a margin and
        read as `read` reads an image; boxes are in the whole image's pixels. An image that cannot
        be read gives one Reading with `error` set; one with no writing, none."""
        label = name or describe(source, 0)
        try:
            img = load_image(source)
            found, lines = find_ink(img, PAGE_FIT, lines_of_writing, clean=clean_document, window=PAGE_WINDOW,
                                    past_page=True)  # the table past a photographed page, as in `read`
        except NoDigitFound:
            return []
        except DigitrecError as e:
            return [Reading(source=label, error=str(e))]
        boxes = [found.box_to_source(_ink_box(line)) for _, line in lines]
        readings = [self._read_cut(img, boxes[i], label) for i in reading_order(boxes)]
        return [r for r in readings if r.digits]

    def _with_digit_model(self, probs: list[np.ndarray], boxes: list, masks: list[np.ndarray], ink: np.ndarray,
                          digit: list[bool]) -> list[np.ndarray]:
        """A digit alone in its group is also framed as a single digit and read by the digit model,
        unless the line reader is sure of it (`alone_sure`); the two opinions are multiplied (both
        must agree), which reads clear gaps better than either alone (on validation numbers: 0.975
        of 4-digit numbers, reader 0.965, classifier 0.95)."""
        groups = [members[0] for members, _ in boxes]
        alone = [i for i, g in enumerate(groups) if groups.count(g) == 1 and digit[i] and probs[i].max() < self.alone_sure]
        if not alone:
            return probs
        own = [np.logical_or.reduce([masks[g] for g in boxes[i][0]]) for i in alone]  # with a lifted-off bar
        framed = [frame_like_mnist(*_cut_out(ink, m))[0] for m in own]
        for i, pc in zip(alone, self.digits.probabilities(np.stack(framed))):
            both = probs[i] * pc
            probs[i] = both / max(float(both.sum()), 1e-12) if both.sum() > 0 else probs[i]
        return probs


def page_to_dict(source: str, readings: list[Reading]) -> dict:
    """`NumberReader.read_all`'s readings of one image as one JSON-ready object: {"path", "numbers":
    [each reading's `to_dict` but its path]}, or {"path", "error"} for an image that could not be read."""
    failed = next((r.error for r in readings if r.error), None)
    if failed:
        return {"path": source, "error": failed}
    return {"path": source, "numbers": [{k: v for k, v in r.to_dict().items() if k != "path"} for r in readings]}


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) of a mask's pixels."""
    ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _cut_out(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ink under `mask` alone, and the mask, cut to the mask's box (framed the same as whole)."""
    x0, y0, x1, y1 = _ink_box(mask)
    mask = mask[y0:y1, x0:x1]
    return np.where(mask, ink[y0:y1, x0:x1], 0), mask


def _margin_on_its_paper(img: Image.Image, box: tuple[int, int, int, int], pad: int) -> tuple[int, int, int, int]:
    """`box` (x0, y0, x1, y1) grown by up to `pad` on every side, within `img`, but not past the
    edge of the paper its line is written on: a margin stops where another paper starts, rows
    (columns) whose median grey is PAPER_STEP or more from the box's own edge's from there to the
    margin's end (a check's grey ending on a scanner's white bed, a form's shaded field on white;
    not a ruled line, with the paper past it). The cut's border is where `read`
    measures the paper, and a white margin round a grey check made its whole printed pattern ink."""
    x0, y0, x1, y1 = box
    outer = (max(0, x0 - pad), max(0, y0 - pad), min(img.width, x1 + pad), min(img.height, y1 + pad))
    grey = np.asarray(img.crop(outer).convert("L"), dtype=np.float32) / 255
    ix0, iy0, ix1, iy1 = x0 - outer[0], y0 - outer[1], x1 - outer[0], y1 - outer[1]  # the box in the crop
    rows, cols = grey[:, ix0:ix1], grey[iy0:iy1]
    # Each side: the box's edge, and the margin past it as lines running outwards from the box.
    sides = ((cols[:, ix0], cols[:, :ix0][:, ::-1].T), (rows[iy0], rows[:iy0][::-1]),
             (cols[:, ix1 - 1], cols[:, ix1:].T), (rows[iy1 - 1], rows[iy1:]))
    cut = list(outer)
    for side, (edge, margin) in enumerate(sides):
        if len(margin):
            other = np.abs(np.median(margin, axis=1) - np.median(edge)) >= PAPER_STEP
            beyond = np.logical_and.accumulate(other[::-1])[::-1]  # another paper from here out: no ruled line
            if beyond.any():
                reach = int(np.argmax(beyond))  # lines of the margin on the line's paper
                cut[side] = box[side] - reach if side < 2 else box[side] + reach
    return tuple(cut)


def _moved(r: Reading, dx: int, dy: int) -> Reading:
    """A reading of a crop, its boxes moved to the pixels of the image it was cut from."""
    move = lambda b: (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)  # noqa: E731
    return replace(r, digits=[replace(d, box=move(d.box)) for d in r.digits],
                   separators=[replace(m, box=move(m.box)) for m in r.separators])


def _runner(reader: Checkpoint):
    """numpy in, numpy out for a line reader: its onnxruntime session, or its PyTorch model on the CPU."""
    if reader.backend == "onnx":
        return reader.model  # onnx_model.OnnxModel
    from .device import run_numpy  # a PyTorch reader: only then does reading import torch

    model = reader.model.cpu().eval()
    return lambda x: run_numpy(model, x)


def _slashes_in_dates(digit: list[bool], symbols: list[str]) -> list[bool]:
    """Which symbols to keep as digits: the digits, and every "/" unless the line reads as a date
    (29/11/26, 29/11/2026). A slash is written like a slanted 1; outside a date it is the 1
    it looks like, read as its likeliest digit."""
    line = "".join(symbols)
    if "/" not in line or DATE.fullmatch(line):
        return digit
    return [ok or sym == "/" for ok, sym in zip(digit, symbols)]


def _winner(said: list[tuple[int, ...] | None]) -> int | None:
    """Where the vote's winner stands among readings (`_symbols`; None: not read yet): the first of
    the most frequent readings, once the readings not yet made cannot change it (were they all one
    rival's, it would still lose, or tie and come later; none comes before it), else None."""
    known = [s for s in said if s is not None]
    unread = [k for k, s in enumerate(said) if s is None]
    best = max(known, key=known.count)  # the first of the most frequent so far
    first, count = said.index(best), known.count(best)
    if unread and unread[0] < first:  # read so there, the same symbols would win there (another scale, boxes)
        return None
    # Every reading left one rival's: one read already wins with more, or as many standing before it;
    # one not seen yet (standing after it) only with more.
    for rival in set(known) - {best}:
        n = known.count(rival) + len(unread)
        if n > count or (n == count and said.index(rival) < first):
            return None
    return first if len(unread) <= count else None


def _symbols(decoded: list[Decoded]) -> tuple[int, ...]:
    """A decoded reading's symbols, to compare readings by."""
    return tuple(d.symbol for d in decoded)


def _digit_probabilities(p: np.ndarray) -> np.ndarray:
    """The ten digits' probabilities out of a reader's symbol probabilities (digits first, then marks)."""
    ten = p[:len(DIGITS)]
    return ten / max(float(ten.sum()), 1e-12)


def tempered(p: np.ndarray, t: float) -> np.ndarray:
    """softmax(log p / t): the same ranking of the ten digits, sureness scaled by the temperature."""
    if t == 1.0:
        return p
    return softmax(np.log(np.maximum(p, 1e-12)) / t)


def _number_scale(cal) -> tuple[float, float]:
    """(a, b) of the number's logistic map from a reader's calibration record; (1, 0) leaves it as is."""
    ab = cal.get("number") if isinstance(cal, dict) else None
    ok = isinstance(ab, (list, tuple)) and len(ab) == 2 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in ab)
    return (float(ab[0]), float(ab[1])) if ok else (1.0, 0.0)


def number_confidence(digit_confidences: list[float], scale: tuple[float, float] = (1.0, 0.0)) -> float:
    """The probability that a whole number is right: sigmoid(a * logit(product of its digits'
    confidences) + b). The product alone is too sure: it cannot see a digit missed or one too
    many, which are most of a reader's errors; (a, b) are fitted on generated numbers."""
    prod = float(np.clip(np.prod(digit_confidences), 1e-9, 1 - 1e-9))
    a, b = scale
    return float(1 / (1 + np.exp(-(a * np.log(prod / (1 - prod)) + b))))


Readers = str | Path | Sequence[str | Path] | None


def reader_paths(reader: Readers) -> list[str]:
    """The line reader files that `reader` names (one path or several), as strings; [] for the shipped pair."""
    if not reader:
        return []
    return [str(reader)] if isinstance(reader, (str, Path)) else [str(r) for r in reader]


def load_reader(model: str | Path | None = None, reader: Readers = None, *, backend: str = "auto",
                device: str = "cpu") -> NumberReader:
    """A NumberReader with the digit model at `model` (as `loading.load_model` takes it) and the line
    reader(s) at `reader` (as `load_line_readers` takes them); the shipped ones when None.
    backend="auto" runs the shipped models' ONNX exports where onnxruntime is installed, and
    imports torch only for a model that needs it (`predict.onnx_file`)."""
    digits_onnx = onnx_file(model, backend, device)
    if digits_onnx is not None:
        digits = load_onnx_model(digits_onnx)
    else:
        from .loading import load_model

        digits = load_model(model, backend=backend, device=device)
    return NumberReader(digits, load_line_readers(reader, backend=backend, device=device))


def load_line_readers(reader: Readers = None, *, backend: str = "auto", device: str = "cpu") -> list[Checkpoint]:
    """The line readers at `reader`: one file (a reader.pt from `digitrec train-reader`, or its ONNX
    export) or several, the first reading and the others voting; the shipped pair when None (or empty)."""
    paths = reader_paths(reader)
    if not paths:
        return [_line_reader(None, name, backend, device) for name in SHIPPED_READERS]
    return [_line_reader(p, "line", backend, device) for p in paths]


def _line_reader(path: str | Path | None, name: str, backend: str, device: str) -> Checkpoint:
    """The line reader at `path`, or the shipped one called `name`, as `onnx_file` says to run it."""
    onnx = onnx_file(path, backend, device, task=name)
    if onnx is not None:
        return load_onnx(onnx)
    from .loading import load

    # On the CPU: a line at a time. A shipped file missing from an installation is named by load.
    return load(path if path is not None or name == "line" else shipped_path(name), task="line", backend=backend)
