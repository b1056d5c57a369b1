"""The line reader's alphabet, and CTC's best path: from its log-probabilities to the symbols read.

The reader (`models.linecnn`) gives, for each frame of STRIDE columns of a framed line,
log-probabilities over CLASSES (the ten digits, then the marks written among them) and, last,
CTC's blank. `decode` turns them into symbols with numpy alone, so `digitrec read` on the reader's
ONNX export never imports torch; `lines` composes the training lines with the same alphabet.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIGITS = tuple(str(d) for d in range(10))
# Marks people write between and after digits, and the signs printed or written before an amount
# or a number ("$", "#"): read as what they are (`Reading.formatted`), never taken for digits. Class
# 10 + i is MARKS[i]; CTC's blank comes last. (Readers trained before "$" and "#" have 6 marks; their
# classes are the first 17 of these, blank last, and read as they always did.)
MARKS = (".", ",", "-", "/", ":", "=", "$", "#")
CLASSES = DIGITS + MARKS
BLANK = len(CLASSES)
STRIDE = 2  # columns per output frame of `linecnn`


class Decoded(NamedTuple):
    """One symbol read from a line (a digit, or one of MARKS): its class index into CLASSES, the
    frames [start, end) it came from, and the probabilities of the symbols (blank left out) at the
    frame where it was surest."""
    symbol: int
    probabilities: np.ndarray  # (C,) float32 over the reader's classes, blank excluded
    start: int
    end: int

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.symbol])

    @property
    def is_digit(self) -> bool:
        return self.symbol < len(DIGITS)


def decode(logp) -> list[list[Decoded]]:
    """CTC best path per line of (B, T, C + 1) log-probabilities (blank last; a numpy array, or
    anything `np.asarray` takes, such as a CPU tensor): the symbols of each line, left to right."""
    p = np.exp(np.asarray(logp, dtype=np.float32))
    blank = p.shape[-1] - 1
    sym = p[..., :blank] / np.maximum(p[..., :blank].sum(-1, keepdims=True), np.float32(1e-9))  # (B, T, C)
    best = p.argmax(-1)  # (B, T)
    out = []
    for b in range(p.shape[0]):
        runs: list[list[int]] = []  # [symbol, start, end]
        prev = blank
        for t, c in enumerate(best[b].tolist()):
            if c != blank and c == prev:
                runs[-1][2] = t + 1
            elif c != blank:
                runs.append([c, t, t + 1])
            prev = c
        out.append([Decoded(c, sym[b, a + int(sym[b, a:z, c].argmax())], a, z) for c, a, z in runs])
    return out
