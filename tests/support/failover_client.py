"""A client process that allocates through the API and retries across a database failover.

Standard library only: it stands for automation that follows the portal's contract —
a 503 (database away), a 409 (the same key still in progress) or a dropped
connection is retried after a pause with the **same** ``Idempotency-Key``; any
other answer is final. Reads one JSON object from stdin::

    {"base": "http://127.0.0.1:8000", "token": "ipam_…", "pool": 1, "client": "c1",
     "count": 25, "prefix_length": 56, "deadline": 1700000300.0}

and prints one JSON line: ``{"acknowledged": [{"key", "id", "cidr", "at"}, ...],
"retries": {"503": n, "409": n, "0": n}, "final_errors": [...], "retry_after": [...],
"failed_at": [epoch seconds of each retried answer]}``.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

RETRYABLE = {0, 409, 503}


def post(base: str, token: str, path: str, body: dict[str, Any], key: str) -> tuple[int, Any, str | None]:
    request = urllib.request.Request(  # noqa: S310 - the base URL is our own test server
        base + path,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            return response.status, json.loads(response.read()), None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")[:500]
        return exc.code, parsed, exc.headers.get("Retry-After")
    except OSError as exc:
        return 0, f"{type(exc).__name__}: {exc}", None


def main() -> None:
    job = json.load(sys.stdin)
    acknowledged: list[dict[str, Any]] = []
    retries: dict[str, int] = {}
    final_errors: list[dict[str, Any]] = []
    retry_after: list[str] = []
    failed_at: list[float] = []
    path = f"/api/v1/pools/{job['pool']}/allocations/"
    for i in range(job["count"]):
        key = f"{job['client']}-{i}"
        while time.time() < job["deadline"]:
            status, body, after = post(
                job["base"], job["token"], path, {"prefix_length": job["prefix_length"]}, key
            )
            if status == 201:
                acknowledged.append({"key": key, "id": body["id"], "cidr": body["cidr"], "at": time.time()})
                break
            if status in RETRYABLE:
                retries[str(status)] = retries.get(str(status), 0) + 1
                failed_at.append(time.time())
                if after is not None:
                    retry_after.append(after)
                time.sleep(0.2)
                continue
            final_errors.append({"key": key, "status": status, "body": body})
            break
    print(
        json.dumps(
            {
                "acknowledged": acknowledged,
                "retries": retries,
                "final_errors": final_errors,
                "retry_after": retry_after,
                "failed_at": failed_at,
            }
        )
    )


if __name__ == "__main__":
    main()
