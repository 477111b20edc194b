"""``manage.py ipam_audit_checkpoint``: print a signed checkpoint of the audit chain's head.

The checkpoint (JSON: ``seq``, ``hash``, ``time``, ``mac`` = HMAC-SHA256 with
``AUDIT_CHECKPOINT_KEY``) is meant to be kept outside the database (a file, object
storage, a ticket); ``ipam_audit_verify --checkpoint`` then proves that the chain up
to it was not rewritten, even by someone who may write the audit table.
"""

from __future__ import annotations

import json
from typing import Any

from audit.selectors import checkpoint_create
from ipam_portal.management.base import IpamCommand


class Command(IpamCommand):
    help = "Print a checkpoint of the audit chain's head, signed with AUDIT_CHECKPOINT_KEY (JSON)."

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = checkpoint_create()
        self.stdout.write(json.dumps(checkpoint))
