"""Provider endpoints are allowed by ``PROVIDER_ENDPOINT_ALLOWED_HOSTS``, on save and at connect (SSRF)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from rest_framework.test import APIClient

from allocations.errors import IpamError
from audit.services import Actor
from providers import services
from providers.adapters.aws import AwsAdapter
from providers.adapters.base import AccountConfig
from providers.adapters.openstack import OpenStackAdapter
from providers.endpoints import EndpointPolicy, endpoint_problem
from providers.errors import PermanentProviderError
from providers.models import ProviderAccount
from tests.api.conftest import assert_error
from tests.support.fixtures_aws import aws_account_config

ACTOR = Actor("alice", "command")
POLICY = EndpointPolicy.parse(["ec2.example.test", "*.cloud.example", "10.20.0.0/16", "fd00:1::/48", ""])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", None),  # the SDK's own endpoint
        ("https://ec2.example.test/", None),
        ("https://EC2.example.test./x", None),
        ("https://neutron.eu.cloud.example:9696/", None),
        ("http://10.20.3.4:8080/", None),
        ("http://[fd00:1::5]/", None),
        ("https://cloud.example/", "endpoint host cloud.example is not in"),
        ("https://evilcloud.example/", "endpoint host evilcloud.example is not in"),
        ("http://127.0.0.1:9696/", "endpoint address 127.0.0.1 is not in"),
        ("http://169.254.169.254/latest/meta-data/", "endpoint address 169.254.169.254 is not in"),
        ("http://[::ffff:169.254.169.254]/", "endpoint address 169.254.169.254 is not in"),
        ("http://[::1]:9696/", "endpoint address ::1 is not in"),
        ("https://user:pw@ec2.example.test/", "must not carry a user name or password"),
        ("ftp://ec2.example.test/", "http:// or https://"),
        ("ec2.example.test", "http:// or https://"),
        ("http://ec2.example.test:99999/", "not a valid URL"),
        ("http:///path", "must name a host"),
    ],
)
def test_endpoint_policy(url: str, problem: str | None) -> None:
    found = endpoint_problem(url, POLICY)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_by_default_only_the_sdk_endpoint_is_allowed(settings: Any) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    assert endpoint_problem("") is None
    assert endpoint_problem("https://ec2.eu-central-1.amazonaws.com/") is not None


def test_account_with_a_loopback_endpoint_not_allowed_is_refused(db: None, settings: Any) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["*.cloud.example"]
    with pytest.raises(IpamError) as err:
        services.account_create(
            name="ssrf",
            type="dry-run",
            provider="openstack",
            region="r1",
            endpoint="http://127.0.0.1:22/",
            actor=ACTOR,
        )
    assert err.value.field == "endpoint" and "127.0.0.1" in err.value.message
    account = services.account_create(
        name="ok", type="dry-run", provider="openstack", region="r1", actor=ACTOR
    )
    with pytest.raises(IpamError) as err:
        services.account_update(account=account, endpoint="http://localhost:8080/", actor=ACTOR)
    assert err.value.field == "endpoint"
    assert ProviderAccount.objects.get(pk=account.pk).endpoint == ""


def test_the_api_answers_400_naming_endpoint(db: None, settings: Any, django_user_model: Any) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("root", "r@example.test", "pw"))
    body = {"name": "ssrf", "type": "openstack", "provider": "openstack", "region": "r1"}
    refused = client.post(
        "/api/v1/provider-accounts/", {**body, "endpoint": "http://127.0.0.1:9696/"}, format="json"
    )
    assert "127.0.0.1" in assert_error(refused, 400, "endpoint")["errors"]["endpoint"][0]
    assert not ProviderAccount.objects.exists()


def test_an_adapter_refuses_to_connect_once_the_endpoint_is_no_longer_allowed(settings: Any) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []  # saved while loopback was allowed
    with pytest.raises(
        PermanentProviderError, match=r"refused to connect: endpoint address 127\.0\.0\.1"
    ) as err:
        AwsAdapter(aws_account_config("http://127.0.0.1:9")).inventory()
    assert err.value.field == "endpoint"
    config = AccountConfig(name="k", type="openstack", region="RegionOne", endpoint="http://[::1]:9/")
    with pytest.raises(PermanentProviderError, match="refused to connect"):
        OpenStackAdapter(config).inventory()


@pytest.mark.parametrize("address", ["169.254.169.254", "127.0.0.1", "10.1.2.3", "::1", "fe80::1"])
def test_a_name_resolving_to_an_internal_address_is_refused_at_connect(
    settings: Any, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["*.cloud.example"]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    calls: list[str] = []

    def rebound(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        return [(family, socket.SOCK_STREAM, 6, "", (address, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    config = AccountConfig(
        name="k", type="openstack", region="R", endpoint="http://neutron.cloud.example:9696/"
    )
    with pytest.raises(PermanentProviderError, match=f"resolves to {address}, which is not allowed"):
        OpenStackAdapter(config).inventory()
    assert calls == ["neutron.cloud.example"]
    with pytest.raises(PermanentProviderError, match="resolves to"):
        AwsAdapter(aws_account_config("https://ec2.cloud.example/")).inventory()


@pytest.mark.parametrize(
    ("auth_url", "problem"),
    [
        ("http://169.254.169.254/v3", "auth_url address 169.254.169.254 is not in"),
        ("https://keystone.evil.example/v3", "auth_url host keystone.evil.example is not in"),
        ("keystone.cloud.example/v3", "auth_url must be an http:// or https:// URL"),
    ],
)
def test_a_keystone_auth_url_not_allowed_is_refused_before_the_password_is_sent(
    settings: Any, auth_url: str, problem: str
) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["*.cloud.example"]
    secret = "pw-never-sent"
    config = AccountConfig(
        name="k",
        type="openstack",
        region="R",
        credentials={"auth_url": auth_url, "username": "u", "password": secret, "project_name": "p"},
    )
    with pytest.raises(PermanentProviderError, match=f"refused to connect: {problem}") as err:
        OpenStackAdapter(config).inventory()
    assert err.value.field == "auth_url"
    assert secret not in str(err.value)


def test_an_allowed_keystone_name_resolving_to_loopback_is_refused(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["*.cloud.example"]
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
    )
    config = AccountConfig(
        name="k",
        type="openstack",
        region="R",
        credentials={"auth_url": "https://keystone.cloud.example/v3", "username": "u", "password": "p"},
    )
    with pytest.raises(
        PermanentProviderError, match=r"auth_url host keystone\.cloud\.example resolves to 127"
    ):
        OpenStackAdapter(config).inventory()


@pytest.mark.parametrize(
    ("url", "allowed", "refused_because"),
    [
        ("https://203.0.113.7/hook", [], "is not public"),  # documentation range: not global
        ("https://8.8.8.8/hook", [], None),
        ("http://127.0.0.1:8080/hook", [], "is not public"),
        ("http://127.0.0.1:8080/hook", ["127.0.0.0/8"], None),
        ("http://[::1]/hook", [], "is not public"),
        ("http://[::ffff:169.254.169.254]/latest", [], "is not public"),  # mapped metadata address
        ("http://10.1.2.3/", ["10.0.0.0/8"], None),
        ("http://hooks.internal/", ["hooks.internal"], None),
        ("ftp://8.8.8.8/", [], "must be an http:// or https:// URL"),
        ("https://u:p@8.8.8.8/", [], "must not carry a user name"),
    ],
)
def test_public_target_problem(
    settings: Any, url: str, allowed: list[str], refused_because: str | None
) -> None:
    from providers.endpoints import public_target_problem

    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = allowed
    problem = public_target_problem(url, resolve=False)
    if refused_because is None:
        assert problem is None
    else:
        assert problem is not None and refused_because in problem


def test_a_public_target_name_resolving_to_loopback_is_refused(settings: Any, monkeypatch: Any) -> None:
    from providers.endpoints import public_target_problem

    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    answers = {"rebound.example.com": "127.0.0.1", "public.example.com": "8.8.4.4"}
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 0))],
    )
    assert public_target_problem("https://public.example.com/", resolve=True) is None
    problem = public_target_problem("https://rebound.example.com/", resolve=True)
    assert problem == "target host rebound.example.com resolves to 127.0.0.1, which is not allowed"
    assert public_target_problem("https://rebound.example.com/", resolve=False) is None  # saved-time check
