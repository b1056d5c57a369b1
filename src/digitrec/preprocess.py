"""Any image of handwriting -> the ink on it, and the digit among the marks (MNIST's recipe).

MNIST digits are white ink on black, scaled to fit a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in 28x28 so that their centre of mass is the centre. A user's photo is
none of that, so resizing it to 28x28 (the tutorial's way) reads about one digit in ten. Here:

1. decode anything Pillow reads and measure its "ink", the departure from the paper under each
   pixel, at a working resolution that is looked at again more finely when nothing is found
   (`ink.find_ink`);
2. keep the digit among the marks: the pieces of ink (`components.ink_components`: tint bands,
   ruled lines, boxes and shadows set aside), grown from the largest (`digit_mask`);
3. crop, normalise stroke width and contrast, fit 20x20, centre by mass in 28x28
   (`framing.frame_like_mnist`).

`preprocess(source)` does all of it for one digit; `read` finds a line of digits through the same
`ink.find_ink`. An image with no ink raises NoDigitFound, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .components import ink_components
from .framing import CANVAS, frame_like_mnist
from .images import load_image
from .ink import Doubtful, NoDigitFound, decode, find_ink
from .labelling import label
from .morphology import dilate_mask
from .printed import drop_box_edges

# Long side of a digit's working resolution: ample for a 20 px result, cheap to filter. Validation
# digits read alike from 96 to 192 (benchmarks/work_side.py); the real user digits hold down to 144
# (455 at 128, 452 at 96). The work falls with the pixels (a 400x300 photo: 44% fewer than at 192).
WORK_SIDE = 144
MARGIN = 0.12  # paper added all round a digit's image (`ink.with_margin`): a tight crop is framed as a photo is
DOT_FILL, DOT_SIDE = 0.65, 4  # a dot fills this much of its box, and is this many px across or more: `_dot_like`
SHADOW_INK = 0.3  # marks fainter than this (median ink) reaching the edge are doubtful: `_shadow_like`


@dataclass
class Preprocessed:
    """The 28x28 view the model gets, and what was found on the way."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like MNIST
    box: tuple[int, int, int, int]  # the digit's bounding box in the source image (x0, y0, x1, y1)
    polarity: str  # "dark-on-light" or "light-on-dark"
    source_size: tuple[int, int]  # (width, height) of the decoded source
    digits_found: int = 1  # digit-sized marks side by side: more than 1 is a number, for `read`


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of the digit's strokes: threshold, then keep the components that make the digit."""
    return _digit_and_count(ink)[0]


def _digit_and_count(ink: np.ndarray, doubt: bool = False) -> tuple[np.ndarray, int]:
    """The digit's mask, and how many digit-sized marks stand side by side in its row (1 for a digit
    alone). `doubt`: raise Doubtful (with them) when they look like a dot (`_dot_like`) or a
    shadow's edge (`_shadow_like`)."""
    h, w = ink.shape
    comp = ink_components(ink, one_digit=True)
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
        digit |= cut & dilate_mask(digit, iterations=2)
    count = _digits_in_row(slices, mass, keep, main)
    if doubt:
        dot = _dot_like(digit)
        if dot or _shadow_like(ink, digit):
            raise Doubtful((digit, count), at_edge=not dot)
    return digit, count


