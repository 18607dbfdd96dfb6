from __future__ import annotations

import threading

import pytest

from safetyamp_pipeline.store import SyncStore


def _hammer(store: SyncStore, name: str, errors: list[BaseException]) -> None:
    try:
        for i in range(15):
            store.ledger_append(run_id=name, entity="users", key=f"{name}-{i}", action="update", status="ok")
            store.save_asset_value(f"asset-{name}", [{"i": i}] * 50)
            assert store.load_asset_value(f"asset-{name}") == [{"i": i}] * 50
    except BaseException as exc:  # noqa: BLE001 - collected for the main thread
        errors.append(exc)


def _run_threads(store: SyncStore) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_hammer, args=(store, f"t{n}", errors)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(store.ledger_query(entity="users")) == 60


def test_threads_share_one_store(store: SyncStore) -> None:
    _run_threads(store)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_store_works_and_is_thread_safe(url: str) -> None:
    store = SyncStore(url)
    _run_threads(store)
    store.close()
