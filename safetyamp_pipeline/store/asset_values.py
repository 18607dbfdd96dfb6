"""Asset values: the latest value of each source/desired asset, per partition.

A value is a list of JSON-able dict rows. Writing replaces the (asset, partition) value in one
transaction: new chunks are inserted under a fresh `value_id`, the header is pointed at it, and the
old chunks are deleted. A crash (or an exception from the row iterator) before the commit leaves
the previous value untouched; readers go through the header, so they see the old or the new
value, never a mix.

Run-scoped values: a value saved with a run id is also recorded for that run in
`sync_run_values`, as *accepted* (the header points at it: the "last accepted" value) or as
*pending* (`accept=False`: a source whose blocking check has not passed yet). `accept_asset_value`
promotes a pending value once its check passed; a refused value stays pending and is never
loaded. `load_asset_value(..., run_id=R)` gives the value accepted in run R, else the last
accepted one, so a step never reads a value another run's check refused, nor one another run
accepted while this run was still using its own. The last `RUN_VALUES_KEPT` run values per
(asset, partition) are kept; older ones are pruned with their chunks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, and_, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.types import Integer

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.codec import UtcDateTime
from safetyamp_pipeline.store.engine import upsert
from safetyamp_pipeline.store.errors import MissingAssetValue
from safetyamp_pipeline.store.tables import CHUNK_ROWS, NO_PARTITION

RUN_VALUES_TABLE = "sync_run_values"
# Run values kept per (asset, partition): enough for the runs that may overlap (one sync lane plus
# manual materializations); an older run falls back to the last accepted value.
RUN_VALUES_KEPT = 6
PENDING = "pending"
ACCEPTED = "accepted"


class AssetValueError(ValueError):
    """A row of an asset value cannot be stored (names the asset, the row and the field)."""


def run_values_table(md: MetaData) -> Table:
    """The per-run values table on the store's metadata (defined once per metadata)."""
    key = f"{md.schema}.{RUN_VALUES_TABLE}" if md.schema else RUN_VALUES_TABLE
    existing = md.tables.get(key)
    if existing is not None:
        return existing
    return Table(
        RUN_VALUES_TABLE,
        md,
        Column("asset_key", String(255), primary_key=True),
        Column("partition_key", String(255), primary_key=True),
        Column("run_id", String(64), primary_key=True),
        Column("value_id", String(36), nullable=False),
        Column("state", String(16), nullable=False),
        Column("written_at", UtcDateTime, nullable=False),
        Column("row_count", Integer, nullable=False),
        Column("metadata_json", Text),
    )


