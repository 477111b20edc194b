"""Property-based test of the live OpenAPI schema (schemathesis) through the WSGI app.

Every operation of ``/api/schema/`` gets generated requests — valid ones
(``positive``, on the landscape's real objects so that detail views answer 200)
and invalid ones (``negative``, ids included) — as the admin (bearer token) on
the demo landscape, a bounded, derandomized number of examples each. Each response
is checked three ways, reported as three tests per operation and mode:

* ``test_no_server_error`` — never a 5xx;
* ``test_status_code_is_declared`` — the schema declares the status it got;
* ``test_body_matches_schema`` — the body matches the schema of that status.

Requests are sent once per operation and mode (the first of the three tests to
ask runs them, inside its own savepoint of the module's ``landscape``); every
example runs to the end, so one failing check never hides another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts.models import ApiToken
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from ipam_portal.wsgi import application
from providers.models import ProviderAccount, ProvisioningJob

from .conftest import survive_server_error

pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # some 530 fuzzed requests

MAX_EXAMPLES = 8  # per operation and mode: some 530 requests in all, about half a minute on SQLite
METHODS = ("get", "put", "patch", "post", "delete")
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECKS: dict[str, Callable[..., Any]] = {
    "server_error": not_a_server_error,
    "status_code": status_code_conformance,
    "body": response_schema_conformance,
}


def operations() -> list[Any]:
    """``pytest.param(method, path, mode)`` for every operation of the schema the app serves."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return [
        pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
        for path, item in paths.items()
        for method in item
        if method in METHODS
        for mode in MODES
    ]


OPERATIONS = operations()


@dataclass
class Outcome:
    """What the examples of one operation and mode got: statuses and, per check, failures."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=lambda: {name: {} for name in CHECKS})
    first: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, group: FailureGroup, response: Any) -> None:
        request = f"{response.status_code} on {response.request.method} {response.request.url[:200]}"
        for failure in group.exceptions:
            message = " ".join(failure.message.split())[:300] or request
            summary = f"{failure.title}: {message}"
            self.failures[name][summary] = self.failures[name].get(summary, 0) + 1
        self.first.setdefault(name, str(group)[:3000])

    def report(self, name: str) -> str:
        lines = [f"{self.requests} requests, statuses {self.statuses}; distinct failures (count):"]
        lines += [f"  [{count}x] {summary}" for summary, count in self.failures[name].items()]
        return "\n".join([*lines, "first failing example:", self.first.get(name, "")])


@pytest.fixture(scope="module")
def same_connection() -> Iterator[None]:
    """Keep the test's connection across WSGI requests, as Django's test client does.

    Django closes "old" connections when a request starts and ends; inside the test's
    transaction that would close the connection the landscape lives on.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def api_schema(same_connection: None) -> Any:
    """The live schema, fetched once from the running app (the view needs no database)."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def real_ids() -> dict[str, int]:
    """Path parameters naming real objects, per path prefix (the first that matches wins)."""
    demo = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    return {
        "/api/v1/pools/": Pool.objects.get(name="gua-2001-db8").pk,
        "/api/v1/allocations/": Allocation.objects.filter(shoot=demo, family=4).first().pk,
        "/api/v1/audit-events/": AuditEvent.objects.order_by("id").first().pk,
        "/api/v1/seeds/": Seed.objects.get().pk,
        "/api/v1/shoots/{shoot_pk}/nodes/": Node.objects.get(shoot=demo, name="node-a").pk,
        "/api/v1/shoots/": demo.pk,
        # not the admin's own token: revoking it would end the run
        "/api/v1/tokens/": ApiToken.objects.get(user__username="auditor").pk,
        "/api/v1/provider-accounts/": ProviderAccount.objects.get().pk,
        "/api/v1/jobs/": ProvisioningJob.objects.filter(shoot=demo).first().pk,
        # the demo's dry-run account finds nothing to reconcile: an id that does not exist (404)
        "/api/v1/reconcile-findings/": 10**6,
        # the landscape subscribes no one to outbound events: 404s (tests/notifications covers them)
        "/api/v1/event-subscriptions/": 10**6,
        "/api/v1/event-deliveries/": 10**6,
    }


def path_parameters(path: str, mode: Any) -> dict[str, int] | None:
    if mode is not GenerationMode.POSITIVE or "{" not in path:
        return None
    ids = real_ids()
    params: dict[str, int] = {}
    if "{shoot_pk}" in path:
        params["shoot_pk"] = ids["/api/v1/shoots/"]
    if "{id}" in path:
        params["id"] = next(value for prefix, value in ids.items() if path.startswith(prefix))
    return params


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str, str], Outcome]:
    return {}


@pytest.fixture
def exercise(
    api_schema: Any, landscape: dict[str, str], outcomes: dict[tuple[str, str, str], Outcome], db: None
) -> Callable[[str, str, Any], Outcome]:
    """Run (once) the generated requests of an operation and mode; return what they got."""
    headers = {"Authorization": f"Bearer {landscape['admin']}"}

    def run_once(method: str, path: str, mode: Any) -> Outcome:
        key = (method, path, mode.value)
        if key in outcomes:
            return outcomes[key]
        outcome = Outcome()

        strategy = api_schema[path][method].as_strategy(
            generation_mode=mode, path_parameters=path_parameters(path, mode)
        )

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def examples(case: Any) -> None:
            response = survive_server_error(lambda: case.call(headers=headers))
            outcome.requests += 1
            outcome.statuses[response.status_code] = outcome.statuses.get(response.status_code, 0) + 1
            for name, check in CHECKS.items():
                try:
                    case.validate_response(response, checks=[check], headers=headers)
                except FailureGroup as group:
                    outcome.record(name, group, response)

        examples()
        outcomes[key] = outcome
        return outcome

    return run_once


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_no_server_error(exercise: Callable[..., Outcome], method: str, path: str, mode: Any) -> None:
    outcome = exercise(method, path, mode)
    assert not outcome.failures["server_error"], outcome.report("server_error")


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_status_code_is_declared(exercise: Callable[..., Outcome], method: str, path: str, mode: Any) -> None:
    outcome = exercise(method, path, mode)
    assert not outcome.failures["status_code"], outcome.report("status_code")


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_body_matches_schema(exercise: Callable[..., Outcome], method: str, path: str, mode: Any) -> None:
    outcome = exercise(method, path, mode)
    assert not outcome.failures["body"], outcome.report("body")
