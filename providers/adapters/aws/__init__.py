"""The AWS adapter: a shoot's VPC, zone subnets, gateways and route tables in EC2.

Talks to EC2 through ``boto3`` (imported only in this package) and follows the ``aws`` layout of
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
``internet-gateway``
    An internet gateway attached to the VPC.
``nat-gateway`` (shoots with IPv4; account option ``nat_gateway``, default true)
    An Elastic IP and a public NAT gateway in the first public subnet, waited for
    until ``available`` (``failed`` is permanent, still pending after
    ``wait_timeout`` transient). One per shoot, not one per zone: the private subnets
    of every zone leave through zone 0. IPv6-only shoots get none (their public
    subnets are IPv6-native and cannot hold one).
``private-route-table``
    The shoot's route table for the workers and internal subnets: ``0.0.0.0/0`` via
    the NAT gateway (IPv4 egress), ``::/0`` via the egress-only gateway (IPv6) and,
    with both, the NAT64 prefix ``64:ff9b::/96`` via the NAT gateway (GARDENER.md).
    DNS64 is not turned on: dual-stack workers resolve IPv4 themselves.
``public-route-table``
    A route table with ``0.0.0.0/0`` and (IPv6) ``::/0`` via the internet gateway,
    associated with the public subnets. Managed routes the spec does not want (``::/0``
    and NAT64 after a rollback, ``0.0.0.0/0`` via NAT with ``nat_gateway: false``) are
    deleted from both route tables; other routes are left alone.
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
a half-done apply: route tables, the NAT gateway (waited for until deleted, then its
Elastic IP released — AWS will not detach an internet gateway while a public
address is mapped in the VPC), the internet and egress-only gateways, the services
reservation, the subnets, the VPC. NAT gateways stay listed as ``deleted`` for a
while: only ``pending`` and ``available`` ones count as existing.

**Node routes.** AWS has no router routes for pods: each node's network interface
gets a /80 by prefix delegation (Nitro instances). ``sync_routes`` is therefore one
``routes`` step that records the nodes' /80s and changes nothing in the cloud.

**Errors.** Every botocore/boto3 exception is translated at this package's boundary
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
    How long to wait for a new VPC and its /56, or a NAT gateway to become available
    or be deleted (default 120 s), polling every ``poll_interval`` seconds (default 2).
    Still not ready → transient error.
``nat_gateway``
    Default true: shoots with IPv4 get the NAT gateway above. False creates none;
    one created earlier stays until the shoot is deprovisioned (its route goes).
``reserve_services``
    Default true. False skips the services CIDR reservation (recorded as a note):
    meant for emulators in which it is slow — moto materialises every address of
    the /108 (~3 s and ~140 MB per reservation).
``vpc_ipv4_cidr``
    The VPC's IPv4 CIDR for IPv6-only shoots (AWS requires one on every VPC; no
    subnet uses it). Default ``10.0.0.0/16``.
"""

from __future__ import annotations

from .adapter import AwsAdapter
from .errors import translate
from .planning import TAG_ROLE, SubnetPlan, ipv4_subnets, subnet_plans, validate_subnets

__all__ = [
    "TAG_ROLE",
    "AwsAdapter",
    "SubnetPlan",
    "ipv4_subnets",
    "subnet_plans",
    "translate",
    "validate_subnets",
]
