"""The Gardener round trip: import manifests, export them, drift reports, bulk allocation.

The corpus under ``manifests/corpus`` is written from Gardener's documented formats:
OpenStack (GEP layout with a subnet pool, today's three-subnet layout, IPv4-only),
AWS (our /56 through an IPAM pool over two zones, an Amazon-provided /56) and GCP
(provider-assigned), status lists with the IPv6 entries first and second, seeds with
and without shoot defaults, as a SeedList, a List, multi-document YAML and JSON.
"""

from __future__ import annotations

import copy
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from allocations import selectors, services
from allocations.choices import PoolKind, Purpose, Uniqueness
from allocations.errors import ImportConflict, IpamError
from allocations.gardener.drift import shoot_drift
from allocations.gardener.specs import RENDERED_ANNOTATION, _cidrs
from allocations.models import Allocation, FreeBlock, Node, Pool, Seed, Shoot
from allocations.services import gardener_import as gi
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

MANIFESTS = Path(__file__).parent / "manifests"
CORPUS = MANIFESTS / "corpus"
SUBNET_POOL = "6c4c1a4e-3f0b-4d6e-9a57-0c1de0f3b2aa"
IPAM_POOL = "ipam-pool-0123456789abcdef0"


@pytest.fixture
def landscape(make_pool):
    """Owned IPv6 shoot pools (tagged with their cloud-side ids) and per-shoot IPv4 pools."""
    make_pool(
        "2001:db8::/48",
        name="os-v6",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        tags=[f"openstack-subnet-pool={SUBNET_POOL}"],
    )
    make_pool(
        "2001:db8:1::/48",
        name="aws-v6",
        purpose=Purpose.SHOOTS,
        provider="aws",
        tags=[f"aws-ipam-pool={IPAM_POOL}"],
    )
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.0.0.0/8", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=16, **per_shoot)
    make_pool("100.64.0.0/10", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )


def corpus() -> list[gi.Document]:
    return gi.read_manifest_paths([CORPUS])


def corpus_shoots() -> dict[str, dict[str, Any]]:
    return {
        f"{d.body['metadata']['namespace']}/{d.body['metadata']['name']}": d.body
        for d in corpus()
        if d.kind == "Shoot"
    }


def counts() -> dict[str, int]:
    out = {
        m.__name__: m.objects.count() for m in (Allocation, Pool, Shoot, Seed, Node, FreeBlock, AuditEvent)
    }
    out["live allocations"] = Allocation.objects.filter(state="active").count()
    return out


@contextmanager
def nothing_written() -> Iterator[None]:
    before = counts()
    yield
    assert counts() == before


def by_family(values: Any) -> dict[int, set[str]]:
    items = [values] if isinstance(values, str) else list(values or [])
    out: dict[int, set[str]] = {4: set(), 6: set()}
    for item in items:
        out[ip_network(item).version].add(item)
    return out


def exported(key: str) -> dict[str, Any]:
    project, name = key.split("/")
    data = selectors.gardener_export(shoots=[selectors.shoot_get(project, name)], as_list=False)
    return yaml.safe_load(yaml.safe_dump(data))  # what a consumer of the YAML sees


def import_corpus(actor) -> gi.ImportReport:
    return gi.gardener_import(documents=corpus(), actor=actor)


# --------------------------------------------------------------------------- import


def test_dry_run_reports_everything_and_writes_nothing(landscape, actor) -> None:
    with nothing_written():
        report = gi.gardener_import(documents=corpus(), actor=actor, dry_run=True)
    assert report.ok and report.dry_run and not report.written
    actions = {d.name: d.action for d in report.documents}
    assert actions == {
        "seed-os-eu": "create",
        "seed-aws-eu": "create",
        "seed-gcp-eu": "create",
        "garden-dev/os-gep": "create",
        "garden-dev/os-subnets": "create",
        "garden-ops/os-v4": "create",
        "garden-dev/aws-byoip": "create",
        "garden-ops/aws-amazon": "create",
        "garden-dev/gcp-ds": "create",
    }
    gep = next(d for d in report.documents if d.name == "garden-dev/os-gep")
    assert {"role": "block", "cidr": "2001:db8:0:10::/64", "pool": "os-v6"} in gep.ranges
    assert any("would reserve 2001:db8:0:10::/64 (block) in pool os-v6" in line for line in report.lines())


