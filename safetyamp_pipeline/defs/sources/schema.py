"""Catalog metadata for the source tables: `dagster/column_schema` and `dagster/row_count`.

Names and types only, never a value, so nothing here can carry person data. Vista columns take
their SQL Server type from the statement the client runs (exact, and known even for an empty
extract); JSON sources (Entra, Samsara) have no declared types, so pandas infers each column's
type over all rows, skipping nulls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import Select

from safetyamp_pipeline.clients.vista import VistaClient

# pandas.api.types.infer_dtype names -> the short names the Dagster UI shows.
_INFERRED = {
    "string": "string",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "decimal",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "date",
    "empty": "null",
}


def statement_schema(stmt: Select) -> dg.TableSchema:
    """The columns a SELECT returns, typed as SQL Server declares them (Vista is SQL Server; the
    sandbox's SQLite file is built from the same table definitions)."""
    dialect = mssql.dialect()
    return dg.TableSchema(
        columns=[dg.TableColumn(col.name, col.type.compile(dialect=dialect)) for col in stmt.selected_columns]
    )


def inferred_schema(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dg.TableSchema:
    """`columns` typed from their values in all `rows` (nulls skipped; no value -> "null";
    values of several kinds -> "mixed")."""
    # dtype=object keeps the values as read: an int column with a null stays "int", not float.
    frame = pd.DataFrame(list(rows), columns=list(columns), dtype=object)
    return dg.TableSchema(columns=[dg.TableColumn(str(name), _column_type(values)) for name, values in frame.items()])


def _column_type(values: pd.Series) -> str:
    if values.isna().all():
        return "null"
    return _INFERRED.get(pd.api.types.infer_dtype(values, skipna=True), "mixed")


def table_metadata(schema: dg.TableSchema, row_count: int | None) -> dict[str, Any]:
    """The catalog keys; `row_count` None when the value spans several partitions."""
    metadata: dict[str, Any] = {"dagster/column_schema": schema}
    if row_count is not None:
        metadata["dagster/row_count"] = dg.MetadataValue.int(row_count)
    return metadata


# Statements only, to read their columns: this client never opens a connection.
_STATEMENTS = VistaClient(create_engine("sqlite://"))
DEPARTMENTS_SCHEMA = statement_schema(_STATEMENTS.departments_query())
JOBS_SCHEMA = statement_schema(_STATEMENTS.open_jobs_query())
EMPLOYEES_SCHEMA = statement_schema(_STATEMENTS.employees_query())
JOB_ASSIGNMENTS_SCHEMA = statement_schema(_STATEMENTS.payroll_rows_query(date(2000, 1, 1), date(2000, 1, 7)))
