"""Serve the real Neutron API (no Keystone, agents or message bus) on loopback, for tests.

Run by the *Neutron* virtualenv's python (``tests/support/neutron-requirements.txt``),
never the project's::

    .venv-neutron/bin/python tests/support/neutron_server.py PORT [--state-dir DIR]

``PORT`` 0 picks a free port. ``POST /_test/reset`` (outside Neutron's API) puts the
database back to the state right after start-up, so each test starts from an empty
cloud in milliseconds (see ``Snapshot``). The script writes ``neutron.conf`` and
``ml2_conf.ini`` into a temporary folder (or ``--state-dir``), builds the SQLite
schema from Neutron's models (its migrations do not run on SQLite, see
``TESTING.md``), serves ``neutron.wsgi.api:application`` single-threaded with
``wsgiref`` (threaded serving on SQLite gives "database is locked") and prints one
line ``NEUTRON READY http://127.0.0.1:<port>/`` when it accepts requests. It runs
until killed (SIGTERM/SIGINT); a temporary folder is removed on exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

NEUTRON_CONF = """\
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = noauth
bind_host = 127.0.0.1
bind_port = {port}
api_paste_config = {paste}
state_path = {state}
allow_overlapping_ips = true
transport_url = fake:/
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
debug = false
use_stderr = true
default_log_levels = {log_levels}
[database]
connection = sqlite:///{state}/neutron.sqlite
[oslo_concurrency]
lock_path = {lock}
[oslo_policy]
enforce_new_defaults = false
enforce_scope = false
"""

ML2_CONF = """\
[ml2]
type_drivers = local,flat,vlan
project_network_types = local
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:200
"""

#: Quiet start-up and per-request INFO lines; warnings and errors still reach stderr.
LOG_LEVELS = ",".join(
    f"{name}=WARN"
    for name in ("neutron", "neutron_lib", "oslo_policy", "oslo_db", "stevedore", "sqlalchemy", "routes")
)


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its access log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def find_api_paste() -> Path:
    """``api-paste.ini`` as shipped in the venv (``<prefix>/etc/neutron/``)."""
    for base in (sys.prefix, sysconfig.get_paths()["data"]):
        candidate = Path(base) / "etc" / "neutron" / "api-paste.ini"
        if candidate.is_file():
            return candidate
    raise SystemExit("api-paste.ini not found in the Neutron virtualenv (etc/neutron/)")


def write_config(folder: Path, port: int) -> None:
    """Write neutron.conf, ml2_conf.ini and api-paste.ini into ``folder``."""
    state, lock = folder / "state", folder / "lock"
    state.mkdir(parents=True, exist_ok=True)
    lock.mkdir(parents=True, exist_ok=True)
    paste = folder / "api-paste.ini"
    # The healthcheck app points at /var/lib/neutron; keep everything inside the folder.
    paste.write_text(
        find_api_paste().read_text().replace("/var/lib/neutron/", f"{state}/"),
    )
    (folder / "neutron.conf").write_text(
        NEUTRON_CONF.format(port=port, paste=paste, state=state, lock=lock, log_levels=LOG_LEVELS)
    )
    (folder / "ml2_conf.ini").write_text(ML2_CONF)


def build_schema(folder: Path) -> None:
    """Create every Neutron table from the models (as Neutron's unit tests do)."""
    import sqlalchemy
    from neutron.db.migration.models import head  # noqa: F401 (imports every model)
    from neutron_lib.db import model_base

    engine = sqlalchemy.create_engine(f"sqlite:///{folder}/state/neutron.sqlite")
    model_base.BASEV2.metadata.create_all(engine)
    engine.dispose()


class Snapshot:
    """The SQLite database as it was when the server became ready, restorable in place.

    SQLite's online backup API copies the snapshot's pages into the live file; the
    server is single-threaded, so no request (and no open transaction) runs during a
    restore, and SQLite makes every pooled connection re-read the changed file. Neutron
    keeps its state in the database (IPAM, quotas, default security groups), so this
    is the same as an empty cloud.
    """

    def __init__(self, folder: Path) -> None:
        self.live = folder / "state" / "neutron.sqlite"
        self.saved = folder / "state" / "snapshot.sqlite"
        self._copy(self.live, self.saved)

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        import sqlite3

        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def restore(self) -> None:
        self._copy(self.saved, self.live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--state-dir", help="folder for config and database (default: a temporary one)")
    args = parser.parse_args()

    started = time.monotonic()
    temporary = args.state_dir is None
    folder = Path(args.state_dir or tempfile.mkdtemp(prefix="neutron-test-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        # Bind first, so the configuration can name the real port.
        server = make_server("127.0.0.1", args.port, _app_proxy, WSGIServer, QuietHandler)
        port = server.server_address[1]
        write_config(folder, port)
        build_schema(folder)
        os.environ["OS_NEUTRON_CONFIG_DIR"] = str(folder)
        os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf;ml2_conf.ini"
        sys.argv = sys.argv[:1]  # Neutron parses the command line as oslo.config options
        global _application
        from neutron.wsgi.api import application

        global _snapshot
        _application = application
        _snapshot = Snapshot(folder)
        logging.getLogger("neutron").setLevel(logging.WARNING)
        elapsed = time.monotonic() - started
        print(f"NEUTRON READY http://127.0.0.1:{port}/ ({elapsed:.1f} s)", flush=True)
        server.serve_forever()
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


_application = None
_snapshot: Snapshot | None = None


def _app_proxy(environ: dict, start_response):
    """The WSGI callable bound before Neutron is loaded (Neutron needs the port first).

    Also answers ``POST /_test/reset`` (restore the start-up snapshot) itself.
    """
    assert _application is not None and _snapshot is not None, "Neutron is not loaded yet"
    if environ.get("PATH_INFO") == "/_test/reset" and environ.get("REQUEST_METHOD") == "POST":
        _snapshot.restore()
        start_response("204 No Content", [])
        return [b""]
    return _application(environ, start_response)


if __name__ == "__main__":
    main()
