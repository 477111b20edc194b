"""Credentials by reference only: ``env:NAME`` or ``file:/path`` holding a JSON object.

The portal stores the reference, never the secret. The secret is read when a job
runs, handed to the adapter, and never logged or shown (messages name the
reference, not the content).

``file:`` references are confined to one directory, ``PROVIDER_CREDENTIALS_DIR``
(empty: file references are refused). The path is resolved (symlinks followed)
and must stay inside that directory; only a regular file of at most
``PROVIDER_CREDENTIALS_MAX_BYTES`` is read. Whatever goes wrong with a file —
missing, outside, a device, too large, unreadable, not JSON — the error is the
same sentence, so a message never tells an account's editor anything about the
file system (whether a path exists, its type or its bytes).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from django.conf import settings

from allocations.errors import IpamError

from .errors import CredentialError

REFERENCE_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|none)$")


def _credentials_dir() -> Path | None:
    configured = str(getattr(settings, "PROVIDER_CREDENTIALS_DIR", "") or "")
    return Path(configured).resolve() if configured else None


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _check_form(ref: str) -> None:
    if not isinstance(ref, str) or not REFERENCE_RE.match(ref):
        raise IpamError(
            "a credential reference is env:VARIABLE, file:/absolute/path or none — never the secret itself",
            field="credentials_ref",
        )


def check_reference(ref: str) -> str:
    """Validate the *form* of a reference (``env:NAME``, ``file:/abs/path`` or ``none``).

    A ``file:`` reference must also name a path inside ``PROVIDER_CREDENTIALS_DIR``
    (checked on the name only: the file need not exist yet, and is never opened here).
    """
    _check_form(ref)
    if ref.startswith("file:"):
        directory = _credentials_dir()
        if directory is None:
            raise IpamError(
                "file: credential references are disabled (PROVIDER_CREDENTIALS_DIR is not set)",
                field="credentials_ref",
            )
        if not _inside(Path(os.path.normpath(ref[len("file:") :])), directory):
            raise IpamError(
                f"a file: credential reference must name a file inside {directory}",
                field="credentials_ref",
            )
    return ref


def _read_file(ref: str, name: str) -> str:
    """The text of a credential file inside the directory; one uniform error otherwise."""
    unreadable = CredentialError(f"credential reference {ref} is not readable")
    directory = _credentials_dir()
    if directory is None:
        raise unreadable
    limit = int(getattr(settings, "PROVIDER_CREDENTIALS_MAX_BYTES", 65536))
    try:
        path = Path(name).resolve(strict=True)
        if not _inside(path, directory):
            raise unreadable
        # O_NOFOLLOW | O_NONBLOCK: the resolved path is opened as is (no symlink swapped in
        # since), and a FIFO cannot block the worker; fstat then sees what was opened.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                raise unreadable
            raw = file.read(limit + 1)
        if len(raw) > limit:
            raise unreadable
        return raw.decode("utf-8")
    except (OSError, RuntimeError, UnicodeDecodeError, ValueError):  # RuntimeError: a symlink loop
        raise unreadable from None


def resolve_text(ref: str) -> str:
    """The raw text an ``env:`` or ``file:`` reference points at (a kubeconfig: YAML, not JSON).

    The same rules as :func:`resolve`: a file inside ``PROVIDER_CREDENTIALS_DIR`` only,
    one uniform error whatever is wrong with it; the text is never logged.
    """
    _check_form(ref)
    kind, _, name = ref.partition(":")
    if kind == "env":
        raw = os.environ.get(name)
        if raw is None:
            raise CredentialError(f"credential reference {ref}: environment variable {name} is not set")
        return raw
    if kind == "file":
        return _read_file(ref, name)
    raise CredentialError(f"credential reference {ref} names no text")


def resolve(ref: str) -> dict[str, str]:
    """The credentials a reference points at: a JSON object of strings ({} for ``none``)."""
    _check_form(ref)  # where a file lies is checked when it is read, with the uniform error
    if ref == "none":
        return {}
    kind, _, name = ref.partition(":")
    if kind == "env":
        raw = os.environ.get(name)
        if raw is None:
            raise CredentialError(f"credential reference {ref}: environment variable {name} is not set")
    else:
        raw = _read_file(ref, name)
    try:
        value = json.loads(raw)
    except ValueError:
        if kind == "file":
            raise CredentialError(f"credential reference {ref} is not readable") from None
        raise CredentialError(f"credential reference {ref}: not a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        if kind == "file":
            raise CredentialError(f"credential reference {ref} is not readable")
        raise CredentialError(f"credential reference {ref}: must be a JSON object of strings")
    return value
