"""Fixtures for the AWS adapter tests (moto in server mode on loopback).

One ``ThreadedMotoServer`` per test session on a free loopback port (starts in
milliseconds; its first EC2 request loads moto's backends, ~3 s once). Every test
that uses ``aws_account`` / ``aws_harness`` starts from an empty moto
(``POST /moto-api/reset``). moto accepts any credentials; the session sets the
environment variable ``IPAM_TEST_AWS_CREDENTIALS`` (the reference
``env:IPAM_TEST_AWS_CREDENTIALS`` that ``AwsHarness.make_account_kwargs`` gives
accounts) to a JSON object with ``aws_access_key_id`` / ``aws_secret_access_key``,
so worker processes started by the tests inherit it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from providers.adapters.base import AccountConfig

__all__ = [
    "AWS_CREDENTIALS",
    "AWS_CREDENTIALS_ENV",
    "AWS_REGION",
    "AWS_ZONES",
    "aws_account",
    "aws_fault_proxy",
    "aws_harness",
    "moto_reset",
    "moto_server",
]

AWS_REGION = "eu-central-1"
AWS_ZONES = ("eu-central-1a", "eu-central-1b", "eu-central-1c")
AWS_CREDENTIALS_ENV = "IPAM_TEST_AWS_CREDENTIALS"
AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def moto_reset(endpoint: str) -> None:
    """Wipe all of moto's state."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 (our loopback URL)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our loopback URL)
        assert response.status == 200
    # moto 5.2 leak: ``Subnet._base_avail_ip_iterator`` is a ``functools.cache``d method,
    # so every subnet ever created stays alive after a reset — with a services
    # reservation, its ~1M IPv6Address objects, which slow every later garbage
    # collection in this process (the server runs in-process). Drop that cache.
    subnets = sys.modules.get("moto.ec2.models.subnets")
    cached = getattr(getattr(subnets, "Subnet", None), "_base_avail_ip_iterator", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def aws_account_config(endpoint: str, **options: Any) -> AccountConfig:
    """An AccountConfig for the moto server (or a proxy in front of it); ``options`` override the defaults."""
    return AccountConfig(
        name="moto",
        type="aws",
        region=AWS_REGION,
        endpoint=endpoint,
        options={"zones": list(AWS_ZONES), **options},
        credentials=dict(AWS_CREDENTIALS),
    )


@contextmanager
def moto_server_running() -> Iterator[str]:
    """A moto server (EC2 and the rest) on a free loopback port; sets the test credentials' variable."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    previous = os.environ.get(AWS_CREDENTIALS_ENV)
    os.environ[AWS_CREDENTIALS_ENV] = json.dumps(AWS_CREDENTIALS)
    try:
        yield f"http://{host}:{port}"
    finally:
        if previous is None:
            os.environ.pop(AWS_CREDENTIALS_ENV, None)
        else:
            os.environ[AWS_CREDENTIALS_ENV] = previous
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """URL of a moto server on a free loopback port, for the whole session."""
    with moto_server_running() as url:
        yield url


@pytest.fixture
def aws_account(moto_server: str) -> AccountConfig:
    """An account on an emptied moto: region eu-central-1, zones a/b/c, test credentials."""
    moto_reset(moto_server)
    return aws_account_config(moto_server)


@pytest.fixture
def aws_fault_proxy(moto_server: str) -> Iterator[Any]:
    """A ``FaultProxy`` in front of an emptied moto (``proxy.url`` is the endpoint to use)."""
    from tests.support.faultproxy import FaultProxy

    moto_reset(moto_server)
    with FaultProxy(moto_server) as proxy:
        yield proxy


@pytest.fixture
def aws_harness(moto_server: str) -> Any:
    """An ``AwsHarness`` (``harness_aws``) on an emptied moto, for the contract suite."""
    from tests.support.harness_aws import AwsHarness

    moto_reset(moto_server)
    return AwsHarness(endpoint=moto_server)
