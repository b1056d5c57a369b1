"""Read a handwritten number: find the digits written along a line, read each, left to right.

    rec = digitrec.load_model()
    r = read(rec, "meter.jpg")      # or rec.read("meter.jpg")
    r.text                          # "2026"
    [(d.digit, d.confidence, d.box) for d in r.digits]

The page becomes an ink map exactly as for a single digit (`preprocess.ink_map`, with shadows,
specks and ruled lines set aside by `preprocess.ink_components`). Then:

1. Pieces of ink that share columns are one digit: a 5 whose bar lifted off, a 4 drawn in two
   strokes, a stroke broken by a dry pen. Specks far smaller than the writing are dropped.
2. A piece much wider than the writing is tall holds digits that touch or overlap. Candidate cuts
   are the columns where the ink is thinnest; every way of cutting it into plausible digit widths
   is scored by the classifier (the product of each part's confidence, with a prior on widths)
   and the best wins: the model's own certainty decides where one digit ends.
3. Each digit's ink goes through the single-digit framing (`preprocess.frame_like_mnist`) and
   all of them through the model in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .preprocess import (NoDigitFound, _resize, frame_like_mnist, ink_components, ink_map, load_image, to_rgb)

READ_HEIGHT = 160  # working height: ample for digits (they are framed at 20 px), cheap to filter
READ_WIDTH = 2400
SPLIT_ABOVE = 0.95  # a group wider than this x the writing height may hold several digits,
SPLIT_TYPICAL = 1.5  # and if wider than this x the writer's typical digit
WIDTH_PRIOR = (0.12, 1.25)  # plausible digit width / writing height, free of penalty (a slanted 3 can be wide)
TYPICAL_WIDTH = 0.62  # a digit's usual width / writing height, when the line gives no better estimate
WIDE_SLOPE = 6.0  # log-probability lost per writing height of excess width
NARROW = 0.12  # narrower than this x the writing height is a fragment, not a digit (a 1 is ~0.15)
MAX_WIDTH = 1.3  # no cut-out segment is wider than this x the writing height
SEGMENT_COST = 0.5  # log-confidence a cut must buy: a digit is not split for a marginal gain


@dataclass
class DigitRead:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the source image's pixels
    probabilities: list[float] = field(default_factory=list)

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


def _cut_candidates(mask: np.ndarray, height: float) -> list[int]:
    """Columns where the ink is thinnest (local minima of the column profile), a few per digit width."""
    profile = mask.sum(axis=0).astype(float)
    w = len(profile)
    k = max(1, int(0.06 * height))
    smooth = np.convolve(profile, np.ones(2 * k + 1) / (2 * k + 1), mode="same")
    cands = [x for x in range(k, w - k) if smooth[x] <= smooth[max(0, x - k):x + k + 1].min() + 1e-9]
    # Thin out runs of equal minima, keep at most a handful per digit width.
    out: list[int] = []
    for x in cands:
        if not out or x - out[-1] > max(2, int(0.1 * height)):
            out.append(x)
    return out


def _frame(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    if mask.sum() < 3:
        return None
    return frame_like_mnist(np.where(mask, ink, 0), mask)


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
        comp = ink_components(ink)
    except NoDigitFound:
        return reading
    n = len(comp.slices)
    kept = [i for i in range(n) if comp.keep[i]]
    if not kept:
        return reading
    heights = np.array([comp.slices[i][0].stop - comp.slices[i][0].start for i in kept])
    big = max(comp.mass[i] for i in kept)
    # Specks: a small fraction of the largest piece's ink and short against the writing.
    tall = float(np.percentile(heights, 75))
    pieces = [i for i in kept if comp.mass[i] >= 0.04 * big or (comp.slices[i][0].stop - comp.slices[i][0].start) >= 0.4 * tall]

    groups = _groups(comp.slices, pieces)
    masks = []
    for members in groups:
        m = np.isin(comp.labels, np.array(members) + 1)
        if comp.cut is not None and comp.cut.any():
            m |= comp.cut & ndi.binary_dilation(m, iterations=2)
        masks.append(m)
    boxes = [(np.nonzero(m.any(0))[0][[0, -1]], np.nonzero(m.any(1))[0][[0, -1]]) for m in masks]
    height = float(np.median([ys[1] - ys[0] + 1 for _, ys in boxes]))
    # How wide this writer's digits are: the median of the groups that look like one digit each.
    single = [xs[1] - xs[0] + 1 for xs, _ in boxes if xs[1] - xs[0] + 1 <= SPLIT_ABOVE * height]
    typical = float(np.median(single)) if len(single) >= 2 else TYPICAL_WIDTH * height

    # Segments to classify: each group whole and, for groups wider than a digit, every stretch
    # between two candidate cuts that could be one digit. Then per group a best path through the
    # cuts (dynamic programming) by the classifier's confidence and a prior on digit widths.
    segments: list[tuple[int, int, int]] = []  # (group, x0, x1) column ranges in working pixels
    lattices = []  # per group: cut positions, and segment index per (i, j) pair of positions
    for g, (m, (xs, _)) in enumerate(zip(masks, boxes)):
        x0, x1 = int(xs[0]), int(xs[1]) + 1
        cuts = [x0, x1]
        if x1 - x0 > max(SPLIT_ABOVE * height, SPLIT_TYPICAL * typical):
            local = _cut_candidates(m[:, x0:x1], height)
            grid = np.arange(x0, x1, max(2, int(0.08 * height)))  # overlapping strokes leave no thin column
            cuts = sorted(set([x0, x1, *[c + x0 for c in local], *grid.tolist()]))
        seg = {}
        for i, a in enumerate(cuts):
            for j in range(i + 1, len(cuts)):
                b = cuts[j]
                if (i, j) != (0, len(cuts) - 1) and not WIDTH_PRIOR[0] * height <= b - a <= MAX_WIDTH * height:
                    continue
                segments.append((g, a, b))
                seg[(i, j)] = len(segments) - 1
        lattices.append((cuts, seg))

    framed, valid = [], []
    for g, a, b in segments:
        m = np.zeros_like(masks[g])
        m[:, a:b] = masks[g][:, a:b]
        f = _frame(ink, m)
        valid.append(f is not None)
        framed.append(f if f is not None else (np.zeros((28, 28), np.float32), (a, 0, b, 1)))
    probs = rec.probabilities(np.stack([f[0] for f in framed])).numpy() if framed else np.zeros((0, 10))

    def seg_score(k: int) -> float:
        if not valid[k]:
            return -np.inf
        _, a, b = segments[k]
        r = (b - a) / height
        # Wider than a digit can be: probably two digits run together.
        prior = -WIDE_SLOPE * max(0.0, r - WIDTH_PRIOR[1]) - 6.0 * max(0.0, NARROW - r)
        return float(np.log(probs[k].max() + 1e-9)) + prior - SEGMENT_COST

    for g, (cuts, seg) in enumerate(lattices):
        best = [0.0] + [-np.inf] * (len(cuts) - 1)
        back = [0] * len(cuts)
        for j in range(1, len(cuts)):
            for i in range(j):
                k = seg.get((i, j))
                if k is not None and best[i] + seg_score(k) > best[j]:
                    best[j], back[j] = best[i] + seg_score(k), i
        path, j = [], len(cuts) - 1
        while j > 0:
            path.append(seg[(back[j], j)])
            j = back[j]
        for k in reversed(path):
            if not valid[k]:
                continue
            x0, y0, x1, y1 = framed[k][1]
            box = (int(x0 / scale), int(y0 / scale), min(W, int(np.ceil(x1 / scale))), min(H, int(np.ceil(y1 / scale))))
            p = probs[k]
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
