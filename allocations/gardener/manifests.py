"""Gardener manifests read into documents: YAML or JSON, one object, a ``List`` or many.

Input is one object, a ``List`` (or ``SeedList``/``ShootList``), a multi-document
stream, or a folder of such files; the result is one :class:`Document` per
``Seed`` or ``Shoot``, numbered in input order. Pure (PyYAML, no Django): any
problem is an :class:`~allocations.errors.InvalidManifest` naming where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidManifest

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_LIST_KINDS = {"List", "SeedList", "ShootList"}
_KINDS = ("Seed", "Shoot")


@dataclass(frozen=True)
class Document:
    """One Gardener object of the input: ``index`` counts seeds and shoots in input order."""

    index: int
    origin: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def ref(self) -> str:
        """The field prefix conflicts are reported under: ``documents[3]``."""
        return f"documents[{self.index}]"


def _flatten(data: object, origin: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if data is None:  # an empty document ("---" at the end of a file)
        return
    if not isinstance(data, dict):
        raise InvalidManifest(
            f"{origin}: expected a Gardener object, got {type(data).__name__}", field=origin
        )
    kind = data.get("kind")
    if kind in _LIST_KINDS:
        items = data.get("items") or []
        if not isinstance(items, list):
            raise InvalidManifest(f"{origin}: items must be a list", field=f"{origin}.items")
        for i, item in enumerate(items):
            _flatten(item, f"{origin}.items[{i}]", out)
        return
    if kind not in _KINDS:
        known = ", ".join((*_KINDS, *sorted(_LIST_KINDS)))
        raise InvalidManifest(f"{origin}: kind {kind!r} cannot be imported (known: {known})", field=origin)
    out.append((origin, data))


def _number(pairs: list[tuple[str, dict[str, Any]]]) -> list[Document]:
    return [Document(index=i, origin=origin, body=body) for i, (origin, body) in enumerate(pairs)]


def documents_from_data(data: object, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of already-parsed data (an object or a ``List``)."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    _flatten(data, origin, pairs)
    return _number(pairs)


def _load_text(text: str, origin: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        # YAML 1.1 reads JSON too; safe_load_all never builds Python objects.
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidManifest(f"{origin}: not valid YAML or JSON{at}: {problem}", field=origin) from None
    for i, doc in enumerate(docs):
        _flatten(doc, f"{origin}#{i}" if len(docs) > 1 else origin, out)


def parse_manifests(text: str, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of YAML or JSON text: one object, a ``List`` or many documents."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidManifest(f"{origin}: the manifest is empty", field=origin)
    pairs: list[tuple[str, dict[str, Any]]] = []
    _load_text(text, origin, pairs)
    return _number(pairs)


def _manifest_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if (
                child.is_file()
                and child.suffix.lower() in MANIFEST_SUFFIXES
                and not child.name.startswith(".")
            ):
                yield child
    elif path.is_file():
        yield path
    else:
        raise InvalidManifest(f"{path}: no such file or folder", field=str(path))


def read_manifest_paths(paths: Iterable[str | Path]) -> list[Document]:
    """The Gardener objects of files and folders (``*.yaml``, ``*.yml``, ``*.json``, recursively)."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for given in paths:
        for file in _manifest_files(Path(given)):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidManifest(f"{file}: cannot be read: {exc}", field=str(file)) from None
            _load_text(text, str(file), pairs)
    if not pairs:
        raise InvalidManifest("no Gardener objects found in the given files", field="paths")
    return _number(pairs)
