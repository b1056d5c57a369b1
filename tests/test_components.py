"""The marks on a page as pieces of ink (`components.ink_components`): a comb's ticks and baseline,
ruled lines and tint bands across the writing, and a digit in a lighter pen beside bold ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.components import ink_components


def _comb_ink(posts: int = 30) -> np.ndarray:
    """A 140x300 ink map: a comb field (a 2-px baseline, 2-px ticks `posts` px tall between four
    cells; too short for a ruled line) with a digit-like stroke 60 px tall in each cell, 6 px wide;
    the third touches a tick, so the comb's piece is as tall as the digit."""
    ink = np.zeros((140, 300), np.float32)
    ink[110:112, 10:230] = 0.6
    for x in (10, 65, 120, 175, 228):
        ink[110 - posts:110, x:x + 2] = 0.6
    for x in (30, 85, 140, 195):
        ink[40:100, x:x + 6] = 0.9
    ink[78:84, 118:140] = 0.9  # the third digit's bar, across the top of the tick at 120
    return ink


def test_a_comb_fields_ticks_and_baseline_are_not_writing():
    ink = _comb_ink()
    comp = ink_components(ink)
    kept = np.isin(comp.labels, np.flatnonzero(comp.keep) + 1)
    assert not kept[110:112].any()  # the baseline
    assert not kept[85:110, 10:12].any() and not kept[85:110, 120:122].any()  # ticks, one touched by a digit
    for x in (30, 85, 140, 195):
        assert kept[40:100, x:x + 6].mean() > 0.95  # every digit's stroke kept
    assert kept[78:84, 122:140].all()  # and the bar that crossed a tick


def test_strokes_standing_on_an_underline_are_not_a_comb():
    # Posts as tall as the writing (1s on the line they are underlined by) are digits, not ticks.
    ink = np.zeros((140, 240), np.float32)
    ink[110:112, 10:230] = 0.6
    for x in (60, 120, 180):
        ink[50:110, x:x + 3] = 0.9
    comp = ink_components(ink)
    kept = np.isin(comp.labels, np.flatnonzero(comp.keep) + 1)
    for x in (60, 120, 180):
        assert kept[50:105, x:x + 3].mean() > 0.95


def _strokes_across(band: slice, level: float) -> np.ndarray:
    """Three upright strokes 40 px tall across a band of faint ink as wide as the picture."""
    ink = np.zeros((60, 200), np.float32)
    for x in (40, 90, 140):
        ink[10:50, x:x + 5] = 1.0
    ink = ndi.gaussian_filter(ink, 1.0)
    ink[band] = np.maximum(ink[band], level)
    return ink


def _whole_strokes(comp) -> bool:
    spans = sorted((s[0].start, s[0].stop, s[1].stop - s[1].start) for s, k in zip(comp.slices, comp.keep) if k)
    return len(spans) == 3 and all(y0 <= 10 and y1 >= 50 and w < 12 for y0, y1, w in spans)


def test_strokes_across_a_faint_line_with_no_firm_stretch_are_not_cut():
    # A faint line (a shadow's edge, a pale rule) covers the rows across the digits' middle, as wide as
    # the picture, but with no firm ink along it: only the strokes are firm there, so they stay whole.
    assert _whole_strokes(ink_components(_strokes_across(slice(28, 31), 0.2)))


@pytest.mark.parametrize("level", [0.2, 0.4])
def test_strokes_across_a_printed_tint_band_stay_whole_and_the_band_goes(level):
    # A band of shaded paper (a check's stripe, a form's shaded row), a fifth of the writing's height,
    # firm enough at 0.4 to pass for ink: the band is taken out, the strokes are not cut in two.
    comp = ink_components(_strokes_across(slice(22, 32), level))
    assert _whole_strokes(comp)
    assert not np.isin(comp.labels[22:32, 60:80], np.flatnonzero(comp.keep) + 1).any()


def _digit_across_a_band(level: float) -> np.ndarray:
    """One digit's picture: a 4-ish (an upright stroke and an arm) 60 px tall, paper on every side,
    across a band of faint ink as wide as the picture."""
    ink = np.zeros((90, 70), np.float32)
    ink[15:75, 40:46] = 1.0
    ink[15:50, 20:26] = 1.0
    ink[44:50, 20:46] = 1.0
    ink = ndi.gaussian_filter(ink, 1.0)
    ink[55:67] = np.maximum(ink[55:67], level)
    return ink


def test_a_band_behind_one_digit_is_taken_out_and_the_digit_kept_whole():
    # A tint band across a photographed digit (a check's stripe, a form's shaded row) was a ruled line
    # to one digit: cut out, and the stem given back only where darker, so the digit came out in pieces.
    comp = ink_components(_digit_across_a_band(0.4), one_digit=True)
    kept = np.isin(comp.labels, np.flatnonzero(comp.keep) + 1)
    assert kept[15:75, 41:45].all()  # the stem, through the band
    assert not kept[55:67, 0:15].any() and not kept[55:67, 52:].any()  # the band beside it


def test_a_tight_crops_bar_at_under_the_pens_level_is_not_a_band():
    # A thick marker's 7 cropped tight: its bar runs edge to edge, a little lighter than the stem (0.58
    # of it, as a real one measured), and is the digit's, not a band to take out.
    ink = np.zeros((70, 48), np.float32)
    ink[0:8, :] = 0.58
    ink[8:70, 32:38] = 1.0
    comp = ink_components(ndi.gaussian_filter(ink, 0.7), one_digit=True)
    kept = np.isin(comp.labels, np.flatnonzero(comp.keep) + 1)
    assert kept[1:7, 2:46].mean() > 0.9