def test_import_reserves_brownfield_ranges_in_the_right_pools(landscape, actor) -> None:
    report = import_corpus(actor)
    assert report.ok and report.written and report.changes == 9
    gep = selectors.shoot_get("garden-dev", "os-gep")
    assert gep.layout == "openstack-gep" and gep.ip_families == ["IPv4", "IPv6"]
    block = selectors.shoot_block_pool(gep)
    assert block.cidr == "2001:db8:0:10::/64" and block.parent.name == "os-v6"
    # the IPv4 ranges of the spec: in our pool when it contains them, else the provider pool
    v4 = {a.role: (a.cidr, a.pool.name) for a in gep.allocations.filter(family=4)}
    assert v4 == {
        "nodes": ("10.250.0.0/16", "v4-nodes"),
        "pods": ("100.96.0.0/11", "v4-pods"),
        "services": ("100.64.0.0/13", "provider-openstack-ipv4"),
    }
    # today's three-subnet layout, recognised from InfrastructureConfig and status
    assert selectors.shoot_get("garden-dev", "os-subnets").layout == "openstack-subnets"
    # provider-assigned: Amazon's /56 and Google's ranges land in the provider pool
    amazon = selectors.shoot_block_pool(selectors.shoot_get("garden-ops", "aws-amazon"))
    assert amazon.parent.name == "provider-aws-ipv6" and amazon.parent.kind == PoolKind.PROVIDER
    byoip = selectors.shoot_block_pool(selectors.shoot_get("garden-dev", "aws-byoip"))
    assert byoip.parent.name == "aws-v6" and byoip.cidr == "2001:db8:1:100::/56"
    gcp = selectors.shoot_get("garden-dev", "gcp-ds")
    recorded = {a.cidr for a in gcp.allocations.filter(family=6, pool__kind=PoolKind.PROVIDER)}
    assert recorded == {"2600:1900:4000:1a2b::/64", "2600:1900:4000:9f00:0:1::/108"}
    # seeds with their networks, shoot defaults and families
    seed = Seed.objects.get(name="seed-os-eu")
    assert seed.ip_families == ["IPv4", "IPv6"] and seed.shoot_default_pods == ["100.112.0.0/12"]
    assert seed.nodes == ["10.250.0.0/16", "fd00:5eed:0:1::/64"]
    assert Seed.objects.get(name="seed-gcp-eu").block_cidrs == ["169.254.169.254/32"]
    assert AuditEvent.objects.filter(action="shoot.import").count() == 6


def test_ipv6_entries_are_matched_by_family_never_by_position(landscape, actor) -> None:
    shoots = corpus_shoots()
    gep = shoots["garden-dev/os-gep"]
    assert ":" in gep["status"]["networking"]["nodes"][0]  # the corpus has IPv6 first here ...
    assert ":" not in shoots["garden-dev/os-subnets"]["status"]["networking"]["nodes"][0]  # ... second here
    doc = gi.Document(0, "x", gep)
    flipped = copy.deepcopy(gep)
    for role, values in flipped["status"]["networking"].items():
        flipped["status"]["networking"][role] = list(reversed(values))
    plans = [gi.ShootSpec.from_document(d).ipv6_plan() for d in (doc, gi.Document(0, "x", flipped))]
    assert plans[0] == plans[1] and str(plans[0].block) == "2001:db8:0:10::/64"
    import_corpus(actor)
    for key in ("garden-dev/os-gep", "garden-dev/os-subnets"):
        project, name = key.split("/")
        shoot = selectors.shoot_get(project, name)
        assert {a.family for a in shoot.allocations.filter(role="nodes")} == {4, 6}


def test_import_then_export_reproduces_the_networking_fields(landscape, actor) -> None:
    import_corpus(actor)
    seeds = {d.body["metadata"]["name"]: d.body for d in corpus() if d.kind == "Seed"}
    for key, manifest in corpus_shoots().items():
        out = exported(key)
        assert out["kind"] == "Shoot" and out["metadata"]["namespace"] == manifest["metadata"]["namespace"]
        assert out["spec"]["seedName"] == manifest["spec"]["seedName"]
        spec_in, spec_out = manifest["spec"]["networking"], out["spec"]["networking"]
        assert spec_out["ipFamilies"] == spec_in.get("ipFamilies", ["IPv4"]), key
        assert spec_out.get("type") == spec_in.get("type"), key
        for role in ("nodes", "pods", "services"):
            reported = by_family(manifest["status"]["networking"][role])
            assert by_family(out["status"]["networking"][role]) == reported, (key, role)
            if role in spec_in:
                assert spec_out[role] == spec_in[role], (key, role)
            else:  # from the seed's shoot defaults, as Gardener reported it
                assert {spec_out[role]} == reported[4], (key, role)
        infra_in = manifest["spec"]["provider"].get("infrastructureConfig", {}).get("networks", {})
        infra_out = out["spec"]["provider"]["infrastructureConfig"]["networks"]
        for path in ("ipv6", "workers", "vpc", "zones"):
            if path in infra_in:
                assert infra_out[path] == infra_in[path], (key, path)
        kcm_in = manifest["spec"].get("kubernetes", {}).get("kubeControllerManager", {})
        for mask, value in kcm_in.items():
            assert out["spec"]["kubernetes"]["kubeControllerManager"][mask] == value, (key, mask)
    exported_seeds = selectors.gardener_export(shoots=[], seeds=Seed.objects.order_by("name"))["items"]
    for seed in exported_seeds:
        given = seeds[seed["metadata"]["name"]]["spec"]["networks"]
        for key in ("nodes", "pods", "services"):
            assert {str(n) for n in _cidrs(seed["spec"]["networks"][key], key)} == {
                str(n) for n in _cidrs(given[key], key)
            }


