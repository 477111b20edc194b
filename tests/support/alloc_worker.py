"""A separate OS process that allocates from one pool (used by the concurrency tests).

Usage: python -m tests.support.alloc_worker POOL_ID COUNT PREFIX_LENGTH START_AT
(DATABASE_URL in the environment). Waits until START_AT (epoch seconds) so that all
workers start together, then prints one JSON object: the CIDRs it got and its errors.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipam_portal.settings_test")
    import django

    django.setup()
    from allocations import services
    from allocations.errors import IpamError
    from allocations.models import Pool
    from audit.services import Actor

    pool_id, count, length, start_at = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    pool = Pool.objects.get(pk=pool_id)
    actor = Actor(f"worker-{os.getpid()}", "worker")
    got: list[str] = []
    errors: list[str] = []
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(count):
        try:
            got.append(services.pool_allocate(pool=pool, actor=actor, prefix_length=length).cidr)
        except IpamError as exc:
            errors.append(f"{type(exc).__name__}: {exc.message}")
    print(json.dumps({"cidrs": got, "errors": errors}))


if __name__ == "__main__":
    main()
