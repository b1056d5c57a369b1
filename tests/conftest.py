"""Shared fixtures: the real MNIST (read once per session) and the tutorial's checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    """A small real model (one epoch of `fast` on 20,000 images, ~0.98 on MNIST), trained once per session."""
    from digitrec.train import recipe, train

    out = tmp_path_factory.mktemp("small-model")
    train(recipe("fast", epochs=1, subset=20000, out=str(out), device="cpu"), data=mnist, progress=False)
    return out / "model.pt"


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `python -m digitrec ARGS` in a real subprocess, as a user would."""
    full_env = {**os.environ, "DIGITREC_DATA": str(MNIST_DIR), **(env or {})}
    return subprocess.run([sys.executable, "-m", "digitrec", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