def test_the_export_passes_gardeners_rules(landscape, actor) -> None:
    from allocations import gardener

    import_corpus(actor)
    for shoot in selectors.gardener_shoots():
        out = selectors.shoot_gardener_object(shoot)
        spec = out["spec"]["networking"]
        masks = out["spec"]["kubernetes"]["kubeControllerManager"]
        ipv4 = gardener.ShootNetworks(**{role: (spec[role],) for role in ("nodes", "pods", "services")})
        plan = selectors.shoot_plan(shoot)
        nets = gardener.shoot_networks_for_plan(plan, ipv4) if plan is not None else ipv4
        assert not gardener.shoot_violations(
            nets,
            seed=selectors.seed_networks(shoot.seed),
            ip_families=spec["ipFamilies"],
            node_mask_ipv4=masks.get("nodeCIDRMaskSize"),
            node_mask_ipv6=masks.get("nodeCIDRMaskSizeIPv6"),
        ), shoot
        ipv6 = out["spec"]["provider"]["infrastructureConfig"]["networks"].get("ipv6")
        if ipv6 and "nodeCIDR" in ipv6:  # all three, IPv6, canonical and disjoint
            ipv6_nets = [
                gardener.parse_canonical_cidr(ipv6[k], field=k)
                for k in ("nodeCIDR", "podCIDR", "serviceCIDR")
            ]
            assert all(n.version == 6 for n in ipv6_nets)
            assert not any(a.overlaps(b) for i, a in enumerate(ipv6_nets) for b in ipv6_nets[i + 1 :])
        pool = out["spec"]["provider"]["infrastructureConfig"]["networks"].get("vpc", {}).get("ipv6IpamPool")
        if pool:  # cidrBlock is a /56 and needs an id
            assert pool["id"] == IPAM_POOL and ip_network(pool["cidrBlock"]).prefixlen == 56


def test_importing_twice_changes_nothing(landscape, actor) -> None:
    import_corpus(actor)
    with nothing_written():
        again = import_corpus(actor)
    assert again.ok and again.changes == 0 and not again.written
    assert {d.action for d in again.documents} == {"unchanged"}
    # the export imports without touching a range (only the recorded report may change) ...
    text = yaml.safe_dump(
        selectors.gardener_export(shoots=selectors.gardener_shoots(), seeds=Seed.objects.all())
    )
    before = {k: v for k, v in counts().items() if k != "AuditEvent"}
    report = gi.gardener_import(documents=text, actor=actor)
    assert {k: v for k, v in counts().items() if k != "AuditEvent"} == before
    assert {d.action for d in report.documents} <= {"unchanged", "update-status"}, list(report.lines())
    for shoot in selectors.gardener_shoots():
        assert shoot_drift(shoot).state == "in-sync", shoot
    # ... and a second time nothing at all
    with nothing_written():
        assert gi.gardener_import(documents=text, actor=actor).changes == 0


def test_a_portal_shoot_round_trips_and_reports_no_drift(landscape, actor) -> None:
    import_corpus(actor)
    shoot, _ = services.shoot_allocate(
        project="garden-dev",
        name="fresh",
        seed=Seed.objects.get(name="seed-os-eu"),
        provider="openstack",
        region="eu-de-1",
        actor=actor,
    )
    assert shoot_drift(shoot).state == "not-reported"
    exported_object = selectors.gardener_export(shoots=[shoot], as_list=False)
    text = yaml.safe_dump(exported_object)
    # The portal's own export is its expectation, not Gardener's report: nothing changes.
    report = gi.gardener_import(documents=text, actor=actor)
    assert [d.action for d in report.documents] == ["unchanged"]
    assert shoot_drift(selectors.shoot_get("garden-dev", "fresh")).state == "not-reported"
    # Gardener reporting exactly that (its object carries no digest of the portal's) is in sync.
    del exported_object["metadata"]["annotations"][RENDERED_ANNOTATION]
    report = gi.gardener_import(documents=yaml.safe_dump(exported_object), actor=actor)
    assert [d.action for d in report.documents] == ["update-status"]
    assert Allocation.objects.filter(shoot=shoot).count() == len(selectors.shoot_plan(shoot).ranges) + 4
    shoot.refresh_from_db()
    assert shoot_drift(shoot).state == "in-sync"


