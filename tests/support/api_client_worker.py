"""A separate OS process that sends HTTP requests to a running server (API concurrency tests).

Standard library only: it stands for any automation client. Reads one JSON object
from stdin::

    {"base": "http://127.0.0.1:8000", "token": "ipam_…", "start_at": 1700000000.0,
     "requests": [{"method": "POST", "path": "/api/v1/shoots/", "body": {...},
                   "headers": {"Idempotency-Key": "k-1"}}, ...]}

waits until ``start_at`` (epoch seconds) so that every worker starts together,
sends the requests one after the other on its own connections, and prints one
JSON line: ``{"responses": [{"status", "body", "replayed", "ms"}, ...]}``. A
transport error is recorded as status 0 with the error text as body.

Usage: python tests/support/api_client_worker.py < job.json
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def send(base: str, token: str, spec: dict[str, Any]) -> dict[str, Any]:
    data = None if spec.get("body") is None else json.dumps(spec["body"]).encode()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    headers.update(spec.get("headers") or {})
    request = urllib.request.Request(  # noqa: S310 - the base URL is our own test server
        base + spec["path"], data=data, headers=headers, method=spec.get("method", "GET")
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - see above
            status, raw, replayed = (
                response.status,
                response.read(),
                response.headers.get("Idempotent-Replayed"),
            )
    except urllib.error.HTTPError as exc:
        status, raw, replayed = exc.code, exc.read(), exc.headers.get("Idempotent-Replayed")
    except OSError as exc:
        return {"status": 0, "body": f"{type(exc).__name__}: {exc}", "replayed": None, "ms": 0.0}
    elapsed = (time.perf_counter() - start) * 1000
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")[:2000]
    return {"status": status, "body": body, "replayed": replayed, "ms": elapsed}


def main() -> None:
    job = json.load(sys.stdin)
    time.sleep(max(0.0, float(job.get("start_at", 0)) - time.time()))
    responses = [send(job["base"], job["token"], spec) for spec in job["requests"]]
    print(json.dumps({"responses": responses}))


if __name__ == "__main__":
    main()
