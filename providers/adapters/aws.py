"""The AWS adapter: a shoot's VPC, zone subnets, gateways and route tables in EC2.

Talks to EC2 through ``boto3`` (imported only here) and follows the ``aws`` layout of
DESIGN §6 / GARDENER.md. Steps of ``apply`` (each one a job step, named as
:meth:`AwsAdapter.plan` says, in this order):

``vpc``
    The VPC with the shoot's IPv4 CIDR (``spec.ipv4["nodes"]``) and an IPv6 /56,
    waited for until it is ``available`` and its /56 is associated. The /56 is
    either *Amazon-provided* (``spec.ipv6_from_provider``: ``AmazonProvidedIpv6CidrBlock``;
    the block is read back and handed to ``ctx.adopt_ipv6_block``, which records it in
    the portal and returns the re-planned spec the later steps use) or *the portal's
    own*, handed to AWS through an AWS IPAM pool (account option ``ipam_pool_id``):
    ``CreateVpc(CidrBlock, Ipv6IpamPoolId, Ipv6CidrBlock=<plan.block>)``; what AWS
    associated must be exactly the planned block.
``subnet <kind>-z<k>`` (workers, internal, public for each zone k)
    One subnet per plan range ``<kind>-z<k>`` in availability zone ``zones[k]`` with
    the plan's /64. Before a subnet is created the adapter checks the plan itself
    (EC2 emulators do not): every /64 is a /64, lies inside the VPC's /56 and
    overlaps neither another planned subnet nor a subnet of the VPC that is not
    ours; a violation is a :class:`PermanentProviderError` and nothing is created.
    Worker subnets auto-assign IPv6 (``AssignIpv6AddressOnCreation``). With IPv4 the
    subnet also gets an IPv4 CIDR (rule below); IPv6-only shoots get IPv6-native
    subnets.
``services-reservation``
    An explicit subnet CIDR reservation of the services /108 (plan range
    ``services``, nested in ``workers-z0``) so no node address is ever taken from it.
    Account option ``reserve_services: false`` skips it (recorded as a note).
``egress-only-gateway`` (IPv6 only)
    An egress-only internet gateway for the VPC.
``private-route-table``
    The shoot's route table, with ``::/0`` via the egress-only gateway (IPv6),
    associated with the workers and internal subnets. IPv4 egress of private subnets
    (a NAT gateway) is not managed here.
``internet-gateway``
    An internet gateway attached to the VPC.
``public-route-table``
    A route table with ``0.0.0.0/0`` and (IPv6) ``::/0`` via the internet gateway,
    associated with the public subnets. Default routes the spec does not want (``::/0``
    after a rollback) are deleted from both route tables.
``remove ipv6`` (IPv4-only shoots)
    What a dual-stack shoot had and an IPv4-only one must not (rollback
    ``[IPv4, IPv6]`` → ``[IPv4]``): the services reservation, the subnets' IPv6 CIDRs
    (auto-assign turned off first), the egress-only gateway and the VPC's IPv6 block,
    in that order. A no-op for a shoot that never had IPv6. AWS refuses to take a
    subnet's IPv6 CIDR while network interfaces still hold addresses from it: that
    error fails the job with AWS's message.

**Dual-stack migration** (``[IPv4]`` → ``[IPv4, IPv6]`` of a provisioned shoot): the
``vpc`` step associates an IPv6 block with the existing VPC (Amazon-provided, or the
portal's through the IPAM pool, as at creation), and each ``subnet`` step associates
its planned /64 with the existing subnet; the later steps add the rest.

**IPv4 subnet rule.** The VPC's IPv4 CIDR is cut into the smallest power of two of
equal parts that holds ``3 × zones`` subnets; subnet *i* of zone *k* (0 workers,
1 internal, 2 public) gets part number ``i + 3k`` — the IPv6 numbering. A /16 with
three zones gives /20s: workers-z0 ``10.0.0.0/20``, internal-z0 ``10.0.16.0/20``,
…, public-z2 ``10.0.128.0/20``. Parts smaller than /28 (AWS's minimum) are refused.

**Finding what exists** (so a re-run never duplicates; ``ClientToken`` is not relied
on): the id recorded in ``ctx.resources``, else a describe filtered by the shoot's
tags (``ipam-portal/shoot``, ``ipam-portal/shoot-id``) and the resource's role
(``ipam-portal/role``, e.g. ``subnet/workers-z0``). Tags are always re-checked on
the answer, since some emulators ignore filters. Everything is created with its tags
in the same call (``TagSpecifications``): the shoot's tags, the role, and ``Name``
= ``spec.resource_name(<suffix>)``. ``destroy`` deletes, in reverse order, only what
carries the shoot's tags (or a recorded id whose resource carries them), also after
a half-done apply.

**Node routes.** AWS has no router routes for pods: each node's network interface
gets a /80 by prefix delegation (Nitro instances). ``sync_routes`` is therefore one
``routes`` step that records the nodes' /80s and changes nothing in the cloud.

**Errors.** Every botocore/boto3 exception is translated at this module's boundary
(:func:`translate`): throttling codes, HTTP 5xx, ``DependencyViolation`` (EC2's
eventual consistency while ENIs disappear), timeouts and connection errors are
:class:`TransientProviderError`; credential failures :class:`CredentialError`;
every other error a :class:`PermanentProviderError` with AWS's code and message.
boto3's own retries are off (one attempt per request): the job runner retries with
backoff.

**Emulator gaps handled here** (moto 5.2, see TESTING.md): tags are re-checked on
every describe answer (moto ignores ``Filters`` on egress-only gateways); association
states are normalised (moto writes a subnet's as ``"{'State': 'associated'}"``);
CIDRs are compared as networks (moto keeps leading zeros: ``…:0700::/56``); subnet
CIDRs are validated here (moto accepts anything); the IPv6 filters of
``DescribeSubnets`` (500 in moto) and ``Ipv6Pool`` are never used.

**Credentials** (a JSON object resolved from the account's reference, never logged):
``aws_access_key_id`` and ``aws_secret_access_key`` (required), ``aws_session_token``
(optional). The default credential chain is never consulted, so a missing key is a
clear :class:`CredentialError` rather than whatever the worker's environment holds.

**Account options**

``zones``
    List of availability zone names; zone k of the plan is ``zones[k]``, e.g.
    ``["eu-central-1a", "eu-central-1b", "eu-central-1c"]``. Required for apply; the
    shoot's zone count must not exceed its length.
``ipam_pool_id``
    The AWS IPAM pool the portal's own /56s are allocated through (required unless
    the shoot's /56 is Amazon-provided).
``connect_timeout`` / ``read_timeout``
    Seconds per request (defaults 5 and 30).
``wait_timeout`` / ``poll_interval``
    How long to wait for a new VPC and its /56 (default 120 s), polling every
    ``poll_interval`` seconds (default 2). Still not ready → transient error.
``reserve_services``
    Default true. False skips the services CIDR reservation (recorded as a note):
    meant for emulators in which it is slow — moto materialises every address of
    the /108 (~3 s and ~140 MB per reservation).
``vpc_ipv4_cidr``
    The VPC's IPv4 CIDR for IPv6-only shoots (AWS requires one on every VPC; no
    subnet uses it). Default ``10.0.0.0/16``.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    WaiterError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError

from allocations.layouts import AWS_SUBNET_KINDS
from providers.errors import (
    CredentialError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

from . import register
from .base import (
    TAG_SHOOT,
    TAG_SHOOT_ID,
    AccountConfig,
    Adapter,
    CloudRange,
    PlannedStep,
    ShootSpec,
    StepContext,
    StepHandle,
)

__all__ = ["AwsAdapter", "SubnetPlan", "ipv4_subnets", "subnet_plans", "translate", "validate_subnets"]

#: The role of a resource within its shoot (``vpc``, ``subnet/workers-z0``, ...).
TAG_ROLE = "ipam-portal/role"

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_WAIT_TIMEOUT = 120.0
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_IPV6_ONLY_VPC_CIDR = "10.0.0.0/16"
VPC_BLOCK_PREFIX = 56
SUBNET_PREFIX = 64
#: AWS's smallest IPv4 subnet.
MIN_IPV4_SUBNET_PREFIX = 28
ANY_IPV4 = "0.0.0.0/0"
ANY_IPV6 = "::/0"

ROLE_VPC = "vpc"
ROLE_RESERVATION = "services-reservation"
ROLE_EIGW = "egress-only-gateway"
ROLE_PRIVATE_RTB = "private-route-table"
ROLE_IGW = "internet-gateway"
ROLE_PUBLIC_RTB = "public-route-table"
#: The last step of ``provision`` for an IPv4-only shoot (rollback from dual-stack).
STEP_REMOVE_IPV6 = "remove ipv6"

# --------------------------------------------------------------------------- errors

#: Error codes AWS uses for throttling and for its own temporary trouble.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        # EC2 is eventually consistent: an ENI or association still vanishing.
        "DependencyViolation",
        "IncorrectState",
    }
)
#: Error codes that say the credentials themselves were refused.
CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
    }
)


def translate(exc: BaseException, what: str = "") -> ProviderError:
    """The portal's provider error for a botocore/boto3 exception (AWS's code and message kept).

    Throttling codes, HTTP 5xx, timeouts and connection errors →
    :class:`TransientProviderError`; refused or missing credentials →
    :class:`CredentialError`; every other error → :class:`PermanentProviderError`.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        meta = exc.response.get("ResponseMetadata") or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "") or str(exc)
        status = int(meta.get("HTTPStatusCode") or 0)
        operation = exc.operation_name or "request"
        where = f" ({what})" if what else ""
        text = f"AWS {operation}{where}: {code or f'HTTP {status}'}: {message}"
        details = {"aws_code": code, "http_status": status}
        if code in CREDENTIAL_CODES:
            return CredentialError(text, **details)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientProviderError(text, **details)
        return PermanentProviderError(text, **details)
    prefix = f"AWS {what}: " if what else "AWS: "
    text = f"{prefix}{type(exc).__name__}: {exc}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialError(text)
    if isinstance(
        exc,
        BotoConnectionError
        | HTTPClientError
        | WaiterError
        | ResponseParserError
        | TimeoutError
        | ConnectionError,
    ):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError
        # and proxy errors are all botocore ConnectionErrors; an unparsable answer (a proxy's
        # or load balancer's HTML error page) is worth another try too.
        return TransientProviderError(text)
    return PermanentProviderError(text)


