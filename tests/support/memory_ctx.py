"""A plain in-memory StepContext for adapter-level tests (the job runner persists; this remembers).

Not a fake of any SDK: adapters under test still talk to the real emulators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from providers.adapters.base import ShootSpec


@dataclass
class MemoryStep:
    name: str
    state: str = "running"
    detail: dict[str, Any] = field(default_factory=dict)
    created_keys: list[str] = field(default_factory=list)
    ctx: MemoryContext | None = None

    def created(self, key: str, resource_id: str, *, kind: str = "") -> None:
        assert self.ctx is not None
        self.ctx.ids[key] = resource_id
        self.created_keys.append(key)

    def deleted(self, key: str) -> None:
        assert self.ctx is not None
        self.ctx.ids.pop(key, None)

    def note(self, **detail: Any) -> None:
        self.detail.update(detail)


@dataclass
class MemoryContext:
    """Records steps and ids; ``adopt`` (optional) re-plans a spec around a provider block."""

    ids: dict[str, str] = field(default_factory=dict)
    steps: list[MemoryStep] = field(default_factory=list)
    adopt: Callable[[str], ShootSpec] | None = None
    adopted: list[str] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, str]:
        return dict(self.ids)

    @contextmanager
    def step(self, name: str) -> Iterator[MemoryStep]:
        s = MemoryStep(name, ctx=self)
        self.steps.append(s)
        try:
            yield s
        except BaseException:
            s.state = "failed"
            raise
        s.state = "done"

    def adopt_ipv6_block(self, cidr: str) -> ShootSpec:
        self.adopted.append(cidr)
        if self.adopt is None:
            raise AssertionError("this test did not expect a provider-assigned block")
        return self.adopt(cidr)
