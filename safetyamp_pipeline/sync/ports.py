"""The seams of the sink engine: what it needs from the SafetyAmp client and from the sync store.

`clients.safetyamp.SafetyAmpClient` and `store.SyncStore` satisfy these structurally; tests may
pass any object that does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol


class SafetyAmpApi(Protocol):
    """Reads whole lists and sends single writes; failures are `clients.errors` exceptions.
    An optional `stats` attribute (`clients.http.RequestStats`) feeds the report's call counts."""

    def list(self, entity: str) -> list[dict[str, Any]]: ...

    def create(self, entity: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...

    def update(
        self, entity: str, record_id: str | int, payload: Mapping[str, Any], method: str = ...
    ) -> dict[str, Any]: ...


class EngineStore(Protocol):
    """The mirror, write intents, ledger and failures of the sync store, as the engine uses them."""

    def mirror_read_at(self, entity: str) -> datetime | None: ...

    def mirror_records(self, entity: str) -> dict[str, dict[str, Any]]: ...

    def mirror_replace(
        self, entity: str, records_by_key: Mapping[str, Mapping[str, Any]], read_at: datetime | None = ...
    ) -> None: ...

    def mirror_upsert(
        self, entity: str, key: str, record: Mapping[str, Any], replaces: str | None = ...
    ) -> None: ...

    def mirror_upsert_many(self, entity: str, records: Sequence[tuple[str, Mapping[str, Any], str | None]]) -> None: ...

    def mirror_delete(self, entity: str, key: str) -> None: ...

    def owned_ids(self, entity: str) -> set[str]: ...

    def owned_add(self, entity: str, ids: Iterable[int | str]) -> int: ...

    def intent_record(self, entity: str, key: str, run_id: str | None, payload: Mapping[str, Any] | None) -> None: ...

    def intent_confirm(self, entity: str, key: str) -> None: ...

    def intents_record_many(
        self, run_id: str | None, intents: Sequence[tuple[str, str, Mapping[str, Any] | None]]
    ) -> None: ...

    def intents_confirm_many(self, pairs: Iterable[tuple[str, str]]) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def ledger_append_many(self, entries: Iterable[Mapping[str, Any]]) -> int: ...

    def intents_open(self, entity: str | None = ...) -> list[dict[str, Any]]: ...

    def ledger_append(
        self,
        *,
        run_id: str | None,
        entity: str,
        key: str | None,
        action: str,
        changed_fields: Iterable[str] | None = ...,
        before: Any = ...,
        after: Any = ...,
        status: str,
        http_status: int | None = ...,
        error: str | None = ...,
        at: datetime | None = ...,
    ) -> None: ...

    def ledger_query(
        self,
        since: datetime | None = ...,
        entity: str | None = ...,
        run_id: str | None = ...,
        key: str | None = ...,
        limit: int | None = ...,
        status: str | None = ...,
    ) -> list[dict[str, Any]]: ...

    def failure_record(
        self,
        entity: str,
        key: str,
        *,
        reason: str,
        fields: Any = ...,
        desired_hash: str | None = ...,
        kind: str,
    ) -> None: ...

    def failure_clear(self, entity: str, key: str) -> bool: ...

    def failures_open(self, entity: str | None = ..., reason: str | None = ...) -> list[dict[str, Any]]: ...

    def failure_get(self, entity: str, key: str) -> dict[str, Any] | None: ...

    def failures_get(self, entity: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]: ...


if TYPE_CHECKING:
    from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient
    from safetyamp_pipeline.store.sync_store import SyncStore

    def _implementations_fit(client: SafetyAmpClient, store: SyncStore) -> tuple[SafetyAmpApi, EngineStore]:
        """Never called: pyright (make typecheck) checks here that the real client and store fit."""
        return client, store
