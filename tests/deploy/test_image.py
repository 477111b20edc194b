"""The Containerfile: what the image holds and how it starts (no container engine runs here,
so the instructions are read, and the one build step that can fail on our code is run)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.deploy.rendering import REPO, containers, render, workloads

CONTAINERFILE = REPO / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    for line in CONTAINERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line.strip()
        else:
            lines.append(line.strip())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_is_python_311_slim_non_root_with_the_runtime_requirements_only() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "requirements-dev" not in " ".join(args for _, args in steps)
    copies = [args for op, args in steps if op == "COPY"]
    assert copies[0] == "requirements.txt ./", (
        "dependencies are installed before the code is copied (layer cache)"
    )
    # static files are collected at build time, before the image drops root
    collect = next(i for i, (op, args) in enumerate(steps) if op == "RUN" and "collectstatic" in args)
    assert collect < next(i for i, (op, _) in enumerate(steps) if op == "USER" and _ == users[-1])
    cmd = next(args for op, args in steps if op == "CMD")
    assert cmd.startswith('["gunicorn", "ipam_portal.wsgi:application"')


def test_the_web_deployment_runs_the_images_command() -> None:
    import json

    cmd = json.loads(next(args for op, args in instructions() if op == "CMD"))
    web = next(
        w for w in workloads(render("overlays/production")) if w["metadata"]["name"] == "ipam-portal-web"
    )
    assert containers(web, init=False)[0]["command"] == cmd
    config = next(a for a in cmd if a.startswith("--config=")).removeprefix("--config=")
    assert config.startswith("/app/") and (REPO / config.removeprefix("/app/")).is_file()


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch(path, p) or fnmatch(path, p.removeprefix("**/")) or path.startswith(p + "/") for p in patterns
    )


def test_containerignore_keeps_local_state_out_and_the_app_in() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".containerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for local in (
        ".git",
        ".venv",
        ".venv-neutron",
        "db.sqlite3",
        "db.sqlite3-wal",
        ".webhook-certs",
        "staticfiles",
        ".env",
    ):
        assert _ignored(local, patterns), local
    for needed in (
        "manage.py",
        "requirements.txt",
        "deploy/gunicorn.conf.py",
        "ipam_portal",
        "allocations",
        "templates",
        "admission",
    ):
        assert not _ignored(needed, patterns), needed


@pytest.mark.slow  # collectstatic with the compressed manifest storage takes several seconds
def test_the_build_time_collectstatic_succeeds_as_the_containerfile_runs_it(tmp_path: Path) -> None:
    (run,) = [args for op, args in instructions() if op == "RUN" and "collectstatic" in args]
    command = run.split("&&")[0]
    words = shlex.split(command)
    assignments = dict(w.split("=", 1) for w in words if "=" in w and w.split("=", 1)[0].isupper())
    argv = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
    assert argv[:3] == ["python", "manage.py", "collectstatic"]
    assignments["STATIC_ROOT"] = str(tmp_path / "static")  # the image's /app/staticfiles, here
    result = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **assignments},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert assignments["DEBUG"] == "0", "collected with the production (manifest) storage"
