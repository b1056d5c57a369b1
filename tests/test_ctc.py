import math

import numpy as np
import torch

from digitrec.ctc import BLANK, CLASSES, decode


def _frames(seq, classes=BLANK + 1):
    lp = np.full((1, len(seq), classes), math.log(0.01 / (classes - 1)), np.float32)
    for t, c in enumerate(seq):
        lp[0, t, c] = math.log(0.99)
    return lp


def test_decode_collapses_repeats_and_needs_a_blank_between_equal_symbols():
    dot = CLASSES.index(".")
    got = decode(_frames([BLANK, 1, 1, BLANK, 1, dot, 7, 7, BLANK, BLANK, 0]))[0]
    assert [d.symbol for d in got] == [1, 1, dot, 7, 0] and [d.is_digit for d in got] == [True, True, False, True, True]
    assert [(d.start, d.end) for d in got] == [(1, 3), (4, 5), (5, 6), (6, 8), (10, 11)]
    assert all(0.98 < d.confidence <= 1 and abs(float(d.probabilities.sum()) - 1) < 1e-5 for d in got)
    assert decode(_frames([BLANK] * 5))[0] == []
    # A digits-only reader (11 classes, blank last) decodes too.
    assert [d.symbol for d in decode(_frames([10, 3, 10, 3], classes=11))[0]] == [3, 3]


def _torch_decode(logp: torch.Tensor) -> list[list[tuple]]:
    """The torch best path `lines.decode` computed before it moved to numpy, as (symbol, start, end, probabilities)."""
    p = logp.exp()
    blank = p.shape[-1] - 1
    sym = p[..., :blank] / p[..., :blank].sum(-1, keepdim=True).clamp_min(1e-9)
    out = []
    for b, best in enumerate(p.argmax(-1).tolist()):
        runs, prev = [], blank
        for t, c in enumerate(best):
            if c != blank and c == prev:
                runs[-1][2] = t + 1
            elif c != blank:
                runs.append([c, t, t + 1])
            prev = c
        out.append([(c, a, z, sym[b, a + int(sym[b, a:z, c].argmax())].numpy()) for c, a, z in runs])
    return out


def _same(got, want) -> bool:
    return len(got) == len(want) and all((d.symbol, d.start, d.end) == w[:3] and np.abs(d.probabilities - w[3]).max() <= 1e-6
                                         for d, w in zip(got, want))


def test_decode_gives_what_the_torch_decode_gave_on_random_and_real_outputs(mnist):
    rng = np.random.default_rng(0)
    for _ in range(200):  # sharp and flat outputs, long and short, with and without marks
        z = rng.normal(size=(2, int(rng.integers(1, 50)), int(rng.choice([11, BLANK + 1])))) * rng.uniform(0.5, 6)
        lp = torch.log_softmax(torch.from_numpy(z.astype(np.float32)), -1)
        assert all(_same(g, w) for g, w in zip(decode(lp.numpy()), _torch_decode(lp)))
    from digitrec.lines import compose_lines
    from digitrec.loading import load
    from digitrec.model_file import normalise

    ck = load(task="line")  # the shipped reader on composed lines: real outputs, with runs and ties of blanks
    x, _, _ = compose_lines(mnist.test_images[:500], mnist.test_labels[:500], 32, gen=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = ck.model.eval()(normalise(x, ck.mean, ck.std))
    got, want = decode(lp.numpy()), _torch_decode(lp)
    assert sum(len(g) for g in got) > 64 and all(_same(g, w) for g, w in zip(got, want))
