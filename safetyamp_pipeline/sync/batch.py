"""The store work of a batch of answered writes, kept in memory until one transaction writes it.

`sync.apply.Applier.batching` explains when that is safe: every write's intent is durable before
it is sent, so a crash that loses this buffer loses nothing the next run's re-read cannot settle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from safetyamp_pipeline.sync.ports import EngineStore


@dataclass
class StoreBatch:
    """Ledger rows, mirror upserts, intent confirmations and failure clears, in arrival order per kind."""

    ledger: list[dict[str, Any]] = field(default_factory=list)
    mirror: dict[str, list[tuple[str, Mapping[str, Any], str | None]]] = field(default_factory=dict)
    confirms: list[tuple[str, str]] = field(default_factory=list)
    clears: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ledger) + len(self.confirms) + len(self.clears) + sum(len(m) for m in self.mirror.values())

    def mirror_upsert(self, entity: str, key: str, record: Mapping[str, Any], replaces: str | None) -> None:
        self.mirror.setdefault(entity, []).append((key, record, replaces))

    def write(self, store: EngineStore) -> None:
        """Write everything (the caller holds the transaction) and empty the batch."""
        if self.ledger:
            store.ledger_append_many(self.ledger)
        for entity, records in self.mirror.items():
            store.mirror_upsert_many(entity, records)
        if self.confirms:
            store.intents_confirm_many(self.confirms)
        for entity, key in self.clears:
            store.failure_clear(entity, key)
        self.ledger, self.mirror, self.confirms, self.clears = [], {}, [], []
