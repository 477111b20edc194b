"""Credentials by reference only: ``env:NAME`` or ``file:/path`` holding a JSON object.

The portal stores the reference, never the secret. The secret is read when a job
runs, handed to the adapter, and never logged or shown (messages name the
reference, not the content).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from allocations.errors import IpamError

from .errors import CredentialError

REFERENCE_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|none)$")


def check_reference(ref: str) -> str:
    """Validate the *form* of a reference (``env:NAME``, ``file:/abs/path`` or ``none``)."""
    if not isinstance(ref, str) or not REFERENCE_RE.match(ref):
        raise IpamError(
            "a credential reference is env:VARIABLE, file:/absolute/path or none — never the secret itself",
            field="credentials_ref",
        )
    return ref


def resolve(ref: str) -> dict[str, str]:
    """The credentials a reference points at: a JSON object of strings ({} for ``none``)."""
    check_reference(ref)
    if ref == "none":
        return {}
    kind, _, name = ref.partition(":")
    if kind == "env":
        raw = os.environ.get(name)
        if raw is None:
            raise CredentialError(f"credential reference {ref}: environment variable {name} is not set")
    else:
        try:
            raw = Path(name).read_text()
        except OSError as exc:
            raise CredentialError(
                f"credential reference {ref}: cannot read the file ({exc.strerror})"
            ) from None
    try:
        value = json.loads(raw)
    except ValueError:
        raise CredentialError(f"credential reference {ref}: not a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CredentialError(f"credential reference {ref}: must be a JSON object of strings")
    return value
