"""A separate OS process that POSTs AdmissionReviews over HTTPS (the ManagedSeedSet test).

Standard library only: it stands for one kube-apiserver. Reads one JSON object
from stdin::

    {"url": "https://127.0.0.1:8443/admission/v1/shoots", "cafile": "ca.pem",
     "token": "ipam_…", "start_at": 1700000000.0, "reviews": [{...}, ...]}

waits until ``start_at`` so that every worker starts together, sends the reviews
one after the other and prints one JSON line ``{"responses": [{"status", "body"}]}``;
a transport error is status 0 with its text as body.

Usage: python tests/admission/review_client_worker.py < job.json
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def send(url: str, context: ssl.SSLContext, token: str, review: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own test server
        url,
        data=json.dumps(review).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120, context=context) as response:  # noqa: S310
            return {"status": response.status, "body": json.loads(response.read())}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read().decode(errors="replace")[:2000]}
    except OSError as exc:
        return {"status": 0, "body": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    job = json.load(sys.stdin)
    context = ssl.create_default_context(cafile=job["cafile"])
    time.sleep(max(0.0, float(job["start_at"]) - time.time()))
    responses = [send(job["url"], context, job["token"], review) for review in job["reviews"]]
    print(json.dumps({"responses": responses}))


if __name__ == "__main__":
    main()
