"""Several processes on one store: concurrent writers, a writer killed mid-transaction."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from safetyamp_pipeline_tests.store.conftest import StoreTarget

CTX = multiprocessing.get_context("fork")
WRITES = 40


def _writer(target: StoreTarget, name: str, start) -> None:
    store = target.open()
    start.wait(10)
    for i in range(WRITES):
        store.ledger_append(
            run_id=name,
            entity="users",
            key=f"{name}-{i}",
            action="update",
            changed_fields=["city"],
            before={"city": "A"},
            after={"city": str(i)},
            status="ok",
            http_status=200,
            error=None,
        )
        if i % 8 == 0:
            rows = [{"writer": name, "round": i, "n": n} for n in range(6000)]
            store.save_asset_value("shared", rows, run_id=f"{name}-{i}")
            store.save_asset_value(f"own-{name}", rows[: i + 1])
    store.close()


def _reader(target: StoreTarget, stop, bad: multiprocessing.Queue, reads) -> None:
    store = target.open()
    while not stop.is_set():
        reads.value += 1
        try:
            rows = store.load_asset_value("shared")
        except Exception as exc:  # noqa: BLE001 - report anything to the parent
            bad.put(repr(exc))
            return
        tags = {(r["writer"], r["round"]) for r in rows}
        if len(rows) != 6000 or len(tags) != 1:
            bad.put(f"torn value: {len(rows)} rows from {sorted(tags)[:4]}")
            return
    store.close()


def test_two_writer_processes_and_a_reader_never_corrupt_anything(store_target: StoreTarget) -> None:
    store = store_target.open()
    store.save_asset_value("shared", [{"writer": "seed", "round": 0, "n": n} for n in range(6000)])
    start, stop = CTX.Event(), CTX.Event()
    bad: multiprocessing.Queue = CTX.Queue()
    reads = CTX.Value("i", 0)
    writers = [CTX.Process(target=_writer, args=(store_target, name, start)) for name in ("A", "B")]
    reader = CTX.Process(target=_reader, args=(store_target, stop, bad, reads))
    for p in [*writers, reader]:
        p.start()
    start.set()
    for p in writers:
        p.join(60)
    stop.set()
    reader.join(30)

    assert [p.exitcode for p in writers] == [0, 0]
    assert reader.exitcode == 0
    assert bad.empty(), bad.get()
    assert reads.value > 3, "the reader must have read while the writers wrote"
    entries = store.ledger_query(entity="users")
    assert len(entries) == 2 * WRITES
    assert {e["key"] for e in entries} == {f"{w}-{i}" for w in "AB" for i in range(WRITES)}
    assert {e["after"]["city"] for e in entries if e["run_id"] == "A"} == {str(i) for i in range(WRITES)}
    shared = store.load_asset_value("shared")
    assert len(shared) == 6000 and len({(r["writer"], r["round"]) for r in shared}) == 1
    last_round = (WRITES - 1) // 8 * 8
    for name in "AB":
        assert store.load_asset_value(f"own-{name}") == [
            {"writer": name, "round": last_round, "n": n} for n in range(last_round + 1)
        ]
    store.close()


def _slow_writer(target: StoreTarget, halfway) -> None:
    store = target.open()

    def rows():
        for i in range(20_000):
            if i == 12_000:  # two chunks are already inserted, inside the open transaction
                halfway.set()
                time.sleep(60)
            yield {"v": "new", "i": i}

    store.save_asset_value("a", rows(), run_id="killed-run")


def test_writer_killed_mid_transaction_leaves_previous_value_and_store_usable(
    store_target: StoreTarget,
) -> None:
    store = store_target.open()
    store.save_asset_value("a", [{"v": "old", "i": i} for i in range(3000)], run_id="old-run")
    halfway = CTX.Event()
    child = CTX.Process(target=_slow_writer, args=(store_target, halfway))
    child.start()
    assert halfway.wait(30), "child never reached the middle of its write"
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    rows = store.load_asset_value("a")
    assert len(rows) == 3000 and {r["v"] for r in rows} == {"old"}
    assert store.asset_value_info("a")["run_id"] == "old-run"

    store.save_asset_value("a", [{"v": "after"}], run_id="next-run")  # the dead writer's lock is gone
    assert store.load_asset_value("a") == [{"v": "after"}]
    store.close()


def _open_and_write(target: StoreTarget, name: str, start) -> None:
    start.wait(10)
    store = target.open()  # creates the tables if nobody has yet
    store.ledger_append(run_id=name, entity="users", key=name, action="create", status="ok")
    store.close()


def test_processes_opening_a_fresh_store_at_once_all_succeed(store_target: StoreTarget) -> None:
    start = CTX.Event()
    procs = [CTX.Process(target=_open_and_write, args=(store_target, f"p{i}", start)) for i in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = store_target.open()
    assert sorted(e["key"] for e in store.ledger_query()) == ["p0", "p1", "p2", "p3"]
    store.close()
