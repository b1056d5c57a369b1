"""Load on `digitrec serve`: concurrent clients on 127.0.0.1 for a fixed time, for each backend,
number of worker processes (`--workers`) and number of clients.

    python benchmarks/serve_load.py                     # torch and onnx, 1 and 2 workers, 8/32/128 clients, 20 s each
    python benchmarks/serve_load.py --backends torch --clients 32 --workers 2 --seconds 30

The clients send realistic photos: 400x300 JPEGs of MNIST test digits written on paper, rendered
by `synth` (ink colour and fading, uneven light, paper texture, noise, blur, specks and ruled
lines), one per request as the raw body, each client going round the set. Each waits for its
answer and posts again, on one kept-alive connection (as a browser or an HTTP library's session
does; `--new-connections`: a new one per request). Prints requests per second, p50/p99 latency, the errors (any answer but
200, or none), the digits read right, and how the requests spread over the workers; then the
model's own inference throughput on each backend (batch 1 and 1,024, no HTTP, no preprocessing).
Server and clients share this machine's cores.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photos(data_dir: str | None, n: int = 64) -> list[tuple[bytes, int]]:
    """(JPEG bytes, label) of `n` 400x300 photos of test digits on paper, rendered by `synth`."""
    from digitrec.data import load_mnist
    from digitrec.synth import StyleConfig, ink_on_paper, place_digit

    mnist = load_mnist(data_dir)
    rng, style = np.random.default_rng(0), StyleConfig(p_jpeg=0.0)  # JPEG once, below, at a phone's quality
    out = []
    for i in range(n):
        mask, _ = place_digit(mnist.test_images[i].numpy(), (300, 400), rng, style)
        buf = io.BytesIO()
        ink_on_paper(mask, rng, style).convert("RGB").save(buf, "JPEG", quality=85)
        out.append((buf.getvalue(), int(mnist.test_labels[i])))
    return out


def _start(backend: str, model: str | None, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--backend", backend, "--workers", str(workers)]
    if model:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server for {backend} with {workers} workers did not start")


def load(url: str, photos: list[tuple[bytes, int]], clients: int, seconds: float, keep_alive: bool = True) -> dict:
    """Each of `clients` threads posts photos in turn for `seconds`, over one kept-alive HTTP/1.1
    connection (as a browser or an HTTP client library's session does), or a new one per request."""
    where = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    errors: Counter = Counter()
    right, workers = [0], Counter()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(c: int):
        i, conn = c, None
        while time.perf_counter() < stop_at:
            body, label = photos[i % len(photos)]
            i += clients
            t0 = time.perf_counter()
            try:
                conn = conn or http.client.HTTPConnection(where.hostname, where.port, timeout=60)
                conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "image/jpeg"})
                r = conn.getresponse()
                payload, status, worker = r.read(), r.status, r.headers["X-Digitrec-Worker"]
                digit = json.loads(payload)["results"][0]["digit"] if status == 200 else None
                reuse = keep_alive and not r.will_close
            except (OSError, http.client.HTTPException) as e:
                status, reuse = type(e).__name__, False
            dt = time.perf_counter() - t0
            if conn and not reuse:
                conn.close()
                conn = None
            with lock:
                if status == 200:
                    latencies.append(dt)
                    right[0] += digit == label
                    workers[worker] += 1
                else:
                    errors[status] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies or [float("nan")]) * 1000
    return {"requests": len(latencies), "errors": sum(errors.values()), "error_kinds": dict(errors),
            "rps": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "right": right[0] / max(1, len(latencies)), "spread": sorted(workers.values(), reverse=True)}


def inference(backend: str, model: str | None) -> dict:
    from compare import inference_rate  # benchmarks/compare.py, beside this script

    from digitrec.loading import load_model

    rec = load_model(model, backend=backend)
    return {f"b{batch}": inference_rate(rec.model, batch) for batch in (1, 1024)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="worker processes of the server")
    p.add_argument("--clients", nargs="+", type=int, default=[8, 32, 128])
    p.add_argument("--seconds", type=float, default=20.0, help="per run (after 2 s of warm-up)")
    p.add_argument("--new-connections", action="store_true",
                   help="open a new connection for every request instead of keeping one per client alive")
    p.add_argument("--model", default=None, help="checkpoint or .onnx [default: the shipped model]")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    photos = _photos(args.data_dir)
    size = sum(len(b) for b, _ in photos) // len(photos)
    print(f"{len(photos)} photos (400x300 JPEG, {size:,} bytes on average), {args.seconds:g} s per run, "
          f"{os.cpu_count()} CPU cores", flush=True)
    rows, keep = [], not args.new_connections
    print("connections: " + ("one kept alive per client" if keep else "a new one per request"), flush=True)
    for backend in args.backends:
        for workers in args.workers:
            proc, url = _start(backend, args.model, workers)
            try:
                for clients in args.clients:
                    load(url, photos, clients, 2.0, keep)  # warm up
                    r = load(url, photos, clients, args.seconds, keep)
                    rows.append((backend, workers, clients, r))
                    print(f"{backend} workers={workers} clients={clients}: {r}", flush=True)
            finally:
                proc.terminate()
                proc.wait(60)

    print("\n| backend | workers | clients | requests | errors | req/s | p50 (ms) | p99 (ms) | read right | per worker |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for backend, workers, clients, r in rows:
        print(f"| {backend} | {workers} | {clients} | {r['requests']:,} | {r['errors']} | {r['rps']:.1f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['right']:.3f} | {'/'.join(map(str, r['spread']))} |")
    print("\n| backend | model img/s (b=1) | model img/s (b=1024) |\n|---|---|---|")
    for backend in args.backends:
        rate = inference(backend, args.model)
        print(f"| {backend} | {rate['b1']:,.0f} | {rate['b1024']:,.0f} |")


if __name__ == "__main__":
    main()