def _bold_and_light_strokes(light: float, ground: np.ndarray | None = None) -> np.ndarray:
    """Three upright strokes in a bold pen and a fourth (at x=150) at `light` of its ink, on `ground`."""
    ink = np.zeros((60, 200), np.float32)
    for x, level in ((30, 1.0), (70, 1.0), (110, 1.0), (150, light)):
        ink[10:50, x:x + 5] = level
    ink = ndi.gaussian_filter(ink, 1.0)
    return ink if ground is None else np.maximum(ink, ground)


def test_a_digit_in_a_lighter_pen_is_kept_beside_bold_ones():
    # Grey ballpoint beside black marker: under the threshold set between paper and the bold pen, but
    # as tall as the writing and standing out from clean paper, so it is a digit, not paper.
    comp = ink_components(_bold_and_light_strokes(0.35))
    kept = sorted(s[1].start for s, k in zip(comp.slices, comp.keep) if k)
    assert len(kept) == 4 and kept[-1] >= 145


def test_a_light_tall_mark_no_stronger_than_the_texture_around_it_is_not_a_digit():
    # The same light stroke on a patch of printed texture half as strong (a stamp, a check's ground
    # after cleaning): it does not stand out from what surrounds it, so it is not writing.
    texture = np.zeros((60, 200), np.float32)
    texture[:, 130:180] = np.random.default_rng(0).uniform(0.1, 0.19, (60, 50))
    comp = ink_components(_bold_and_light_strokes(0.35, texture))
    assert sorted(s[1].start for s, k in zip(comp.slices, comp.keep) if k and s[0].stop - s[0].start > 20)[-1] < 145


def _cells_ink(line_level: float, wall_level: float) -> np.ndarray:
    """A 120x330 ink map: a row of five printed cells (top and bottom 5 px thick at `line_level`, 2-px
    walls at `wall_level`) with a digit-like stroke in each of the first four cells, every stroke
    shorter than the walls, one of them leaning."""
    ink = np.zeros((120, 330), np.float32)
    ink[15:20, 10:320] = line_level
    ink[100:105, 10:320] = line_level
    for x in (10, 70, 130, 190, 250, 318):
        ink[15:105, x:x + 2] = wall_level
    for x in (35, 95, 155):
        ink[30:90, x:x + 6] = 0.9
    for i, y in enumerate(range(30, 90)):  # a leaning stroke in the fourth cell
        ink[y, 225 - i // 6:231 - i // 6] = 0.9
    return ndi.gaussian_filter(ink, 0.7)


def _kept(comp) -> np.ndarray:
    return np.isin(comp.labels, np.flatnonzero(comp.keep) + 1)


@pytest.mark.parametrize("line_level, wall_level", [(0.45, 0.45), (0.12, 0.6)])
def test_a_row_of_cells_printed_lighter_than_the_pen_leaves_no_wall_standing(line_level, wall_level):
    # A form's cells in a dropout colour: their top and bottom as light as a tint band (flattened as
    # one, they left the walls standing), or fainter than the threshold while the walls pass it.
    # Either way the walls read as 1s between the digits; now they go, and the digits stay.
    kept = _kept(ink_components(_cells_ink(line_level, wall_level)))
    for x in (10, 70, 130, 190, 250, 318):
        assert not kept[25:95, x:x + 2].any(), x
    for x in (35, 95, 155):
        assert kept[32:88, x:x + 6].mean() > 0.95
    assert kept[32:88, 210:232].sum() > 250  # the leaning stroke


def test_a_row_of_cells_broken_at_the_threshold_is_still_a_box():
    # Printed in a light dropout colour, the cells' lines lie about the threshold: above it in
    # stretches, below between, so no piece of them is a box (nor a wall standing alone). In the
    # faint ink they are one box again, and they go; the digits stay.
    ink = np.zeros((120, 400), np.float32)  # the cells not across the picture: no ruled lines
    ink[15:17, 10:320] = ink[100:102, 10:320] = 0.42
    for x in (10, 70, 130, 190, 250, 318):
        ink[15:102, x:x + 2] = 0.42
    faint = (np.arange(400) // 12) % 2 == 1  # every other 12 px of the top and bottom
    ink[15:17, faint] = ink[100:102, faint] = 0.13  # under the threshold's hysteresis, over half of it
    ink[45:70, :] = np.where(ink[45:70, :] > 0, 0.13, 0)  # the walls' middles
    for x, (y0, y1) in zip((35, 95, 155, 215), [(30, 90), (38, 84), (24, 94), (33, 78)]):  # written: no two alike
        ink[y0:y1, x:x + 6] = 0.9
    kept = _kept(ink_components(ink))
    assert not kept[:, :30].any() and not kept[:, 225:].any() and kept.sum() > 0  # the first wall, the last cells' walls and lines
    for x in (70, 130, 190):
        assert not kept[20:98, x:x + 2].any(), x
    for x in (35, 95, 155, 215):
        assert kept[40:78, x:x + 6].all(), x


def test_upright_strokes_that_do_not_start_and_end_alike_are_writing():
    # Written 1s stand upright too, but no two start and end on the same rows as printed walls do.
    ink = np.zeros((120, 330), np.float32)
    for x, (y0, y1) in zip((40, 100, 160, 220), [(20, 100), (26, 96), (18, 104), (24, 99)]):
        ink[y0:y1, x:x + 4] = 0.9
    ink[40:80, 120:150] = 0.9  # something shorter between two of them
    comp = ink_components(ndi.gaussian_filter(ink, 0.7))
    kept = _kept(comp)
    for x in (40, 100, 160, 220):
        assert kept[45:75, x:x + 4].all(), x
