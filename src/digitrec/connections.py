"""The HTTP layer around the app: which Host names it answers, how long a connection may take over
a request's headers, and a shutdown that answers every request already sent.

uvicorn closes a connection that idles after a response, but not one that opened and sent nothing,
or that trickles its headers a byte at a time (slowloris): `Connection` gives each request's
headers a deadline. On SIGTERM (or Ctrl-C) the server stops accepting, answers the requests in
flight (each bounded by the request timeout), then exits; SIGTERM so handled is a clean exit (0).
With several worker processes (`run_workers`), uvicorn's supervisor passes the signal on to each.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
from functools import partial
from http import HTTPStatus

from .errors import require
from .limits import Limits

require("fastapi", "serve")
require("uvicorn", "serve")
require("httptools", "serve")  # uvicorn[standard]'s HTTP parser, which `Connection` extends
from starlette.responses import JSONResponse  # noqa: E402
from uvicorn import Config, Server  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402
from uvicorn.supervisors.multiprocess import Multiprocess, Process  # noqa: E402

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SHUTDOWN_GRACE_S = 1.0  # at shutdown, how long an idle connection may still start a request already on its way
ACCEPT_GRACE_S = 0.1  # at shutdown, for the loop to take in the connections waiting to be accepted
MAX_HEADER_BYTES = 64 * 1024  # a request line and headers larger than this are refused (431)
LINGER_S = 2.0  # after a refusal of our own, how long what the client still sends is read and dropped


def default_allowed_hosts(bind: str) -> tuple[str, ...]:
    """The Host names a server bound to `bind` answers by default: only loopback names when it
    listens on loopback (so a web page elsewhere cannot reach it by DNS rebinding), else any."""
    return LOOPBACK_HOSTS if bind in LOOPBACK_HOSTS or bind.startswith("127.") else ("*",)


class HostCheck:
    """ASGI middleware: refuse (400) a request whose Host header is not one of `allowed` names
    ("*" for any, "*.example.com" for its subdomains); the port is not part of the name."""

    def __init__(self, app, allowed):
        self.app, self.allowed = app, [h.lower().strip("[]") for h in allowed]

    def allows(self, host: str) -> bool:
        name = host.lower().rpartition("]")[0].lstrip("[") if host.startswith("[") else host.lower().partition(":")[0]
        return any(a == "*" or a == name or (a.startswith("*.") and name.endswith(a[1:])) for a in self.allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "*" not in self.allowed:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not self.allows(host):
                refusal = JSONResponse({"error": f"this server does not answer for host {host!r}; "
                                                 "start it with --allowed-hosts to add the name"}, 400)
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)


class WorkerHeader:
    """ASGI middleware: name the process that answered in an `X-Digitrec-Worker` header (its pid),
    so that a client, a test or a load benchmark can see the requests spread over the workers."""

    def __init__(self, app):
        self.app, self.header = app, (b"x-digitrec-worker", str(os.getpid()).encode())

    async def __call__(self, scope, receive, send):
        async def send_named(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_named if scope["type"] == "http" else send)


class Connection(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 connection with a deadline for each request's headers (from the
    connection's opening, or the previous response), a bound on their size, and a graceful
    shutdown that still answers a request whose bytes have not been read yet."""

    def __init__(self, *args, header_timeout_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.header_timer = None  # armed while the next request's headers are awaited
        self.header_bytes = 0  # of the request whose headers are being read; -1 once they are complete
        self.closing = False  # the server is shutting down: close after the response in hand
        self.lingering = False  # refused: what arrives now is dropped until the connection closes

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        super().data_received(data)
        if self.header_bytes >= 0:  # counted after parsing: a body in the same chunk is not a header
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES:
                self._refuse(431, f"request headers are larger than {MAX_HEADER_BYTES:,} bytes")

    def send_400_response(self, msg: str) -> None:  # what uvicorn answers to malformed HTTP
        self._refuse(400, msg)

    def on_headers_complete(self) -> None:
        self._stop_timer()
        self.header_bytes = -1
        super().on_headers_complete()
        if self.closing and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.header_bytes = 0
            self._await_headers()

    def connection_lost(self, exc) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        self.closing = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        elif self.header_bytes <= 0:
            # A request may have been sent but not read yet (this loop had not got to it): give it
            # a moment to arrive rather than reset a connection whose client is owed an answer.
            self.loop.call_later(SHUTDOWN_GRACE_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.header_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def _await_headers(self) -> None:
        self._stop_timer()
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request is being answered
        if self.header_bytes > 0:
            self._refuse(408, f"request headers took longer than {self.header_timeout_s:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer {"error": message} from outside any request the app has seen, then close. Not at
        once: closing with unread data resets the connection, and a client still sending (a long
        header) would never read why. The answer is followed by an end of stream, what the client
        still sends is dropped, and the connection closes when the client does or after LINGER_S."""
        self._stop_timer()
        if self.lingering or self.transport.is_closing():
            return
        self.lingering = True
        body = json.dumps({"error": message}).encode()
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n")
        self.transport.write(head.encode() + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


class GracefulServer(Server):
    """uvicorn's server, taking in the connections already waiting to be accepted before it stops
    listening: the kernel has completed them and their clients may have sent whole requests, which
    closing the listening socket would reset."""

    async def shutdown(self, sockets=None) -> None:
        await asyncio.sleep(ACCEPT_GRACE_S)  # one more turn of the loop accepts everything queued
        await super().shutdown(sockets)


def _config(app, *, host: str, port: int, limits: Limits, log_level: str, **more) -> Config:
    """uvicorn's settings with `Connection`'s deadlines. In-flight requests get their timeout and a
    little more to finish at shutdown."""
    return Config(app, host=host, port=port, log_level=log_level, timeout_keep_alive=5,
                  http=partial(Connection, header_timeout_s=limits.header_timeout_s),
                  timeout_graceful_shutdown=math.ceil(limits.timeout_s) + 5, **more)


def server(app, *, host: str, port: int, limits: Limits, log_level: str = "info") -> Server:
    """A uvicorn server for `app`, in this process, with `Connection`'s deadlines."""
    return GracefulServer(_config(app, host=host, port=port, limits=limits, log_level=log_level))


class _WorkerProcess(Process):
    """uvicorn's worker process, serving with `GracefulServer` rather than uvicorn's own."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's supervisor of worker processes that share one listening socket (the kernel hands
    each connection to one of them). On SIGTERM or Ctrl-C it sends each worker SIGTERM, which it
    answers as one server does, and waits for them all. A worker that uvicorn restarts after a
    crash runs uvicorn's own server: it lacks only the accept grace at shutdown."""

    interrupted = False  # stopped by Ctrl-C (SIGINT), which ends in KeyboardInterrupt as in one process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = _WorkerProcess(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def handle_int(self) -> None:
        self.interrupted = True
        super().handle_int()


def run_workers(factory: str, workers: int, *, host: str, port: int, limits: Limits, log_level: str = "info") -> None:
    """Serve from `workers` processes, each building its own app by calling `factory` (an import
    string, "module:function"), until SIGTERM (a clean return) or Ctrl-C (KeyboardInterrupt)."""
    config = _config(factory, host=host, port=port, limits=limits, log_level=log_level, factory=True, workers=workers)
    supervisor = Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    if supervisor.interrupted:
        raise KeyboardInterrupt


def run(srv: Server) -> None:
    """Run until SIGTERM or Ctrl-C, then shut down gracefully. uvicorn raises the signal that
    stopped it again once it is done, for its default action; a SIGTERM answered by a graceful
    shutdown is a clean exit, so that one is ignored by then. Ctrl-C ends in KeyboardInterrupt."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        srv.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
