"""Find, download, verify and load the MNIST handwritten-digit dataset.

MNIST is four IDX files (images and labels, for the 60,000-image training split and the
10,000-image test split). They are looked for in a data directory, downloaded from public
mirrors when missing, checked against known SHA-256 sums of their decompressed content, and
returned as tensors. Every bad-input case raises :class:`~digitrec.errors.DataError` with a
one-line message naming the file, what is wrong, and how to fix it.

Importing this module has no side effects: no network access, no directories created.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from digitrec.errors import DataError
from digitrec.tensors import split_train_val

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# key -> (file name without .gz, decompressed size in bytes, SHA-256 of the decompressed bytes).
# Hashes cover the decompressed content because mirrors gzip the same data differently.
FILES: dict[str, tuple[str, int, str]] = {
    "train_images": ("train-images-idx3-ubyte", 47_040_016,
                     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte", 60_008,
                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte", 7_840_016,
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte", 10_008,
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

_SPLIT_SIZES = {"train": 60_000, "test": 10_000}
_FIX = "delete it and run again to re-download it, or pass --data-dir to a folder with intact MNIST files"


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == is elementwise, not a bool
class MNIST:
    """The four MNIST arrays, where they were read from, and the SHA-256 of each file."""

    train_images: torch.Tensor = field(repr=False)  # uint8 (60000, 28, 28)
    train_labels: torch.Tensor = field(repr=False)  # int64 (60000,)
    test_images: torch.Tensor = field(repr=False)  # uint8 (10000, 28, 28)
    test_labels: torch.Tensor = field(repr=False)  # int64 (10000,)
    root: Path
    sha256: dict[str, str]  # file name (without .gz) -> SHA-256 of its decompressed content

    @property
    def fingerprint(self) -> str:
        """One SHA-256 hex digest identifying exactly which data this is (for checkpoints)."""
        h = hashlib.sha256()
        for name, digest in sorted(self.sha256.items()):
            h.update(f"{name}={digest}\n".encode())
        return h.hexdigest()

    def digits(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) for a benchmark to render: "test", the test set (to report), or "val",
        the validation digits every recipe holds out of training (to choose settings on)."""
        if which == "test":
            return self.test_images, self.test_labels
        if which != "val":
            raise ValueError(f'digits must be "test" or "val", got {which!r}')
        _, va = split_train_val(len(self.train_images))
        return self.train_images[va], self.train_labels[va]


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, decompressed if it is gzip (judged by magic bytes, not name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found; pass --data-dir to a folder that has the MNIST files") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e}); check that it is a readable "
                        "file, or pass --data-dir to a folder with the MNIST files") from e
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"{path}: truncated or corrupt gzip data ({e}); {_FIX}") from e
    return data


def _parse_idx(data: bytes, path: Path, expected_shape: tuple[int | None, ...] | None) -> torch.Tensor:
    if not data:
        raise DataError(f"{path}: file is empty; {_FIX}")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (starts with {data[:4].hex()}, expected 00000801 for "
                        f"labels or 00000803 for images); {_FIX}")
    dtype, ndim = data[2], data[3]
    if dtype != 0x08:
        raise DataError(f"{path}: IDX data type 0x{dtype:02x} is not supported, MNIST uses unsigned bytes "
                        f"(0x08); {_FIX}")
    if ndim not in (1, 3):
        raise DataError(f"{path}: IDX file has {ndim} dimensions, MNIST files have 1 (labels, magic "
                        f"00000801) or 3 (images, magic 00000803); {_FIX}")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{path}: IDX header cut short ({len(data)} of {start} bytes); {_FIX}")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    promised, present = math.prod(shape), len(data) - start
    if promised != present:
        raise DataError(f"{path}: header promises {'x'.join(map(str, shape))} = {promised} bytes of data but "
                        f"the file holds {present}; it is truncated or corrupt, {_FIX}")
    if expected_shape is not None and (
        len(expected_shape) != ndim or any(e is not None and e != s for e, s in zip(expected_shape, shape))
    ):
        want = "x".join("N" if e is None else str(e) for e in expected_shape)
        raise DataError(f"{path}: holds an array of shape {'x'.join(map(str, shape))}, expected {want}; this "
                        f"is not the MNIST file it is named after, {_FIX}")
    if promised == 0:  # torch.frombuffer rejects empty buffers
        return torch.empty(shape, dtype=torch.uint8)
    # Copy into a bytearray so the tensor owns writable memory (frombuffer on bytes warns).
    return torch.frombuffer(bytearray(memoryview(data)[start:]), dtype=torch.uint8).reshape(shape)


def _load(path: Path, expected_shape, expected_sha256: str | None) -> tuple[torch.Tensor, str]:
    data = _read_bytes(path)
    tensor = _parse_idx(data, path, expected_shape)  # structure first: its messages are more specific
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise DataError(f"{path}: SHA-256 mismatch (got {digest[:16]}…, expected {expected_sha256[:16]}…); "
                        f"the file is corrupt, {_FIX}")
    return tensor, digest


