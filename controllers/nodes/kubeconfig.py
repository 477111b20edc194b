"""Where a shoot's kubeconfig is: a reference by convention, never stored in the database.

A shoot's kubeconfig is a credential like a provider account's, and is handled the
same way (:mod:`providers.credentials`): the portal knows only a *reference*, reads
the file when it connects, never logs or shows its content. The reference is not a
column of the shoot: it follows from the shoot's project and name by the template
``SHOOT_KUBECONFIG_REF`` (default ``file:{credentials_dir}/shoots/{project}/{name}.kubeconfig``),
so nothing is written when a shoot appears and nothing is left when it goes.
``{credentials_dir}`` is ``PROVIDER_CREDENTIALS_DIR``; a ``file:`` reference must
stay inside it (the credentials module checks the resolved path, the file type and
its size). In a cluster, the Secrets that hold the shoots' kubeconfigs (Gardener's
``<shoot>.kubeconfig`` Secret or a ``shoots/adminkubeconfig`` token refreshed by a
sidecar) are mounted as files there; ``env:NAME`` is accepted too (one variable per
shoot, for tests and single-shoot set-ups).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings
from kubernetes.client import ApiClient
from kubernetes.config import new_client_from_config_dict

from allocations.errors import IpamError
from allocations.models import Shoot
from providers import credentials


class KubeconfigError(Exception):
    """The shoot's kubeconfig cannot be had; the message names the reference, never the content."""


def kubeconfig_ref(shoot: Shoot) -> str:
    """The reference of ``shoot``'s kubeconfig, by the ``SHOOT_KUBECONFIG_REF`` template."""
    directory = str(settings.PROVIDER_CREDENTIALS_DIR or "").rstrip("/")
    return str(settings.SHOOT_KUBECONFIG_REF).format(
        credentials_dir=directory, project=shoot.project, name=shoot.name
    )


@dataclass(frozen=True)
class Kubeconfig:
    """A read kubeconfig: its reference, a digest of its text (to notice a change) and its content."""

    ref: str
    digest: str
    content: dict[str, Any]

    def api_client(self) -> ApiClient:
        """A Kubernetes API client for the kubeconfig's current context."""
        try:
            return new_client_from_config_dict(config_dict=self.content)
        except Exception as exc:  # noqa: BLE001 - the loader raises many kinds; all mean unusable
            raise KubeconfigError(f"kubeconfig {self.ref} is not usable ({exc.__class__.__name__})") from None


def kubeconfig_read(ref: str) -> Kubeconfig:
    """Read and parse the kubeconfig ``ref`` points at; :class:`KubeconfigError` if it cannot."""
    try:
        text = credentials.resolve_text(ref)
    except IpamError as exc:  # CredentialError, or a malformed reference
        raise KubeconfigError(str(exc.message)) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError:
        raise KubeconfigError(f"kubeconfig {ref} is not YAML") from None
    if not isinstance(content, dict) or not content.get("clusters"):
        raise KubeconfigError(f"kubeconfig {ref} has no clusters")
    return Kubeconfig(ref, hashlib.sha256(text.encode()).hexdigest(), content)