def test_a_conflicting_manifest_is_refused_named_and_nothing_written(landscape, actor) -> None:
    import_corpus(actor)
    documents = gi.read_manifest_paths([MANIFESTS / "conflicting.yaml"])
    with nothing_written():
        dry = gi.gardener_import(documents=documents, actor=actor, dry_run=True)
    assert not dry.ok and [d.action for d in dry.documents] == ["conflict"]
    with nothing_written(), pytest.raises(ImportConflict) as exc:
        gi.gardener_import(documents=documents, actor=actor)
    report = cast(gi.ImportReport, exc.value.report)
    messages = [c.message for c in report.conflicts]
    assert [c.message for c in dry.conflicts] == messages
    assert (
        "shoot pod network intersects with reserved shoot pod network mapping range (244.0.0.0/8)" in messages
    )
    assert any(
        m.startswith("2001:db8:0:10::/64 overlaps 2001:db8:0:10::/64 (block of shoot garden-dev/os-gep")
        for m in messages
    ), messages
    assert exc.value.field == "documents[0].networking.pods"
    assert "nothing was imported" in exc.value.message and "and 1 more" in exc.value.message
    assert not Shoot.objects.filter(name="clash").exists()


def test_one_bad_document_rolls_back_the_whole_import(landscape, actor) -> None:
    text = (CORPUS / "seeds.yaml").read_text() + "\n---\n" + (MANIFESTS / "conflicting.yaml").read_text()
    text = text.replace("244.0.0.0/16", "100.96.0.0/11")  # now the shoot is fine ...
    text = text.replace("seedName: seed-os-eu", "seedName: seed-missing")  # ... but its seed is unknown
    with nothing_written(), pytest.raises(ImportConflict) as exc:
        gi.gardener_import(documents=text, actor=actor)
    assert exc.value.field == "documents[2].spec.seedName"
    assert "no seed named 'seed-missing'" in exc.value.message


def shoot_manifest(**networking: Any) -> dict[str, Any]:
    status = networking.pop("status", None)
    body: dict[str, Any] = {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": "probe", "namespace": "garden-dev"},
        "spec": {
            "seedName": "seed-os-eu",
            "region": "eu-de-1",
            "provider": {"type": "openstack"},
            "networking": {
                "ipFamilies": ["IPv4", "IPv6"],
                "nodes": "10.250.0.0/16",
                "pods": "100.96.0.0/11",
                "services": "100.64.0.0/13",
                **networking,
            },
        },
    }
    if status is not None:
        body["status"] = {"networking": status}
    return body


GEP_STATUS = {
    "nodes": ["2001:db8:0:30::/66"],
    "pods": ["2001:db8:0:30:4000::/66"],
    "services": ["2001:db8:0:30:8000::/108"],
}


