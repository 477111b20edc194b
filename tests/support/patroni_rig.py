"""A PostgreSQL 15 primary and streaming replica managed by Patroni, with etcd, behind HAProxy.

Everything from Debian's packages (``patroni``, ``etcd-server``, ``haproxy``; PostgreSQL
15 is on the machine), on free loopback ports, in a temporary directory; started
by the failover test and stopped with it. No logic of the portal in it: this is
the HA PostgreSQL a production portal would sit on (Patroni is what
CloudNativePG's and Zalando's operators are built around).

* etcd: one member, the distributed configuration store Patroni elects through.
* Patroni ``pg1`` and ``pg2`` (scope ``ipam``), each with its PostgreSQL data
  directory and REST API; ``synchronous_mode: true`` so a commit is acknowledged
  only once the standby has it — a failover loses no acknowledged transaction.
  Patroni runs as the ``postgres`` user (PostgreSQL refuses root).
* HAProxy: one port that always leads to the current primary (``GET /primary``
  on each Patroni REST API is the health check), and cuts the sessions of a
  server marked down, as Patroni's documentation configures it.

:meth:`PatroniRig.kill_primary` SIGKILLs the primary's Patroni and its PostgreSQL
(a machine dying); the replica takes the leader key once its TTL ran out.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BINARIES = ("patroni", "etcd", "haproxy")


def missing_binaries() -> list[str]:
    """The programs the rig needs that this machine lacks (``.ci/run`` installs them)."""
    missing = [
        name for name in BINARIES if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()
    ]
    if not (PG_BIN / "postgres").exists():
        missing.append(str(PG_BIN / "postgres"))
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback rig
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


@dataclass
class Member:
    name: str
    pg_port: int
    api_port: int
    data_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


@dataclass
class PatroniRig:
    root: Path
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    haproxy_port: int = field(default_factory=free_port)
    members: list[Member] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls) -> PatroniRig:
        root = Path(tempfile.mkdtemp(prefix="ipam-patroni-"))
        os.chmod(root, 0o755)
        rig = cls(root=root)
        for name in ("pg1", "pg2"):
            rig.members.append(
                Member(
                    name=name,
                    pg_port=free_port(),
                    api_port=free_port(),
                    data_dir=root / name / "data",
                    config=root / name / "patroni.yml",
                    log=root / name / "patroni.log",
                )
            )
        return rig

    # --- the pieces ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The portal's DATABASE_URL: HAProxy, which leads to the primary."""
        return f"postgres://postgres@127.0.0.1:{self.haproxy_port}/ipam"

    def _spawn(self, command: list[str], log: Path, *, as_postgres: bool = False) -> subprocess.Popen[bytes]:
        if as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def _start_etcd(self) -> None:
        data = self.root / "etcd"
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            [
                "etcd",
                "--name=etcd1",
                f"--data-dir={data}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=etcd1={peer}",
                "--initial-cluster-state=new",
            ],
            self.root / "etcd.log",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _get(f"{client}/health")[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"etcd did not start:\n{self.log_tail(self.root / 'etcd.log')}")

    def _member_config(self, member: Member) -> dict[str, Any]:
        hba = [
            "local all all trust",
            "host all all 127.0.0.1/32 trust",
            "host replication replicator 127.0.0.1/32 trust",
        ]
        return {
            "scope": "ipam",
            "name": member.name,
            "restapi": {
                "listen": f"127.0.0.1:{member.api_port}",
                "connect_address": f"127.0.0.1:{member.api_port}",
            },
            "etcd3": {"host": f"127.0.0.1:{self.etcd_port}"},
            "bootstrap": {
                "dcs": {
                    "ttl": 10,
                    "loop_wait": 1,
                    "retry_timeout": 4,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": False,
                        "parameters": {
                            "max_connections": 100,
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "max_wal_senders": 5,
                            "max_replication_slots": 5,
                            "fsync": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": f"127.0.0.1:{member.pg_port}",
                "connect_address": f"127.0.0.1:{member.pg_port}",
                "data_dir": str(member.data_dir),
                "bin_dir": str(PG_BIN),
                "pgpass": str(member.config.parent / "pgpass"),
                "pg_hba": hba,
                "authentication": {
                    "superuser": {"username": "postgres", "password": "rig-superuser"},
                    "replication": {"username": "replicator", "password": "rig-replicator"},
                },
                "parameters": {"unix_socket_directories": str(member.config.parent)},
            },
            "tags": {"nofailover": False, "noloadbalance": False},
        }

    def _start_member(self, member: Member) -> None:
        member.config.parent.mkdir(parents=True, exist_ok=True)
        member.config.write_text(yaml.safe_dump(self._member_config(member)))
        postgres = pwd.getpwnam("postgres")
        for path in (member.config.parent, member.config):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        member.log.touch()
        member.proc = self._spawn(["patroni", str(member.config)], member.log, as_postgres=True)

    def _start_haproxy(self) -> None:
        servers = "\n".join(
            f"    server {m.name} 127.0.0.1:{m.pg_port} maxconn 100 check port {m.api_port}"
            for m in self.members
        )
        config = f"""global
    maxconn 200
defaults
    log global
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 2s
    timeout server 30m
    timeout check 1s
listen primary
    bind 127.0.0.1:{self.haproxy_port}
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""
        path = self.root / "haproxy.cfg"
        path.write_text(config)
        self._spawn(["haproxy", "-db", "-f", str(path)], self.root / "haproxy.log")

    # --- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """etcd, both members (pg1 bootstraps, pg2 clones it), HAProxy; waits for a sync standby."""
        self._start_etcd()
        self._start_member(self.members[0])
        self.wait_for_primary(timeout)
        self._start_member(self.members[1])
        self.wait_for_sync_standby(timeout)
        self._start_haproxy()
        self.wait_for_proxy(timeout)
        self.psql("postgres", "CREATE DATABASE ipam")

    def primary(self) -> Member | None:
        for member in self.members:
            if _get(f"{member.api}/primary")[0] == 200:
                return member
        return None

    def wait_for_primary(self, timeout: float, *, other_than: Member | None = None) -> Member:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            member = self.primary()
            if member is not None and member is not other_than:
                return member
            time.sleep(0.3)
        raise RuntimeError(f"no primary within {timeout}s:\n{self.logs()}")

    def wait_for_sync_standby(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, cluster = _get(f"{self.members[0].api}/cluster")
            roles = [m.get("role") for m in (cluster or {}).get("members", [])] if status == 200 else []
            if "sync_standby" in roles:
                return
            time.sleep(0.5)
        raise RuntimeError(f"no synchronous standby within {timeout}s:\n{self.logs()}")

    def wait_for_proxy(self, timeout: float) -> None:
        """Until HAProxy leads to the primary only: HAProxy starts with every server up and
        marks the replica down after its first failed checks, so wait for a run of successes."""
        deadline = time.monotonic() + timeout
        successes = 0
        while time.monotonic() < deadline:
            ok = self.psql("postgres", "SELECT pg_is_in_recovery()", check=False)
            successes = successes + 1 if ok.returncode == 0 and ok.stdout.strip() == "f" else 0
            if successes >= 8:
                return
            time.sleep(0.3)
        raise RuntimeError(f"HAProxy does not lead to the primary:\n{self.logs()}")

    def psql(self, database: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-At",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.haproxy_port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done

    def kill_primary(self) -> Member:
        """SIGKILL the primary's Patroni and its PostgreSQL (postmaster and every backend)."""
        member = self.primary()
        if member is None:
            raise RuntimeError("no primary to kill")
        pid = member.postmaster_pid()
        assert member.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(member.proc.pid, signal.SIGKILL)  # runuser, patroni and what they started
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["pkill", "-KILL", "-f", str(member.data_dir)], check=False)
        return member

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for member in self.members:
            subprocess.run(["pkill", "-KILL", "-f", str(member.data_dir)], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def log_tail(path: Path, chars: int = 3000) -> str:
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def logs(self) -> str:
        parts = [f"--- etcd\n{self.log_tail(self.root / 'etcd.log', 1500)}"]
        parts += [f"--- {m.name}\n{self.log_tail(m.log)}" for m in self.members]
        parts.append(f"--- haproxy\n{self.log_tail(self.root / 'haproxy.log', 1500)}")
        return "\n".join(parts)
