"""Tests for digitrec.data: loading real MNIST, rejecting bad files, and downloading over real HTTP.

The real MNIST files are taken from $DIGITREC_DATA, else from shared/data/mnist beside the
repository. Downloads are served by local http.server instances on 127.0.0.1; nothing here
touches the internet.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from digitrec.data import (
    FILES,
    MIRRORS,
    MNIST,
    default_data_dir,
    download_mnist,
    load_mnist,
    load_split,
    read_idx,
    resolve_data_dir,
)
from digitrec.errors import DataError
from digitrec.tensors import split_train_val

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = Path(os.environ.get("DIGITREC_DATA") or REPO.parent / "shared/data/mnist")
NAMES = [name for name, _, _ in FILES.values()]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# Pinned: checkpoints record this value, so changing how it is computed breaks old checkpoints.
REAL_FINGERPRINT = "ab421f80f76fdb6a42960a6b2ace0a5351be9896b8f81b2dc7bdbaf3f9a18a0e"
FAST = dict(retries=2, backoff=0.001, timeout=2.0, progress=False)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    # Safety net: a test that forgets to pass mirrors fails fast instead of downloading for real.
    monkeypatch.setenv("DIGITREC_MNIST_MIRRORS", f"http://127.0.0.1:{_free_port()}/")


# ---------------------------------------------------------------- helpers


def write_idx(path: Path, array, *, gz: bool = False, header: bytes | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file, independently of the code under test."""
    array = np.asarray(array, dtype=np.uint8)
    if header is None:
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return path


def write_small_mnist(root: Path, n_train: int = 100, n_test: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": (np.arange(n_test) * 3) % 10,
    }
    for key, array in arrays.items():
        write_idx(root / FILES[key][0], array, gz=key.startswith("train"))
    return arrays


def link_real(dest: Path, keys=FILES) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for key in keys:
        name = FILES[key][0] + ".gz"
        (dest / name).symlink_to(REAL_DIR / name)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def static_handler(directory: Path, requests: list):
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    return Handler


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(directory) -> (base URL, list of requested paths); servers stop at teardown."""
    with contextlib.ExitStack() as stack:
        def start(directory):
            requests = []
            return stack.enter_context(serving(static_handler(directory, requests))), requests

        yield start


@pytest.fixture(scope="module")
def good_mirror():
    with serving(static_handler(REAL_DIR, [])) as url:
        yield url


@pytest.fixture
def real(mnist) -> MNIST:
    """The real MNIST, loaded once per session by conftest's ``mnist`` fixture."""
    return mnist


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    """The real MNIST files, decompressed."""
    root = tmp_path_factory.mktemp("raw")
    for name in NAMES:
        (root / name).write_bytes(gzip.decompress((REAL_DIR / f"{name}.gz").read_bytes()))
    return root


def assert_is_real(data: MNIST, real: MNIST) -> None:
    assert data.sha256 == real.sha256
    assert data.fingerprint == REAL_FINGERPRINT
    assert torch.equal(data.train_images, real.train_images)
    assert torch.equal(data.test_labels, real.test_labels)


# ---------------------------------------------------------------- real MNIST


def test_real_mnist_loads(real):
    assert real.train_images.shape == (60000, 28, 28) and real.train_images.dtype == torch.uint8
    assert real.test_images.shape == (10000, 28, 28) and real.test_images.dtype == torch.uint8
    assert real.train_labels.shape == (60000,) and real.train_labels.dtype == torch.int64
    assert real.test_labels.shape == (10000,) and real.test_labels.dtype == torch.int64
    assert real.train_labels.bincount().tolist() == TRAIN_COUNTS
    assert real.test_labels.bincount().tolist() == TEST_COUNTS
    assert real.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert real.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert real.sha256 == {name: sha for name, _, sha in FILES.values()}
    assert real.root == REAL_DIR
    assert 0 < real.train_images.float().mean() < 255  # not all blank
    real.train_images[0, 0, 0] += 0  # owned, writable memory