def conflicts_of(body: dict[str, Any], actor) -> list[tuple[str, str]]:
    with nothing_written():
        report = gi.gardener_import(documents=gi.documents_from_data(body), actor=actor, dry_run=True)
    return [(c.field, c.message) for c in report.conflicts]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        # every CIDR parses and is canonical
        (
            {"pods": "100.96.0.1/11"},
            "documents[0].spec.networking.pods",
            'spec.networking.pods: Invalid value: "100.96.0.1/11": must be valid canonical CIDR',
        ),
        # inside a shoot: pods, services and nodes pairwise disjoint
        (
            {"services": "100.96.0.0/13"},
            "documents[0].networking.services",
            "shoot pod network intersects with shoot service network",
        ),
        (
            {"nodes": "100.96.0.0/16"},
            "documents[0].networking.pods",
            "shoot pod network intersects with shoot node network",
        ),
        # reserved ranges
        (
            {"nodes": "242.0.0.0/16"},
            "documents[0].networking.nodes",
            "shoot node network intersects with reserved shoot node network mapping range (242.0.0.0/8)",
        ),
        (
            {"services": "240.0.0.0/16"},
            "documents[0].networking.services",
            "shoot service network intersects with reserved kube-apiserver mapping range (240.0.0.0/8)",
        ),
        # IPv6 shoot ranges must not intersect the seed's networks
        (
            {
                "status": {
                    "nodes": ["fd00:5eed:0:1::/66"],
                    "pods": ["fd00:5eed:0:1:4000::/66"],
                    "services": ["fd00:5eed:0:1:8000::/108"],
                }
            },
            "documents[0].networking.nodes",
            "shoot node network intersects with seed node network",
        ),
        # IPv6 ranges in Gardener's VPN range
        (
            {
                "status": {
                    "nodes": ["fd8f:6d53:b97a:1::/66"],
                    "pods": ["fd8f:6d53:b97a:1:4000::/66"],
                    "services": ["fd8f:6d53:b97a:1:8000::/108"],
                }
            },
            "documents[0].networking.nodes",
            "shoot node network intersects with default vpn network (fd8f:6d53:b97a:1::/96)",
        ),
        # node mask sizes within kube-controller-manager's bounds
        (
            {"status": GEP_STATUS, "__kcm__": {"nodeCIDRMaskSize": 15}},
            "documents[0].kubernetes.kubeControllerManager.nodeCIDRMaskSize",
            "nodeCIDRMaskSize must be between 16 and 28, got 15",
        ),
        (
            {"ipFamilies": ["IPv4"], "__kcm__": {"nodeCIDRMaskSizeIPv6": 64}},
            "documents[0].kubernetes.kubeControllerManager.nodeCIDRMaskSizeIPv6",
            "nodeCIDRMaskSizeIPv6 is not allowed on IPv4-only shoots (ipFamilies is [IPv4])",
        ),
        # families
        (
            {"ipFamilies": ["IPv4", "IPv5"]},
            "documents[0].ip_families",
            'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"',
        ),
        (
            {"ipFamilies": ["IPv6", "IPv4"]},
            "documents[0].spec.networking.ipFamilies",
            "ip_families ['IPv6', 'IPv4'] is not supported yet: use [IPv4] or [IPv4, IPv6]",
        ),
        (
            {"ipFamilies": ["IPv4"], "status": GEP_STATUS},
            "documents[0].status.networking",
            "Gardener reports IPv6 ranges but ipFamilies is ['IPv4']",
        ),
        # IPv6 ranges that no layout of ours cuts are recorded as they are (openstack-imported),
        # checked by Gardener's rules: a /104 is too wide for kube-apiserver
        (
            {"status": {**GEP_STATUS, "services": ["2001:db8:0:30:8000::/104"]}},
            "documents[0].networking.services",
            "IPv6 service network 2001:db8:0:30:8000::/104 must be /108 or longer: kube-apiserver "
            "refuses a service range with more than 20 host bits",
        ),
        # two IPv6 pod ranges: no layout at all
        (
            {"status": {**GEP_STATUS, "pods": ["2001:db8:0:30:4000::/66", "2001:db8:0:31::/64"]}},
            "documents[0].status.networking",
            "the IPv6 ranges (nodes [2001:db8:0:30::/66], pods [2001:db8:0:30:4000::/66, 2001:db8:0:31::/64], "
            "services [2001:db8:0:30:8000::/108]) match no layout of provider openstack "
            "(openstack-gep, openstack-subnets, openstack-imported)",
        ),
    ],
)
def test_gardener_rules_refuse_an_import_in_gardeners_words(landscape, actor, change, field, message) -> None:
    import_corpus(actor)
    kcm = change.pop("__kcm__", None)
    body = shoot_manifest(**change)
    if kcm:
        body["spec"]["kubernetes"] = {"kubeControllerManager": kcm}
    found = conflicts_of(body, actor)
    assert (field, message) in found, found


def test_ipv4_overlap_with_the_seed_is_allowed(landscape, actor) -> None:
    import_corpus(actor)
    body = shoot_manifest(status=GEP_STATUS)  # nodes/pods/services are the seed's own IPv4 ranges
    report = gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
    assert report.ok and report.documents[0].action == "create"


def test_a_seed_is_immutable_and_checked_by_gardeners_seed_rules(landscape, actor) -> None:
    import_corpus(actor)
    seed = next(d.body for d in corpus() if d.body["metadata"]["name"] == "seed-aws-eu")
    changed = copy.deepcopy(seed)
    changed["spec"]["networks"]["pods"] = "100.128.0.0/11"
    found = conflicts_of(changed, actor)
    assert found[0][0] == "documents[0].spec.networks"
    assert "a seed's networks are immutable" in found[0][1] and "100.128.0.0/11" in found[0][1]
    fresh = copy.deepcopy(seed)
    fresh["metadata"]["name"] = "seed-new"
    fresh["spec"]["networks"]["services"] = "10.0.0.0/7"
    assert ("documents[0].networks.services", "cannot be larger than /8") in conflicts_of(fresh, actor)
    fresh["spec"]["networks"]["services"] = "100.96.0.0/13"
    assert (
        "documents[0].networks.services",
        'must not overlap with "networks.pods" ("100.96.0.0/11")',
    ) in conflicts_of(fresh, actor)