def read_idx(path: str | Path, *, expected_sha256: str | None = None,
             expected_shape: tuple[int | None, ...] | None = None) -> torch.Tensor:
    """Read an IDX file (gzipped or raw) into a uint8 tensor of the shape its header declares.

    ``expected_shape`` may use ``None`` for "any size" in a dimension. ``expected_sha256`` is
    checked against the decompressed bytes. Raises DataError for anything unreadable or wrong.
    """
    return _load(Path(path), expected_shape, expected_sha256)[0]


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/digitrec/mnist``, else ``~/.cache/digitrec/mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG spec: ignore relative paths
    return base / "digitrec" / "mnist"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory to use: ``data_dir`` if given, else ``$DIGITREC_DATA``, else the default."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("DIGITREC_DATA", "")
    return Path(env).expanduser() if env else default_data_dir()


def _locate(root: Path) -> tuple[dict[str, Path], list[str]]:
    found, missing = {}, []
    for key, (name, _, _) in FILES.items():
        # root itself, then torchvision's layout, so a tutorial's ./data folder works as is.
        candidates = [d / n for d in (root, root / "MNIST" / "raw") for n in (name, f"{name}.gz")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(key)
        else:
            found[key] = path
    return found, missing


def load_mnist(data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True,
               mirrors=None) -> MNIST:
    """Load MNIST from the resolved data directory, downloading missing files if allowed.

    With ``verify`` the files must be the real MNIST (exact shapes and SHA-256); without it
    only their structure is checked, so small hand-made IDX files (28x28 images) also load.
    """
    root = resolve_data_dir(data_dir)
    found = _find_or_fetch(root, tuple(_SPLIT_SIZES), download, mirrors)
    (train_x, train_y, a), (test_x, test_y, b) = (_read_split(found, split, verify) for split in _SPLIT_SIZES)
    parents = {p.parent for p in found.values()}
    return MNIST(train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y,
                 root=parents.pop() if len(parents) == 1 else root, sha256={**a, **b})


def load_split(split: str, data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True,
               mirrors=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of MNIST, "train" or "test", as uint8 images (N, 28, 28) and int64 labels (N,),
    reading (or downloading) only its two files: scoring a model needs no training images."""
    if split not in _SPLIT_SIZES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_SIZES)}, not {split!r}")
    found = _find_or_fetch(resolve_data_dir(data_dir), (split,), download, mirrors)
    images, labels, _ = _read_split(found, split, verify)
    return images, labels


def _find_or_fetch(root: Path, splits: tuple[str, ...], download: bool, mirrors) -> dict[str, Path]:
    """The files of `splits` under root (key -> path), downloading the missing ones if allowed."""
    found, missing = _locate(root)
    missing = [k for k in missing if k.split("_")[0] in splits]
    if missing:
        if not download:
            what = ("folder does not exist" if not root.is_dir()
                    else "missing " + ", ".join(FILES[k][0] + "[.gz]" for k in missing))
            raise DataError(f"{root}: MNIST {what}; pass --data-dir to a folder that has the MNIST files, "
                            "set DIGITREC_DATA, or allow the download")
        download_mnist(root, names=missing, mirrors=mirrors)
        found, _ = _locate(root)
    return {k: p for k, p in found.items() if k.split("_")[0] in splits}


def _read_split(found: dict[str, Path], split: str, verify: bool) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """A split's images and labels, checked against each other, and the SHA-256 of each file."""
    tensors, digests = {}, {}
    for kind in ("images", "labels"):
        key = f"{split}_{kind}"
        name, _, sha = FILES[key]
        count = _SPLIT_SIZES[split] if verify else None
        shape = (count, 28, 28) if kind == "images" else (count,)
        tensors[kind], digests[name] = _load(found[key], shape, sha if verify else None)
    images, labels, labels_path = tensors["images"], tensors["labels"], found[f"{split}_labels"]
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: has {len(labels)} labels but {found[f'{split}_images'].name} has "
                        f"{len(images)} images; the two files do not belong together, {_FIX}")
    bad = torch.nonzero(labels > 9)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{labels_path}: label {int(labels[i])} at index {i} is outside 0..9; "
                        f"this is not an MNIST labels file, {_FIX}")
    return images, labels.long(), digests


class _WrongContent(Exception):
    """The mirror answered, but not with the right file; asking it again will not help."""


class _TooSlow(ConnectionError):
    """The mirror sends, but too slowly to finish (or not at all): asking it again will not help."""


MIN_RATE = 20_000  # bytes/s a mirror must keep up after GRACE_S; MNIST's largest file is 9.9 MB
GRACE_S = 10.0


def _mirror_list(mirrors) -> list[str]:
    if mirrors is None:
        mirrors = os.environ.get("DIGITREC_MNIST_MIRRORS", "").strip() or MIRRORS
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    urls = [m.strip() for m in mirrors if m.strip()]
    if not urls:
        raise DataError("no MNIST mirrors to download from; set DIGITREC_MNIST_MIRRORS to comma-separated "
                        "base URLs, or pass --data-dir to a folder that has the MNIST files")
    return urls


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        text = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, urllib.error.URLError):
        text = str(e.reason)
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())  # keep the final message on one line


