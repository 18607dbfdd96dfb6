"""Asset values: the latest value of each source/desired asset, per partition.

A value is a list of JSON-able dict rows. Writing replaces the (asset, partition) value in one
transaction: new chunks are inserted under a fresh `value_id`, the header is pointed at it, and the
old chunks are deleted. A crash (or an exception from the row iterator) before the commit leaves
the previous value untouched; readers go through the header, so they see the old or the new
value, never a mix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.engine import upsert
from safetyamp_pipeline.store.errors import MissingAssetValue
from safetyamp_pipeline.store.tables import CHUNK_ROWS, NO_PARTITION


class AssetValueError(ValueError):
    """A row of an asset value cannot be stored (names the asset, the row and the field)."""


class AssetValues(StoreBase):
    def save_asset_value(
        self,
        asset_key: str,
        rows: Iterable[Mapping[str, Any]],
        partition: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Atomically replace the value of (asset_key, partition); returns the row count.

        `rows` may be any iterable (a generator is consumed chunk by chunk). Dates, datetimes and
        Decimals are converted to ISO strings / numbers; anything else non-JSON raises
        `AssetValueError` naming the row and field, and the previous value stays.
        """
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
            upsert(conn, t.asset_values, {"asset_key": asset_key, "partition_key": part}, values)
            conn.execute(
                delete(t.asset_chunks).where(
                    t.asset_chunks.c.asset_key == asset_key,
                    t.asset_chunks.c.partition_key == part,
                    t.asset_chunks.c.value_id != value_id,
                )
            )
        return count

    def load_asset_value(self, asset_key: str, partition: str | None = None) -> list[dict[str, Any]]:
        """The stored rows of (asset_key, partition); raises `MissingAssetValue` when none."""
        return self._load(asset_key, [partition])

    def load_asset_partitions(self, asset_key: str, partitions: Sequence[str]) -> list[dict[str, Any]]:
        """The rows of several partitions, concatenated in the order given. Raises
        `MissingAssetValue` naming every partition that has no stored value."""
        return self._load(asset_key, list(dict.fromkeys(partitions)))

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

    def _load(self, asset_key: str, partitions: list[str | None]) -> list[dict[str, Any]]:
        av, ch = self._t.asset_values, self._t.asset_chunks
        keys = [_partition_key(p) for p in partitions]
        # One statement joining header and chunks: it sees a single snapshot, so a concurrent
        # writer can never hand us half of the old value and half of the new.
        stmt = (
            select(av.c.partition_key, av.c.row_count, ch.c.seq, ch.c.rows_json)
            .select_from(av.outerjoin(ch, ch.c.value_id == av.c.value_id))
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
