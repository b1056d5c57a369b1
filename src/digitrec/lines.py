"""Lines of digits for the number reader: the training lines it learns from.

The reader (`models.linecnn`) reads a whole line framed like MNIST: white ink on black, the writing
20 px tall in a 28-px strip, 4 px of margin each side, any width (`framing.frame_strip`). Here:

* `compose_lines`: training lines built from MNIST digits on tensors, a whole batch per call. Each
  digit is augmented as the digit models are, given its own size (+-15%) and baseline, then set
  beside the previous one with a clear gap, touching, or overlapping it; the line is framed
  exactly as `framing.frame_strip` frames a user's, and drawn in one `grid_sample` at 2x, then halved.

The alphabet (DIGITS, MARKS, CLASSES, BLANK) and CTC's best path (`decode`) live in `ctc`, which
needs no torch.

`reader_train.train_reader` trains the model on an endless stream of composed lines (`digitrec train-reader`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .augment import augment_batch, noise_family
from .ctc import BLANK, DIGITS, MARKS
from .framing import MARGIN, STRIP_HEIGHT, WRITING
from .glyphs import GLYPH_DIGITS
from .synth import TAIL_SIZE
from .tensors import blobs, choice, randint, segment, to_float_images, uniform

SPACING_MIX = {"gap": 0.45, "touching": 0.35, "overlapping": 0.2}
# Space between neighbours' ink boxes, x the writing height. Inks meet well before boxes do (a 7's
# arm over a 1, slanted digits), so "touching" and "overlapping" overlap the boxes generously.
GAP = {"gap": (0.1, 0.5), "touching": (-0.35, 0.0), "overlapping": (-0.55, -0.2)}
# Where each mark's ink ends below the line's top, x the writing height (digits: 1 +- 0.08): a
# period sits on the baseline, a comma hangs below it, a dash and an equals sign float mid-height.
MARK_BOTTOM = {".": (0.97, 1.05), ",": (1.1, 1.3), "-": (0.5, 0.72), "/": (0.95, 1.08), ":": (0.95, 1.05),
               "=": (0.55, 0.78), "$": (0.9, 1.15), "#": (0.85, 1.05)}
TRAILING = {"-": 0.45, "=": 0.25, ".": 0.15, ",": 0.15}  # what follows an amount: "280.000=", "22.970.-"
LEADING = {"$": 0.6, "#": 0.4}  # what comes before one, printed on the form or written: "$1,250", "#4095"
PREFIX = 0.3  # share of the lines with marks that start with one of LEADING
# A "$": an S through these points (x right, y down, in its half-box), with a bar through it.
S_CURVE = ((0.75, -0.65), (0.35, -0.95), (-0.35, -0.95), (-0.75, -0.55), (-0.45, -0.12), (0.45, 0.12),
           (0.8, 0.55), (0.4, 0.95), (-0.35, 0.95), (-0.8, 0.6))


def _ink_extent(any_ink: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last index where a (N, L) boolean row is True (0, L when all False)."""
    n, size = any_ink.shape
    idx = torch.arange(size, device=any_ink.device).expand(n, size)
    first = torch.where(any_ink, idx, size).amin(1)
    last = torch.where(any_ink, idx + 1, 0).amax(1)
    empty = first >= last
    return torch.where(empty, 0, first), torch.where(empty, size, last)