def test_provider_assigned_ipv6_is_recorded_when_reported(landscape, actor) -> None:
    import_corpus(actor)
    body = next(b for k, b in corpus_shoots().items() if k == "garden-dev/gcp-ds")
    later = copy.deepcopy(body)
    later["metadata"]["name"] = "gcp-later"
    status = later.pop("status")
    first = gi.gardener_import(documents=gi.documents_from_data(later), actor=actor)
    assert "no IPv6 ranges reported yet" in first.documents[0].notes[0]
    shoot = selectors.shoot_get("garden-dev", "gcp-later")
    assert selectors.shoot_plan(shoot) is None and shoot_drift(shoot).state == "not-reported"
    status["networking"] = {
        "nodes": ["10.230.0.0/16", "2600:1900:4000:77::/64"],
        "pods": ["100.96.0.0/11", "2600:1900:4000:77::/64"],
        "services": ["100.64.0.0/13", "2600:1900:4000:9f00:0:2::/108"],
    }
    later["status"] = status
    second = gi.gardener_import(documents=gi.documents_from_data(later), actor=actor)
    assert second.documents[0].action == "record-ipv6"
    shoot.refresh_from_db()
    assert selectors.shoot_networking(shoot)["services"] == ["100.64.0.0/13", "2600:1900:4000:9f00:0:2::/108"]
    assert shoot_drift(shoot).state == "in-sync"
    with nothing_written():
        assert gi.gardener_import(documents=gi.documents_from_data(later), actor=actor).changes == 0
    # the same Google range claimed by another shoot is a conflict
    other = copy.deepcopy(later)
    other["metadata"]["name"] = "gcp-copy"
    found = conflicts_of(other, actor)
    assert any("overlaps 2600:1900:4000:77::/64 (block of shoot garden-dev/gcp-later" in m for _, m in found)


def test_drift_report_names_missing_extra_and_different_ranges(landscape, actor) -> None:
    import_corpus(actor)
    for shoot in selectors.gardener_shoots():
        assert shoot_drift(shoot).state == "in-sync", shoot
    body = copy.deepcopy(corpus_shoots()["garden-dev/os-gep"])
    body["status"]["networking"] = {
        "nodes": ["10.250.0.0/16"],  # IPv6 missing
        "pods": ["2001:db8:0:10:4000::/66", "100.97.0.0/16"],  # IPv4 different
        "services": ["2001:db8:0:10:8000::/108", "100.64.0.0/13", "2001:db8:0:10:8000:0:1:0/112"],  # extra
    }
    report = gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
    assert report.documents[0].action == "update-status"
    drift = shoot_drift(selectors.shoot_get("garden-dev", "os-gep"))
    assert drift.state == "drift"
    found = {(d.network, d.family, d.kind, d.portal, d.gardener) for d in drift.differences}
    assert found == {
        ("nodes", 6, "missing", "2001:db8:0:10::/66", None),
        ("pods", 4, "different", "100.96.0.0/11", "100.97.0.0/16"),
        ("services", 6, "extra", None, "2001:db8:0:10:8000:0:1:0/112"),
    }