def test_fingerprint_is_stable_and_tracks_the_data(real):
    assert real.fingerprint == REAL_FINGERPRINT
    assert replace(real, root=Path("/elsewhere")).fingerprint == REAL_FINGERPRINT
    other = dict(real.sha256, **{"t10k-labels-idx1-ubyte": "0" * 64})
    assert replace(real, sha256=other).fingerprint != REAL_FINGERPRINT


def test_raw_files_load(raw_dir, real):
    assert not list(raw_dir.glob("*.gz"))
    assert_is_real(load_mnist(raw_dir, download=False), real)


def test_gzip_is_detected_by_content_not_name(tmp_path, raw_dir):
    # A gzipped file without .gz and a raw file with .gz both read correctly.
    shutil.copy(REAL_DIR / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte")
    shutil.copy(raw_dir / "t10k-labels-idx1-ubyte", tmp_path / "raw.gz")
    a, b = read_idx(tmp_path / "t10k-labels-idx1-ubyte"), read_idx(tmp_path / "raw.gz")
    assert a.shape == (10000,) and torch.equal(a, b)


def test_torchvision_layout_loads(tmp_path, real):
    raw = tmp_path / "MNIST" / "raw"
    link_real(raw)
    data = load_mnist(tmp_path, download=False)
    assert_is_real(data, real)
    assert data.root == raw


# ---------------------------------------------------------------- small self-written files


def test_small_files_load_without_verify(tmp_path):
    arrays = write_small_mnist(tmp_path)
    data = load_mnist(tmp_path, download=False, verify=False)
    assert data.train_images.shape == (100, 28, 28) and data.test_images.shape == (20, 28, 28)
    assert data.train_labels.dtype == torch.int64
    assert np.array_equal(data.train_images.numpy(), arrays["train_images"])
    assert np.array_equal(data.test_labels.numpy(), arrays["test_labels"])
    assert set(data.sha256) == set(NAMES) and data.fingerprint != REAL_FINGERPRINT


def test_small_files_fail_verification(tmp_path):
    write_small_mnist(tmp_path)
    message = error_of(load_mnist, tmp_path, download=False)
    assert "train-images-idx3-ubyte" in message and "60000x28x28" in message


@settings(max_examples=30, deadline=None)
@given(
    shape=st.one_of(st.tuples(st.integers(0, 50)), st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))),
    gz=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_read_idx_round_trips(shape, gz, seed):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        tensor = read_idx(write_idx(Path(tmp) / "x", array, gz=gz))
    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == shape
    assert np.array_equal(tensor.numpy(), array)


# ---------------------------------------------------------------- bad files


def _valid_labels() -> bytes:
    return bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + bytes(range(10))


BAD_FILES = {
    "empty": (b"", "empty"),
    "truncated gzip": (gzip.compress(_valid_labels() * 50)[:-30], "truncated or corrupt gzip"),
    "corrupt gzip": (b"\x1f\x8b" + b"garbage" * 10, "corrupt gzip"),
    "wrong magic": (b"PK\x03\x04" + bytes(20), "not an IDX file"),
    "float data": (bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4), "data type 0x0d"),
    "2-d array": (bytes([0, 0, 8, 2]) + struct.pack(">II", 2, 2) + bytes(4), "2 dimensions"),
    "short header": (bytes([0, 0, 8, 3, 0, 0]), "header cut short"),
    "count too high": (bytes([0, 0, 8, 1]) + struct.pack(">I", 11) + bytes(range(10)), "promises 11"),
    "count too low": (bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + bytes(range(10)), "holds 10"),
}


