"""The import contracts of pyproject.toml catch a forbidden import.

``make contracts`` (run by ``make test``) checks the real tree with import-linter. This
test checks the contracts themselves: on a skeleton with the apps' names and the modules
the contracts name, they hold; each forbidden import added to it breaks the contract
that forbids it, and import-linter names the offending line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MODULES = (
    "ipam_portal/__init__.py",
    "audit/__init__.py",
    "accounts/__init__.py",
    "allocations/__init__.py",
    "allocations/prefixes.py",
    "allocations/layouts.py",
    "providers/__init__.py",
    "admission/__init__.py",
    "controllers/__init__.py",
    "notifications/__init__.py",
    "netbox_import/__init__.py",
    "providers/models.py",
    "providers/tasks.py",
    "providers/api/__init__.py",
)
# Allowed: each layer imports the ones below it.
ALLOWED = {
    "providers/models.py": "import allocations\nimport accounts\nimport ipam_portal\n",
    "allocations/__init__.py": "import audit\nimport accounts\nimport ipam_portal\n",
    "accounts/__init__.py": "import audit\nimport ipam_portal\n",
    "audit/__init__.py": "import ipam_portal\n",
}


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def skeleton(tmp_path: Path) -> Path:
    """The apps as empty packages with the allowed imports, under the project's own contracts."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name in MODULES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ALLOWED.get(name, ""))
    return tmp_path


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is in requirements-dev.txt")
def test_the_allowed_layering_keeps_every_contract(skeleton: Path) -> None:
    result = lint(skeleton)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is in requirements-dev.txt")
@pytest.mark.parametrize(
    ("module", "line", "offence"),
    [
        ("ipam_portal/bad.py", "import allocations", "ipam_portal.bad -> allocations"),  # kernel -> app
        (
            "allocations/bad.py",
            "from providers import models",
            "allocations.bad -> providers",
        ),  # domain -> integration
        ("audit/bad.py", "import allocations", "audit.bad -> allocations"),  # audit -> domain
        ("audit/bad.py", "import accounts", "audit.bad -> accounts"),  # a cycle between the siblings
        ("allocations/prefixes.py", "import django", "allocations.prefixes -> django"),  # pure module
        ("accounts/bad.py", "import boto3", "accounts.bad -> boto3"),  # an SDK outside the adapters
    ],
)
def test_a_forbidden_import_breaks_a_contract(skeleton: Path, module: str, line: str, offence: str) -> None:
    path = skeleton / module
    path.write_text((path.read_text() if path.exists() else "") + line + "\n")
    result = lint(skeleton)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert offence in result.stdout, result.stdout
