"""A loopback HTTP receiver of outbound events (threaded ``http.server`` on 127.0.0.1).

It records every POST (headers, raw body) and answers with the scripted statuses
(``answer(500, 500)``; then ``default``), optionally stalling first (``stall(s)``:
the next request is held ``s`` seconds before it is answered, to kill a worker
mid-delivery). No portal logic: what it received is checked by the tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float


class Receiver:
    def __init__(self, default: int = 200, answer_body: bytes = b"ok") -> None:
        self.default = default
        self.answer_body = answer_body
        self.script: deque[int] = deque()
        self.stalls: deque[float] = deque()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                        )
                    )
                    stall = receiver.stalls.popleft() if receiver.stalls else 0.0
                    status = receiver.script.popleft() if receiver.script else receiver.default
                if stall:
                    time.sleep(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(receiver.answer_body)))
                    self.end_headers()
                    self.wfile.write(receiver.answer_body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender is gone (a killed worker, a timeout): nobody to answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, *statuses: int) -> None:
        with self.lock:
            self.script.extend(statuses)

    def stall(self, seconds: float) -> None:
        with self.lock:
            self.stalls.append(seconds)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
