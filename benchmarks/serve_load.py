"""Load on `digitrec serve`: concurrent clients on 127.0.0.1 for a fixed time, for each backend.

    python benchmarks/serve_load.py                     # 8 clients, 20 s per backend
    python benchmarks/serve_load.py --clients 16 --seconds 30 --backends onnx

Each client posts one user-style photo (an MNIST test digit as dark ink on a 400x300 page, PNG)
as the raw body, waits for the answer, and posts again. Prints requests per second and p50/p99
latency per backend, then the model's own inference throughput on each backend (batch 1 and
1,024, no HTTP, no preprocessing). Server and clients share this machine's cores.
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photo(data_dir: str | None) -> bytes:
    from PIL import Image, ImageOps

    from digitrec.data import load_mnist

    digit = load_mnist(data_dir).test_images[0].numpy()  # a 7
    big = ImageOps.invert(Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC))
    page = Image.new("L", (400, 300), 255)
    page.paste(big, (110, 60))
    buf = io.BytesIO()
    page.save(buf, "PNG")
    return buf.getvalue()


def _start(backend: str, model: str | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--backend", backend]
    if model:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server for {backend} did not start")


def load(url: str, body: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < stop_at:
            req = urllib.request.Request(url + "/v1/predict", data=body, headers={"Content-Type": "image/png"})
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                    ok = r.status == 200
            except OSError:
                ok = False
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    errors[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "errors": errors[0], "rps": len(lat) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def inference(backend: str, model: str | None) -> dict:
    from compare import inference_rate  # benchmarks/compare.py, beside this script

    from digitrec.predict import load_model

    rec = load_model(model, backend=backend)
    return {f"b{batch}": inference_rate(rec.model, batch) for batch in (1, 1024)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--model", default=None, help="checkpoint or .onnx [default: the shipped model]")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    body = _photo(args.data_dir)
    print(f"{args.clients} clients, {args.seconds:g} s per backend, {len(body):,}-byte PNG (400x300 page)", flush=True)
    rows = []
    for backend in args.backends:
        proc, url = _start(backend, args.model)
        try:
            load(url, body, args.clients, 2.0)  # warm up
            r = load(url, body, args.clients, args.seconds)
        finally:
            proc.terminate()
            proc.wait(10)
        r.update({f"infer_{k}": v for k, v in inference(backend, args.model).items()})
        rows.append((backend, r))
        print(f"{backend}: {r}", flush=True)

    print("\n| backend | requests | errors | req/s | p50 (ms) | p99 (ms) | model img/s (b=1) | model img/s (b=1024) |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, r in rows:
        print(f"| {backend} | {r['requests']:,} | {r['errors']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['infer_b1']:,.0f} | {r['infer_b1024']:,.0f} |")
    if len(rows) == 2:
        print(f"\nONNX / PyTorch model throughput: batch 1 x{rows[1][1]['infer_b1'] / rows[0][1]['infer_b1']:.2f}, "
              f"batch 1024 x{rows[1][1]['infer_b1024'] / rows[0][1]['infer_b1024']:.2f}")


if __name__ == "__main__":
    main()