def draw_marks(kind: torch.Tensor, gen: torch.Generator | None = None, printed: float = 0.0,
               drawn: torch.Tensor | None = None) -> torch.Tensor:
    """Hand-drawn marks (B, 1, 28, 28), white on black at MNIST's scale (writing ~20 px tall, pen
    2-3 px): `kind` (B,) indexes MARKS. Each is drawn with its own size, lean and pen width; a share
    `printed` of the signs ($ #) as a form prints them: strokes a third to a half of the pen's, at
    55-100% of its ink (a printed "$" beside written digits is thin and grey once scanned). Only
    where `drawn` (B,) bools, if given, the rest left black: the random draws are made for all B,
    so a mark is the same either way, and the strokes, which cost, only for the marks a line writes."""
    b, dev = len(kind), kind.device
    at = torch.arange(b, device=dev) if drawn is None else drawn.nonzero()[:, 0]
    k = len(at)
    u = lambda lo, hi: uniform((b,), gen, dev, lo, hi)[at]  # noqa: E731
    pen, c = u(0.8, 1.5), torch.full((k,), 14.0, device=dev)
    one = lambda x0, y0, x1, y1: segment(28, 28, x0, y0, x1, y1, pen)[0]  # noqa: E731
    dot = lambda y, x, r: blobs(k, 28, 28, torch.stack([y, x], -1)[:, None], r[:, None])  # noqa: E731
    length, lean, gap, r = u(5.0, 18.0), u(-0.18, 0.18), u(3.5, 8.0), u(1.0, 2.0)
    tail = u(3.5, 7.0)
    typed, sign, type_ink = None, one, 1.0  # none printed: the same random draws as before there was the choice
    if printed > 0:  # drawn after the other marks' draws, which stay as they were
        typed = u(0.0, 1.0) < printed
        type_pen, type_ink = torch.where(typed, u(0.3, 0.6), pen), torch.where(typed, u(0.55, 1.0), 1.0)[:, None, None]
        sign = lambda x0, y0, x1, y1: segment(28, 28, x0, y0, x1, y1, type_pen)[0]  # noqa: E731
    shapes = torch.stack([
        dot(c, c, r),  # .
        torch.maximum(dot(c - 2, c, r * 0.8), one(c + 0.5, c - 2, c - 1.5, c - 2 + tail)),  # , a dot and a tail down-left
        one(c - length / 2, c + lean * length / 2, c + length / 2, c - lean * length / 2),  # - (trailing ones run long)
        one(c - 3 - 4 * lean.abs(), c + 9, c + 3 + 4 * lean.abs(), c - 9),  # /
        torch.maximum(dot(c - gap / 2, c, r * 0.8), dot(c + gap / 2, c, r * 0.8)),  # :
        torch.maximum(one(c - length / 3, c - gap / 2, c + length / 3, c - gap / 2),
                      one(c - length / 3, c + gap / 2, c + length / 3, c + gap / 2)),  # =
        _dollar(c, u, sign, typed) * type_ink,  # $
        _hash(c, u, sign) * type_ink,  # #
    ], 1)  # (k, len(MARKS), 28, 28)
    out = torch.zeros(b, 1, 28, 28, device=dev)
    out[at] = shapes[torch.arange(k, device=dev), kind[at].long()][:, None]
    return out


def _dollar(c: torch.Tensor, u, one, typed: torch.Tensor | None) -> torch.Tensor:
    """A "$" as `draw_marks` draws it: an S 0.5-1x a digit's height, leaning, and a bar through it
    that stands out above and below (`u` draws uniforms, `one` a stroke); where `typed`, upright,
    wider, and its bar barely stands out, as type sets it."""
    size, lean = u(0.5, 1.0), u(-0.25, 0.25)
    sx, sy, ext = size * u(3.5, 5.5), size * 9.0, u(1.0, 3.5)
    if typed is not None:
        lean, sx = torch.where(typed, 0.0, lean), torch.where(typed, size * u(4.5, 6.5), sx)
        ext = torch.where(typed, u(0.3, 1.5), ext)
    pts = [(c + sx * px - lean * sy * py, c + sy * py) for px, py in S_CURVE]
    s = torch.stack([one(x0, y0, x1, y1) for (x0, y0), (x1, y1) in zip(pts, pts[1:])]).amax(0)
    return torch.maximum(s, one(c + lean * (sy + ext), c - sy - ext, c - lean * (sy + ext), c + sy + ext))


def _hash(c: torch.Tensor, u, one) -> torch.Tensor:
    """A "#" as `draw_marks` draws it: two leaning uprights crossed by two level bars."""
    size, lean = u(0.55, 1.0), u(0.05, 0.35)
    hh, hw, gx, gy = size * 8.0, size * u(5.0, 8.0), size * u(4.0, 7.0), size * u(4.0, 7.0)
    ups = [one(c + dx + lean * hh, c - hh, c + dx - lean * hh, c + hh) for dx in (-gx / 2, gx / 2)]
    bars = [one(c - hw, c + dy, c + hw, c + dy) for dy in (-gy / 2, gy / 2)]
    return torch.stack(ups + bars).amax(0)


