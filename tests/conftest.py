"""Shared fixtures: the real MNIST (read once per session) and the tutorial's checkpoint."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MNIST_DIR = Path(os.environ.get("DIGITREC_DATA") or SHARED / "data" / "mnist")
SEED_MODEL = SHARED / "fixtures" / "seed_mnist_model.pth"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        pytest.fail(f"MNIST not found at {MNIST_DIR}; set DIGITREC_DATA or put shared/ beside the repo")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from digitrec.data import load_mnist

    return load_mnist(mnist_dir, download=False)


@pytest.fixture(scope="session")
def seed_model_path() -> Path:
    assert SEED_MODEL.is_file(), f"missing {SEED_MODEL}"
    return SEED_MODEL


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory, mnist) -> Path:
    """A small real model (the cnn, one epoch on 20,000 images, ~0.983 on MNIST), trained once per
    session. Spelled out rather than taken from a recipe, so that tuning a recipe cannot move the
    tests' ground; no label smoothing, so its confidences reach near 1 on clear digits."""
    from digitrec.train import recipe, train

    out = tmp_path_factory.mktemp("small-model")
    cfg = recipe("custom", arch="cnn", epochs=1, batch_size=128, lr=3e-3, optimizer="adamw", weight_decay=5e-4,
                 schedule="onecycle", augment=0.5, subset=20000, out=str(out), device="cpu")
    train(cfg, data=mnist, progress=False)
    return out / "model.pt"


@pytest.fixture(scope="session")
def one_of_each(mnist):
    """The first test image of each digit 0..9, as (image uint8 28x28, label)."""
    labels = mnist.test_labels.numpy()
    return [(mnist.test_images[int(np.nonzero(labels == d)[0][0])].numpy(), d) for d in range(10)]


def on_paper(digit, scale=8, size=(400, 300), at=(40, 30), dark_on_light=True):
    """An MNIST digit (white on black, 28x28) upscaled and placed on a page: dark ink on white
    paper, or light on black; a PIL "L" image of `size`, the digit's corner at `at`."""
    from PIL import Image, ImageOps

    big = Image.fromarray(np.asarray(digit, np.uint8)).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    if dark_on_light:
        big = ImageOps.invert(big)
    page = Image.new("L", size, 255 if dark_on_light else 0)
    page.paste(big, at)
    return page


def ballpoint_page(strokes, at=(1700, 2300), height=150, width=3, size=(3000, 4000), seed=0):
    """A full-size phone photo of a page (RGB, `size`): off-white paper with sensor noise and a
    digit written with a `width`-px ballpoint as polylines (`strokes`, each a list of (x, y) in units
    of `height`), its top-left corner at `at`."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (236, 234, 228))
    draw = ImageDraw.Draw(img)
    for pts in strokes:
        draw.line([(at[0] + x * height, at[1] + y * height) for x, y in pts], fill=(30, 40, 110), width=width,
                  joint="curve")
    noise = np.random.default_rng(seed).normal(0, 3, (size[1], size[0], 1))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def flip_bytes(path: Path, out: Path, n: int) -> Path:
    """A copy of `path` with `n` bytes in its middle inverted, as a bad disk or download leaves it."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    out.write_bytes(bytes(data))
    return out


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 900,
            prefix: list[str] = ()) -> subprocess.CompletedProcess:
    """Run `python -m digitrec ARGS` in a real subprocess, as a user would (`prefix`: a command it runs under)."""
    full_env = {**os.environ, "DIGITREC_DATA": str(MNIST_DIR), **(env or {})}
    return subprocess.run([*prefix, sys.executable, "-m", "digitrec", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def bound_by_permissions() -> list[str]:
    """A command prefix under which file permissions apply. A user needs none; root, whom they do
    not bind, runs under setpriv without the two capabilities that override them."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if shutil.which("setpriv") is None or subprocess.run([*prefix, "true"]).returncode != 0:
        pytest.skip("running as root, where permission bits do not apply, and setpriv cannot drop CAP_DAC_OVERRIDE")
    return prefix


def on_small_disk(mountpoint: Path, size: str, script: str) -> subprocess.CompletedProcess:
    """Run shell `script` with a tmpfs of `size` (as `mount` takes it: 600k) mounted at `mountpoint`
    for it alone (a private mount namespace; inside a user namespace when not root), so that
    writes there fail as on a full disk, with ENOSPC. The mount goes with the script: copy out
    what the test looks at. $PY in the script is this Python."""
    ns = ["unshare", "--mount", "--propagation", "private"] if os.geteuid() == 0 else \
        ["unshare", "--user", "--map-root-user", "--mount"]
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)]
    if shutil.which("unshare") is None or subprocess.run([*ns, *mount], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs in a private mount namespace here (unshare, mount)")
    env = {**os.environ, "DIGITREC_DATA": str(MNIST_DIR), "PY": sys.executable}
    return subprocess.run([*ns, "sh", "-c", f"{shlex.join(mount)} && {{ {script}; }}"], capture_output=True,
                          text=True, env=env, timeout=900)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_process(*args: str) -> tuple[subprocess.Popen, str]:
    """`python -m digitrec serve ARGS` started on a free port, its output piped: the process and its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, f"http://127.0.0.1:{port}"


def wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 60) -> None:
    """Until the server at `url` answers /healthz; the test fails with its output if it exits first."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"digitrec serve did not start: {proc.stdout.read()[-2000:]}")
            time.sleep(0.1)