def test_invalid_manifests_are_named(tmp_path, landscape, actor) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Shoot\nmetadata: {name: [\n")
    with pytest.raises(IpamError, match=r"bad.yaml: not valid YAML or JSON \(line 3"):
        gi.read_manifest_paths([bad])
    with pytest.raises(IpamError, match="kind 'Project' cannot be imported"):
        gi.parse_manifests("kind: Project\nmetadata: {name: p}\n")
    with pytest.raises(IpamError, match="the manifest is empty"):
        gi.parse_manifests("  \n")
    with pytest.raises(IpamError, match="no such file or folder"):
        gi.read_manifest_paths([tmp_path / "missing"])
    body = shoot_manifest()
    del body["metadata"]["namespace"]
    assert conflicts_of(body, actor) == [
        ("documents[0].metadata.namespace", "metadata.namespace: Required value")
    ]


# --------------------------------------------------------------------------- commands


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_ipam_import_command(landscape) -> None:
    with nothing_written():
        text = run("ipam_import", str(CORPUS), "--dry-run", "--actor", "bob")
    assert "seed-os-eu: create" in text and "9 documents, 9 changes (dry run: nothing written)" in text
    text = run(
        "ipam_import", str(CORPUS / "seeds.yaml"), str(CORPUS / "seed-gcp.json"), str(CORPUS / "shoots")
    )
    assert text.strip().endswith("9 documents, 9 changes (written)")
    assert (
        AuditEvent.objects.filter(action="shoot.import", actor="alice").count() == 0
    )  # actor from --actor/env
    with nothing_written(), pytest.raises(CommandError) as exc:
        run("ipam_import", str(MANIFESTS / "conflicting.yaml"))
    assert exc.value.returncode == 2
    assert "244.0.0.0/8" in str(exc.value) and str(exc.value).startswith("documents[0].networking.pods: ")
    with nothing_written(), pytest.raises(CommandError) as exc:
        run("ipam_import", str(MANIFESTS / "conflicting.yaml"), "--dry-run")
    assert exc.value.returncode == 2 and "244.0.0.0/8" in str(exc.value)
    data = yaml.safe_load(run("ipam_import", str(CORPUS), "--json"))
    assert data["ok"] and data["changes"] == 0


def test_ipam_export_command(landscape, actor) -> None:
    import_corpus(actor)
    one = yaml.safe_load(run("ipam_export", "garden-dev/os-gep"))
    assert one["kind"] == "Shoot" and one["metadata"]["name"] == "os-gep"
    project = yaml.safe_load(run("ipam_export", "--project", "garden-ops", "--seeds"))
    assert [i["kind"] for i in project["items"]] == ["Seed", "Seed", "Shoot", "Shoot"]
    everything = yaml.safe_load(run("ipam_export", "--all", "--json"))
    assert sum(i["kind"] == "Seed" for i in everything["items"]) == 3
    assert sum(i["kind"] == "Shoot" for i in everything["items"]) == 6
    for args in ((), ("garden-dev/os-gep", "--all"), ("no-slash",)):
        with pytest.raises(CommandError) as exc:
            run("ipam_export", *args)
        assert exc.value.returncode == 2
    with pytest.raises(CommandError, match="no live shoot garden-dev/nope"):
        run("ipam_export", "garden-dev/nope")


def test_ipam_drift_command(landscape, actor) -> None:
    import_corpus(actor)
    assert run("ipam_drift").strip().endswith("6 shoots: 0 with drift, 0 never reported")
    services.shoot_allocate(
        project="garden-dev",
        name="fresh",
        seed=Seed.objects.get(name="seed-os-eu"),
        provider="openstack",
        region="eu-de-1",
        actor=actor,
    )
    assert "1 never reported" in run("ipam_drift", "--project", "garden-dev")
    with pytest.raises(SystemExit) as exc:
        run("ipam_drift", "--require-report")
    assert exc.value.code == 1
    body = copy.deepcopy(corpus_shoots()["garden-ops/os-v4"])
    body["status"]["networking"]["pods"] = ["100.97.0.0/16"]
    gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
    with pytest.raises(SystemExit) as exc:
        run("ipam_drift", "garden-ops/os-v4")
    assert exc.value.code == 1


# --------------------------------------------------------------------------- bulk


@pytest.mark.postgres
def test_bulk_100_dual_stack_shoots_unique_and_disjoint_on_postgres(make_pool, actor) -> None:
    make_pool("2001:db8::/40", name="v6", purpose=Purpose.SHOOTS, provider="openstack")
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.0.0.0/8", name="n", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("100.64.0.0/10", name="p", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool("172.16.0.0/12", name="s", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot)
    seed = services.seed_create(
        name="seed",
        provider="openstack",
        region="r",
        pods="100.96.0.0/11",
        services="100.64.0.0/13",
        actor=actor,
    )
    base = {
        "project": "fleet",
        "seed": seed,
        "provider": "openstack",
        "region": "r",
        "ip_families": ["IPv4", "IPv6"],
    }
    done = services.shoots_allocate_bulk(
        requests=[{**base, "name": f"s{i:03d}"} for i in range(100)], actor=actor
    )
    assert len(done) == 100 and all(created for _, created in done)
    blocks = [selectors.shoot_block_pool(shoot).network for shoot, _ in done]
    assert len(set(blocks)) == 100
    ordered = sorted(blocks)
    assert all(not a.overlaps(b) for a, b in itertools.pairwise(ordered))
    v6 = sorted(
        ip_network(a.cidr)
        for a in Allocation.objects.filter(family=6, shoot__project="fleet", pool__purpose="shoot-block")
    )
    assert len(v6) == 300 and all(not a.overlaps(b) for a, b in itertools.pairwise(v6))
    with nothing_written(), pytest.raises(IpamError) as exc:
        services.shoots_allocate_bulk(
            requests=[{**base, "name": f"t{i:03d}"} for i in range(99)]
            + [{**base, "name": "t-bad", "zones": 0}],
            actor=actor,
        )
    assert exc.value.field == "shoots[99].zones" and exc.value.message.startswith("shoots[99]: ")


# --------------------------------------------------------------------------- one rule, one message


def test_the_import_refuses_too_many_zones_in_the_services_words(landscape, actor) -> None:
    import_corpus(actor)
    body = shoot_manifest()
    zones = [{"name": f"eu-de-1{i}"} for i in range(86)]
    body["spec"]["provider"]["infrastructureConfig"] = {"networks": {"zones": zones}}
    assert conflicts_of(body, actor) == [
        ("documents[0].spec.provider.infrastructureConfig", "zones must be a whole number from 1 to 85")
    ]


def test_the_commands_read_project_name_alike(landscape, actor) -> None:
    import_corpus(actor)
    for command in ("ipam_export", "ipam_drift"):
        for text in ("no-slash", "garden-dev/", "/os-gep"):
            with pytest.raises(CommandError, match=f"shoot: a shoot is PROJECT/NAME, got '{text}'") as exc:
                run(command, text)
            assert exc.value.returncode == 2


SHOOT_DOC = "kind: Shoot\nmetadata: {name: s%d, namespace: garden-p}\n"


def test_manifest_bounds_are_settings_and_anchors_within_them_still_work(
    settings: Any, tmp_path: Path
) -> None:
    text = (
        "kind: List\nitems:\n"
        "- {kind: Shoot, metadata: {name: s0, namespace: garden-p}, spec: {networking: &net {type: calico}}}\n"
        "- {kind: Shoot, metadata: {name: s1, namespace: garden-p}, spec: {networking: *net}}\n"
        "- {kind: Shoot, metadata: {name: s2, namespace: garden-p}, spec: {networking: *net}}\n"
    )
    assert [d.body["spec"]["networking"] for d in gi.parse_manifests(text)] == [{"type": "calico"}] * 3

    settings.GARDENER_IMPORT_MAX_DOCUMENTS = 2
    with pytest.raises(IpamError, match="more than 2 documents") as err:
        gi.parse_manifests("---\n".join(SHOOT_DOC % i for i in range(3)))
    assert err.value.field == "manifest"
    listed = {"kind": "List", "items": [yaml.safe_load(SHOOT_DOC % i) for i in range(3)]}
    with pytest.raises(IpamError, match="more than 2 documents"):
        gi.documents_from_data(listed)
    for i in range(3):
        (tmp_path / f"s{i}.yaml").write_text(SHOOT_DOC % i)
    with pytest.raises(IpamError, match="more than 2 documents"):
        gi.read_manifest_paths([tmp_path])

    settings.GARDENER_IMPORT_MAX_DEPTH = 3
    with pytest.raises(IpamError, match="nested deeper than 3 levels"):
        gi.parse_manifests("kind: Shoot\nspec: {a: {b: [c]}}\n")
    with pytest.raises(IpamError, match="nested deeper than 3 levels"):
        gi.documents_from_data({"kind": "Shoot", "spec": {"a": {"b": ["c"]}}})

    settings.GARDENER_IMPORT_MAX_ALIASES = 1
    with pytest.raises(IpamError, match="more than 1 YAML aliases"):
        gi.parse_manifests("kind: Shoot\nmetadata: &m {name: a}\nspec: {x: *m, y: *m}\n")


def test_a_new_report_with_drift_publishes_drift_found(landscape, actor) -> None:
    from allocations.events import DriftFound
    from ipam_portal.events import Delivery, subscribe, unsubscribe

    import_corpus(actor)
    seen: list[Any] = []
    subscribe(DriftFound, name="test.drift", delivery=Delivery.IN_TRANSACTION)(seen.append)
    try:
        body = copy.deepcopy(corpus_shoots()["garden-dev/os-gep"])
        gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
        assert seen == []  # the same report again: nothing recorded, nothing published
        body["status"]["networking"]["pods"] = ["2001:db8:0:10:4000::/66", "100.97.0.0/16"]
        gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
    finally:
        unsubscribe("test.drift")
    shoot = selectors.shoot_get("garden-dev", "os-gep")
    [envelope] = seen
    assert envelope.event.subject == f"shoot/{shoot.pk}"
    assert [(d["network"], d["family"], d["kind"]) for d in envelope.event.differences] == [
        ("pods", 4, "different")
    ]
