"""Write a "user-style" test set: MNIST test digits rendered as photos/scans of ink on paper.

    python benchmarks/make_user_style.py --out user_style --n 1000 --seed 0 --sheet sheet.png

Files are `{i:05d}_label{d}.png` plus `labels.csv` (file,label); image i depends only on the seed
and i, so a larger --n extends a smaller set. --sheet also writes a contact sheet of the first 48
pictures (label and original size under each) to eyeball the look.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

from digitrec.data import load_mnist
from digitrec.synth import iter_user_style_set, save_user_style_set


def contact_sheet(samples, cols: int = 8, cell: int = 150, caption: int = 14) -> Image.Image:
    """Tile (picture, label) pairs, each fit into a `cell`-px square, with 'label  WxH' under it."""
    rows = -(-len(samples) // cols)
    sheet = Image.new("RGB", (cols * cell, rows * (cell + caption)), (60, 60, 60))
    draw = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(samples):
        f = min(cell / img.width, cell / img.height)
        # NEAREST when enlarging, so small pictures show their real pixels rather than a smoothed guess.
        thumb = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))),
                           Image.Resampling.NEAREST if f > 1 else Image.Resampling.LANCZOS)
        x, y = (i % cols) * cell, (i // cols) * (cell + caption)
        sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        draw.text((x + 3, y + cell + 1), f"{label}  {img.width}x{img.height}", fill=(255, 255, 120))
    return sheet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder to write the pictures and labels.csv to")
    p.add_argument("--n", type=int, default=1000, help="how many test digits to render (the first n)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fmt", choices=["png", "jpg"], default="png")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: digitrec's usual lookup)")
    p.add_argument("--sheet", default=None, help="also write a contact sheet of the first 48 to this PNG")
    args = p.parse_args()

    data = load_mnist(args.data_dir)
    t0 = time.perf_counter()
    csv_path = save_user_style_set(args.out, data.test_images, data.test_labels, args.n, seed=args.seed, fmt=args.fmt)
    print(f"wrote {args.n} pictures and {csv_path} in {time.perf_counter() - t0:.1f}s")
    if args.sheet:
        # Same seed, so these are the same pictures as the first 48 files.
        samples = list(iter_user_style_set(data.test_images, data.test_labels, min(48, args.n), seed=args.seed))
        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(samples).save(args.sheet)
        print(f"wrote contact sheet {args.sheet}")


if __name__ == "__main__":
    main()
