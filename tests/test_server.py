"""The HTTP layer on a real uvicorn server (`connections`): what reaches the app, how connections are
closed, and how the process stops. In-process servers on free ports, and `digitrec serve` itself
for signals; clients are raw sockets and urllib, as the clients that misbehave are."""

import io
import json
import logging
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from PIL import Image

from conftest import free_port, on_paper, serve_process, wait_until_up
from digitrec.connections import default_allowed_hosts, server
from digitrec.limits import Limits
from digitrec.loading import load_model
from digitrec.serve import create_app

DEADLINE_S = 60  # a bound on waiting, so a broken server fails the test instead of hanging it


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, "PNG")
    return buf.getvalue()


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="f"; filename="{name}"\r\nContent-Type: image/png\r\n\r\n'
             .encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def _request(port: int, body: bytes, ctype: str = "image/png", host: str = "127.0.0.1") -> bytes:
    return (f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _response(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the response on `sock`, read until the server closes it."""
    sock.settimeout(DEADLINE_S)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture(scope="module")
def live():
    """An in-process server (the shipped model) with small limits and a 1-second header deadline."""
    limits = Limits(max_body_bytes=2**20, max_pixels=12_000_000, max_images=16, pixels_in_flight=16 * 12_000_000,
                    header_timeout_s=1.0, timeout_s=60)
    app = create_app(load_model(), limits=limits, allowed_hosts=default_allowed_hosts("127.0.0.1"))
    port = free_port()
    srv = server(app, host="127.0.0.1", port=port, limits=limits, log_level="warning")
    thread = threading.Thread(target=srv.run, daemon=True)  # not the main thread: uvicorn leaves signals alone
    thread.start()
    deadline = time.time() + DEADLINE_S
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield app, port
    srv.should_exit = True
    thread.join(DEADLINE_S)


@pytest.mark.parametrize("megabytes", [3, 20, 60])
def test_a_body_over_the_limit_sent_without_waiting_gets_the_413(live, megabytes):
    _, port = live
    body = b"\0" * (megabytes * 2**20)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=body, headers={"Content-Type": "image/png"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # not a connection reset or a broken pipe
        urllib.request.urlopen(req, timeout=DEADLINE_S)
    assert refused.value.code == 413 and "allowed" in json.loads(refused.value.read())["error"]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_request(port, body))  # all of it at once, reading nothing first
        assert _response(s)[0] == 413


def test_an_idle_connection_and_one_that_trickles_its_headers_are_closed(live):
    _, port = live
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.settimeout(DEADLINE_S)
        assert idle.recv(1) == b""  # closed by the server, having sent nothing
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.time() + DEADLINE_S
        try:
            while time.time() < deadline:
                slow.sendall(b"X")  # a byte every 0.2 s, never finishing a header line
                time.sleep(0.2)
        except OSError:
            pass  # the server closed the connection: the 408 is waiting to be read
        status, body = _response(slow)
    assert status == 408 and "headers took longer" in body["error"]
    with socket.create_connection(("127.0.0.1", port)) as huge:
        try:
            huge.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 2**20)
        except OSError:
            pass
        assert _response(huge)[0] == 431


def test_only_the_allowed_host_names_are_answered(live):
    _, port = live
    for host, status in ((f"localhost:{port}", 200), ("evil.example", 400), (f"127.0.0.1.nip.io:{port}", 400)):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(f"GET /v1/model HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            got, body = _response(s)
        assert got == status, host
        assert "error" in body if status == 400 else "arch" in body


def test_work_stops_when_the_client_leaves(live):
    app, port = live
    workers = app.state.workers
    before = workers.images_done
    body, ctype = _multipart([(f"{i}.png", _png(4000, 3000)) for i in range(16)])  # ~1 s each to preprocess
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_request(port, body, ctype))
        deadline = time.time() + DEADLINE_S
        while workers.pixels.in_use == 0:
            assert time.time() < deadline, "the request never started"
            time.sleep(0.01)
    while workers.pixels.in_use:  # held until its thread has finished the images in hand
        assert time.time() < deadline, "the work was not stopped"
        time.sleep(0.05)
    assert workers.images_done - before < 16  # the rest were never decoded


def test_a_client_that_leaves_mid_body_is_not_an_error(live):
    app, port = live
    errors = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(_request(port, b"\0" * 500_000)[:250_000])  # half the body, then gone
            deadline = time.time() + DEADLINE_S
            while app.state.bodies.in_use == 0:
                assert time.time() < deadline, "the request never started"
                time.sleep(0.01)
        while app.state.bodies.in_use:  # the body's bytes are held until the request is over
            assert time.time() < deadline, "the request never ended"
            time.sleep(0.01)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert not errors, [e.getMessage() for e in errors]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_answers_every_request_sent_then_exits_0(workers):
    proc, url = serve_process("--timeout", "120", "--workers", workers)
    wait_until_up(proc, url)
    deadline, answering = time.time() + DEADLINE_S, set()
    while len(answering) < int(workers) and time.time() < deadline:  # the load is on every worker, all started
        with urllib.request.urlopen(url + "/healthz", timeout=DEADLINE_S) as r:
            answering.add(r.headers["X-Digitrec-Worker"])
    port = int(url.rsplit(":", 1)[1])
    request = _request(port, _png(2000, 1500))  # a third of a second each to preprocess
    sent, answers = [], []

    def client():
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(request)
            sent.append(True)
            answers.append(_response(s)[0])

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    deadline = time.time() + DEADLINE_S
    while len(sent) < len(threads) and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(DEADLINE_S)
    out = proc.communicate(timeout=DEADLINE_S)[0]
    assert len(sent) == 16 and answers == [200] * 16, out[-2000:]
    assert proc.returncode == 0 and "Traceback" not in out, out[-2000:]


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_two_workers_each_with_the_model_answer_behind_one_port(one_of_each):
    seven = io.BytesIO()
    on_paper(one_of_each[7][0]).save(seven, "PNG")
    proc, url = serve_process("--workers", "2")
    try:
        wait_until_up(proc, url)
        read, deadline = {}, time.time() + DEADLINE_S
        while len(read) < 2 and time.time() < deadline:  # the kernel hands each connection to either worker
            req = urllib.request.Request(url + "/v1/predict", data=seven.getvalue(), headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(req, timeout=DEADLINE_S) as r:
                read[int(r.headers["X-Digitrec-Worker"])] = json.loads(r.read())["results"][0]["digit"]
        assert len(read) == 2, f"only worker {list(read)} answered"
        assert all(_parent_of(pid) == proc.pid for pid in read)  # worker processes of this one server
        assert list(read.values()) == [7, 7]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=DEADLINE_S)[0]
    assert proc.returncode == 0 and "Traceback" not in out, out[-2000:]


def _wait_until_loading(proc: subprocess.Popen) -> None:
    """Until the command is loading torch (the serve command imports it, the CLI does not)."""
    deadline = time.time() + DEADLINE_S
    while "libtorch" not in Path(f"/proc/{proc.pid}/maps").read_text():
        assert proc.poll() is None and time.time() < deadline, "digitrec serve never loaded torch"
        time.sleep(0.01)


@pytest.mark.parametrize("when, workers", [("loading", "1"), ("serving", "1"), ("serving", "2")])
def test_ctrl_c_exits_130_without_aborted(when, workers):
    proc, url = serve_process("--workers", workers)
    if when == "serving":
        wait_until_up(proc, url)
    else:
        _wait_until_loading(proc)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=DEADLINE_S)[0]
    assert proc.returncode == 130 and "Aborted" not in out and "Traceback" not in out, out[-2000:]
