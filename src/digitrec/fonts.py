"""Digits written in handwriting fonts, framed like MNIST: writing styles MNIST's writers lacked.

MNIST's digits come from American census staff and students. Real documents hold the rest of the
world's hands: European 1s with a long lead-in, crossed 7s, open 4s, 9s whose stem hooks back,
round and flat 2s. Handwriting fonts (Fontsource's packages of Google Fonts, OFL-licensed;
`scripts/fetch-fonts` downloads the ones `FONTS` names) were each drawn from one person's hand,
so each is one more writer, of one more style:

    fonts = load_fonts("runs/fonts")                  # every .ttf / .otf / .woff in the folder
    images, labels = font_digits(fonts)               # (10 * len(fonts), 28, 28) uint8, MNIST-style

Each digit is rendered large, then framed exactly as a user's digit is (`framing.frame_like_mnist`:
stroke width normalised, 20x20 box, centre of mass at the centre), so it differs from MNIST's in
how it was written, not in how it was prepared. The line reader's training draws a share of its
digits from them (`digitrec train-reader --fonts DIR`), the digit model a share of its training
images (`digitrec train --fonts DIR`), through the same augmentation as MNIST's (`with_font_digits`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import ConfigError
from .framing import frame_like_mnist

# Fontsource package -> version (`scripts/fetch-fonts` reads this list): handwriting fonts whose
# digits a person would accept as handwritten. (Amatic SC is left out: its digits are so narrow that,
# framed, they all look like 1s.)
FONTS: dict[str, str] = {name: "5.3.0" for name in (
    "annie-use-your-telescope", "architects-daughter", "borel", "caveat", "caveat-brush",
    "cedarville-cursive", "coming-soon", "covered-by-your-grace", "crafty-girls", "dawning-of-a-new-day",
    "dekko", "delius", "edu-nsw-act-foundation", "edu-qld-beginner", "edu-sa-beginner", "edu-tas-beginner",
    "edu-vic-wa-nt-beginner", "gaegu", "give-you-glory", "gloria-hallelujah", "gochi-hand", "grape-nuts",
    "handlee", "homemade-apple", "indie-flower", "itim", "just-another-hand", "kalam", "klee-one", "kristi",
    "la-belle-aurore", "loved-by-the-king", "mali", "mr-dafoe", "nanum-brush-script", "nanum-pen-script",
    "neucha", "nothing-you-could-do", "over-the-rainbow", "patrick-hand", "permanent-marker", "playpen-sans",
    "reenie-beanie", "rock-salt", "satisfy", "schoolbell", "sedgwick-ave", "shadows-into-light",
    "shantell-sans", "short-stack", "sofadi-one", "square-peg", "sriracha", "sue-ellen-francisco",
    "swanky-and-moo-moo", "the-girl-next-door", "waiting-for-the-sunrise", "walter-turncoat", "whisper",
    "yellowtail", "yomogi", "zen-kurenaido", "zeyada")} | {"comforter": "5.2.8"}

FONT_FILES = (".ttf", ".otf", ".woff")
RENDER_SIZE = 96  # px of the font's em: strokes several pixels wide before framing shrinks them to MNIST's


def load_fonts(folder: str | Path) -> list[ImageFont.FreeTypeFont]:
    """Every font file (.ttf, .otf, .woff) in `folder`, sorted by name, loaded at RENDER_SIZE.
    Raises ConfigError for a folder without any, or a file FreeType cannot read."""
    files = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in FONT_FILES)
    if not files:
        raise ConfigError(f"{folder}: no font files (.ttf, .otf, .woff); download the handwriting fonts with "
                          f"`bash scripts/fetch-fonts {folder}`")
    fonts = []
    for f in files:
        try:
            fonts.append(ImageFont.truetype(str(f), RENDER_SIZE))
        except OSError as e:
            raise ConfigError(f"{f}: not a font FreeType can read ({e}); delete it or fetch it again") from None
    return fonts


def render_digit(font: ImageFont.FreeTypeFont, digit: int) -> np.ndarray:
    """One digit in `font`, framed like MNIST: (28, 28) float32 in [0, 1], white ink on black."""
    size = int(2 * font.size)
    canvas = Image.new("L", (size, size), 0)
    # Anchored at the middle, so that no font's ascent or side bearing pushes the digit off the canvas.
    ImageDraw.Draw(canvas).text((size // 2, size // 2), str(digit), fill=255, font=font, anchor="mm")
    ink = np.asarray(canvas, np.float32) / 255.0
    mask = ink > 0.5
    if not mask.any():
        raise ConfigError(f"font {font.getname()[0]!r} has no glyph for {digit}; take it out of the fonts folder")
    return frame_like_mnist(ink, mask)[0]


def font_digits(fonts: list[ImageFont.FreeTypeFont]) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits 0-9 in every font, as MNIST stores its digits: images (10 * len(fonts), 28, 28) uint8,
    labels (10 * len(fonts),) int64, font by font."""
    images = [render_digit(font, d) for font in fonts for d in range(10)]
    x = torch.from_numpy(np.round(np.stack(images) * 255).astype(np.uint8))
    return x, torch.arange(10).repeat(len(fonts))


def with_font_digits(images: torch.Tensor, labels: torch.Tensor, folder: str | Path,
                     share: float) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """MNIST-style `images` (N, 28, 28) uint8 and `labels` with every font's digits in `folder`
    added, repeated to make up a share `share` of the result; and the fonts' names. Unchanged
    (no names) without a folder or a share."""
    if not folder or share <= 0:
        return images, labels, []
    fonts = load_fonts(folder)
    x, y = font_digits(fonts)
    reps = max(1, round(share / (1 - share) * len(images) / len(x)))
    return (torch.cat([images, x.repeat(reps, 1, 1)]), torch.cat([labels, y.repeat(reps).to(labels.dtype)]),
            [" ".join(f.getname()) for f in fonts])