@pytest.mark.parametrize("content, expected", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_named_and_explained(tmp_path, content, expected):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(content)
    message = error_of(read_idx, path)
    assert str(path) in message and expected in message
    assert "--data-dir" in message


def test_missing_and_unreadable_files(tmp_path):
    assert "not found" in error_of(read_idx, tmp_path / "nope")
    assert "cannot read" in error_of(read_idx, tmp_path)  # a directory


def test_unexpected_shape(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    assert read_idx(path, expected_shape=(None, 28, 28)).shape == (3, 28, 28)
    message = error_of(read_idx, path, expected_shape=(10000, 28, 28))
    assert str(path) in message and "3x28x28" in message and "10000x28x28" in message
    assert "shape" in error_of(read_idx, path, expected_shape=(3,))


def test_flipped_byte_fails_checksum(tmp_path, raw_dir):
    name, _, sha = FILES["test_labels"]
    data = bytearray((raw_dir / name).read_bytes())
    assert read_idx(raw_dir / name, expected_sha256=sha).shape == (10000,)
    data[5000] = (data[5000] + 1) % 10  # still a valid label: only the checksum can catch it
    link_real(tmp_path, keys=["train_images", "train_labels", "test_images"])
    path = tmp_path / name
    path.write_bytes(bytes(data))
    message = error_of(read_idx, path, expected_sha256=sha)
    assert str(path) in message and "SHA-256 mismatch" in message and sha[:16] in message
    assert str(path) in error_of(load_mnist, tmp_path, download=False)
    # Structurally it is fine, so it loads without verification, flipped label included.
    assert load_mnist(tmp_path, download=False, verify=False).test_labels[5000 - 8] == data[5000]


def test_missing_file_without_download(tmp_path):
    link_real(tmp_path, keys=["train_images", "train_labels", "test_images"])
    message = error_of(load_mnist, tmp_path, download=False)
    assert "t10k-labels-idx1-ubyte" in message and "train-images" not in message
    assert "--data-dir" in message and "DIGITREC_DATA" in message
    assert "does not exist" in error_of(load_mnist, tmp_path / "absent", download=False)
    assert not (tmp_path / "absent").exists()


def test_one_split_needs_only_its_own_files(tmp_path, real):
    link_real(tmp_path, keys=["test_images", "test_labels"])
    images, labels = load_split("test", tmp_path, download=False)
    assert torch.equal(images, real.test_images) and torch.equal(labels, real.test_labels)
    message = error_of(load_split, "train", tmp_path, download=False)
    assert "train-images-idx3-ubyte" in message and "t10k" not in message
    with pytest.raises(ValueError, match="split must be"):
        load_split("val", tmp_path)


def test_labels_outside_0_to_9(tmp_path):
    write_small_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", [1, 2, 3] + [12] + [0] * 16)
    message = error_of(load_mnist, tmp_path, download=False, verify=False)
    assert "t10k-labels-idx1-ubyte" in message and "label 12 at index 3" in message


def test_image_and_label_counts_must_match(tmp_path):
    write_small_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(99))
    message = error_of(load_mnist, tmp_path, download=False, verify=False)
    assert "train-labels-idx1-ubyte" in message and "99 labels" in message and "100 images" in message


# ---------------------------------------------------------------- downloads over HTTP


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_download_all_then_load(tmp_path, good_mirror, real):
    dest = tmp_path / "new" / "cache"
    data = load_mnist(dest, mirrors=[good_mirror])
    assert_is_real(data, real)
    assert leftovers(dest) == sorted(f"{name}.gz" for name in NAMES)
    assert data.root == dest


def test_download_uses_env_mirrors_and_fetches_only_missing(tmp_path, serve, monkeypatch, real):
    url, requests = serve(REAL_DIR)
    monkeypatch.setenv("DIGITREC_MNIST_MIRRORS", f" {url} ,")
    link_real(tmp_path, keys=["train_images", "train_labels", "test_images"])
    assert_is_real(load_mnist(tmp_path), real)
    assert requests == ["/t10k-labels-idx1-ubyte.gz"]
    download_mnist(tmp_path, **FAST)  # nothing missing: nothing fetched
    assert requests == ["/t10k-labels-idx1-ubyte.gz"]


def test_download_shows_progress_on_stderr(tmp_path, good_mirror, capsys):
    download_mnist(tmp_path, names=["test_labels"], mirrors=[good_mirror], progress=True)
    assert "t10k-labels-idx1-ubyte.gz" in capsys.readouterr().err


def test_truncated_file_on_mirror(tmp_path, serve):
    bad = tmp_path / "bad"
    bad.mkdir()
    gz = (REAL_DIR / "train-labels-idx1-ubyte.gz").read_bytes()
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    url, requests = serve(bad)
    dest = tmp_path / "dest"
    message = error_of(download_mnist, dest, names=["train_labels"], mirrors=[url], **FAST)
    assert "train-labels-idx1-ubyte.gz" in message and url in message and "gzip" in message
    assert f"by hand into {dest}" in message
    assert leftovers(dest) == []
    assert len(requests) == 1  # bad content: retrying the same mirror would not help


def test_wrong_file_on_mirror_then_fallback(tmp_path, serve, good_mirror):
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(REAL_DIR / "t10k-labels-idx1-ubyte.gz", bad / "train-labels-idx1-ubyte.gz")
    url, _ = serve(bad)
    dest = tmp_path / "dest"
    message = error_of(download_mnist, dest, names=["train-labels-idx1-ubyte"], mirrors=[url], **FAST)
    assert "train-labels-idx1-ubyte.gz" in message and "wrong file" in message
    assert leftovers(dest) == []
    download_mnist(dest, names=["train_labels"], mirrors=[url, good_mirror], **FAST)
    assert leftovers(dest) == ["train-labels-idx1-ubyte.gz"]
    name, _, sha = FILES["train_labels"]
    assert read_idx(dest / f"{name}.gz", expected_sha256=sha).shape == (60000,)


def test_missing_on_mirror_is_not_retried(tmp_path, serve):
    url, requests = serve(tmp_path / "empty_mirror")
    message = error_of(download_mnist, tmp_path / "dest", names=["test_labels"], mirrors=[url], **FAST)
    assert "HTTP 404" in message and len(requests) == 1


def test_connection_cut_short_is_retried(tmp_path, good_mirror):
    calls = []

    class CutOff(QuietHandler):
        def do_GET(self):
            calls.append(self.path)
            body = (REAL_DIR / Path(self.path).name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])

    dest = tmp_path / "dest"
    with serving(CutOff) as url:
        message = error_of(download_mnist, dest, names=["test_labels"], mirrors=[url], **FAST)
        assert "connection closed after" in message and len(calls) == FAST["retries"]
        assert leftovers(dest) == []
        download_mnist(dest, names=["test_labels"], mirrors=[url, good_mirror], **FAST)
    assert leftovers(dest) == ["t10k-labels-idx1-ubyte.gz"]