def _progress_bar(enabled: bool, total: int | None, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar is no reason to fail a download
        return contextlib.nullcontext(types.SimpleNamespace(update=lambda n: None))
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                disable=not enabled)


def _fetch(url: str, dest: Path, name: str, size: int, sha: str, timeout: float, progress: bool,
           pace: tuple[float, float] = (MIN_RATE, GRACE_S)) -> None:
    part = tempfile.NamedTemporaryFile(dir=dest, delete=False, prefix=".", suffix=".part")
    try:
        with part:
            request = urllib.request.Request(url, headers={"User-Agent": "digitrec"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length", "")
                    total = int(length) if length.isdigit() else None
                    with _progress_bar(progress, total, f"{name}.gz") as bar:
                        received = _receive(response, part, bar, pace)
            except TimeoutError as e:  # silent for `timeout` seconds: a dead mirror, try the next
                raise _TooSlow(f"no data for {timeout:g} s") from e
        # urllib returns a short body silently when the connection drops, so compare lengths.
        if total is not None and received != total:
            raise ConnectionError(f"connection closed after {received} of {total} bytes")
        raw = Path(part.name).read_bytes()
        gzipped = raw[:2] == b"\x1f\x8b"
        try:
            data = gzip.decompress(raw) if gzipped else raw
        except (EOFError, OSError, zlib.error) as e:
            raise _WrongContent(f"truncated or corrupt gzip ({_reason(e)})") from e
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != size or digest != sha:
            raise _WrongContent(f"wrong file ({len(data)} bytes, SHA-256 {digest[:16]}…; expected {size} "
                                f"bytes, {sha[:16]}…)")
        os.replace(part.name, dest / (f"{name}.gz" if gzipped else name))
    finally:
        # Whatever happened (bad bytes, network error, Ctrl-C), leave nothing half-written behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part.name)


def _receive(response, part, bar, pace: tuple[float, float]) -> int:
    """Copy the body into `part` as it arrives; _TooSlow once, after the grace period, it arrives
    slower than the minimum rate (a mirror trickling a byte every few seconds never times out)."""
    min_rate, grace = pace
    received, t0 = 0, time.monotonic()
    while chunk := response.read1(1 << 16):  # read1: returns what one read gave, so the pace is seen
        part.write(chunk)
        received += len(chunk)
        bar.update(len(chunk))
        elapsed = time.monotonic() - t0
        if elapsed > grace and received < min_rate * elapsed:
            raise _TooSlow(f"too slow: {received / elapsed:,.0f} bytes/s after {elapsed:.0f} s "
                           f"(at least {min_rate:,.0f} needed)")
    return received


def download_mnist(dest: str | Path, *, names=None, mirrors=None, retries: int = 3, timeout: float = 15.0,
                   progress: bool = True, backoff: float = 0.5, min_rate: float = MIN_RATE,
                   grace: float = GRACE_S) -> None:
    """Download the MNIST files missing from ``dest`` (all four, or the FILES keys / file names in
    ``names``), trying each mirror in turn with ``retries`` attempts and exponential backoff.
    A mirror silent for ``timeout`` seconds, or slower than ``min_rate`` bytes/s after ``grace``
    seconds, is left for the next one at once.

    A file only appears under its final name once its SHA-256 has been verified. Mirrors default
    to ``$DIGITREC_MNIST_MIRRORS`` (comma-separated base URLs) if set, else MIRRORS.
    """
    by_name = {name: key for key, (name, _, _) in FILES.items()}
    keys = list(FILES) if names is None else [by_name.get(str(n).removesuffix(".gz"), n) for n in names]
    unknown = [k for k in keys if k not in FILES]
    if unknown:
        raise ValueError(f"unknown MNIST file(s) {unknown}; use keys of FILES or their file names")
    urls = _mirror_list(mirrors)
    dest = Path(dest).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest}: cannot create the data folder ({e.strerror or e}); "
                        "pass --data-dir to a writable folder") from e
    found, _ = _locate(dest)
    for key in keys:
        if key not in found:
            _download_one(dest, *FILES[key], urls, max(1, retries), timeout, progress, backoff, (min_rate, grace))


def _download_one(dest: Path, name: str, size: int, sha: str, urls: list[str], retries: int,
                  timeout: float, progress: bool, backoff: float, pace: tuple[float, float]) -> None:
    failures = []
    for base in urls:
        url = base.rstrip("/") + f"/{name}.gz"
        for attempt in range(retries):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                _fetch(url, dest, name, size, sha, timeout, progress, pace)
                return
            except (_WrongContent, _TooSlow, ValueError) as e:  # bad bytes, a dead pace, a malformed URL: next mirror
                reason = _reason(e)
                break
            except (OSError, http.client.HTTPException) as e:  # timeouts, resets, refusals: may pass
                reason = _reason(e)
                if isinstance(e, urllib.error.HTTPError) and e.code < 500 and e.code != 429:
                    break  # 404 and friends will not change on a retry
        failures.append(f"{base} -> {reason}")
    raise DataError(f"{dest / name}.gz: download failed from every mirror ({'; '.join(failures)}); "
                    f"download it by hand into {dest}, or pass --data-dir to a folder that has the MNIST files")
