"""Gardener manifests read into documents: YAML or JSON, one object, a ``List`` or many.

Input is one object, a ``List`` (or ``SeedList``/``ShootList``), a multi-document
stream, or a folder of such files; the result is one :class:`Document` per
``Seed`` or ``Shoot``, numbered in input order. Any problem is an
:class:`~allocations.errors.InvalidManifest` naming where it is. PyYAML only; of
Django just the bounds below, read from settings.

Bounded before anything is expanded: a YAML text may use at most
``GARDENER_IMPORT_MAX_ALIASES`` aliases, nest at most ``GARDENER_IMPORT_MAX_DEPTH``
collections, and yield at most ``GARDENER_IMPORT_MAX_DOCUMENTS`` documents. The
composer counts each node as often as aliases repeat it (the "billion laughs" of a
few aliases of aliases is refused while composing, long before it is expanded), an
alias to a node still being composed (a self-reference) is refused, and the depth
is counted while composing, so no input reaches Python's recursion limit. Parsed
JSON bodies get the same depth and document bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

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


@dataclass(frozen=True)
class ManifestLimits:
    """How much one input may hold: aliases used, collection depth, documents (and expanded nodes)."""

    aliases: int
    depth: int
    documents: int

    @property
    def nodes(self) -> int:
        """Nodes one input may expand to (aliases counted as copies): generous for real manifests."""
        return self.documents * 1000

    @classmethod
    def from_settings(cls) -> ManifestLimits:
        return cls(
            aliases=settings.GARDENER_IMPORT_MAX_ALIASES,
            depth=settings.GARDENER_IMPORT_MAX_DEPTH,
            documents=settings.GARDENER_IMPORT_MAX_DOCUMENTS,
        )


class _TooLarge(Exception):
    """Raised inside the composer; turned into an InvalidManifest naming the input."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with counted aliases, depth and expanded size, checked while composing."""

    def __init__(self, stream: str, limits: ManifestLimits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.alias_count = 0
        self.node_total = 0
        self.depth = 0
        self.sizes: dict[int, int] = {}  # id(node) → its size with aliases expanded; complete nodes only

    def compose_document(self) -> Any:
        self.sizes.clear()  # anchors are per document; a later node may reuse a freed id
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > self.limits.aliases:
                raise _TooLarge(f"more than {self.limits.aliases} YAML aliases")
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:
                raise _TooLarge("a YAML alias refers to a node that contains it")
            self._count(self.sizes[id(node)])
            return node
        self.depth += 1
        if self.depth > self.limits.depth:
            raise _TooLarge(f"nested deeper than {self.limits.depth} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self.sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value)
        else:
            size = 1
        self.sizes[id(node)] = size
        self._count(1)
        return node

    def _count(self, nodes: int) -> None:
        self.node_total += nodes
        if self.node_total > self.limits.nodes:
            raise _TooLarge(f"expands to more than {self.limits.nodes} YAML nodes")


def _check_depth(data: object, origin: str, limits: ManifestLimits) -> None:
    """Refuse parsed data nested deeper than the limit (iteratively: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.depth:
                raise InvalidManifest(f"{origin}: nested deeper than {limits.depth} levels", field=origin)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _flatten(
    data: object, origin: str, out: list[tuple[str, dict[str, Any]]], limits: ManifestLimits
) -> None:
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
            _flatten(item, f"{origin}.items[{i}]", out, limits)
        return
    if kind not in _KINDS:
        known = ", ".join((*_KINDS, *sorted(_LIST_KINDS)))
        raise InvalidManifest(f"{origin}: kind {kind!r} cannot be imported (known: {known})", field=origin)
    if len(out) >= limits.documents:
        raise InvalidManifest(f"{origin}: more than {limits.documents} documents", field=origin)
    out.append((origin, data))


def _number(pairs: list[tuple[str, dict[str, Any]]]) -> list[Document]:
    return [Document(index=i, origin=origin, body=body) for i, (origin, body) in enumerate(pairs)]


def documents_from_data(data: object, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of already-parsed data (an object or a ``List``)."""
    limits = ManifestLimits.from_settings()
    _check_depth(data, origin, limits)
    pairs: list[tuple[str, dict[str, Any]]] = []
    _flatten(data, origin, pairs, limits)
    return _number(pairs)


def _load_all(text: str, limits: ManifestLimits) -> list[Any]:
    loader = _BoundedLoader(text, limits)
    try:
        docs: list[Any] = []
        while loader.check_data():
            if len(docs) >= limits.documents:
                raise _TooLarge(f"more than {limits.documents} documents")
            docs.append(loader.get_data())
        return docs
    finally:
        loader.dispose()


def _load_text(text: str, origin: str, out: list[tuple[str, dict[str, Any]]], limits: ManifestLimits) -> None:
    try:
        # YAML 1.1 reads JSON too; the safe loader never builds Python objects.
        docs = _load_all(text, limits)
    except _TooLarge as exc:
        raise InvalidManifest(f"{origin}: too large to import: {exc}", field=origin) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidManifest(f"{origin}: not valid YAML or JSON{at}: {problem}", field=origin) from None
    for i, doc in enumerate(docs):
        _flatten(doc, f"{origin}#{i}" if len(docs) > 1 else origin, out, limits)


def parse_manifests(text: str, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of YAML or JSON text: one object, a ``List`` or many documents."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidManifest(f"{origin}: the manifest is empty", field=origin)
    pairs: list[tuple[str, dict[str, Any]]] = []
    _load_text(text, origin, pairs, ManifestLimits.from_settings())
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
    limits = ManifestLimits.from_settings()
    pairs: list[tuple[str, dict[str, Any]]] = []
    for given in paths:
        for file in _manifest_files(Path(given)):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidManifest(f"{file}: cannot be read: {exc}", field=str(file)) from None
            _load_text(text, str(file), pairs, limits)
    if not pairs:
        raise InvalidManifest("no Gardener objects found in the given files", field="paths")
    return _number(pairs)
