"""Digit classifiers, the line reader, and the registry that names them.

Every model registered for the "digit" task takes a normalised batch of shape (B, 1, 28, 28) and
returns logits of shape (B, 10); the "line" task's reader takes (B, 1, 28, W) and returns
log-probabilities (B, W/2, 11).
A model is rebuilt from its registry name and keyword arguments alone, which is what a checkpoint
stores (timm-style: `create_model(name, **args)`), so a checkpoint never needs pickled classes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError

TASKS = ("digit", "line")  # a digit classifier: (B, 1, 28, 28) -> (B, 10); a line reader: (B, 1, 28, W) -> (B, W/2, 11)
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_TASK: dict[str, str] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, task: str = "digit"):
    """Register a model factory under its function name, for `task` (a digit classifier unless
    said otherwise): `@register_model` or `@register_model(task="line")`. A duplicate name is a bug."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {TASKS}")

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name], _TASK[name] = fn, task
        return fn

    return add(fn) if fn is not None else add


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered models (of one task, if given), sorted."""
    return sorted(name for name in _REGISTRY if task is None or _TASK[name] == task)


def model_tasks() -> dict[str, str]:
    """Every registered model's task: {name: "digit" or "line"}."""
    return dict(_TASK)


def model_task(name: str) -> str:
    """What a registered model does: "digit" (classifies one 28x28 digit) or "line" (reads a line)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _TASK[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name; unknown names and bad arguments raise ConfigError."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None


def model_description(name: str) -> str:
    """First line of a model factory's docstring, for `digitrec models`."""
    doc = _REGISTRY[name].__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class SimpleNN(nn.Module):
    """The tutorial's two-layer network, kept exactly: parameter names `fc1`/`fc2` must not change,
    because the tutorial's `mnist_model.pth` is a bare state dict keyed by them."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 28 * 28)  # (B, 784)
        return self.fc2(torch.relu(self.fc1(x)))  # (B, 10)


class ConvNet(nn.Module):
    """Two conv blocks and a small head.

    Sized for CPUs: 5x5 kernels see a whole stroke width at 28x28 while keeping the channel count
    (and so the cost per image) low; batch norm lets a high learning rate converge in few epochs.
    `pool_first` max-pools before batch norm and ReLU, so those run on a quarter of the pixels:
    on a CPU, where these small convolutions are cheap and elementwise passes over memory are not,
    that is ~1.4x the training throughput for the same weights count.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, dropout: float = 0.25,
                 kernel: int | tuple[int, int] = 5, pool_first: bool = False):
        super().__init__()
        c1, c2 = channels
        k1, k2 = (kernel, kernel) if isinstance(kernel, int) else kernel  # one size, or one per layer
        self.pool_first = pool_first
        self.conv1 = nn.Conv2d(1, c1, k1, padding=k1 // 2, bias=False)  # bias is redundant before BN
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, k2, padding=k2 // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            x = F.relu(self.bn1(F.max_pool2d(self.conv1(x), 2)))  # (B, c1, 14, 14)
            x = F.relu(self.bn2(F.max_pool2d(self.conv2(x), 2)))  # (B, c2, 7, 7)
        else:
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # (B, c1, 14, 14)
            x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # (B, c2, 7, 7)
        x = self.drop(F.relu(self.fc1(x.flatten(1))))  # (B, hidden)
        return self.fc2(x)  # (B, 10)


def _conv_bn_relu(c_in: int, c_out: int, pool: bool = False) -> list[nn.Module]:
    # Pooling sits between the conv and BN/ReLU (max-pool commutes with ReLU): the elementwise
    # passes then run on a quarter of the pixels, which is where a CPU spends its time on MNIST.
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)] + ([nn.MaxPool2d(2)] if pool else [])
    return layers + [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DeepConvNet(nn.Module):
    """A 5x5 stem and two VGG-style blocks of two 3x3 convs, then global average pooling.

    Five conv layers give the receptive field to see a whole digit's shape (loops, crossings, how
    strokes join), which is what the last few tenths of a percent on MNIST are made of; global
    average pooling keeps the head tiny so the parameters go into features, not into memorising.
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 128), dropout: float = 0.25):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            *_conv_bn_relu(c1, c2), *_conv_bn_relu(c2, c2, pool=True),  # (B, c2, 7, 7)
            *_conv_bn_relu(c2, c3), *_conv_bn_relu(c3, c3),  # (B, c3, 7, 7)
        )
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean((2, 3))  # (B, c3): global average pool
        return self.fc(self.drop(x))  # (B, 10)


@register_model
def mlp(hidden: int = 128) -> nn.Module:
    """The tutorial's SimpleNN: 784 -> 128 -> 10 with ReLU (the baseline to beat)."""
    return SimpleNN(hidden=hidden)


@register_model
def cnn(channels: tuple[int, int] | list[int] = (16, 32), hidden: int = 128, dropout: float = 0.25,
        kernel: int | list[int] = 5, pool_first: bool = False) -> nn.Module:
    """A small CNN: two conv+BN+pool blocks, then a hidden layer with dropout (5x5 and 128 by default)."""
    return ConvNet(channels=tuple(channels), hidden=hidden, dropout=dropout, kernel=kernel, pool_first=pool_first)


@register_model
def deepcnn(channels: tuple[int, int, int] | list[int] = (32, 64, 128), dropout: float = 0.25) -> nn.Module:
    """Five 3x3/5x5 conv+BN layers in three stages, global average pooling (the `best` recipe's)."""
    return DeepConvNet(channels=tuple(channels), dropout=dropout)


class ExamplesNet(nn.Module):
    """pytorch/examples' mnist/main.py `Net`, layer for layer, so its recipe can be compared with ours."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, 64, 24, 24): no padding
        x = self.dropout1(F.max_pool2d(x, 2)).flatten(1)  # (B, 9216)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)  # as the original; log-probabilities work as logits


@register_model
def examples_cnn() -> nn.Module:
    """pytorch/examples' MNIST CNN: two 3x3 convs, max-pool, dropout, 9216 -> 128 -> 10."""
    return ExamplesNet()


class Ensemble(nn.Module):
    """Several models voting: their probabilities averaged. Returns log-probabilities, which act as
    logits everywhere (softmax gives back the averaged probabilities; argmax is the vote).

    With `tilts` (degrees), each member also sees the digit turned by each angle (test-time
    augmentation): a model trained on tilted digits reads some clean ones better as the average of
    its readings a few degrees either way. The views are made inside the model, so its ONNX export,
    the server and `evaluate` all see the same."""

    def __init__(self, members: list[dict], tilts: list[float] = ()):
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.members = nn.ModuleList(create_model(m["arch"], **dict(m.get("arch_args", {}))) for m in members)
        self.tilts = [float(t) for t in tilts]
        # (V, 28, 28, 2) where each view samples the input; fixed by `tilts`, so not stored with the weights.
        self.register_buffer("grids", _tilt_grids(self.tilts), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The input is normalised, so the corners a turn brings in copy the border (the background),
        # not zeros (which would be grey).
        views = [x] + [F.grid_sample(x, g.expand(x.shape[0], -1, -1, -1), padding_mode="border", align_corners=False)
                       for g in self.grids]
        p = torch.stack([F.softmax(m(v), dim=-1) for m in self.members for v in views]).mean(0)  # (B, 10)
        return p.clamp_min(1e-12).log()


def _tilt_grids(degrees: list[float], size: int = 28) -> torch.Tensor:
    """Sampling grids (V, size, size, 2) that turn an image about its centre by each angle."""
    if not degrees:
        return torch.empty(0, size, size, 2)
    a = torch.tensor(degrees, dtype=torch.float32).deg2rad()
    c, s, z = a.cos(), a.sin(), torch.zeros_like(a)
    theta = torch.stack([torch.stack([c, -s, z], 1), torch.stack([s, c, z], 1)], 1)  # (V, 2, 3)
    return F.affine_grid(theta, [len(degrees), 1, size, size], align_corners=False)


@register_model
def ensemble(members: list[dict], tilts: list[float] = ()) -> nn.Module:
    """Averaged probabilities of member models, each given as {"arch": ..., "arch_args": {...}},
    each also shown the digit turned by every angle in `tilts` (degrees)."""
    return Ensemble(members, tilts)


class LineNet(nn.Module):
    """Reads a whole line of digits at once, for `digitrec read` (CTC; Graves et al. 2006).

    Input (B, 1, 28, W): a line framed like MNIST (writing 20 px tall, white on black, any width).
    Output (B, W/2, classes): log-probabilities per pair of columns over the symbols (the ten digits,
    then the marks written between them, `lines.CLASSES`) and, last, CTC's "blank" (no new symbol
    here); 11 classes for a digits-only reader. No segmentation is needed: touching and overlapping digits
    are read from the columns they share, and a digit broken in two is still one digit.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), hidden: int = 128, dropout: float = 0.1,
                 classes: int = 11, lstm: int = 0):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            *_conv_bn_relu(c1, c2), nn.Conv2d(c2, c2, 3, padding=1, bias=False),
            nn.MaxPool2d((2, 1)), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),  # (B, c2, 7, W/2): width kept for "11"
            *_conv_bn_relu(c2, c3),  # (B, c3, 7, W/2)
        )
        # Each column pair sees the whole height (7 rows x c3 channels), then 1-D convs give it the
        # context of its neighbours (~36 px): enough to see all of a digit from any of its columns.
        self.context = nn.Sequential(
            nn.Conv1d(c3 * 7, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 5, padding=2, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 5, padding=2, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        # Optionally a bidirectional LSTM over the whole line (CRNN, Shi et al. 2015): whether a stroke
        # is a 1's lead-in or a 7's bar can hang on ink further off than the convolutions see.
        self.lstm = nn.LSTM(hidden, lstm, batch_first=True, bidirectional=True) if lstm else None
        self.head = nn.Conv1d(2 * lstm if lstm else hidden, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, c3, 7, W/2)
        f = self.context(f.flatten(1, 2))  # (B, hidden, W/2)
        if self.lstm is not None:
            f = self.lstm(f.transpose(1, 2))[0].transpose(1, 2)  # (B, 2 * lstm, W/2)
        return F.log_softmax(self.head(f), dim=1).transpose(1, 2)  # (B, W/2, classes)


@register_model(task="line")
def linecnn(channels: tuple[int, int, int] | list[int] = (16, 32, 64), hidden: int = 128,
            dropout: float = 0.1, classes: int = 11, lstm: int = 0) -> nn.Module:
    """Line reader for whole numbers (CTC over columns; (B,1,28,W) -> (B,W/2,classes)), not a digit
    classifier; `lstm` > 0 adds a bidirectional LSTM of that many units each way over the columns."""
    return LineNet(tuple(channels), hidden, dropout, classes, lstm)
