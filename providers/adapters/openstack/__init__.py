"""The OpenStack adapter: a shoot's network, subnets, router and node routes in Neutron.

Talks to Neutron through ``openstacksdk`` (imported only in this package). Both OpenStack layouts
of DESIGN §6 are supported:

* ``openstack-gep`` — one IPv6 /64 subnet (the node range's ``k8s_cidr``), DHCPv6
  stateful (``ipv6_address_mode`` and ``ipv6_ra_mode``), its allocation pool limited
  to the node /66 (the range's ``cidr``); pods and services live inside the /64 and
  are reached through router routes, so they get no subnet of their own.
* ``openstack-subnets`` — today's Gardener extension: three IPv6 /64 subnets. The
  node subnet uses SLAAC; the pod and service subnets only reserve their CIDR in
  Neutron (no DHCP, no gateway, a service type no port has, so no port ever gets an
  address from them: see ``RESERVED_SERVICE_TYPE``) and are not attached to the router.

Steps of ``apply`` (each is a job step, named as :meth:`OpenStackAdapter.plan` says):
network → IPv4 subnet (``spec.ipv4["nodes"]``) → IPv6 subnet(s) → router → one
router interface per node subnet (IPv6 and IPv4) → routes (one extra route per
registered node: its pod range via its address; routes that are not ours are kept)
→ for an IPv4-only shoot, ``remove ipv6``: the IPv6 subnets a dual-stack shoot had
(rollback ``[IPv4, IPv6]`` → ``[IPv4]``) are deleted with the routes within them and
their router interfaces — a no-op for a shoot that never had IPv6. A dual-stack
migration of a provisioned IPv4-only shoot needs nothing special: the IPv6 subnets
and interfaces are added to the existing network and router.

Finding what exists (so a re-run never duplicates): the id recorded in
``ctx.resources``, else the shoot's tags (Neutron tags are plain strings, we use
``key=value`` of :attr:`ShootSpec.tags` plus ``ipam-portal/role=<role>``), else the
*description* marker. Neutron refuses tags in a create request, so every resource is
created with a description that names the shoot and role and is tagged right after;
the description closes the window where a worker dies between the two calls.
Destroy deletes only resources carrying our tags or our description marker (or
recorded ids), and only routes whose destination lies within the shoot's own pod
(and, with ``service_routes``, service) ranges or its own subnets — a foreign route
on the shoot's router keeps its interface attached, and destroy fails with Neutron's
message rather than delete it.

Account settings: ``endpoint`` is Neutron's URL (``network_endpoint_override``; empty
to use the service catalog), ``region`` the region name. Credentials (a JSON object
resolved from the account's reference, never logged): empty or ``{"auth_type":
"none"}`` for an endpoint without authentication; else Keystone — ``auth_url`` with
either ``application_credential_id``/``application_credential_secret`` (or
``..._name`` with ``username`` and ``user_domain_name``) or ``username``/``password``
with ``project_name``/``project_id`` and the domain keys.

Account options:

``dns_ipv4`` / ``dns_ipv6``
    Lists of DNS servers, each set on the node subnet of its own family (Neutron
    refuses an IPv4 server on an IPv6 subnet and vice versa; checked before any call).
``subnet_pool_id``
    Create the IPv6 subnets from this subnet pool, but with the portal's explicit
    CIDR (Neutron refuses allocation pools with a pool-chosen prefix length, and
    requires all IPv6 subnets of a network to come from the same pool). A CIDR outside
    the pool fails permanently with Neutron's ``SubnetAllocationError`` message.
``external_network_id``
    Optional external network for the router's gateway.
``service_routes``
    Optional (default false): also route the shoot's Kubernetes service range
    (IPv6, the ``k8s_cidr`` of the services range) via every node's IPv6 address (ECMP).
``api_timeout``
    Seconds per API request (default 30). Requests are not retried inside the SDK:
    the job runner retries transient errors with backoff.

Errors (:func:`translate`, applied to every SDK call): 401/403 and unusable
credentials → ``CredentialError``; 429, 5xx, timeouts, refused or dropped connections
and failed endpoint discovery → ``TransientProviderError``; other 4xx (a next hop not
on the router's subnets, a subnet or network still in use, ...) and Neutron's
``SubnetAllocationError`` (answered with a 500) → ``PermanentProviderError``. The
message always carries Neutron's own text. ``sync_routes`` before the router exists
is transient (the provision job may still be running).

Modules: :mod:`.planning` (constants, :class:`SubnetPlan`, pure helpers and
:class:`OpenStackPlanning`: options, subnet and route plans, job steps, resource
markers, no cloud call and no SDK import); :mod:`.errors` (:func:`translate` and the
``_sdk`` guard around every SDK call); :mod:`.adapter` (:class:`OpenStackAdapter`:
connection, finding, apply, routes, destroy, reading), registered under
``openstack`` when this package is imported.
"""

from __future__ import annotations

from .adapter import OpenStackAdapter
from .errors import CONNECTION_ERRORS, SDK_ERRORS, translate
from .planning import (
    AUTH_KEYS,
    DEFAULT_API_TIMEOUT,
    IPV6_SUBNET_ROLES,
    LAYOUTS,
    RESERVED_SERVICE_TYPE,
    ROUTER_INTERFACE_OWNERS,
    STEP_REMOVE_IPV6,
    SUBNET_ROLES,
    TAG_ROLE,
    OpenStackPlanning,
    Route,
    SubnetPlan,
)

__all__ = [
    "AUTH_KEYS",
    "CONNECTION_ERRORS",
    "DEFAULT_API_TIMEOUT",
    "IPV6_SUBNET_ROLES",
    "LAYOUTS",
    "RESERVED_SERVICE_TYPE",
    "ROUTER_INTERFACE_OWNERS",
    "SDK_ERRORS",
    "STEP_REMOVE_IPV6",
    "SUBNET_ROLES",
    "TAG_ROLE",
    "OpenStackAdapter",
    "OpenStackPlanning",
    "Route",
    "SubnetPlan",
    "translate",
]
