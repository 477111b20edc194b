"""``file:`` credential references: one directory, regular files, bounded size, one uniform error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from allocations.errors import IpamError
from providers import credentials
from providers.errors import CredentialError


@pytest.fixture
def creds_dir(tmp_path: Path, settings: Any) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir()
    settings.PROVIDER_CREDENTIALS_DIR = str(directory)
    return directory


def unreadable(ref: str) -> str:
    with pytest.raises(CredentialError) as err:
        credentials.resolve(ref)
    return err.value.message


def test_a_file_inside_the_directory_is_read(creds_dir: Path) -> None:
    (creds_dir / "os.json").write_text('{"auth_type": "none"}')
    (creds_dir / "sub").mkdir()
    (creds_dir / "sub" / "aws.json").write_text('{"aws_access_key_id": "AKID"}')
    (creds_dir / "alias.json").symlink_to(creds_dir / "os.json")  # a link that stays inside is fine
    assert credentials.resolve(f"file:{creds_dir}/os.json") == {"auth_type": "none"}
    assert credentials.resolve(f"file:{creds_dir}/sub/aws.json") == {"aws_access_key_id": "AKID"}
    assert credentials.resolve(f"file:{creds_dir}/alias.json") == {"auth_type": "none"}


def test_dev_zero_is_refused_without_reading_it(creds_dir: Path) -> None:
    (creds_dir / "zero.json").symlink_to("/dev/zero")
    for ref in ("file:/dev/zero", f"file:{creds_dir}/zero.json"):
        assert unreadable(ref) == f"credential reference {ref} is not readable"


def test_a_symlink_escaping_the_directory_is_refused(creds_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"stolen": "yes"}')
    (creds_dir / "escape.json").symlink_to(outside)
    (creds_dir / "up").symlink_to(tmp_path)
    for ref in (
        f"file:{creds_dir}/escape.json",
        f"file:{creds_dir}/up/outside.json",
        f"file:{creds_dir}/../outside.json",
    ):
        assert unreadable(ref) == f"credential reference {ref} is not readable"


def test_every_failure_reads_the_same_and_leaks_nothing(creds_dir: Path, settings: Any) -> None:
    (creds_dir / "big.json").write_text('{"k": "' + "x" * settings.PROVIDER_CREDENTIALS_MAX_BYTES + '"}')
    (creds_dir / "bytes.json").write_bytes(b"\xff\xfe secret-bytes")
    (creds_dir / "text.json").write_text("password=hunter2")
    (creds_dir / "list.json").write_text('["hunter2"]')
    (creds_dir / "dir.json").mkdir()
    os.mkfifo(creds_dir / "fifo.json")  # would block a plain open()
    (creds_dir / "loop.json").symlink_to(creds_dir / "loop.json")
    names = [
        "missing.json",
        "big.json",
        "bytes.json",
        "text.json",
        "list.json",
        "dir.json",
        "fifo.json",
        "loop.json",
    ]
    for name in names:
        ref = f"file:{creds_dir}/{name}"
        message = unreadable(ref)
        assert message == f"credential reference {ref} is not readable", message
        assert "hunter2" not in message and "secret-bytes" not in message


def test_file_references_are_refused_without_a_directory(tmp_path: Path, settings: Any) -> None:
    secret = tmp_path / "creds.json"
    secret.write_text("{}")
    settings.PROVIDER_CREDENTIALS_DIR = ""
    assert unreadable(f"file:{secret}") == f"credential reference file:{secret} is not readable"
    with pytest.raises(IpamError, match="file: credential references are disabled") as err:
        credentials.check_reference(f"file:{secret}")
    assert err.value.field == "credentials_ref"


def test_saving_a_reference_outside_the_directory_is_refused(creds_dir: Path) -> None:
    credentials.check_reference(f"file:{creds_dir}/later.json")  # need not exist yet
    for ref in ("file:/dev/zero", "file:/etc/passwd", f"file:{creds_dir}/../x.json"):
        with pytest.raises(IpamError, match="must name a file inside") as err:
            credentials.check_reference(ref)
        assert err.value.field == "credentials_ref"