def test_unreachable_and_stalled_mirrors_fail_fast(tmp_path, good_mirror):
    release = threading.Event()

    class Stalled(QuietHandler):
        def do_GET(self):
            release.wait(10)

    dead = f"http://127.0.0.1:{_free_port()}/"
    with serving(Stalled) as stalled:
        start = time.monotonic()
        download_mnist(tmp_path, names=["test_labels"], mirrors=[dead, stalled, good_mirror],
                       retries=1, timeout=0.5, progress=False)
        elapsed = time.monotonic() - start
        release.set()
    assert elapsed < 5
    assert leftovers(tmp_path) == ["t10k-labels-idx1-ubyte.gz"]
    message = error_of(download_mnist, tmp_path / "d", names=["test_images"], mirrors=[dead], **FAST)
    assert dead in message and "refused" in message.lower()


def test_a_mirror_that_trickles_is_left_for_the_next_at_once(tmp_path, good_mirror):
    # A byte every 0.2 s never trips a read timeout; the minimum rate does, after its grace.
    calls, stop = [], threading.Event()

    class Trickle(QuietHandler):
        def do_GET(self):
            calls.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            while not stop.is_set():
                try:
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)

    pace = dict(retries=3, backoff=0.001, timeout=2.0, progress=False, min_rate=1000, grace=0.5)
    with serving(Trickle) as trickle:
        start = time.monotonic()
        message = error_of(download_mnist, tmp_path / "a", names=["test_labels"], mirrors=[trickle], **pace)
        assert "too slow" in message and "bytes/s" in message and len(calls) == 1  # not retried
        download_mnist(tmp_path / "b", names=["test_labels"], mirrors=[trickle, good_mirror], **pace)
        elapsed = time.monotonic() - start
        stop.set()
    assert elapsed < 10 and leftovers(tmp_path / "b") == ["t10k-labels-idx1-ubyte.gz"]
    assert leftovers(tmp_path / "a") == []


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="needs Python's default Ctrl-C handler")
def test_ctrl_c_mid_download_leaves_nothing(tmp_path):
    release = threading.Event()
    main = threading.main_thread().ident

    class Interrupting(QuietHandler):
        def do_GET(self):
            body = (REAL_DIR / Path(self.path).name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(0.2)  # let the client write the first half to its temp file
            signal.pthread_kill(main, signal.SIGINT)
            release.wait(10)

    with serving(Interrupting) as url:
        with pytest.raises(KeyboardInterrupt):
            download_mnist(tmp_path, names=["train_images"], mirrors=[url], retries=1, timeout=5,
                           progress=False)
        release.set()
    assert leftovers(tmp_path) == []


def test_download_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "cannot create" in error_of(download_mnist, tmp_path / "file" / "sub", mirrors=["http://x/"])
    assert "no MNIST mirrors" in error_of(download_mnist, tmp_path, mirrors=[" ", ""])
    with pytest.raises(ValueError, match="unknown"):
        download_mnist(tmp_path, names=["validation_images"], mirrors=["http://x/"])


def test_mirrors_constant():
    assert MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/" and len(MIRRORS) == 3


# ---------------------------------------------------------------- split and directories


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    assert default_data_dir() == tmp_path / "home/.cache/digitrec/mnist"
    assert resolve_data_dir() == default_data_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_data_dir() == tmp_path / "home/.cache/digitrec/mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg/digitrec/mnist"
    monkeypatch.setenv("DIGITREC_DATA", "")
    assert resolve_data_dir() == tmp_path / "xdg/digitrec/mnist"
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert resolve_data_dir("~/d") == tmp_path / "home/d"


def test_import_has_no_side_effects_and_reading_warns_nothing(tmp_path):
    # A fresh interpreter: torch warns about read-only buffers only once per process.
    home = tmp_path / "home"
    home.mkdir()
    idx = write_idx(tmp_path / "labels", [3, 1, 4])
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), PYTHONPATH=str(REPO / "src"))
    env.pop("DIGITREC_DATA", None)
    code = (f"import digitrec.data as d; t = d.read_idx({str(idx)!r}); t[0] = 9; "
            "print(t.tolist(), d.default_data_dir())")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, cwd=home,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[9, 1, 4] {home / 'cache/digitrec/mnist'}"
    assert list(home.iterdir()) == []


def test_a_benchmarks_digits_are_the_test_set_or_the_held_out_validation_digits(mnist):
    images, labels = mnist.digits("test")
    assert images is mnist.test_images and labels is mnist.test_labels
    train, val = split_train_val(len(mnist.train_images))
    images, labels = mnist.digits("val")
    assert torch.equal(images, mnist.train_images[val]) and torch.equal(labels, mnist.train_labels[val])
    assert not set(val.tolist()) & set(train.tolist())
    with pytest.raises(ValueError, match="test"):
        mnist.digits("train")
