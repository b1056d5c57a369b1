"""The tutorial's training script as written, timed on this machine.

The tutorial (../shared/seed/) uses torchvision's MNIST dataset with ToTensor + Normalize and a
DataLoader(batch_size=64, shuffle=True): every image passes through PIL and Python one at a time.
torchvision cannot be installed beside our torch, so this file reimplements exactly that
per-sample pipeline (a Dataset that makes a PIL image per item, converts it to a tensor, and
normalises it, batched by the default collate) and the tutorial's loop (SimpleNN, Adam 1e-3,
5 epochs, torch.manual_seed(42)). It prints the wall time and the test accuracy that the
tutorial's own evaluation (batches of 64, argmax) gives.

    python benchmarks/tutorial_script.py [--epochs 5] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from digitrec.data import load_mnist
from digitrec.models import SimpleNN


class TutorialMNIST(Dataset):
    """What torchvision.datasets.MNIST + ToTensor + Normalize((0.1307,), (0.3081,)) do per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img, target = self.images[i], int(self.labels[i])
        pic = Image.fromarray(img.numpy(), mode="L")  # torchvision's MNIST hands out PIL images
        # transforms.ToTensor, as torchvision implements it for a PIL image
        x = torch.from_numpy(np.array(pic, np.uint8, copy=True))
        x = x.view(pic.size[1], pic.size[0], 1).permute((2, 0, 1)).contiguous()
        x = x.to(dtype=torch.get_default_dtype()).div(255)
        # transforms.Normalize((0.1307,), (0.3081,)), likewise
        mean = torch.as_tensor((0.1307,), dtype=x.dtype, device=x.device)
        std = torch.as_tensor((0.3081,), dtype=x.dtype, device=x.device)
        return x.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1)), target


def run(data, epochs: int = 5) -> dict:
    """Train and test as the tutorial's script does; return the timings, the accuracy and the model."""
    t0 = time.perf_counter()
    torch.manual_seed(42)
    train_loader = DataLoader(TutorialMNIST(data.train_images, data.train_labels), batch_size=64, shuffle=True)
    model = SimpleNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    model.train()
    for _ in range(epochs):
        running_loss = 0.0
        for batch_idx, (x, y) in enumerate(train_loader):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()  # the tutorial syncs on every batch to log the loss
            if batch_idx % 100 == 99:
                running_loss = 0.0
    train_s = time.perf_counter() - t0

    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(TutorialMNIST(data.test_images, data.test_labels), batch_size=64):
            correct += (model(x).argmax(1) == y).sum().item()
    return {"train_s": train_s, "train_img_s": 60000 * epochs / train_s, "test_acc": correct / 10000, "model": model}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    r = run(load_mnist(args.data_dir), args.epochs)
    print(f"tutorial script as written (per-sample DataLoader, {args.epochs} epochs on 60,000 images): "
          f"train {r['train_s']:.1f}s, {r['train_img_s']:,.0f} img/s, test accuracy {r['test_acc']:.4f}")


if __name__ == "__main__":
    main()
