"""The EC2 plumbing every AWS step stands on: account options, the client, and finding what exists.

:class:`AwsBase` holds no step of its own; :class:`~.provision.AwsProvisioning` and
:class:`~.adapter.AwsAdapter` build on it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from ipaddress import IPv6Network
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from providers.endpoints import check_endpoint_before_connect
from providers.errors import CredentialError, PermanentProviderError

from ..base import TAG_SHOOT, TAG_SHOOT_ID, AccountConfig, Adapter, ShootSpec, StepContext, StepHandle
from .errors import _code, _not_found, _sdk
from .planning import DEFAULT_IPV6_ONLY_VPC_CIDR, ROLE_EIGW, ROLE_RESERVATION, TAG_ROLE, _zone_count
from .resources import EIGW, NAT, _Kind, _tags

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_WAIT_TIMEOUT = 120.0
DEFAULT_POLL_INTERVAL = 2.0

_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()


def _shared_session() -> boto3.session.Session:
    """One boto3 session per process, so the EC2 API model (~0.8 s to load) is parsed once.

    Clients are always made with the account's explicit keys: the session's own
    credential chain (environment, files, instance role) is never used.
    """
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


class AwsBase(Adapter):
    """Options, the EC2 client and the describe/find/delete helpers shared by the AWS steps."""

    def __init__(self, account: AccountConfig) -> None:
        super().__init__(account)
        self._ec2: Any = None

    # ----------------------------------------------------------------- configuration

    def check_options(self) -> None:
        self._options()

    def _options(self) -> dict[str, Any]:
        """The account's options, checked (a wrong option is a permanent error naming it)."""
        raw = dict(self.account.options or {})
        out: dict[str, Any] = {}
        zones = raw.get("zones") or []
        if not isinstance(zones, list | tuple) or not all(isinstance(z, str) and z for z in zones):
            raise PermanentProviderError("account option zones must be a list of zone names", field="zones")
        out["zones"] = list(zones)
        pool = raw.get("ipam_pool_id") or ""
        if not isinstance(pool, str):
            raise PermanentProviderError("account option ipam_pool_id must be a string", field="ipam_pool_id")
        out["ipam_pool_id"] = pool
        for key, default in (
            ("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            ("read_timeout", DEFAULT_READ_TIMEOUT),
            ("wait_timeout", DEFAULT_WAIT_TIMEOUT),
            ("poll_interval", DEFAULT_POLL_INTERVAL),
        ):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise PermanentProviderError(f"account option {key} must be a positive number", field=key)
            out[key] = float(value)
        reserve = raw.get("reserve_services", True)
        if not isinstance(reserve, bool):
            raise PermanentProviderError(
                "account option reserve_services must be true or false", field="reserve_services"
            )
        out["reserve_services"] = reserve
        nat = raw.get("nat_gateway", True)
        if not isinstance(nat, bool):
            raise PermanentProviderError(
                "account option nat_gateway must be true or false", field="nat_gateway"
            )
        out["nat_gateway"] = nat
        out["vpc_ipv4_cidr"] = str(raw.get("vpc_ipv4_cidr") or DEFAULT_IPV6_ONLY_VPC_CIDR)
        return out

    @property
    def ec2(self) -> Any:
        """The EC2 client (created on first use, one attempt per request, short timeouts)."""
        if self._ec2 is None:
            opts = self._options()
            creds = dict(self.account.credentials or {})
            key, secret = creds.get("aws_access_key_id"), creds.get("aws_secret_access_key")
            if not key or not secret:
                raise CredentialError(
                    f"AWS account {self.account.name}: its credentials need aws_access_key_id and "
                    "aws_secret_access_key"
                )
            check_endpoint_before_connect(self.account.endpoint)
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=opts["connect_timeout"],
                read_timeout=opts["read_timeout"],
                user_agent_extra="ipam-portal",
            )
            with _sdk("client"):
                try:
                    with _SESSION_LOCK:  # botocore sessions are not thread-safe
                        self._ec2 = _shared_session().client(
                            "ec2",
                            region_name=self.account.region,
                            endpoint_url=self.account.endpoint or None,
                            aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            aws_session_token=creds.get("aws_session_token") or None,
                            config=config,
                        )
                except ValueError as exc:  # an invalid endpoint URL or region name
                    raise PermanentProviderError(f"AWS account {self.account.name}: {exc}") from None
        return self._ec2

    def _check_zones(self, spec: ShootSpec, opts: Mapping[str, Any]) -> None:
        need, have = _zone_count(spec), len(opts["zones"])
        if need > have:
            raise PermanentProviderError(
                f"the shoot needs {need} zone(s) but account option zones lists {have}", field="zones"
            )

    @staticmethod
    def _has_ipv6(spec: ShootSpec) -> bool:
        return "IPv6" in spec.ip_families

    @staticmethod
    def _nat_wanted(spec: ShootSpec, opts: Mapping[str, Any]) -> bool:
        """A NAT gateway needs an IPv4 public subnet: shoots with IPv4, unless the account turns it off."""
        return bool(opts["nat_gateway"]) and "IPv4" in spec.ip_families

    @staticmethod
    def _services_range(spec: ShootSpec) -> IPv6Network | None:
        if spec.plan is None or spec.plan.block is None:
            return None
        found = spec.plan.by_role("services")
        return found[0].cidr if found else None

    # ----------------------------------------------------------------- finding

    @contextmanager
    def _step(self, ctx: StepContext, name: str) -> Iterator[StepHandle]:
        """A job step whose SDK exceptions are translated before the step records its failure."""
        with ctx.step(name) as step, _sdk(name):
            yield step

    def _describe(self, kind: _Kind, **params: Any) -> list[dict[str, Any]]:
        if not self.ec2.can_paginate(kind.describe):  # DescribeAddresses answers in one page
            return list(getattr(self.ec2, kind.describe)(**params).get(kind.result_key) or [])
        paginator = self.ec2.get_paginator(kind.describe)
        out: list[dict[str, Any]] = []
        for page in paginator.paginate(**params):
            out.extend(page.get(kind.result_key) or [])
        return out

    @staticmethod
    def _shoot_filters(spec: ShootSpec, role: str | None = None) -> list[dict[str, Any]]:
        filters = [
            {"Name": f"tag:{TAG_SHOOT}", "Values": [spec.identity]},
            {"Name": f"tag:{TAG_SHOOT_ID}", "Values": [str(spec.shoot_id)]},
        ]
        if role is not None:
            filters.append({"Name": f"tag:{TAG_ROLE}", "Values": [role]})
        return filters

    @staticmethod
    def _is_ours(resource: Mapping[str, Any], spec: ShootSpec, role: str | None = None) -> bool:
        tags = _tags(resource)
        if tags.get(TAG_SHOOT) != spec.identity or tags.get(TAG_SHOOT_ID) != str(spec.shoot_id):
            return False
        return role is None or tags.get(TAG_ROLE) == role

    def _by_id(self, kind: _Kind, resource_id: str) -> dict[str, Any] | None:
        try:
            found = self._describe(kind, **{kind.ids_param: [resource_id]})
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return next((r for r in found if r.get(kind.id_field) == resource_id and kind.live(r)), None)

    def _nat_any_state(self, nat_id: str) -> dict[str, Any] | None:
        """A NAT gateway in whatever state (also ``deleted``); None if AWS does not know the id (yet)."""
        try:
            found = self._describe(NAT, NatGatewayIds=[nat_id])
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return found[0] if found else None

    def _tagged(self, kind: _Kind, spec: ShootSpec, role: str | None = None) -> list[dict[str, Any]]:
        """Resources of ``kind`` carrying the shoot's tags (and role); re-checked client-side."""
        found = self._describe(kind, Filters=self._shoot_filters(spec, role))
        return [r for r in found if self._is_ours(r, spec, role) and kind.live(r)]

    def _find(self, kind: _Kind, spec: ShootSpec, ctx: StepContext, role: str) -> dict[str, Any] | None:
        """What an earlier attempt created for ``role``: its recorded id, else the shoot's tags."""
        recorded = ctx.resources.get(role)
        if recorded:
            resource = self._by_id(kind, recorded)
            if resource is not None and self._is_ours(resource, spec, role):
                return resource
        found = self._tagged(kind, spec, role)
        if len(found) > 1:
            ids = ", ".join(sorted(str(r[kind.id_field]) for r in found))
            raise PermanentProviderError(
                f"{len(found)} {kind.resource_type}s are tagged as {role} of shoot {spec.identity} "
                f"({ids}); refusing to guess — deprovision or remove the extra ones"
            )
        return found[0] if found else None

    def _find_all(
        self, kind: _Kind, spec: ShootSpec, ctx: StepContext, role: str | None
    ) -> list[dict[str, Any]]:
        """Everything of ``kind`` this shoot owns: tagged ones plus recorded ids that are tagged ours."""
        found = {str(r[kind.id_field]): r for r in self._tagged(kind, spec, role)}
        keys = (
            [role]
            if role is not None
            else [k for k in ctx.resources if k.startswith(f"{kind.resource_type}/")]
        )
        for key in keys:
            rid = ctx.resources.get(key)
            if rid and rid not in found:
                resource = self._by_id(kind, rid)
                if resource is not None and self._is_ours(resource, spec, role):
                    found[rid] = resource
        return list(found.values())

    def _tag_spec(self, kind: _Kind, spec: ShootSpec, role: str, name: str) -> list[dict[str, Any]]:
        tags = {**spec.tags, TAG_ROLE: role, "Name": name}
        return [
            {"ResourceType": kind.resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]

    # ----------------------------------------------------------------- deleting

    def _delete_eigws(self, spec: ShootSpec, ctx: StepContext) -> list[str]:
        deleted = []
        for eigw in self._find_all(EIGW, spec, ctx, ROLE_EIGW):
            gid = str(eigw["EgressOnlyInternetGatewayId"])
            self._ignore_missing(
                self.ec2.delete_egress_only_internet_gateway, EgressOnlyInternetGatewayId=gid
            )
            deleted.append(gid)
        return deleted

    def _delete_reservations(self, spec: ShootSpec, ctx: StepContext, subnet_ids: list[str]) -> list[str]:
        """Delete the shoot's CIDR reservations on ``subnet_ids`` (others stay: they go with the subnet)."""
        deleted = []
        recorded = ctx.resources.get(ROLE_RESERVATION)
        for subnet_id in subnet_ids:
            answer = self.ec2.get_subnet_cidr_reservations(SubnetId=subnet_id)
            for res in itertools.chain(
                answer.get("SubnetIpv6CidrReservations") or [],
                answer.get("SubnetIpv4CidrReservations") or [],
            ):
                # moto does not return a reservation's tags: the recorded id counts too.
                if self._is_ours(res, spec) or res["SubnetCidrReservationId"] == recorded:
                    rid = str(res["SubnetCidrReservationId"])
                    self._ignore_missing(self.ec2.delete_subnet_cidr_reservation, SubnetCidrReservationId=rid)
                    deleted.append(rid)
        return deleted

    @staticmethod
    def _ignore_missing(call: Any, **params: Any) -> None:
        """Run a delete; a resource that is already gone is what we wanted."""
        try:
            call(**params)
        except ClientError as exc:
            if not _not_found(exc) and _code(exc) not in (
                "Gateway.NotAttached",
                "InvalidAssociationID.NotFound",
            ):
                raise
