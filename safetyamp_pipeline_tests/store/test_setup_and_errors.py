from __future__ import annotations

import pytest
import sqlalchemy as sa

from safetyamp_pipeline.store import (
    StoreSchemaTooNew,
    StoreUnavailable,
    SyncStore,
    default_store_url,
    mask_url,
)
from safetyamp_pipeline_tests.store.conftest import StoreTarget


def test_default_url_uses_store_url_then_dagster_home_then_local_folder(tmp_path, monkeypatch) -> None:
    assert default_store_url({"SAFETYAMP_STORE_URL": "postgresql://u:p@db/x"}) == "postgresql://u:p@db/x"
    assert default_store_url({"DAGSTER_HOME": str(tmp_path)}) == f"sqlite:///{tmp_path}/safetyamp_store.db"
    monkeypatch.chdir(tmp_path)
    assert default_store_url({}) == f"sqlite:///{tmp_path}/.dagster_home/safetyamp_store.db"


def test_default_sqlite_store_creates_its_folder(tmp_path) -> None:
    url = default_store_url({"DAGSTER_HOME": str(tmp_path / "home")})
    store = SyncStore(url)
    store.save_asset_value("a", [{"x": 1}])
    assert (tmp_path / "home" / "safetyamp_store.db").exists()
    store.close()


def test_mask_url_hides_passwords_in_every_form() -> None:
    assert mask_url("postgresql://sync:s3cr%40t@db.internal:5432/dagster") == (
        "postgresql://sync:***@db.internal:5432/dagster"
    )
    assert "s3cret" not in mask_url("mssql+pyodbc:///?odbc_connect=DRIVER%3Dx%3BUID%3Du%3BPWD%3Ds3cret%3B")
    assert "s3cret" not in mask_url(sa.engine.URL.create("postgresql", "u", "s3cret", "h"))
    assert "s3cret" not in mask_url("not a url //user:s3cret@host")
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_unreachable_database_is_reported_with_masked_url() -> None:
    with pytest.raises(StoreUnavailable) as exc:
        SyncStore("postgresql://sync:s3cret@127.0.0.1:1/dagster?connect_timeout=3")
    message = str(exc.value)
    assert "127.0.0.1:1/dagster" in message and "unreachable" in message
    assert "s3cret" not in message and "***" in message


def test_unopenable_sqlite_file_is_reported(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match="unreachable|could not"):
        SyncStore(f"sqlite:///{blocker}/sub/store.db")


def test_schema_is_only_for_postgresql(tmp_path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        SyncStore(f"sqlite:///{tmp_path / 's.db'}", schema="sync")


def test_reopening_keeps_data_and_a_newer_schema_is_refused(store_target: StoreTarget) -> None:
    first = store_target.open()
    first.save_asset_value("a", [{"x": 1}])
    first.close()
    second = store_target.open()
    assert second.load_asset_value("a") == [{"x": 1}]
    with second.engine.begin() as conn:
        table = second._t.schema_version
        conn.execute(table.insert().values(version=99, applied_at=sa.func.now()))
    second.close()
    with pytest.raises(StoreSchemaTooNew, match="schema version 99"):
        store_target.open()


def test_postgres_store_lives_in_its_own_schema(pg_target: StoreTarget) -> None:
    store = pg_target.open()
    names = sa.inspect(store.engine).get_table_names(schema=pg_target.schema)
    assert "sync_ledger" in names and "sync_asset_values" in names
    assert "sync_ledger" not in sa.inspect(store.engine).get_table_names(schema="public")
    store.close()


def test_a_failing_statement_names_no_parameter_value(store) -> None:
    # Mirror and ledger rows hold person data; SQLAlchemy would quote them in the error text.
    from datetime import UTC, datetime

    table = store._t.mirror_records
    row = {"entity": "users", "record_key": "1234", "safetyamp_id": "5",
           "record_json": '{"email": "jane.doe@example.com"}', "written_at": datetime.now(UTC)}
    with pytest.raises(sa.exc.IntegrityError) as caught, store.engine.begin() as conn:
        conn.execute(table.insert(), [row, row])
    text = str(caught.value)
    assert "sync_mirror_records" in text  # the statement is still named
    assert "jane.doe" not in text
    assert "parameters hidden" in text