#: What :func:`_sdk` translates; everything else (our own bugs) propagates unchanged.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    ResponseParserError,
    TimeoutError,
    ConnectionError,
)


@contextmanager
def _sdk(what: str = "") -> Iterator[None]:
    """Translate SDK exceptions raised inside the block; ``what`` names the operation."""
    try:
        yield
    except ProviderError:
        raise
    except SDK_ERRORS as exc:
        raise translate(exc, what) from exc


def _code(exc: ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code") or "")


def _not_found(exc: ClientError) -> bool:
    return _code(exc).endswith("NotFound")


# --------------------------------------------------------------------------- pure planning


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet of the shoot (pure data, derived from the spec and the account's zones)."""

    name: str  # "workers-z0": the plan range's name
    kind: str  # workers, internal, public
    zone_index: int
    zone: str  # availability zone name ("" when the account lists too few)
    ipv6: IPv6Network | None
    ipv4: IPv4Network | None

    @property
    def role(self) -> str:
        return f"subnet/{self.name}"

    @property
    def step(self) -> str:
        return f"subnet {self.name}"


def ipv4_subnets(vpc_cidr: IPv4Network, count: int) -> list[IPv4Network]:
    """The first ``count`` of the smallest power-of-two equal parts of ``vpc_cidr`` that hold ``count``."""
    if count < 1:
        return []
    prefix = vpc_cidr.prefixlen + math.ceil(math.log2(count))
    if prefix > MIN_IPV4_SUBNET_PREFIX:
        raise PermanentProviderError(
            f"the VPC's IPv4 CIDR {vpc_cidr} is too small for {count} subnets "
            f"(each would be a /{prefix}; AWS needs /{MIN_IPV4_SUBNET_PREFIX} or larger)",
            field="ipv4",
        )
    size = 1 << (32 - prefix)
    base = int(vpc_cidr.network_address)
    return [IPv4Network((base + n * size, prefix)) for n in range(count)]


def _zone_count(spec: ShootSpec) -> int:
    if spec.plan is not None and spec.plan.by_role("subnet"):
        return 1 + max(int(str(r.extra.get("zone_index", 0))) for r in spec.plan.by_role("subnet"))
    return max(1, spec.zones)


def _vpc_ipv4(spec: ShootSpec, options: Mapping[str, Any]) -> IPv4Network:
    raw = spec.ipv4.get("nodes") if "IPv4" in spec.ip_families else None
    raw = raw or options.get("vpc_ipv4_cidr") or DEFAULT_IPV6_ONLY_VPC_CIDR
    try:
        net = ip_network(str(raw))
    except ValueError:
        raise PermanentProviderError(
            f"the VPC's IPv4 CIDR {raw!r} is not a valid CIDR", field="ipv4"
        ) from None
    if not isinstance(net, IPv4Network):
        raise PermanentProviderError(f"the VPC's IPv4 CIDR must be IPv4, got {net}", field="ipv4")
    if not 16 <= net.prefixlen <= MIN_IPV4_SUBNET_PREFIX:
        raise PermanentProviderError(f"AWS VPC IPv4 CIDRs are /16 to /28, got {net}", field="ipv4")
    return net


def subnet_plans(spec: ShootSpec, options: Mapping[str, Any]) -> list[SubnetPlan]:
    """The shoot's subnets, zone by zone (workers, internal, public), with their CIDRs.

    IPv6 CIDRs come from the plan (None before an Amazon-provided /56 was adopted);
    IPv4 CIDRs follow the module's IPv4 subnet rule when the shoot has IPv4.
    """
    zones = list(options.get("zones") or [])
    count = _zone_count(spec)
    with_v4 = "IPv4" in spec.ip_families
    v4 = ipv4_subnets(_vpc_ipv4(spec, options), count * len(AWS_SUBNET_KINDS)) if with_v4 else []
    out: list[SubnetPlan] = []
    for k in range(count):
        for i, kind in enumerate(AWS_SUBNET_KINDS):
            name = f"{kind}-z{k}"
            v6: IPv6Network | None = None
            if spec.plan is not None and spec.plan.block is not None:
                try:
                    v6 = spec.plan.range(name).cidr
                except KeyError:
                    raise PermanentProviderError(f"the shoot's plan has no range {name}") from None
            out.append(
                SubnetPlan(
                    name=name,
                    kind=kind,
                    zone_index=k,
                    zone=str(zones[k]) if k < len(zones) else "",
                    ipv6=v6,
                    ipv4=v4[i + len(AWS_SUBNET_KINDS) * k] if v4 else None,
                )
            )
    return out


def validate_subnets(
    subnets: Iterable[SubnetPlan],
    vpc_block: IPv6Network,
    existing: Iterable[tuple[str, IPv6Network]] = (),
) -> None:
    """Refuse IPv6 subnets that are not /64s inside ``vpc_block`` or that overlap.

    ``existing`` holds ``(subnet id, cidr)`` of subnets in the VPC that are *not* the
    planned ones (another shoot's or someone's by hand). EC2 emulators accept any of
    these mistakes, real EC2 refuses some late: the adapter checks before it creates.
    """
    planned = [(s.name, s.ipv6) for s in subnets if s.ipv6 is not None]
    for name, cidr in planned:
        if cidr.prefixlen != SUBNET_PREFIX:
            raise PermanentProviderError(f"subnet {name}: {cidr} is not a /{SUBNET_PREFIX}", field="plan")
        if not cidr.subnet_of(vpc_block):
            raise PermanentProviderError(
                f"subnet {name}: {cidr} is outside the VPC's IPv6 block {vpc_block}", field="plan"
            )
    for (a, ca), (b, cb) in itertools.combinations(planned, 2):
        if ca.overlaps(cb):
            raise PermanentProviderError(f"subnets {a} ({ca}) and {b} ({cb}) overlap", field="plan")
    for name, cidr in planned:
        for other_id, other in existing:
            if cidr.overlaps(other):
                raise PermanentProviderError(
                    f"subnet {name}: {cidr} overlaps subnet {other_id} ({other}) of the VPC", field="plan"
                )


# --------------------------------------------------------------------------- reading EC2 answers


def _state(value: Any) -> str:
    """An association state as text; moto 5.2 answers ``"{'State': 'associated'}"`` for subnets."""
    raw = value.get("State") if isinstance(value, Mapping) else value
    match = re.search(r"(disassociating|disassociated|associating|associated|failing|failed)", str(raw))
    return match.group(1) if match else str(raw or "")


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in resource.get("Tags") or []}


def _vpc_ipv6(vpc: Mapping[str, Any]) -> tuple[IPv6Network | None, str]:
    """The VPC's associated IPv6 block and its pool (``Amazon`` or the IPAM/BYOIP pool)."""
    for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            net = ip_network(assoc["Ipv6CidrBlock"])
            if isinstance(net, IPv6Network):
                return net, str(assoc.get("Ipv6Pool") or "")
    return None, ""


def _ipv6_associations(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A VPC's or subnet's IPv6 CIDR associations that are (being) associated."""
    return [
        a
        for a in resource.get("Ipv6CidrBlockAssociationSet") or []
        if _state(a.get("Ipv6CidrBlockState")) in ("associating", "associated") and a.get("Ipv6CidrBlock")
    ]


def _vpc_ipv6_pending(vpc: Mapping[str, Any]) -> bool:
    """True if the VPC has an IPv6 block associated or on its way."""
    return bool(_ipv6_associations(vpc))


def _vpc_ipv4_cidrs(vpc: Mapping[str, Any]) -> list[str]:
    out = [
        str(a["CidrBlock"])
        for a in vpc.get("CidrBlockAssociationSet") or []
        if a.get("CidrBlock") and _state(a.get("CidrBlockState")) == "associated"
    ]
    return out or ([str(vpc["CidrBlock"])] if vpc.get("CidrBlock") else [])


def _subnet_ipv6(subnet: Mapping[str, Any]) -> list[IPv6Network]:
    out: list[IPv6Network] = []
    for assoc in subnet.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            net = ip_network(assoc["Ipv6CidrBlock"], strict=False)
            if isinstance(net, IPv6Network):
                out.append(net)
    return out


@dataclass(frozen=True)
class _Kind:
    """How one EC2 resource type is described, named and tagged."""

    describe: str
    ids_param: str
    result_key: str
    id_field: str
    resource_type: str


VPC = _Kind("describe_vpcs", "VpcIds", "Vpcs", "VpcId", "vpc")
SUBNET = _Kind("describe_subnets", "SubnetIds", "Subnets", "SubnetId", "subnet")
EIGW = _Kind(
    "describe_egress_only_internet_gateways",
    "EgressOnlyInternetGatewayIds",
    "EgressOnlyInternetGateways",
    "EgressOnlyInternetGatewayId",
    "egress-only-internet-gateway",
)
IGW = _Kind(
    "describe_internet_gateways",
    "InternetGatewayIds",
    "InternetGateways",
    "InternetGatewayId",
    "internet-gateway",
)
RTB = _Kind("describe_route_tables", "RouteTableIds", "RouteTables", "RouteTableId", "route-table")
#: Reservations are listed per subnet (``get_subnet_cidr_reservations``), not described.
RESERVATION = _Kind("", "", "", "SubnetCidrReservationId", "subnet-cidr-reservation")


# --------------------------------------------------------------------------- the adapter

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


@register
class AwsAdapter(Adapter):
    """VPC, subnets per zone, services reservation, gateways and route tables (see the module doc)."""

    slug = "aws"

    def __init__(self, account: AccountConfig) -> None:
        super().__init__(account)
        self._ec2: Any = None

    # ----------------------------------------------------------------- configuration

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

    # ----------------------------------------------------------------- planning (no API calls)

    def plan(self, spec: ShootSpec, action: str) -> list[PlannedStep]:
        opts = self._options()
        if action == "provision":
            return self._provision_plan(spec, opts)
        if action == "deprovision":
            return [
                PlannedStep(
                    f"delete {role}", f"delete the shoot's {role.replace('-', ' ')}(s) tagged {spec.identity}"
                )
                for role in (ROLE_PUBLIC_RTB, ROLE_IGW, ROLE_PRIVATE_RTB, ROLE_EIGW, ROLE_RESERVATION)
            ] + [
                PlannedStep("delete subnets", f"delete every subnet tagged {spec.identity}"),
                PlannedStep("delete vpc", f"delete the VPC tagged {spec.identity}"),
            ]
        if action == "sync-routes":
            return [self._routes_plan(spec)]
        return []

    def _provision_plan(self, spec: ShootSpec, opts: Mapping[str, Any]) -> list[PlannedStep]:
        v6 = self._has_ipv6(spec)
        if not v6:
            ipv6 = None
        elif spec.plan is not None and spec.plan.block is not None:
            ipv6 = str(spec.plan.block)
        else:
            ipv6 = "Amazon-provided /56 (read back)"
        via = (
            ""
            if not v6
            else " from Amazon"
            if spec.ipv6_from_provider
            else f" via IPAM pool {opts['ipam_pool_id']}"
            if opts["ipam_pool_id"]
            else ""
        )
        steps = [
            PlannedStep(
                ROLE_VPC,
                f"VPC {spec.resource_name()} with {_vpc_ipv4(spec, opts)}"
                + (f" and IPv6 {ipv6}{via}" if v6 else ""),
                {"ipv4": str(_vpc_ipv4(spec, opts)), "ipv6": ipv6},
            )
        ]
        for sn in subnet_plans(spec, opts):
            cidrs = [str(c) for c in (sn.ipv4, sn.ipv6) if c is not None]
            if v6 and sn.ipv6 is None:
                cidrs.append(f"/64 number {AWS_SUBNET_KINDS.index(sn.kind) + 3 * sn.zone_index} of the /56")
            steps.append(
                PlannedStep(
                    sn.step,
                    f"{sn.kind} subnet in zone {sn.zone or sn.zone_index}: {', '.join(cidrs)}"
                    + (" (IPv6 auto-assign)" if v6 and sn.kind == "workers" else ""),
                    {"zone": sn.zone, "ipv4": str(sn.ipv4 or ""), "ipv6": str(sn.ipv6 or "")},
                )
            )
        if v6:
            services = self._services_range(spec)
            steps.append(
                PlannedStep(
                    ROLE_RESERVATION,
                    f"explicit CIDR reservation of the services range {services or '(second /108 of workers-z0)'}"
                    + ("" if opts["reserve_services"] else " (skipped: reserve_services is false)"),
                    {"cidr": str(services or "")},
                )
            )
            steps.append(PlannedStep(ROLE_EIGW, "egress-only internet gateway"))
        steps.append(
            PlannedStep(
                ROLE_PRIVATE_RTB,
                "route table for the workers and internal subnets"
                + (" with ::/0 via the egress-only gateway" if v6 else ""),
                {"routes": [ANY_IPV6] if v6 else []},
            )
        )
        steps.append(PlannedStep(ROLE_IGW, "internet gateway attached to the VPC"))
        routes = [ANY_IPV4] + ([ANY_IPV6] if v6 else [])
        steps.append(
            PlannedStep(
                ROLE_PUBLIC_RTB,
                f"route table for the public subnets with {' and '.join(routes)} via the internet gateway",
                {"routes": routes},
            )
        )
        if not v6:
            steps.append(
                PlannedStep(
                    STEP_REMOVE_IPV6,
                    "remove IPv6 left from dual-stack (services reservation, subnet and VPC IPv6 CIDRs, "
                    "egress-only gateway); nothing if there is none",
                )
            )
        return steps

    @staticmethod
    def _services_range(spec: ShootSpec) -> IPv6Network | None:
        if spec.plan is None or spec.plan.block is None:
            return None
        found = spec.plan.by_role("services")
        return found[0].cidr if found else None

    @staticmethod
    def _routes_plan(spec: ShootSpec) -> PlannedStep:
        return PlannedStep(
            "routes",
            f"{len(spec.nodes)} node prefix(es): /80 prefix delegation per interface, no route-table routes",
            {"prefixes": [f"{n.destination} on {n.name}" for n in spec.nodes]},
        )

    # ----------------------------------------------------------------- finding

    @contextmanager
    def _step(self, ctx: StepContext, name: str) -> Iterator[StepHandle]:
        """A job step whose SDK exceptions are translated before the step records its failure."""
        with ctx.step(name) as step, _sdk(name):
            yield step

    def _describe(self, kind: _Kind, **params: Any) -> list[dict[str, Any]]:
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
        return next((r for r in found if r.get(kind.id_field) == resource_id), None)

    def _tagged(self, kind: _Kind, spec: ShootSpec, role: str | None = None) -> list[dict[str, Any]]:
        """Resources of ``kind`` carrying the shoot's tags (and role); re-checked client-side."""
        found = self._describe(kind, Filters=self._shoot_filters(spec, role))
        return [r for r in found if self._is_ours(r, spec, role)]

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

    # ----------------------------------------------------------------- apply

    def apply(self, spec: ShootSpec, ctx: StepContext) -> None:
        opts = self._options()
        self._check_zones(spec, opts)
        if self._has_ipv6(spec) and not spec.ipv6_from_provider:
            if spec.plan is None or spec.plan.block is None:
                raise PermanentProviderError(f"shoot {spec.identity} has IPv6 but no planned /56 block")
        vpc, spec = self.apply_vpc(spec, ctx, opts)
        vpc_id = str(vpc["VpcId"])
        block, _ = _vpc_ipv6(vpc)
        subnets: dict[str, str] = {}
        plans = subnet_plans(spec, opts)
        for sn in plans:
            subnets[sn.name] = self._apply_subnet(spec, ctx, vpc_id, block, plans, sn)
        v6 = self._has_ipv6(spec)
        eigw = ""
        if v6:
            self._apply_reservation(spec, ctx, subnets, opts)
            eigw = self._apply_eigw(spec, ctx, vpc_id)
        private = [subnets[s.name] for s in plans if s.kind != "public"]
        public = [subnets[s.name] for s in plans if s.kind == "public"]
        self._apply_route_table(
            spec,
            ctx,
            vpc_id,
            ROLE_PRIVATE_RTB,
            "private",
            private,
            {ANY_IPV6: ("EgressOnlyInternetGatewayId", eigw)} if v6 else {},
        )
        igw = self._apply_igw(spec, ctx, vpc_id)
        routes = {ANY_IPV4: ("GatewayId", igw)}
        if v6:
            routes[ANY_IPV6] = ("GatewayId", igw)
        self._apply_route_table(spec, ctx, vpc_id, ROLE_PUBLIC_RTB, "public", public, routes)
        if not v6:
            self._remove_ipv6(spec, ctx, vpc_id, list(subnets.values()))

    def apply_vpc(
        self, spec: ShootSpec, ctx: StepContext, opts: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], ShootSpec]:
        """Step ``vpc``: find or create the VPC, wait for it and its /56; returns it and the (re-planned) spec."""
        opts = opts or self._options()
        v6 = self._has_ipv6(spec)
        with self._step(ctx, ROLE_VPC) as step:
            vpc = self._find(VPC, spec, ctx, ROLE_VPC)
            if vpc is None:
                params: dict[str, Any] = {
                    "CidrBlock": str(_vpc_ipv4(spec, opts)),
                    "TagSpecifications": self._tag_spec(VPC, spec, ROLE_VPC, spec.resource_name()),
                }
                if v6:
                    params.update(self._ipv6_block_params(spec, opts))
                vpc = self.ec2.create_vpc(**params)["Vpc"]
                step.note(created=True)
            elif v6 and not _vpc_ipv6_pending(vpc):
                # Dual-stack migration of a provisioned IPv4-only shoot: the VPC gets its /56 now.
                self.ec2.associate_vpc_cidr_block(VpcId=vpc["VpcId"], **self._ipv6_block_params(spec, opts))
                step.note(associated_ipv6=True)
            step.created(ROLE_VPC, str(vpc["VpcId"]), kind="vpc")
            vpc = self._wait_vpc(str(vpc["VpcId"]), v6, opts)
            block, pool = _vpc_ipv6(vpc)
            step.note(vpc_id=vpc["VpcId"], ipv4=_vpc_ipv4_cidrs(vpc), ipv6=str(block or ""), ipv6_pool=pool)
            ipv4 = _vpc_ipv4(spec, opts)
            if ipv4 not in {ip_network(c) for c in _vpc_ipv4_cidrs(vpc)}:
                raise PermanentProviderError(
                    f"the VPC {vpc['VpcId']} has the IPv4 CIDR(s) {', '.join(_vpc_ipv4_cidrs(vpc))}, "
                    f"the portal planned {ipv4}"
                )
            if v6:
                assert block is not None  # _wait_vpc waited for it
                if block.prefixlen != VPC_BLOCK_PREFIX:
                    raise PermanentProviderError(f"the VPC's IPv6 block {block} is not a /{VPC_BLOCK_PREFIX}")
                if spec.ipv6_from_provider:
                    if spec.plan is None or spec.plan.block != block:
                        spec = ctx.adopt_ipv6_block(str(block))
                        step.note(adopted=str(block))
                elif spec.plan is not None and spec.plan.block != block:
                    raise PermanentProviderError(
                        f"the VPC {vpc['VpcId']} has the IPv6 block {block}, the portal planned {spec.plan.block}"
                    )
        return vpc, spec

    def _ipv6_block_params(self, spec: ShootSpec, opts: Mapping[str, Any]) -> dict[str, Any]:
        """How the VPC gets its /56 (``CreateVpc`` and ``AssociateVpcCidrBlock`` take the same)."""
        if spec.ipv6_from_provider:
            return {"AmazonProvidedIpv6CidrBlock": True}
        # The portal's own /56. (A re-run after an Amazon /56 was adopted also has a
        # planned block, but then the VPC holds it already and nothing is asked for.)
        if spec.plan is None or spec.plan.block is None:
            raise PermanentProviderError(f"shoot {spec.identity} has IPv6 but no planned /56 block")
        if not opts["ipam_pool_id"]:
            raise PermanentProviderError(
                f"the shoot's /56 {spec.plan.block} is the portal's own: it goes through an AWS "
                "IPAM pool — set account option ipam_pool_id",
                field="ipam_pool_id",
            )
        return {"Ipv6IpamPoolId": opts["ipam_pool_id"], "Ipv6CidrBlock": str(spec.plan.block)}

    def _wait_vpc(self, vpc_id: str, need_ipv6: bool, opts: Mapping[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + opts["wait_timeout"]
        while True:
            vpc = self._by_id(VPC, vpc_id)
            if vpc is not None and vpc.get("State") == "available" and (not need_ipv6 or _vpc_ipv6(vpc)[0]):
                return vpc
            if time.monotonic() >= deadline:
                state = "missing" if vpc is None else str(vpc.get("State"))
                raise TransientProviderError(
                    f"AWS VPC {vpc_id} is not ready after {opts['wait_timeout']:.0f} s (state {state}"
                    + (", IPv6 block not associated yet)" if need_ipv6 else ")")
                )
            time.sleep(opts["poll_interval"])

    def _vpc_subnets(self, vpc_id: str) -> list[dict[str, Any]]:
        return self._describe(SUBNET, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])

    def _apply_subnet(
        self,
        spec: ShootSpec,
        ctx: StepContext,
        vpc_id: str,
        block: IPv6Network | None,
        plans: list[SubnetPlan],
        sn: SubnetPlan,
    ) -> str:
        with self._step(ctx, sn.step) as step:
            subnet = self._find(SUBNET, spec, ctx, sn.role)
            if sn.ipv6 is not None:
                if block is None:
                    raise PermanentProviderError(f"the VPC {vpc_id} has no IPv6 block for subnet {sn.name}")
                ours = {s.role for s in plans}
                existing = [
                    (str(s["SubnetId"]), cidr)
                    for s in self._vpc_subnets(vpc_id)
                    if not (self._is_ours(s, spec) and _tags(s).get(TAG_ROLE) in ours)
                    for cidr in _subnet_ipv6(s)
                ]
                validate_subnets(plans, block, existing)
            if subnet is None:
                params: dict[str, Any] = {
                    "VpcId": vpc_id,
                    "AvailabilityZone": sn.zone,
                    "TagSpecifications": self._tag_spec(SUBNET, spec, sn.role, spec.resource_name(sn.name)),
                }
                if sn.ipv4 is not None:
                    params["CidrBlock"] = str(sn.ipv4)
                if sn.ipv6 is not None:
                    params["Ipv6CidrBlock"] = str(sn.ipv6)
                    if sn.ipv4 is None:
                        params["Ipv6Native"] = True
                subnet = self.ec2.create_subnet(**params)["Subnet"]
                step.note(created=True)
            elif sn.ipv6 is not None and not _subnet_ipv6(subnet):
                # Dual-stack migration: the existing subnet gets its planned /64.
                self.ec2.associate_subnet_cidr_block(SubnetId=subnet["SubnetId"], Ipv6CidrBlock=str(sn.ipv6))
                subnet = self._by_id(SUBNET, str(subnet["SubnetId"])) or subnet
                step.note(associated_ipv6=str(sn.ipv6))
            subnet_id = str(subnet["SubnetId"])
            step.created(sn.role, subnet_id, kind="subnet")
            self._check_subnet(subnet, sn)
            if sn.ipv6 is not None and sn.kind == "workers" and not subnet.get("AssignIpv6AddressOnCreation"):
                self.ec2.modify_subnet_attribute(
                    SubnetId=subnet_id, AssignIpv6AddressOnCreation={"Value": True}
                )
            step.note(
                subnet_id=subnet_id,
                zone=sn.zone,
                ipv4=str(sn.ipv4 or ""),
                ipv6=str(sn.ipv6 or ""),
                assign_ipv6=sn.ipv6 is not None and sn.kind == "workers",
            )
        return subnet_id

    @staticmethod
    def _check_subnet(subnet: Mapping[str, Any], sn: SubnetPlan) -> None:
        """A found subnet must be what the plan says (never silently reused with other CIDRs)."""
        problems = []
        v6 = _subnet_ipv6(subnet)
        if sn.ipv6 is not None and sn.ipv6 not in v6:
            problems.append(f"IPv6 {', '.join(map(str, v6)) or 'none'} instead of {sn.ipv6}")
        if sn.ipv4 is not None and subnet.get("CidrBlock") != str(sn.ipv4):
            problems.append(f"IPv4 {subnet.get('CidrBlock') or 'none'} instead of {sn.ipv4}")
        if sn.zone and subnet.get("AvailabilityZone") not in (None, sn.zone):
            problems.append(f"zone {subnet.get('AvailabilityZone')} instead of {sn.zone}")
        if problems:
            raise PermanentProviderError(f"subnet {subnet['SubnetId']} ({sn.name}) has {'; '.join(problems)}")

    def _apply_reservation(
        self, spec: ShootSpec, ctx: StepContext, subnets: Mapping[str, str], opts: Mapping[str, Any]
    ) -> None:
        services = self._services_range(spec)
        with self._step(ctx, ROLE_RESERVATION) as step:
            if services is None:
                step.note(skipped=True, reason="the plan has no services range")
                return
            if not opts["reserve_services"]:
                step.note(skipped=True, reason="account option reserve_services is false", cidr=str(services))
                return
            container = spec.plan.range("services").inside if spec.plan is not None else None
            subnet_id = subnets[container or "workers-z0"]
            answer = self.ec2.get_subnet_cidr_reservations(SubnetId=subnet_id)
            found = next(
                (
                    r
                    for r in answer.get("SubnetIpv6CidrReservations") or []
                    if ip_network(r["Cidr"]) == services
                ),
                None,
            )
            if found is None:
                found = self.ec2.create_subnet_cidr_reservation(
                    SubnetId=subnet_id,
                    Cidr=str(services),
                    ReservationType="explicit",
                    Description=f"{spec.identity} Kubernetes services",
                    TagSpecifications=self._tag_spec(
                        RESERVATION, spec, ROLE_RESERVATION, spec.resource_name("services")
                    ),
                )["SubnetCidrReservation"]
                step.note(created=True)
            step.created(
                ROLE_RESERVATION, str(found["SubnetCidrReservationId"]), kind="subnet-cidr-reservation"
            )
            step.note(cidr=str(services), subnet_id=subnet_id)

    def _apply_eigw(self, spec: ShootSpec, ctx: StepContext, vpc_id: str) -> str:
        with self._step(ctx, ROLE_EIGW) as step:
            eigw = self._find(EIGW, spec, ctx, ROLE_EIGW)
            if eigw is None:
                eigw = self.ec2.create_egress_only_internet_gateway(
                    VpcId=vpc_id,
                    TagSpecifications=self._tag_spec(EIGW, spec, ROLE_EIGW, spec.resource_name("eigw")),
                )["EgressOnlyInternetGateway"]
                step.note(created=True)
            eigw_id = str(eigw["EgressOnlyInternetGatewayId"])
            step.created(ROLE_EIGW, eigw_id, kind="egress-only-internet-gateway")
        return eigw_id

    def _apply_igw(self, spec: ShootSpec, ctx: StepContext, vpc_id: str) -> str:
        with self._step(ctx, ROLE_IGW) as step:
            igw = self._find(IGW, spec, ctx, ROLE_IGW)
            if igw is None:
                igw = self.ec2.create_internet_gateway(
                    TagSpecifications=self._tag_spec(IGW, spec, ROLE_IGW, spec.resource_name("igw"))
                )["InternetGateway"]
                step.note(created=True)
            igw_id = str(igw["InternetGatewayId"])
            step.created(ROLE_IGW, igw_id, kind="internet-gateway")
            if vpc_id not in {a.get("VpcId") for a in igw.get("Attachments") or []}:
                self.ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
            step.note(igw_id=igw_id, vpc_id=vpc_id)
        return igw_id

    def _apply_route_table(
        self,
        spec: ShootSpec,
        ctx: StepContext,
        vpc_id: str,
        role: str,
        suffix: str,
        subnet_ids: list[str],
        routes: Mapping[str, tuple[str, str]],
    ) -> str:
        """Find or create a route table, make its default routes ``routes`` and associate ``subnet_ids``."""
        with self._step(ctx, role) as step:
            rtb = self._find(RTB, spec, ctx, role)
            if rtb is None:
                rtb = self.ec2.create_route_table(
                    VpcId=vpc_id,
                    TagSpecifications=self._tag_spec(RTB, spec, role, spec.resource_name(suffix)),
                )["RouteTable"]
                step.note(created=True)
            rtb_id = str(rtb["RouteTableId"])
            step.created(role, rtb_id, kind="route-table")
            for destination, (target_param, target) in routes.items():
                self._ensure_route(rtb, destination, target_param, target)
            removed = self._remove_default_routes(rtb, keep=routes)
            if removed:
                step.note(removed_routes=removed)
            associated = {a.get("SubnetId") for a in rtb.get("Associations") or [] if a.get("SubnetId")}
            for subnet_id in subnet_ids:
                if subnet_id not in associated:
                    self._associate(rtb_id, subnet_id)
            step.note(route_table_id=rtb_id, routes=sorted(routes), subnets=subnet_ids)
        return rtb_id

    def _ensure_route(self, rtb: Mapping[str, Any], destination: str, target_param: str, target: str) -> None:
        key = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
        current = next((r for r in rtb.get("Routes") or [] if r.get(key) == destination), None)
        params = {"RouteTableId": rtb["RouteTableId"], key: destination, target_param: target}
        if current is None:
            self.ec2.create_route(**params)
        elif current.get(target_param) != target:
            self.ec2.replace_route(**params)

    def _remove_default_routes(self, rtb: Mapping[str, Any], keep: Mapping[str, Any]) -> list[str]:
        """Delete the default routes (``0.0.0.0/0``, ``::/0``) of our route table that ``keep`` lacks."""
        removed = []
        for route in rtb.get("Routes") or []:
            for key, destination in (
                ("DestinationCidrBlock", ANY_IPV4),
                ("DestinationIpv6CidrBlock", ANY_IPV6),
            ):
                if route.get(key) == destination and destination not in keep:
                    self._ignore_missing(
                        self.ec2.delete_route, RouteTableId=rtb["RouteTableId"], **{key: destination}
                    )
                    removed.append(destination)
        return removed

    def _associate(self, rtb_id: str, subnet_id: str) -> None:
        """Associate a subnet, moving it from another explicit association if it has one."""
        others = self._describe(RTB, Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
        for other in others:
            for assoc in other.get("Associations") or []:
                if assoc.get("SubnetId") == subnet_id and not assoc.get("Main"):
                    if other["RouteTableId"] == rtb_id:
                        return
                    self.ec2.replace_route_table_association(
                        AssociationId=assoc["RouteTableAssociationId"], RouteTableId=rtb_id
                    )
                    return
        self.ec2.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet_id)

    # ----------------------------------------------------------------- destroy

    def destroy(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Delete, in reverse order of apply, everything tagged for the shoot; idempotent."""
        for role in (ROLE_PUBLIC_RTB, ROLE_IGW, ROLE_PRIVATE_RTB, ROLE_EIGW):
            with self._step(ctx, f"delete {role}") as step:
                deleted = []
                if role in (ROLE_PUBLIC_RTB, ROLE_PRIVATE_RTB):
                    for rtb in self._find_all(RTB, spec, ctx, role):
                        self._delete_route_table(rtb)
                        deleted.append(rtb["RouteTableId"])
                elif role == ROLE_IGW:
                    for igw in self._find_all(IGW, spec, ctx, role):
                        for attachment in igw.get("Attachments") or []:
                            self._ignore_missing(
                                self.ec2.detach_internet_gateway,
                                InternetGatewayId=igw["InternetGatewayId"],
                                VpcId=attachment["VpcId"],
                            )
                        self._ignore_missing(
                            self.ec2.delete_internet_gateway, InternetGatewayId=igw["InternetGatewayId"]
                        )
                        deleted.append(igw["InternetGatewayId"])
                else:
                    deleted = self._delete_eigws(spec, ctx)
                if role in ctx.resources:
                    step.deleted(role)
                step.note(deleted=deleted)

        subnets = self._find_all(SUBNET, spec, ctx, None)
        with self._step(ctx, f"delete {ROLE_RESERVATION}") as step:
            deleted = self._delete_reservations(spec, ctx, [str(s["SubnetId"]) for s in subnets])
            if ROLE_RESERVATION in ctx.resources:
                step.deleted(ROLE_RESERVATION)
            step.note(deleted=deleted)

        with self._step(ctx, "delete subnets") as step:
            for subnet in subnets:
                self._ignore_missing(self.ec2.delete_subnet, SubnetId=subnet["SubnetId"])
            for key in [k for k in ctx.resources if k.startswith("subnet/")]:
                step.deleted(key)
            step.note(deleted=[s["SubnetId"] for s in subnets])

        with self._step(ctx, "delete vpc") as step:
            vpcs = self._find_all(VPC, spec, ctx, ROLE_VPC)
            for vpc in vpcs:
                self._ignore_missing(self.ec2.delete_vpc, VpcId=vpc["VpcId"])
            if ROLE_VPC in ctx.resources:
                step.deleted(ROLE_VPC)
            step.note(deleted=[v["VpcId"] for v in vpcs])

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

    def _remove_ipv6(self, spec: ShootSpec, ctx: StepContext, vpc_id: str, subnet_ids: list[str]) -> None:
        """Step ``remove ipv6``: take away the IPv6 an IPv4-only shoot must not have (rollback)."""
        with self._step(ctx, STEP_REMOVE_IPV6) as step:
            reservations = self._delete_reservations(spec, ctx, subnet_ids)
            if ROLE_RESERVATION in ctx.resources:
                step.deleted(ROLE_RESERVATION)
            subnet_cidrs = []
            for subnet in self._describe(SUBNET, SubnetIds=subnet_ids) if subnet_ids else []:
                if subnet.get("AssignIpv6AddressOnCreation"):
                    self.ec2.modify_subnet_attribute(
                        SubnetId=subnet["SubnetId"], AssignIpv6AddressOnCreation={"Value": False}
                    )
                for assoc in _ipv6_associations(subnet):
                    self._ignore_missing(
                        self.ec2.disassociate_subnet_cidr_block, AssociationId=assoc["AssociationId"]
                    )
                    subnet_cidrs.append(str(ip_network(assoc["Ipv6CidrBlock"], strict=False)))
            eigws = self._delete_eigws(spec, ctx)
            if ROLE_EIGW in ctx.resources:
                step.deleted(ROLE_EIGW)
            vpc_cidrs = []
            vpc = self._by_id(VPC, vpc_id)
            for assoc in _ipv6_associations(vpc or {}):
                self._ignore_missing(
                    self.ec2.disassociate_vpc_cidr_block, AssociationId=assoc["AssociationId"]
                )
                vpc_cidrs.append(str(ip_network(assoc["Ipv6CidrBlock"], strict=False)))
            step.note(
                reservations=reservations,
                subnet_ipv6=subnet_cidrs,
                egress_only_gateways=eigws,
                vpc_ipv6=vpc_cidrs,
            )

    def _delete_route_table(self, rtb: Mapping[str, Any]) -> None:
        for assoc in rtb.get("Associations") or []:
            if not assoc.get("Main") and assoc.get("RouteTableAssociationId"):
                self._ignore_missing(
                    self.ec2.disassociate_route_table, AssociationId=assoc["RouteTableAssociationId"]
                )
        self._ignore_missing(self.ec2.delete_route_table, RouteTableId=rtb["RouteTableId"])

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

    # ----------------------------------------------------------------- routes

    def sync_routes(self, spec: ShootSpec, ctx: StepContext) -> None:
        """One ``routes`` step that records the nodes' /80s; AWS needs no route-table routes for pods.

        Each node's network interface gets its /80 by prefix delegation (assigned by
        the machine controller / VPC CNI when the instance starts), so there is no
        router route to write, and nothing in the cloud is changed here.
        """
        planned = self._routes_plan(spec)
        with self._step(ctx, planned.name) as step:
            step.note(
                prefix_delegation=True,
                prefixes={n.name: n.destination for n in spec.nodes},
                cloud_changes=0,
            )

    # ----------------------------------------------------------------- reading

    def read_back(self, spec: ShootSpec, ctx: StepContext) -> list[CloudRange]:
        """The shoot's VPC CIDRs (the IPv6 /56 first: Amazon's is what the portal records) and subnets."""
        with _sdk("read back"):
            vpcs = self._find_all(VPC, spec, ctx, ROLE_VPC)
            subnets = self._find_all(SUBNET, spec, ctx, None)
        out: list[CloudRange] = []
        for vpc in vpcs:
            out += _vpc_ranges(vpc, spec.identity)
        for subnet in subnets:
            out += _subnet_ranges(subnet, spec.identity)
        return out

    def inventory(self) -> list[CloudRange]:
        """Every VPC and subnet CIDR (IPv4 and IPv6) in the account's region; ``shoot`` from our tags."""
        with _sdk("inventory"):
            vpcs = self._describe(VPC)
            subnets = self._describe(SUBNET)
        out: list[CloudRange] = []
        for vpc in vpcs:
            out += _vpc_ranges(vpc, _tags(vpc).get(TAG_SHOOT))
        for subnet in subnets:
            out += _subnet_ranges(subnet, _tags(subnet).get(TAG_SHOOT))
        return out


def _vpc_ranges(vpc: Mapping[str, Any], shoot: str | None) -> list[CloudRange]:
    tags = _tags(vpc)
    common = {"vpc_id": vpc["VpcId"], "role": tags.get(TAG_ROLE), "is_default": bool(vpc.get("IsDefault"))}
    out: list[CloudRange] = []
    for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            pool = str(assoc.get("Ipv6Pool") or "")
            out.append(
                CloudRange(
                    kind="vpc",
                    resource_id=str(vpc["VpcId"]),
                    cidr=str(ip_network(assoc["Ipv6CidrBlock"])),
                    name=tags.get("Name", ""),
                    shoot=shoot,
                    extra={
                        **common,
                        "family": "IPv6",
                        "ipv6_pool": pool,
                        "provider_assigned": pool == "Amazon",
                    },
                )
            )
    for cidr in _vpc_ipv4_cidrs(vpc):
        out.append(
            CloudRange(
                kind="vpc",
                resource_id=str(vpc["VpcId"]),
                cidr=str(ip_network(cidr)),
                name=tags.get("Name", ""),
                shoot=shoot,
                extra={**common, "family": "IPv4"},
            )
        )
    return out


def _subnet_ranges(subnet: Mapping[str, Any], shoot: str | None) -> list[CloudRange]:
    tags = _tags(subnet)
    common = {
        "vpc_id": subnet.get("VpcId"),
        "availability_zone": subnet.get("AvailabilityZone"),
        "role": tags.get(TAG_ROLE),
        "assign_ipv6_on_creation": bool(subnet.get("AssignIpv6AddressOnCreation")),
    }
    cidrs: list[tuple[str, str]] = [("IPv6", str(c)) for c in _subnet_ipv6(subnet)]
    if subnet.get("CidrBlock"):
        cidrs.append(("IPv4", str(ip_network(subnet["CidrBlock"]))))
    return [
        CloudRange(
            kind="subnet",
            resource_id=str(subnet["SubnetId"]),
            cidr=cidr,
            name=tags.get("Name", ""),
            shoot=shoot,
            extra={**common, "family": family},
        )
        for family, cidr in cidrs
    ]
