"""Table definitions of the sync store (portable: SQLite and PostgreSQL).

All tables carry the `sync_` prefix so the store can share a database (or schema) with Dagster's
own tables without a name clash. JSON lives in Text columns; timestamps are `UtcDateTime`.

Asset values are stored in chunks: one row of `sync_asset_chunks` holds a JSON array of up to
`CHUNK_ROWS` rows. Writing 500k rows is then ~100 inserts of large texts instead of 500k inserts,
and loading is one `json.loads` per chunk. `sync_asset_values` holds one header per
(asset, partition) pointing at the current `value_id`; readers join through it, so a value is only
ever seen whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import BigInteger

from safetyamp_pipeline.store.codec import UtcDateTime

SCHEMA_VERSION = 1
CHUNK_ROWS = 5000
# Unpartitioned asset values are stored under this partition key (primary keys cannot be NULL).
NO_PARTITION = ""

_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PKs only


@dataclass(frozen=True)
class StoreTables:
    metadata: MetaData
    schema_version: Table
    asset_values: Table
    asset_chunks: Table
    mirror_records: Table
    mirror_reads: Table
    intents: Table
    ledger: Table
    failures: Table
    rejections: Table
    leases: Table


def build_tables(schema: str | None = None) -> StoreTables:
    md = MetaData(schema=schema)
    schema_version = Table(
        "sync_schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", UtcDateTime, nullable=False),
    )
    asset_values = Table(
        "sync_asset_values",
        md,
        Column("asset_key", String(255), primary_key=True),
        Column("partition_key", String(255), primary_key=True),
        Column("value_id", String(36), nullable=False),
        Column("run_id", String(64)),
        Column("written_at", UtcDateTime, nullable=False),
        Column("row_count", Integer, nullable=False),
        Column("metadata_json", Text),
    )
    asset_chunks = Table(
        "sync_asset_chunks",
        md,
        Column("value_id", String(36), primary_key=True),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("asset_key", String(255), nullable=False),
        Column("partition_key", String(255), nullable=False),
        Column("rows_json", Text, nullable=False),
        Index("ix_sync_asset_chunks_asset", "asset_key", "partition_key"),
    )
    mirror_records = Table(
        "sync_mirror_records",
        md,
        Column("entity", String(64), primary_key=True),
        Column("record_key", String(255), primary_key=True),
        Column("safetyamp_id", String(64)),
        Column("record_json", Text, nullable=False),
        Column("written_at", UtcDateTime, nullable=False),
    )
    mirror_reads = Table(
        "sync_mirror_reads",
        md,
        Column("entity", String(64), primary_key=True),
        Column("read_at", UtcDateTime, nullable=False),
        Column("record_count", Integer, nullable=False),
    )
    intents = Table(
        "sync_create_intents",
        md,
        Column("entity", String(64), primary_key=True),
        Column("record_key", String(255), primary_key=True),
        Column("run_id", String(64)),
        Column("payload_json", Text),
        Column("recorded_at", UtcDateTime, nullable=False),
        Column("confirmed_at", UtcDateTime),
    )
    ledger = Table(
        "sync_ledger",
        md,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("at", UtcDateTime, nullable=False),
        Column("run_id", String(64)),
        Column("entity", String(64), nullable=False),
        Column("record_key", String(255)),
        Column("action", String(32), nullable=False),
        Column("changed_fields_json", Text),
        Column("before_json", Text),
        Column("after_json", Text),
        Column("status", String(16), nullable=False),
        Column("http_status", Integer),
        Column("error", Text),
        Index("ix_sync_ledger_at", "at"),
        Index("ix_sync_ledger_entity_key", "entity", "record_key"),
        Index("ix_sync_ledger_run", "run_id"),
    )
    failures = Table(
        "sync_failures",
        md,
        Column("entity", String(64), primary_key=True),
        Column("record_key", String(255), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("reason", Text, nullable=False),
        Column("fields_json", Text),
        Column("desired_hash", String(128)),
        Column("attempts", Integer, nullable=False),
        Column("first_seen", UtcDateTime, nullable=False),
        Column("last_seen", UtcDateTime, nullable=False),
        Column("retry_requested", Boolean, nullable=False),
        Column("dismissed", Boolean, nullable=False),
    )
    # The records the last run of each sink did not send, and why (replaced per entity each run).
    rejections = Table(
        "sync_rejections",
        md,
        Column("entity", String(64), primary_key=True),
        Column("record_key", String(255), primary_key=True),
        Column("run_id", String(64)),
        Column("reason", Text, nullable=False),
        Column("fields_json", Text),
        Column("at", UtcDateTime, nullable=False),
    )
    # One row per lease (`store.leases`): who holds it and until when.
    leases = Table(
        "sync_leases",
        md,
        Column("name", String(64), primary_key=True),
        Column("holder", String(255)),
        Column("expires_at", UtcDateTime, nullable=False),
    )
    return StoreTables(
        metadata=md,
        schema_version=schema_version,
        asset_values=asset_values,
        asset_chunks=asset_chunks,
        mirror_records=mirror_records,
        mirror_reads=mirror_reads,
        intents=intents,
        ledger=ledger,
        failures=failures,
        rejections=rejections,
        leases=leases,
    )