def _mark_plan(length: torch.Tensor, m: int, marks: float, gen: torch.Generator | None) -> torch.Tensor:
    """Which mark (index into MARKS, or -1) follows each digit slot (n, m) of lines `length` digits
    long, as amounts, dates and times are written: thousands separators, a decimal comma, a trailing
    dash or equals sign, or slashes/colons/dashes between pairs of digits."""
    n, dev = len(length), length.device
    rnd = lambda *shape: uniform(shape, gen, dev)  # noqa: E731
    j = torch.arange(m, device=dev)[None]  # (1, m)
    k = length[:, None]
    on = rnd(n, 1) < marks
    kind = torch.full((n, m), -1, dtype=torch.long, device=dev)
    thousands = torch.where(rnd(n, 1) < 0.7, MARKS.index("."), MARKS.index(","))  # (n, 1)
    decimal = MARKS.index(",") + MARKS.index(".") - thousands
    cents = on & (rnd(n, 1) < 0.2) & (k >= 3)  # "3.975,00": the last two digits after a decimal mark
    whole = torch.where(cents, k - 2, k)  # digits before it, grouped in threes from the right
    kind = torch.where(on & (rnd(n, 1) < 0.7) & ((whole - 1 - j) % 3 == 0) & (j < whole - 1), thousands, kind)
    kind = torch.where(cents & (j == k - 3), decimal, kind)
    trailing = torch.tensor([MARKS.index(t) for t in TRAILING], device=dev)[choice(list(TRAILING.values()), n, gen, dev)][:, None]
    kind = torch.where(on & (rnd(n, 1) < 0.35) & (j == k - 1), trailing, kind)
    # Dates, times, codes: a mark after every second digit (29/11/26, 12:30, 12-34).
    pairs = torch.tensor([MARKS.index(t) for t in "/:-"], device=dev)[randint(0, 3, (n, 1), gen, dev)]
    paired = on & (rnd(n, 1) < 0.15)
    kind = torch.where(paired, torch.where((j % 2 == 1) & (j < k - 1), pairs, -1), kind)
    return kind