class AssetValues(StoreBase):
    @property
    def _runs(self) -> Table:
        return run_values_table(self._t.metadata)

    def _create_tables(self) -> None:
        self._runs  # noqa: B018 - defines the table on the metadata before create_all
        super()._create_tables()

    def save_asset_value(
        self,
        asset_key: str,
        rows: Iterable[Mapping[str, Any]],
        partition: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        accept: bool = True,
    ) -> int:
        """Atomically replace the value of (asset_key, partition); returns the row count.

        `rows` may be any iterable (a generator is consumed chunk by chunk). Dates, datetimes and
        Decimals are converted to ISO strings / numbers; anything else non-JSON raises
        `AssetValueError` naming the row and field, and the previous value stays.

        `accept=False` (needs `run_id`) stores the value as pending for that run: it replaces
        nothing until `accept_asset_value` promotes it.
        """
        if not accept and not run_id:
            raise ValueError("a pending asset value needs the run id that will accept it")
        part = _partition_key(partition)
        t = self._t
        value_id = uuid.uuid4().hex
        with self._write() as conn:
            count = 0
            for seq, chunk in enumerate(_chunks(rows, CHUNK_ROWS)):
                conn.execute(
                    t.asset_chunks.insert().values(
                        value_id=value_id,
                        seq=seq,
                        asset_key=asset_key,
                        partition_key=part,
                        rows_json=_encode_chunk(asset_key, partition, chunk, first_index=count),
                    )
                )
                count += len(chunk)
            values = {
                "value_id": value_id,
                "run_id": run_id,
                "written_at": self._now(),
                "row_count": count,
                "metadata_json": codec.dumps(dict(metadata)) if metadata is not None else None,
            }
            if run_id:
                run_values = {k: v for k, v in values.items() if k != "run_id"}
                upsert(
                    conn, self._runs, {"asset_key": asset_key, "partition_key": part, "run_id": run_id},
                    {**run_values, "state": ACCEPTED if accept else PENDING},
                )
            if accept:
                upsert(conn, t.asset_values, {"asset_key": asset_key, "partition_key": part}, values)
            self._prune(conn, asset_key, part)
        return count

    def accept_asset_value(self, asset_key: str, run_id: str, partition: str | None = None) -> int:
        """Promote the value run `run_id` saved as pending to the accepted (latest) value; returns
        its row count. Raises `MissingAssetValue` when that run saved no value (or it was pruned)."""
        part = _partition_key(partition)
        rv = self._runs
        with self._write() as conn:
            row = conn.execute(
                select(rv).where(rv.c.asset_key == asset_key, rv.c.partition_key == part, rv.c.run_id == run_id)
            ).first()
            if row is None:
                raise MissingAssetValue(asset_key, [partition])
            conn.execute(
                update(rv)
                .where(rv.c.asset_key == asset_key, rv.c.partition_key == part, rv.c.run_id == run_id)
                .values(state=ACCEPTED)
            )
            upsert(
                conn,
                self._t.asset_values,
                {"asset_key": asset_key, "partition_key": part},
                {
                    "value_id": row.value_id,
                    "run_id": run_id,
                    "written_at": row.written_at,
                    "row_count": row.row_count,
                    "metadata_json": row.metadata_json,
                },
            )
        return int(row.row_count)

    def asset_value_state(self, asset_key: str, run_id: str, partition: str | None = None) -> str | None:
        """`"pending"`, `"accepted"`, or None when run `run_id` saved no value of the asset."""
        rv = self._runs
        with self._read() as conn:
            return conn.execute(
                select(rv.c.state).where(
                    rv.c.asset_key == asset_key, rv.c.partition_key == _partition_key(partition), rv.c.run_id == run_id
                )
            ).scalar()

    def _prune(self, conn: Connection, asset_key: str, part: str) -> None:
        """Drop run values beyond the newest `RUN_VALUES_KEPT`, then every chunk neither the
        header nor a kept run value points at (same transaction as the write)."""
        rv, av, ch = self._runs, self._t.asset_values, self._t.asset_chunks
        same = and_(rv.c.asset_key == asset_key, rv.c.partition_key == part)
        old = conn.execute(
            select(rv.c.run_id).where(same).order_by(rv.c.written_at.desc(), rv.c.run_id).offset(RUN_VALUES_KEPT)
        ).scalars().all()
        if old:
            conn.execute(delete(rv).where(same, rv.c.run_id.in_(old)))
        kept_by_runs = select(rv.c.value_id).where(same)
        kept_by_header = select(av.c.value_id).where(av.c.asset_key == asset_key, av.c.partition_key == part)
        conn.execute(
            delete(ch).where(
                ch.c.asset_key == asset_key,
                ch.c.partition_key == part,
                ch.c.value_id.not_in(kept_by_runs),
                ch.c.value_id.not_in(kept_by_header),
            )
        )

    def load_asset_value(
        self, asset_key: str, partition: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The accepted rows of (asset_key, partition): with `run_id`, the value accepted in that
        run when there is one, else the last accepted value. Raises `MissingAssetValue` when no
        value was ever accepted (a pending or refused value is never returned)."""
        return self._load(asset_key, [partition], run_id)

    def load_asset_partitions(
        self, asset_key: str, partitions: Sequence[str], *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The rows of several partitions, concatenated in the order given (each chosen as
        `load_asset_value` does). Raises `MissingAssetValue` naming every partition that has no
        accepted value."""
        return self._load(asset_key, list(dict.fromkeys(partitions)), run_id)

    def asset_value_info(self, asset_key: str, partition: str | None = None) -> dict[str, Any] | None:
        """`{asset_key, partition, run_id, written_at, row_count, metadata}`, or None when the
        value was never stored."""
        av = self._t.asset_values
        with self._read() as conn:
            row = conn.execute(
                select(av).where(av.c.asset_key == asset_key, av.c.partition_key == _partition_key(partition))
            ).first()
        if row is None:
            return None
        return {
            "asset_key": row.asset_key,
            "partition": _partition_out(row.partition_key),
            "run_id": row.run_id,
            "written_at": row.written_at,
            "row_count": row.row_count,
            "metadata": codec.loads(row.metadata_json),
        }

    def asset_partitions(self, asset_key: str) -> list[str]:
        """The partitions of `asset_key` that hold a value, sorted."""
        av = self._t.asset_values
        with self._read() as conn:
            keys = conn.execute(
                select(av.c.partition_key).where(
                    av.c.asset_key == asset_key, av.c.partition_key != NO_PARTITION
                )
            ).scalars()
            return sorted(keys)

    def asset_written_at(self, asset_key: str, partition: str | None = None) -> datetime | None:
        info = self.asset_value_info(asset_key, partition)
        return info["written_at"] if info else None

    def _load(self, asset_key: str, partitions: list[str | None], run_id: str | None = None) -> list[dict[str, Any]]:
        av, ch, rv = self._t.asset_values, self._t.asset_chunks, self._runs
        keys = [_partition_key(p) for p in partitions]
        # One statement joining header, this run's accepted value and chunks: it sees a single
        # snapshot, so a concurrent writer can never hand us half of the old value and half of the
        # new (nor prune the chunks between two statements).
        own = rv.alias("own")
        source = av.outerjoin(
            own,
            and_(
                own.c.asset_key == av.c.asset_key,
                own.c.partition_key == av.c.partition_key,
                own.c.run_id == (run_id or ""),
                own.c.state == ACCEPTED,
            ),
        )
        value_id = func.coalesce(own.c.value_id, av.c.value_id)
        stmt = (
            select(av.c.partition_key, av.c.row_count, ch.c.seq, ch.c.rows_json)
            .select_from(source.outerjoin(ch, ch.c.value_id == value_id))
            .where(av.c.asset_key == asset_key, av.c.partition_key.in_(keys))
            .order_by(av.c.partition_key, ch.c.seq)
        )
        by_partition: dict[str, list[dict[str, Any]]] = {}
        with self._read() as conn:
            for part, _count, _seq, rows_json in conn.execute(stmt):
                rows = by_partition.setdefault(part, [])
                if rows_json is not None:
                    rows.extend(codec.loads(rows_json))
        missing = [p for p, k in zip(partitions, keys, strict=True) if k not in by_partition]
        if missing:
            raise MissingAssetValue(asset_key, missing)
        out: list[dict[str, Any]] = []
        for key in keys:
            out.extend(by_partition[key])
        return out


def _partition_key(partition: str | None) -> str:
    if partition is None:
        return NO_PARTITION
    if not isinstance(partition, str) or partition == NO_PARTITION:
        raise ValueError(f"partition must be a non-empty string or None, got {partition!r}")
    return partition


def _partition_out(key: str) -> str | None:
    return None if key == NO_PARTITION else key


def _chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    chunk: list[Mapping[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encode_chunk(
    asset_key: str, partition: str | None, chunk: list[Mapping[str, Any]], *, first_index: int
) -> str:
    where = f"asset {asset_key!r}" + (f" partition {partition!r}" if partition else "")
    plain: list[dict[str, Any]] = []
    for offset, row in enumerate(chunk):
        if type(row) is dict:
            plain.append(row)
        elif isinstance(row, Mapping):
            plain.append(dict(row))
        else:
            raise AssetValueError(
                f"{where}, row {first_index + offset}: not a mapping but {type(row).__name__}"
            )
    try:
        return codec.dumps(plain)
    except (TypeError, ValueError):
        pass
    for offset, row in enumerate(plain):
        try:
            codec.dumps(row)
        except (TypeError, ValueError):
            detail = codec.describe_unserializable(row)
            raise AssetValueError(f"{where}, row {first_index + offset}: {detail}") from None
    raise AssetValueError(f"{where}: rows could not be encoded as JSON")
