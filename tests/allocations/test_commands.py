"""The ``ipam_*`` management commands: output, ``--json``, one-line errors and exit codes.

Most tests run the commands in-process with ``call_command`` (a refused request is
then raised as ``CommandError`` with ``returncode`` 2). A few run ``manage.py`` as
a real process to check what a shell sees: one ``error: <field>: <message>`` line
on stderr and exit status 2. Those need committed data in a database the process
can open: the test database on PostgreSQL, a migrated temporary file on SQLite
(the in-memory test database cannot be shared with another process).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shlex
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from allocations.management.base import IpamCommand
from allocations.models import Allocation, Node, Pool, Shoot
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "ipam_pool_create",
    "ipam_allocate",
    "ipam_release",
    "ipam_purge_quarantine",
    "ipam_reclaim",
    "ipam_pool_usage",
    "ipam_shoot_allocate",
    "ipam_shoot_release",
    "ipam_node_register",
    "ipam_node_remove",
    "ipam_lookup",
    "ipam_seed_create",
)
SHOOT = "ipam_shoot_allocate garden-dev shoot-a --seed seed-eu --provider openstack --region eu-de-1"


def run(command: str, *more: object) -> str:
    """Run ``command`` (shell words, plus ``more`` arguments) in-process; return its stdout."""
    out = io.StringIO()
    call_command(*shlex.split(command), *[str(a) for a in more], stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_json(command: str, *more: object) -> Any:
    return json.loads(run(command, *more, "--json"))


def refused(command: str, *more: object) -> str:
    """Run a command that must be refused: exit status 2 and one line; return that line."""
    with pytest.raises(CommandError) as exc:
        run(command, *more)
    assert exc.value.returncode == 2
    assert "\n" not in str(exc.value)
    return str(exc.value)


@pytest.fixture
def pool() -> Pool:
    run("ipam_pool_create v6 2001:db8:a::/48 --default-length 56")
    return Pool.objects.get(name="v6")


@pytest.fixture
def landscape() -> None:
    """The seed example: an IPv6 shoots pool per provider, per-shoot IPv4 pools and a seed."""
    run("ipam_pool_create openstack-v6 2001:db8::/48 --purpose shoots --provider openstack")
    run("ipam_pool_create aws-v6 2001:db8:1::/48 --purpose shoots --provider aws")
    per_shoot = "--uniqueness per-shoot --kind private"
    run(f"ipam_pool_create v4-nodes 100.0.0.0/16 --purpose nodes --default-length 24 {per_shoot}")
    run(f"ipam_pool_create v4-pods 10.0.0.0/8 --purpose pods --default-length 16 {per_shoot}")
    run(f"ipam_pool_create v4-svc 172.16.0.0/12 --purpose services --default-length 16 {per_shoot}")
    run(
        "ipam_seed_create seed-eu --provider openstack --region eu-de-1 --ip-families IPv4,IPv6 "
        "--nodes 10.250.0.0/16,2001:db8:0:ff00::/56 --pods 100.96.0.0/11,fd00:10:1::/56 "
        "--services 100.64.0.0/13,fd00:10:2::/112"
    )


def test_every_command_has_help_json_and_actor() -> None:
    for name in COMMANDS:
        command = load_command_class("allocations", name)
        assert isinstance(command, IpamCommand) and command.help
        help_text = command.create_parser("manage.py", name).format_help()
        assert "--json" in help_text and "--actor" in help_text


# --- pools -----------------------------------------------------------------------------


def test_pool_create_root_and_child() -> None:
    out = run(
        "ipam_pool_create root 2001:db8::/32 --default-length 48 --quota 65536 --tag gua --tag eu "
        "--description 'our space'"
    )
    root = Pool.objects.get(name="root")
    assert out.splitlines()[0] == f"created pool root 2001:db8::/32 (id {root.pk})"
    assert "/32 to /128, default /48" in out and "gua, eu" in out
    assert (root.project_quota, root.tags, root.description) == (65536, ["gua", "eu"], "our space")
    child = run_json("ipam_pool_create eu - --parent root --prefix-length 40")
    assert (child["cidr"], child["parent"]) == ("2001:db8::/40", "root")
    given = run_json("ipam_pool_create us 2001:db8:100::/40 --parent root --purpose shoots")
    assert (given["cidr"], given["purpose"]) == ("2001:db8:100::/40", "shoots")


def test_pool_create_refusals() -> None:
    run("ipam_pool_create root 2001:db8::/32")
    overlap = refused("ipam_pool_create again 2001:db8:1::/48")
    assert overlap.startswith("cidr: 2001:db8:1::/48 overlaps root pool root")
    assert refused("ipam_pool_create x - --parent nope") == "parent: no pool named 'nope'"
    assert refused("ipam_pool_create x -") == "cidr: give a CIDR, or a parent pool to carve the pool from"
    assert refused("ipam_pool_create x 10.0.0.0/8 --prefix-length 9").startswith("--prefix-length: only with")


# --- allocate, release, reclaim ----------------------------------------------------------


def test_allocate_next_free_and_given_cidr(pool: Pool) -> None:
    out = run("ipam_allocate v6 --project p1 --label web --actor bob")
    first = Allocation.objects.get(pool=pool, label="web")
    assert out == f"2001:db8:a::/56 (id {first.pk}) from pool v6\n"
    assert (first.project, first.created_by) == ("p1", "bob")
    event = AuditEvent.objects.get(action="allocation.allocate", object_id=str(first.pk))
    assert (event.actor, event.source) == ("bob", "command")
    data = run_json("ipam_allocate v6 --prefix-length 64")
    assert (data["cidr"], data["pool"], data["state"]) == ("2001:db8:a:100::/64", "v6", "active")
    data = run_json("ipam_allocate v6 --cidr 2001:db8:a:ff00::/56 --role other")
    assert (data["cidr"], data["role"]) == ("2001:db8:a:ff00::/56", "other")


def test_actor_comes_from_the_environment(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPAM_ACTOR", "cron-eu")
    run("ipam_allocate v6")
    assert AuditEvent.objects.filter(action="allocation.allocate", actor="cron-eu", source="command").exists()


def test_allocate_hold(pool: Pool) -> None:
    data = run_json("ipam_allocate v6 --hold-hours 2")
    expires = dt.datetime.fromisoformat(data["expires_at"])
    assert data["owner_type"] == "reservation"
    assert abs(expires - (timezone.now() + dt.timedelta(hours=2))) < dt.timedelta(minutes=1)
    assert "held until" in run("ipam_allocate v6 --hold-hours 1")
    assert refused("ipam_allocate v6 --hold-hours -1") == "hold_until: a hold must expire in the future"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (
            "--cidr 2001:db8:a::1/64",
            "cidr: '2001:db8:a::1/64' has host bits set; the network is 2001:db8:a::/64",
            "not_aligned",
        ),
        (
            "--cidr 2001:db8:a::/64",
            "cidr: 2001:db8:a::/64 overlaps 2001:db8:a::/56 (block)",
            "prefix_overlap",
        ),
        (
            "--cidr 2001:db9::/56",
            "cidr: 2001:db9::/56 is not inside pool v6 (2001:db8:a::/48)",
            "outside_pool",
        ),
        ("--cidr 10.0.0.0/24", "cidr: 10.0.0.0/24 is IPv4, pool v6 is IPv6", "wrong_family"),
        ("--prefix-length 40", "prefix_length: /40 is not allowed in pool v6", "prefix_length_not_allowed"),
    ],
)
def test_allocate_refused_with_one_line(pool: Pool, args: str, message: str, code: str) -> None:
    run("ipam_allocate v6 --cidr 2001:db8:a::/56")
    with pytest.raises(CommandError) as exc:
        run(f"ipam_allocate v6 {args}")
    assert exc.value.returncode == 2 and str(exc.value).startswith(message)
    assert exc.value.error.code == code  # type: ignore[attr-defined]  # the IpamError behind it


def test_allocate_pool_exhausted_and_unknown_pool() -> None:
    run("ipam_pool_create tiny 2001:db8:b::/56")
    run("ipam_allocate tiny --prefix-length 56")
    assert refused("ipam_allocate tiny --prefix-length 56") == (
        "prefix_length: pool tiny (2001:db8:b::/56) has no free /56"
    )
    assert refused("ipam_allocate nope --prefix-length 56") == "pool: no pool named 'nope'"
    assert refused("ipam_allocate tiny").startswith("prefix_length: pool tiny has no default prefix length")


def test_release_by_cidr_and_by_id(pool: Pool) -> None:
    a = run_json("ipam_allocate v6")
    b = run_json("ipam_allocate v6")
    out = run("ipam_release 2001:db8:a::/56 --pool v6")
    assert out.startswith(f"released 2001:db8:a::/56 (id {a['id']}) from pool v6: quarantined until ")
    assert Allocation.objects.get(pk=a["id"]).state == "quarantined"
    data = run_json("ipam_release --quarantine-seconds 0 --id", b["id"])
    assert (data["cidr"], data["state"]) == ("2001:db8:a:100::/56", "released")
    c = run_json("ipam_allocate v6")
    assert run("ipam_release --quarantine-seconds 0 --id", c["id"]).endswith(": free now\n")
    assert (
        refused("ipam_release 2001:db8:a::/56 --pool v6")
        == "state: 2001:db8:a::/56 is quarantined, not active"
    )
    assert refused("ipam_release 2001:db8:a:4200::/56 --pool v6") == (
        "cidr: no live allocation 2001:db8:a:4200::/56 in pool v6"
    )
    assert refused("ipam_release --id 999999") == "id: no allocation with id 999999"
    assert refused("ipam_release 2001:db8:a::/56") == "give CIDR --pool POOL, or --id ID"


def test_purge_quarantine_and_reclaim(pool: Pool) -> None:
    a = run_json("ipam_allocate v6")
    run("ipam_release --id", a["id"])
    assert run("ipam_purge_quarantine --pool v6") == "purged 1 quarantined prefix in pool v6\n"
    assert run_json("ipam_purge_quarantine") == {"purged": 0, "pool": None}
    hold = run_json("ipam_allocate v6 --hold-hours 1")
    # the clock moves on: the hold lapses
    Allocation.objects.filter(pk=hold["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert run("ipam_reclaim") == "reclaimed 1 prefix\n"
    assert Allocation.objects.get(pk=hold["id"]).state == "released"
    assert run_json("ipam_reclaim") == {"reclaimed": 0}


# --- usage ---------------------------------------------------------------------------------


def test_pool_usage_exact_and_readable(pool: Pool) -> None:
    run("ipam_allocate v6")  # 2001:db8:a::/56
    run("ipam_allocate v6 --prefix-length 64")  # 2001:db8:a:100::/64
    assert run_json("ipam_allocate v6 --hold-hours 1")["cidr"] == "2001:db8:a:200::/56"
    run("ipam_release --id", run_json("ipam_allocate v6")["id"])  # 2001:db8:a:300::/56, quarantined
    out = run("ipam_pool_usage v6 --prefix-length 56 --limit 2")
    assert out.splitlines()[0] == "pool v6 2001:db8:a::/48 (global, purpose general)"
    assert "size         2^80 = 1208925819614629174706176 addresses" in out
    # three /56 and one /64 (a /256 of a /56) of the /48: (3 * 256 + 1) / 65536
    assert "allocated    769/65536 (1.173 %)" in out
    assert "quarantined  1/256 (0.3906 %)" in out
    assert "held         1/256 (0.3906 %)" in out
    assert "free         64767/65536 (98.83 %)" in out
    assert "free blocks  252 free /56 blocks of 256" in out
    assert "allocations  /56: 3, /64: 1" in out
    assert "next free /56: 2001:db8:a:400::/56" in out
    assert out.endswith("free /56 blocks, lowest first:\n  2001:db8:a:400::/56\n  2001:db8:a:500::/56\n")
    data = run_json("ipam_pool_usage v6 --limit 3")
    assert (data["allocated_fraction"], data["held_fraction"]) == ("769/65536", "1/256")
    assert (data["free_units"], data["unit"], data["next_free"]) == ("252", "/56", None)
    assert data["free_blocks"] == ["2001:db8:a:101::/64", "2001:db8:a:102::/63", "2001:db8:a:104::/62"]
    assert (
        refused("ipam_pool_usage v6 --prefix-length 129")
        == "prefix_length: /129 is not a prefix length of IPv6"
    )


def test_pool_usage_of_a_tiny_fraction() -> None:
    run("ipam_pool_create big 2001:db8::/32 --default-length 64")
    run("ipam_allocate big")
    out = run("ipam_pool_usage big")
    assert "allocated    1/4294967296 (< 0.0001 %)" in out  # never rounded to 0 %, never 2.3e-08
    assert "free blocks  4294967295 free /64 blocks of 4294967296" in out


# --- seeds, shoots, nodes, look-up -------------------------------------------------------


def test_seed_create_reserves_its_ipv6_networks(landscape: None) -> None:
    data = run_json(
        "ipam_seed_create seed-2 --provider openstack --region eu-de-2 --ip-families IPv4,IPv6 "
        "--nodes 10.251.0.0/16,2001:db8:0:fe00::/56 --pods 100.96.0.0/11,fd00:11:1::/56 "
        "--services 100.64.0.0/13,fd00:11:2::/112"
    )
    assert data["nodes"] == ["10.251.0.0/16", "2001:db8:0:fe00::/56"]
    assert [(r["cidr"], r["pool"], r["owner_type"]) for r in data["reserved"]] == [
        ("2001:db8:0:fe00::/56", "openstack-v6", "seed")
    ]
    assert "2001:db8:0:ff00::/56  seed seed-eu  active  pool openstack-v6" in run(
        "ipam_lookup 2001:db8:0:ff00::1"
    )
    assert (
        refused("ipam_seed_create seed-3 --provider aws --region x")
        == "networks.pods: a seed needs its pod network"
    )


def test_shoot_allocate_prints_gardener_networking_and_is_idempotent(landscape: None) -> None:
    out = run(SHOOT)
    shoot = Shoot.objects.get(project="garden-dev", name="shoot-a")
    lines = out.splitlines()
    assert lines[0].startswith(f"created shoot garden-dev/shoot-a (id {shoot.pk}): seed seed-eu, openstack")
    assert lines[1] == "IPv6 block 2001:db8::/64"
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:6]}
    # IPv4, then what Kubernetes gets (nodes the /64 subnet, services a /108), then what is reserved
    assert rows["nodes"] == ["100.0.0.0/24", "2001:db8::/66", "2001:db8::/66"]  # Gardener's view: the pool
    assert rows["pods"] == ["10.0.0.0/16", "2001:db8:0:0:4000::/66", "2001:db8:0:0:4000::/66", "(a", "/112", "per", "node)"]  # fmt: skip
    assert rows["services"] == ["172.16.0.0/16", "2001:db8:0:0:8000::/108", "2001:db8:0:0:8000::/66"]

    again = run(SHOOT)
    assert again.startswith("existing shoot garden-dev/shoot-a") and again.splitlines()[1:] == lines[1:]
    first, second = run_json(SHOOT), run_json(SHOOT)
    assert first["created"] is False and first == second
    assert first["networking"]["services"] == {
        "ipv4": ["172.16.0.0/16"],
        "ipv6": ["2001:db8:0:0:8000::/108"],
        "ipv6_reserved": ["2001:db8:0:0:8000::/66"],
    }
    assert Shoot.objects.count() == 1
    changed = refused(SHOOT.replace("eu-de-1", "eu-de-2"))
    assert changed.startswith("region: shoot garden-dev/shoot-a exists with region=eu-de-1")


def test_shoot_allocate_aws_lists_subnets_and_ipv4_only(landscape: None) -> None:
    out = run(
        "ipam_shoot_allocate garden-dev aws-a --seed seed-eu --provider aws --region eu-central-1 --zones 2"
    )
    assert "IPv6 block 2001:db8:1::/56" in out
    assert "  workers-z0   2001:db8:1::/64 (a /80 per node)\n" in out
    assert "  public-z1    2001:db8:1:5::/64\n" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:6]}
    assert rows["nodes"] == ["100.0.0.0/24", "2001:db8:1::/56", "-"]  # Gardener: nodes are the VPC /56
    assert rows["services"] == ["172.16.0.0/16", "2001:db8:1::10:0/108", "2001:db8:1::10:0/108", "(inside", "workers-z0)"]  # fmt: skip
    released = run_json("ipam_shoot_release garden-dev aws-a")
    assert released["state"] == "deleted"
    assert {a["state"] for a in released["allocations"]} == {"released", "quarantined"}

    data = run_json(SHOOT.replace("shoot-a", "v4-only"), "--ip-families", "IPv4")
    assert data["ip_families"] == ["IPv4"] and data["ipv6_block"] is None
    assert data["networking"]["pods"] == {"ipv4": ["10.0.0.0/16"], "ipv6": [], "ipv6_reserved": []}


def test_shoot_allocate_refusals(landscape: None) -> None:
    assert refused(SHOOT.replace("seed-eu", "nope")) == "seed: no seed named 'nope'"
    assert refused(SHOOT, "--layout", "aws") == "layout: layout aws is for aws, not openstack"
    assert refused(SHOOT, "--ip-families", "IPv6").startswith("ip_families: ")
    azure = "ipam_shoot_allocate garden-dev shoot-b --seed seed-eu --provider azure --region westeurope"
    assert (
        refused(azure) == "region: no IPv6 shoots pool for azure westeurope: create one with purpose=shoots"
    )
    assert not Shoot.objects.exists()  # all or nothing


def test_node_register_lookup_remove_and_shoot_release(landscape: None) -> None:
    run(SHOOT)
    block = "garden-dev/shoot-a"  # the pool of the shoot's IPv6 block: its name, no id
    out = run("ipam_node_register garden-dev shoot-a node-1 2001:db8::10")
    assert out == (
        "registered node node-1 (2001:db8::10) of shoot garden-dev/shoot-a: pods 2001:db8:0:0:4000::/112\n"
    )
    again = run_json("ipam_node_register garden-dev shoot-a node-1 2001:db8::10")
    assert again["created"] is False and ip_network(again["pods"]) == ip_network("2001:db8::4000:0:0:0/112")
    second = run_json("ipam_node_register garden-dev shoot-a node-2 2001:db8::11")
    assert ip_network(second["pods"]) == ip_network("2001:db8::4000:0:1:0/112")
    outside = refused("ipam_node_register garden-dev shoot-a node-3 2001:db8:5::1")
    assert outside.startswith(
        "ipv6_address: 2001:db8:5::1 is not inside the node range of garden-dev/shoot-a"
    )

    # an address inside node-2's pod range: its /112 first, then the pods /66, the block; then the pools
    found = run_json("ipam_lookup 2001:db8::4000:0:1:abcd")
    assert found["query"] == "2001:db8::4000:0:1:abcd/128"
    assert [(ip_network(a["cidr"]), a["owner"]) for a in found["allocations"]] == [
        (ip_network("2001:db8::4000:0:1:0/112"), "node node-2 of shoot garden-dev/shoot-a"),
        (ip_network("2001:db8::4000:0:0:0/66"), "shoot garden-dev/shoot-a (pods)"),
        (ip_network("2001:db8::/64"), f"shoot garden-dev/shoot-a ({block})"),
    ]
    assert [p["purpose"] for p in found["pools"]] == ["node-pods", "shoot-block", "shoots"]
    lines = run("ipam_lookup 2001:db8::4000:0:1:abcd").splitlines()
    assert lines[0] == "allocations containing 2001:db8::4000:0:1:abcd/128:"
    assert lines[1].split()[:6] == ["2001:db8::4000:0:1:0/112", "node", "node-2", "of", "shoot", "garden-dev/shoot-a"]  # fmt: skip
    assert run("ipam_lookup 2001:db9::/64") == "nothing contains 2001:db9::/64\n"
    assert refused("ipam_lookup 2001:db8::4000::1/112").startswith("address: ")

    assert refused("ipam_node_remove garden-dev shoot-a node-9") == (
        "node: no node named 'node-9' in shoot garden-dev/shoot-a"
    )
    removed = run_json("ipam_node_remove garden-dev shoot-a node-1")
    assert removed["pods"]["state"] == "quarantined"
    assert not Node.objects.filter(name="node-1").exists()

    # The removed node's quarantined pod range does not block the release of its shoot.
    out = run("ipam_shoot_release garden-dev shoot-a")
    assert out.startswith("released shoot garden-dev/shoot-a")
    row = next(line.split() for line in out.splitlines() if line.startswith("  2001:db8::/64 "))
    assert row[:4] == ["2001:db8::/64", block, "quarantined", "until"]
    assert Shoot.objects.get(name="shoot-a").state == "deleted"
    assert refused("ipam_shoot_release garden-dev shoot-a") == "shoot: no live shoot garden-dev/shoot-a"
    assert (
        refused("ipam_node_register garden-dev shoot-a n 2001:db8::12")
        == "shoot: no live shoot garden-dev/shoot-a"
    )


# --- real processes: what a shell sees ---------------------------------------------------


def manage(env: dict[str, str], *commands: str) -> list[subprocess.CompletedProcess[str]]:
    """Run ``manage.py`` commands as concurrent processes (Django takes ~1 s to start)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", *shlex.split(command)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def process_env(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ``manage.py`` processes, pointing at a database they can share.

    PostgreSQL: the test database (the tests commit, ``transaction=True``). SQLite: a
    temporary file migrated once for the module, since the test database is in memory.
    """
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test", "IPAM_ACTOR": "shell"}
    s = connection.settings_dict  # after django_db_setup: the test database's settings
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('commands') / 'db.sqlite3'}"
        [migrate] = manage(env, "migrate --no-input --skip-checks -v0")
        assert migrate.returncode == 0, migrate.stderr
    return env


@pytest.mark.slow  # runs manage.py in a subprocess
@pytest.mark.django_db(transaction=True)
def test_process_prints_one_error_line_and_exits_2(process_env: dict[str, str]) -> None:
    created, unknown, not_a_number = manage(
        process_env,
        "ipam_pool_create shell-v6 2001:db8:c::/48 --default-length 56",
        "ipam_allocate nope --prefix-length 56",
        "ipam_allocate shell-v6 --prefix-length abc",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created pool shell-v6 2001:db8:c::/48 (id ")
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (
        2,
        "",
        "error: pool: no pool named 'nope'\n",
    )
    assert not_a_number.returncode == 2  # argparse's own error, after its usage text
    assert not_a_number.stderr.splitlines()[-1] == (
        "manage.py ipam_allocate: error: argument --prefix-length: invalid int value: 'abc'"
    )

    [bad] = manage(process_env, "ipam_allocate shell-v6 --cidr 2001:db8:c::1/64")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "error: cidr: '2001:db8:c::1/64' has host bits set; the network is 2001:db8:c::/64\n"


@pytest.mark.slow  # runs manage.py in a subprocess
@pytest.mark.django_db(transaction=True)
def test_process_json_output_and_exhausted_pool(process_env: dict[str, str]) -> None:
    [created] = manage(process_env, "ipam_pool_create shell-tiny 2001:db8:d::/56 --json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["cidr"] == "2001:db8:d::/56"

    [taken] = manage(process_env, "ipam_allocate shell-tiny --prefix-length 56 --json")
    assert taken.returncode == 0, taken.stderr
    data = json.loads(taken.stdout)
    assert (data["cidr"], data["pool"], data["state"]) == ("2001:db8:d::/56", "shell-tiny", "active")
    assert (data["owner"], data["created_by"]) == ("manual", "shell")  # the actor from IPAM_ACTOR

    [full] = manage(process_env, "ipam_allocate shell-tiny --prefix-length 56 --json")
    assert (full.returncode, full.stdout) == (2, "")
    assert full.stderr == "error: prefix_length: pool shell-tiny (2001:db8:d::/56) has no free /56\n"
