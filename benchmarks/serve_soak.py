"""Soak `digitrec serve`: clients of every kind, good and bad, against one server for minutes.

    python benchmarks/serve_soak.py                 # 8 clients, 5 minutes
    python benchmarks/serve_soak.py --minutes 1

Each client repeats a mix of requests on raw sockets: good photos (an MNIST test digit as dark ink
on a 400x300 page), bad bodies (garbage, JSON, a truncated PNG, nothing), huge images (a 24-Mpx
photo, three in one request, a decompression bomb, a 20 MB body sent without waiting), slow
clients (headers a byte at a time; a body a byte at a time) and clients that leave mid-request
(after the whole body, or half of it). Prints the requests answered by status, the 5xx other than
503 (must be 0), fully-sent requests that got no answer (must be 0), tracebacks in the server's log
(must be 0), the server's RSS (start, peak, final, and the peak in each tenth of the run), and
p50/p99 of the good requests. Server and clients share this machine's cores.
"""

from __future__ import annotations

import argparse
import io
import itertools
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from digitrec.data import load_mnist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _bodies(data_dir: str | None) -> dict[str, bytes]:
    """The images the clients send, made once."""
    digit = load_mnist(data_dir).test_images[0].numpy()  # a 7
    page = Image.new("L", (400, 300), 255)
    page.paste(ImageOps.invert(Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC)), (110, 60))
    big = Image.new("L", (6000, 4000), 250)  # a 24-Mpx photo of a 7 written with a 3-px pen
    ImageDraw.Draw(big).line([(2800, 1800), (3100, 1800), (2900, 2250)], fill=30, width=3)
    good = _png(page)
    return {"good": good, "big": _png(big), "truncated": good[: len(good) // 2], "bomb": _bomb(30000, 30000)}


def _bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _multipart(files: list[bytes]) -> tuple[bytes, str]:
    parts = [b'--soak\r\nContent-Disposition: form-data; name="f"; filename="%d.png"\r\n'
             b"Content-Type: image/png\r\n\r\n" % i + data + b"\r\n" for i, data in enumerate(files)]
    return b"".join(parts) + b"--soak--\r\n", "multipart/form-data; boundary=soak"


def _head(port: int, length: int, ctype: str = "image/png") -> bytes:
    return (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def _status(sock: socket.socket) -> int:
    """The status of the response on `sock`, read to the end; 0 when the connection broke first."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        return 0
    return int(data.split()[1]) if data.startswith(b"HTTP/") else 0


def _post(port: int, body: bytes, ctype: str = "image/png") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(_head(port, len(body), ctype) + body)
        except OSError:
            return -1  # reset while sending: the server closed without reading the body
        return _status(s)


def _trickle(port: int, head: bytes, byte: bytes) -> int:
    """Send `head`, then one `byte` every 0.5 s until the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head)
        try:
            while True:
                s.sendall(byte)
                time.sleep(0.5)
        except OSError:
            pass
        return _status(s)


def _leave(port: int, body: bytes, ctype: str, fraction: float) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall((_head(port, len(body), ctype) + body)[: int(len(body) * fraction) + 200])


def _kinds(port: int, b: dict[str, bytes]) -> dict:
    """Each kind of request: a function that makes it and returns the status (None: it left, on purpose)."""
    three_big, ctype = _multipart([b["big"]] * 3)  # over the pixel budget: 413
    two_big, _ = _multipart([b["big"]] * 2)  # within it: work the server starts, then cancels
    return {
        "good": lambda: _post(port, b["good"]),
        "garbage": lambda: _post(port, bytes(range(256)) * 64),
        "json": lambda: _post(port, b'{"image": 1}', "application/json"),
        "truncated": lambda: _post(port, b["truncated"]),
        "empty": lambda: _post(port, b""),
        "24-Mpx photo": lambda: _post(port, b["big"]),
        "3 x 24 Mpx": lambda: _post(port, three_big, ctype),
        "bomb": lambda: _post(port, b["bomb"]),
        "20 MB body": lambda: _post(port, b"\0" * (20 * 2**20)),
        "slow headers": lambda: _trickle(port, b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X"),
        "slow body": lambda: _trickle(port, _head(port, 10**6), b"\0"),
        "leave after body": lambda: _leave(port, two_big, ctype, 1.0),
        "leave mid-body": lambda: _leave(port, two_big, ctype, 0.5),
    }


# Each client's round: mostly good requests, with every other kind in turn between them.
ROUND = ["good", "garbage", "good", "24-Mpx photo", "good", "slow headers", "good", "json", "good", "3 x 24 Mpx",
         "good", "leave after body", "good", "truncated", "good", "bomb", "good", "slow body", "good", "empty",
         "good", "20 MB body", "good", "leave mid-body"]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def soak(port: int, pid: int, kinds: dict, clients: int, seconds: float) -> dict:
    statuses: dict[str, Counter] = {k: Counter() for k in kinds}
    good_ms: list[float] = []
    rss = [_rss_mb(pid)]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(i: int):
        for kind in itertools.islice(itertools.cycle(ROUND), i * 3, None):  # clients start at different points
            if time.perf_counter() > stop_at:
                return
            t0 = time.perf_counter()
            status = kinds[kind]()
            with lock:
                statuses[kind][status] += 1
                if kind == "good" and status == 200:
                    good_ms.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss.append(_rss_mb(pid))
        time.sleep(0.5)
    time.sleep(2)  # let the work of the clients that left finish
    return {"statuses": statuses, "good_ms": np.array(good_ms), "rss": rss, "rss_final": _rss_mb(pid)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--model", default=None, help="checkpoint or .onnx [default: the shipped model]")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    port = _free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port)] + (["--model", args.model] if args.model else [])
    log = tempfile.TemporaryFile("w+")  # the server's log: every traceback in it is a bug
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        kinds = _kinds(port, _bodies(args.data_dir))
        print(f"{args.clients} clients for {args.minutes:g} min against one server (default limits)", flush=True)
        r = soak(port, proc.pid, kinds, args.clients, args.minutes * 60)
    finally:
        proc.terminate()
        code = proc.wait(60)
    log.seek(0)
    _report(r, code, log.read().count("Traceback"))


def _report(r: dict, exit_code: int, tracebacks: int) -> None:
    every = sum(r["statuses"].values(), Counter())
    answered = sum(n for s, n in every.items() if isinstance(s, int) and s > 0)
    print("\n| request | answers by status |\n|---|---|")
    for kind, c in r["statuses"].items():
        print(f"| {kind} | {', '.join(f'{s}: {n}' for s, n in sorted(c.items(), key=lambda x: str(x[0])))} |")
    server_errors = sum(n for s, n in every.items() if isinstance(s, int) and s >= 500 and s != 503)
    lat = r["good_ms"]
    print(f"\nrequests answered: {answered:,}  (of which 503 server full: {every.get(503, 0)}; "
          f"clients that left on purpose: {every.get(None, 0)})")
    print(f"5xx other than 503: {server_errors} (must be 0); connection broken while sending: {every.get(-1, 0)}, "
          f"fully sent but no answer: {every.get(0, 0)} (both must be 0)")
    rss = r["rss"]
    tenths = [max(rss[i * len(rss) // 10:(i + 1) * len(rss) // 10] or rss[-1:]) for i in range(10)]
    print(f"server RSS: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, final {r['rss_final']:.0f} MB; "
          f"peak in each tenth of the run: {' '.join(f'{m:.0f}' for m in tenths)}")
    if len(lat):
        print(f"good requests: {len(lat):,} answered 200, p50 {np.percentile(lat, 50):.0f} ms, "
              f"p99 {np.percentile(lat, 99):.0f} ms")
    print(f"server exit code after SIGTERM: {exit_code}; tracebacks in its log: {tracebacks} (must be 0)")


if __name__ == "__main__":
    main()