def compose_lines(images: torch.Tensor, labels: torch.Tensor, n: int, *, max_digits: int = 7,
                  min_digits: int = 1, augment: float = 1.0, noise: float = 0.25, marks: float = 0.0,
                  styles: float = 0.15, sevens: float = 0.0, clutter: float = 0.0, slant: float = 0.0,
                  flag_length: float = 0.45, glyphs: float = 0.0, glyph_digits: str = GLYPH_DIGITS,
                  stretch: float = 1.0, line_stretch: float = 1.0, joins: float = 0.0, printed_signs: float = 0.0,
                  small_tail: float = 0.0, zero_chains: float = 0.0,
                  gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`n` lines of `min_digits`..`max_digits` digits drawn from `images` (uint8 (N, 28, 28)); with
    probability `marks` a line also has MARKS written between and after its digits (`_mark_plan`),
    and some start with a sign ("$", "#": `_lead_plan`), a share `printed_signs` of them as a form
    prints them (`draw_marks`).
    Flagged 1s (`styles`, flags up to `flag_length` of the height) and crossed 7s (`sevens`) as in
    `augment`, and a share `glyphs` of the `glyph_digits` (2s, 4s and 9s unless told) drawn in the
    styles MNIST lacks (`glyphs.STYLES`); each digit is stretched or squeezed sideways by up to a factor `stretch` (real
    writers make wide 8s and narrow 0s), and each whole line, its digits and gaps alike, by up to
    `line_stretch` (a writer's hand is narrow or wide throughout); a share `joins` of neighbouring
    digits written close together are joined by the pen's stroke from one to the next, as in cursive
    (`_joins`); a share `small_tail` of the lines write their digits from one on smaller
    (`_tail_sizes`); a share `zero_chains` of the lines end in a run of zeros written as one chain
    (`_zero_runs`, `_chain_joins`); each line leans by its own shear of up to `slant` (a writer slants all the
    digits alike); `clutter` adds what a real document leaves in the ink (`document_clutter`),
    `noise` the noise family.

    The glyphs are chosen and augmented (`_written_glyphs`), laid out (`_lay_out`), drawn (`_draw`).

    Returns (x (n, 1, 28, W) floats in [0, 1], targets (n, 2 * max_digits + 1) int64 of class indices
    (CLASSES: digits and marks in writing order) padded with BLANK, lengths (n,)); W is a multiple
    of 4 that fits the widest line, shorter lines padded with black.
    """
    d, lab, present, is_mark, slot_mark, chained = _written_glyphs(images, labels, n, max_digits, min_digits, marks,
                                                                   augment, gen, printed_signs, zero_chains,
                                                                   styles=styles, sevens=sevens,
                                                                   flag_length=flag_length, glyphs=glyphs,
                                                                   glyph_digits=glyph_digits)
    run = None
    if zero_chains > 0:  # the chains' zeros, in slots (digit j is slot 1 + 2j)
        run = torch.zeros_like(present)
        run[:, 1::2] = chained
    at = _lay_out(d, present, is_mark, slot_mark, stretch, line_stretch, gen, small_tail, run)
    x = _draw(d, present, at)
    # The glyphs' boxes (x0, x1, y0, y1) in strip pixels, (n, 2m + 1) each: digits at odd slots.
    all_boxes = (MARGIN + at.f * at.left, MARGIN + at.f * (at.left + at.w), MARGIN + at.f * (at.top - at.line_top),
                 MARGIN + at.f * (at.bottom - at.line_top))
    if joins > 0:  # between digits, so the sign's slot (the first) is left out
        close = present & ~is_mark & (at.gap < 0.08 * WRITING)
        x = torch.maximum(x, _joins(tuple(b[:, 1:] for b in all_boxes), close[:, 1:], present[:, 1:], joins, at.W,
                                    gen)[:, None])
    if run is not None:
        x = torch.maximum(x, _chain_joins(all_boxes, run, present, at.W, gen)[:, None])
    if slant > 0:
        x = _lean(x, uniform((n,), gen, x.device, -slant, slant))
    if clutter > 0:
        x = document_clutter(x, clutter, gen)
    if noise > 0:
        x = noise_family(x, noise, gen)
    # Targets: the written glyphs' classes in order, moved to the front; the rest BLANK.
    order = torch.argsort((~present).to(torch.int8), dim=1, stable=True)
    targets = torch.where(present, lab, BLANK).gather(1, order)
    return x.clamp(0, 1), targets, present.sum(1)


def _written_glyphs(images: torch.Tensor, labels: torch.Tensor, n: int, m: int, min_digits: int, marks: float,
                    augment: float, gen: torch.Generator | None, printed_signs: float = 0.0, zero_chains: float = 0.0,
                    **writing) -> tuple[torch.Tensor, ...]:
    """What each line writes, in 2m + 1 slots: the sign before the number (absent where there is
    none), then digit j and the mark after it (absent where there is none), alternating. Returns the
    slots' glyphs, augmented (n*(2m+1), 1, 28, 28), their classes, which are written, which are
    marks, and each slot's mark (index into MARKS, -1 for none), all (n, 2m + 1), and which digits
    are in a chain of zeros (n, m: `_zero_runs`). `writing`: the styles MNIST lacks, as
    `augment.augment_batch` takes them."""
    dev = images.device
    length = randint(min_digits, m + 1, (n,), gen, dev)
    idx = randint(0, len(images), (n, m), gen, dev)
    chained = torch.zeros(n, m, dtype=torch.bool, device=dev)
    if zero_chains > 0:  # (drawn only when asked: the lines without are the same as before, bit for bit)
        idx, chained = _zero_runs(idx, length, labels, zero_chains, gen)
    mark = _mark_plan(length, m, marks, gen) if marks > 0 else torch.full((n, m), -1, device=dev)
    lead = _lead_plan(n, marks, gen, dev)  # (n, 1)
    digit_slots = torch.stack([torch.arange(m, device=dev) < length[:, None], mark >= 0], 2).view(n, 2 * m)
    present = torch.cat([lead >= 0, digit_slots], 1)
    is_mark = torch.tensor([True] + [False, True] * m, device=dev)[None].expand(n, 2 * m + 1)
    slot_mark = torch.cat([lead, torch.stack([torch.full_like(mark, -1), mark], 2).view(n, 2 * m)], 1)
    pick = torch.cat([idx[:, :1], idx.repeat_interleave(2, 1)], 1)  # a digit for every slot; marks' are drawn over
    lab = torch.where(is_mark, len(DIGITS) + slot_mark.clamp(min=0), labels[pick])
    d = to_float_images(images[pick.flatten()])  # (n*(2m+1), 1, 28, 28)
    marks = draw_marks(slot_mark.clamp(min=0).flatten(), gen, printed_signs, drawn=(is_mark & present).flatten())
    d = torch.where(is_mark.reshape(-1, 1, 1, 1), marks, d)
    d = augment_batch(d, augment, gen, elastic=2.0, labels=torch.where(is_mark, -1, lab).flatten(), **writing)
    return d, lab, present, is_mark, slot_mark, chained


def _zero_runs(idx: torch.Tensor, length: torch.Tensor, labels: torch.Tensor, share: float,
               gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A share of the lines end in a run of 2-4 zeros (all their digits but the first, at most), as
    amounts do ("1000", "15.000"; a fifth of the bank checks end so), where digits drawn at random
    almost never do. Returns `idx` (n, m: each digit's image) with the run's digits swapped for
    zeros, and which digits are in a run (n, m)."""
    n, m = idx.shape
    dev = idx.device
    zeros = (labels == 0).nonzero()[:, 0]
    run = torch.minimum(randint(2, 5, (n, 1), gen, dev), length[:, None] - 1)
    on = (uniform((n, 1), gen, dev) < share) & (run >= 2)
    j = torch.arange(m, device=dev)[None]
    chained = on & (j >= length[:, None] - run) & (j < length[:, None])
    return torch.where(chained, zeros[randint(0, len(zeros), (n, m), gen, dev)], idx), chained


def _lead_plan(n: int, marks: float, gen: torch.Generator | None, dev) -> torch.Tensor:
    """The sign before each of `n` lines (n, 1): one of LEADING (index into MARKS) on a share PREFIX
    of the `marks` share of lines, else -1."""
    if marks <= 0:
        return torch.full((n, 1), -1, dtype=torch.long, device=dev)
    kind = torch.tensor([MARKS.index(t) for t in LEADING], device=dev)[choice(list(LEADING.values()), n, gen, dev)]
    return torch.where(uniform((n,), gen, dev) < marks * PREFIX, kind, -1)[:, None]


class _Layout(NamedTuple):
    """Where each slot's glyph goes (all (n, 2m) but W and the line's own (n, 1) frame)."""

    x0: torch.Tensor  # the glyph's ink box in its own 28x28 pixels: left and top
    y0: torch.Tensor
    k: torch.Tensor  # output px per source px
    a: torch.Tensor  # sideways stretch
    left: torch.Tensor  # in source pixels of the line, before framing
    w: torch.Tensor
    top: torch.Tensor
    bottom: torch.Tensor
    gap: torch.Tensor  # to the glyph before (negative: touching or overlapping)
    line_top: torch.Tensor  # (n, 1)
    f: torch.Tensor  # (n, 1) frame: the line's ink box becomes WRITING px tall
    W: int  # strip width, a multiple of 4 that fits the widest line


def _lay_out(d: torch.Tensor, present: torch.Tensor, is_mark: torch.Tensor, slot_mark: torch.Tensor, stretch: float,
             line_stretch: float, gen: torch.Generator | None, small_tail: float = 0.0,
             run: torch.Tensor | None = None) -> _Layout:
    """Lay the line out in "source pixels" (the digit's own 28x28 pixels at scale 1): MNIST writing is
    ~20 of them tall. Sizes vary +-15%, baselines +-8% of the writing height; marks sit where they do.
    Each glyph is widened by its own factor up to `stretch` and the whole line by one up to `line_stretch`;
    a share `small_tail` of the lines is written smaller from one digit on (`_tail_sizes`). `run` (n,
    2m + 1): the slots of a chain of zeros (`_zero_runs`), written at 0.65-1 of the size, each
    touching the one before (`_chain_joins` joins them)."""
    n, m2 = present.shape
    dev = d.device
    rnd = lambda *shape: uniform(shape, gen, dev)  # noqa: E731
    ink = d[:, 0] > 0.3
    x0, x1 = _ink_extent(ink.any(1))  # columns (n*m2,)
    y0, y1 = _ink_extent(ink.any(2))  # rows
    x0, x1, y0, y1 = (t.view(n, m2).float() for t in (x0, x1, y0, y1))
    s = 0.85 + 0.3 * rnd(n, m2)
    if small_tail > 0:
        s = s * _tail_sizes(is_mark, small_tail, gen)
    if run is not None:
        s = torch.where(run, s * uniform((n, 1), gen, dev, 0.65, 1.0), s)
    a = torch.exp(math.log(stretch) * (2 * rnd(n, m2) - 1)) if stretch > 1 else torch.ones(n, m2, device=dev)
    # One factor per line: so that no reader learns how wide a line of so many digits is.
    wide = torch.exp(math.log(line_stretch) * (2 * rnd(n, 1) - 1)) if line_stretch > 1 else torch.ones(n, 1, device=dev)
    a = a * wide
    w, h = (x1 - x0) * s * a, (y1 - y0) * s
    mode = choice(list(SPACING_MIX.values()), n, gen, dev)
    lo = torch.tensor([GAP[k][0] for k in SPACING_MIX], device=dev)[mode]
    hi = torch.tensor([GAP[k][1] for k in SPACING_MIX], device=dev)[mode]
    gap = (lo[:, None] + (hi - lo)[:, None] * rnd(n, m2)) * WRITING * wide
    if run is not None:
        gap = torch.where(_chained_to_previous(run, present), (-0.3 + 0.25 * rnd(n, m2)) * WRITING * wide, gap)
    # The first glyph starts the line; a sign before a number (slot 0) is set apart from it.
    gap[:, 1] = torch.where(present[:, 0], gap[:, 1].clamp(min=0), 0)
    gap[:, 0] = 0
    # Overlap never swallows a neighbour: the next glyph starts at least 30% of the way into the one
    # written before it (the last present slot).
    slot = torch.arange(m2, device=dev).expand(n, m2)
    before = torch.cummax(torch.where(present, slot, -1), 1).values.roll(1, 1)  # (n, m2), -1: none
    prev_w = torch.where(before >= 0, w.gather(1, before.clamp(min=0)), 0)
    gap = torch.maximum(gap, -0.7 * torch.minimum(w, prev_w))
    widths = torch.where(present, w, 0)
    left = torch.cumsum(torch.where(present, gap, 0) + widths.roll(1, 1) * (torch.arange(m2, device=dev) > 0), 1)
    bottom = WRITING * (1 + 0.08 * (2 * rnd(n, m2) - 1))
    lo_b = torch.tensor([MARK_BOTTOM[k][0] for k in MARKS], device=dev)[slot_mark.clamp(min=0)]
    hi_b = torch.tensor([MARK_BOTTOM[k][1] for k in MARKS], device=dev)[slot_mark.clamp(min=0)]
    bottom = torch.where(is_mark, WRITING * (lo_b + (hi_b - lo_b) * rnd(n, m2)), bottom)
    top = bottom - h
    big = torch.finfo(torch.float32).max
    line_top = torch.where(present, top, big).amin(1, keepdim=True)
    line_bottom = torch.where(present, bottom, -big).amax(1, keepdim=True)
    line_right = torch.where(present, left + w, 0).amax(1, keepdim=True)
    f = WRITING / (line_bottom - line_top)
    width = MARGIN * 2 + f[:, 0] * line_right[:, 0]  # (n,)
    W = int(math.ceil(float(width.max()) / 4) * 4)
    return _Layout(x0, y0, s * f, a, left, w, top, bottom, gap, line_top, f, W)


def _tail_sizes(is_mark: torch.Tensor, share: float, gen: torch.Generator | None) -> torch.Tensor:
    """Each slot's size factor (n, 2m + 1): on a share of the lines, the digits from a random one on
    (never the first) are written at TAIL_SIZE of the others' size, on the same baseline, as many
    writers make the thousands' or the cents' zeros of an amount ("1.000", "25,00"); marks keep
    their size. MNIST's digits are all one size, so a reader trained on them alone reads small
    zeros beside a tall first digit as the strokes joining them."""
    n, m2 = is_mark.shape
    dev = is_mark.device
    first = 1 + 2 * randint(1, max(2, (m2 - 1) // 2), (n, 1), gen, dev)  # digit j sits in slot 1 + 2j
    factor = uniform((n, 1), gen, dev, *TAIL_SIZE)
    chosen = uniform((n, 1), gen, dev) < share
    later = torch.arange(m2, device=dev)[None] >= first
    return torch.where(chosen & later & ~is_mark, factor, torch.ones((), device=dev))


def _draw(d: torch.Tensor, present: torch.Tensor, at: _Layout) -> torch.Tensor:
    """The written glyphs drawn where `at` puts them, one strip per line: (n, 1, 28, W). One
    grid_sample at 2x, then 2x2 averaging: shrinking by sampling alone would alias."""
    n, m2 = present.shape
    ss, dev = 2, d.device
    oy = (torch.arange(STRIP_HEIGHT * ss, device=dev) + 0.5) / ss  # output pixel centres
    ox = (torch.arange(at.W * ss, device=dev) + 0.5) / ss
    k = at.k.view(-1, 1)
    u = at.x0.view(-1, 1) + ((ox[None] - MARGIN) - (at.f * at.left).view(-1, 1)) / (k * at.a.view(-1, 1))  # (n*m2, W*ss) source x
    v = at.y0.view(-1, 1) + ((oy[None] - MARGIN) - (at.f * (at.top - at.line_top)).view(-1, 1)) / k  # (n*m2, H*ss)
    keep = present.flatten()  # only glyphs that are written are drawn
    grid = torch.stack(torch.broadcast_tensors(u[keep][:, None, :], v[keep][:, :, None]), -1) * (2 / 28) - 1
    drawn = F.grid_sample(d[keep], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    strips = torch.zeros(n * m2, 1, STRIP_HEIGHT * ss, at.W * ss, device=dev)
    strips[keep] = drawn
    return F.avg_pool2d(strips.view(n, m2, STRIP_HEIGHT * ss, at.W * ss).amax(1, keepdim=True), ss)


def _joins(boxes: tuple[torch.Tensor, ...], close: torch.Tensor, present: torch.Tensor, p: float, width: int,
           gen: torch.Generator | None) -> torch.Tensor:
    """Cursive joins (n, 28, width): with probability `p`, a stroke from low on the right of each digit
    to the middle or top of the left of the next, where the next is `close` (written near it, no mark
    between). `boxes` are the glyphs' (x0, x1, y0, y1) in strip pixels, (n, m2) each, digits at even slots.
    The stroke rises: a dash or an equals sign between digits is level, and must stay a mark."""
    x0, x1, y0, y1 = (b[:, ::2] for b in boxes)  # the digits' slots
    n, m = x0.shape
    dev = x0.device
    if m < 2:  # lines of one digit: nothing to join
        return torch.zeros(n, STRIP_HEIGHT, width, device=dev)
    u = lambda lo, hi: uniform((n, m - 1), gen, dev, lo, hi)  # noqa: E731
    pair = close[:, 2::2] & present[:, :-2:2] & ~present[:, 1:-1:2] & (u(0.0, 1.0) < p)  # (n, m-1)
    a, b = slice(0, m - 1), slice(1, m)
    sx = x1[:, a] - u(0.15, 0.35) * (x1[:, a] - x0[:, a])
    sy = y0[:, a] + u(0.6, 0.95) * (y1[:, a] - y0[:, a])
    ex = x0[:, b] + u(0.15, 0.35) * (x1[:, b] - x0[:, b])
    ey = y0[:, b] + u(0.15, 0.55) * (y1[:, b] - y0[:, b])
    ink, _ = segment(STRIP_HEIGHT, width, sx.flatten(), sy.flatten(), ex.flatten(), ey.flatten(), u(0.7, 1.3).flatten())
    return (ink.view(n, m - 1, STRIP_HEIGHT, width) * pair[:, :, None, None]).amax(1)


def _chained_to_previous(run: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The slots (n, 2m + 1) of `run` (`_lay_out`) whose digit follows another of the run with no
    mark between: the pen runs on to them."""
    out = torch.zeros_like(run)
    out[:, 3::2] = run[:, 3::2] & run[:, 1:-2:2] & ~present[:, 2:-1:2]
    return out


def _chain_joins(boxes: tuple[torch.Tensor, ...], run: torch.Tensor, present: torch.Tensor, width: int,
                 gen: torch.Generator | None) -> torch.Tensor:
    """A run of zeros written as one chain (n, 28, width): the pen ends each 0 at its top and runs on
    to the top of the next. Real amounts' zeros are so written ("1.000", "30.000"), and a reader
    that has seen only lone zeros reads the joined loops as 2s. `boxes` as `_joins` takes them;
    `run` and `present` (n, 2m + 1) as `_lay_out` takes them."""
    x0, x1, y0, y1 = (b[:, 1::2] for b in boxes)  # the digits' slots
    n, m = x0.shape
    dev = x0.device
    if m < 2:
        return torch.zeros(n, STRIP_HEIGHT, width, device=dev)
    u = lambda lo, hi: uniform((n, m - 1), gen, dev, lo, hi)  # noqa: E731
    pair = _chained_to_previous(run, present)[:, 3::2]  # (n, m-1): digit j + 1 joined to digit j
    a, b = slice(0, m - 1), slice(1, m)
    sx = x0[:, a] + u(0.45, 0.85) * (x1[:, a] - x0[:, a])
    sy = y0[:, a] + u(0.0, 0.2) * (y1[:, a] - y0[:, a])
    ex = x0[:, b] + u(0.1, 0.45) * (x1[:, b] - x0[:, b])
    ey = y0[:, b] + u(0.0, 0.3) * (y1[:, b] - y0[:, b])
    ink, _ = segment(STRIP_HEIGHT, width, sx.flatten(), sy.flatten(), ex.flatten(), ey.flatten(), u(0.7, 1.3).flatten())
    return (ink.view(n, m - 1, STRIP_HEIGHT, width) * pair[:, :, None, None]).amax(1)


def _lean(x: torch.Tensor, shear: torch.Tensor) -> torch.Tensor:
    """Shear each line (B, 1, H, W) about its middle row: `shear` (B,) px of x per px of height."""
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 1] = -shear * h / w  # affine_grid's units: x spans w, y spans h
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def document_clutter(x: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """What a real document leaves in a line's ink after the page is set aside, each with probability
    0.25 x strength (the box's edge: 0.1 x): a guide line or underline across part of the line, the
    faint parallel waves of a printed security pattern, a box's edge at one end."""
    b, _, h, w = x.shape
    dev = x.device
    u = lambda *shape, lo=0.0, hi=1.0: uniform(shape, gen, dev, lo, hi)  # noqa: E731
    p = min(0.25 * strength, 0.9)
    # A guide line: under the writing, or through its lower half, over 50-100% of the width.
    y = torch.where(u(b) < 0.6, u(b, lo=h - 5, hi=h - 1.5), u(b, lo=h / 2, hi=h - 5))
    x0, span = u(b) * 0.3 * w, u(b, lo=0.5, hi=1.0) * w
    tilt = u(b, lo=-0.02, hi=0.02) * span
    line = segment(h, w, x0, y + tilt, x0 + span, y - tilt, u(b, lo=0.3, hi=0.8))[0] * u(b, 1, 1, lo=0.4, hi=1.0)
    x = torch.where(u(b, 1, 1, 1) < p, torch.maximum(x, line[:, None]), x)
    # A security pattern's residue: faint thin waves, a few px apart, at any angle.
    yy = torch.arange(h, device=dev, dtype=x.dtype)[None, :, None]
    xx = torch.arange(w, device=dev, dtype=x.dtype)[None, None, :]
    angle, period = u(b, 1, 1, lo=0, hi=math.pi), u(b, 1, 1, lo=3.0, hi=7.0)
    phase = (xx * torch.cos(angle) + yy * torch.sin(angle)) * (2 * math.pi / period) + 2 * torch.sin(xx / u(b, 1, 1, lo=6, hi=20))
    waves = ((torch.cos(phase) - 0.8) / 0.2).clamp(0, 1) * u(b, 1, 1, lo=0.15, hi=0.45)
    x = torch.where(u(b, 1, 1, 1) < p, torch.maximum(x, waves[:, None]), x)
    # A box's edge: a vertical line at one end of the strip.
    col = torch.where(u(b) < 0.5, u(b, lo=0.5, hi=3.5), w - u(b, lo=0.5, hi=3.5))
    edge = segment(h, w, col, torch.zeros(b, device=dev), col + u(b, lo=-1, hi=1), torch.full((b,), h - 1.0, device=dev),
                   u(b, lo=0.3, hi=0.9))[0]
    return torch.where(u(b, 1, 1, 1) < p * 0.4, torch.maximum(x, edge[:, None]), x)