def _shadow_like(ink: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the marks `mask` are faint (median ink under SHADOW_INK) and reach the picture's
    edge: the edge of a shadow falling across a phone photo, where a small digit's strokes faded as
    the photo was shrunk (validation digits small in phone photos: every such find was a shadow's;
    the digits found stood 0.38-0.91 over their paper, away from the edges)."""
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    at_edge = rows[0] or rows[-1] or cols[0] or cols[-1]
    return bool(at_edge) and float(np.median(ink[mask])) < SHADOW_INK


def _dot_like(mask: np.ndarray) -> bool:
    """Whether the marks `mask` are one solid round dot: as wide as tall, DOT_SIDE px or more, filling
    DOT_FILL of their box and enclosing no paper (a thick marker's 0 keeps its hole): a speck of ink
    or a pen's tap beside a small digit whose strokes faded as the photo was shrunk. No digit is a
    disk. (A smaller piece is too few pixels to tell: a fragment of a broken stroke is square too.)"""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if min(h, w) < DOT_SIDE or not 0.67 <= h / w <= 1.5 or mask.sum() < DOT_FILL * h * w:
        return False
    paper = np.pad(~mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], 1, constant_values=True)
    return label(paper)[1] == 1  # the paper outside it, and no hole


def _pick_digit(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """`find_ink`'s pick for one digit: marks like a dot or a shadow's edge are doubtful, and closer
    looks are taken before they are settled for."""
    return _digit_and_count(ink, doubt=True)


def _digits_in_row(slices: list, mass: np.ndarray, keep: np.ndarray, main: int) -> int:
    """How many digits stand in the chosen digit's row: pen strokes about its height (half of it,
    at least), sharing most of its rows, with a quarter of its ink; pieces that share columns are
    one digit (a broken stroke, a 5's bar), and a piece much wider than tall is touching digits.
    A user who gave a number to `predict` is told so."""
    sy = slices[main][0]
    height = sy.stop - sy.start
    spans = []
    for i, (ry, rx) in enumerate(slices):
        overlap = min(ry.stop, sy.stop) - max(ry.start, sy.start)
        if keep[i] and mass[i] >= 0.25 * mass[main] and ry.stop - ry.start >= 0.5 * height and overlap >= 0.5 * height:
            spans.append((rx.start, rx.stop))
    groups: list[list[int]] = []
    for a, b in sorted(spans):
        if groups and a < groups[-1][1] - 0.25 * (b - a):  # shares columns with the digit before
            groups[-1][1] = max(groups[-1][1], b)
        else:
            groups.append([a, b])
    # Touching digits are one piece, wider than any digit is tall: about 0.8 of a height per digit.
    count = sum(max(2, round((b - a) / (0.8 * height))) if b - a > 1.6 * height else 1 for a, b in groups)
    return max(count, 1)


def preprocess(source, *, work_side: int = WORK_SIDE) -> Preprocessed:
    """Any image of one handwritten digit -> MNIST-style 28x28 (see module docstring). `work_side`:
    the long side of the working resolution the ink is first looked for at (WORK_SIDE).

    Raises ImageError if the input cannot be read, NoDigitFound if it holds no digit.
    """
    fit = (work_side, work_side)
    img = decode(source, fit)  # decoded once, for both looks
    try:
        found, (mask, digits) = find_ink(img, fit, _pick_digit, clean=drop_box_edges, wide_strokes=True,
                                      past_page=True)
        tight = _touches_edge(mask)
    except NoDigitFound:
        # A digit that fills its picture (a thick marker's 1 cut from a form) can leave too little
        # paper at the border to measure the paper by: the same second look.
        tight = True
    if tight:
        # Cropped tight (a form's field, a postal-code box): the paper's colour and the digit's
        # outline are both misjudged at the edge. Look again with paper added all round.
        found, (mask, digits) = find_ink(img, fit, _pick_digit, clean=drop_box_edges, margin=MARGIN,
                                         wide_strokes=True, past_page=True)
    image, box = frame_like_mnist(found.ink, mask)
    x0, y0, x1, y1 = box = found.box_to_source(box)
    if x1 <= x0 or y1 <= y0:  # all of it in the paper added round a tight crop: the rim of a lone speck
        raise NoDigitFound("no digit found: only a speck at the image's edge")
    return Preprocessed(image=image, box=box, polarity=found.polarity, source_size=found.source_size, digits_found=digits)


def _touches_edge(mask: np.ndarray) -> bool:
    """Whether the digit reaches (within 3% of the image) an edge of it."""
    b = max(2, round(0.03 * max(mask.shape)))
    return bool(mask[:b].any() or mask[-b:].any() or mask[:, :b].any() or mask[:, -b:].any())


def naive_preprocess(source) -> np.ndarray:
    """The tutorial's pipeline, for comparison: grey, resize to 28x28, nothing else. (28, 28) float32."""
    grey = load_image(source).convert("L")
    return np.asarray(grey.resize((CANVAS, CANVAS)), dtype=np.float32) / 255.0
