"""End-to-end: every desired asset reports the records it holds back (``rejected_before_send``) as
a sortable table naming the fields (issues 14.4 and 19.3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline_tests.e2e.checks import check_record
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

DESIRED = ("site_clusters", "sites", "titles", "users", "assets")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxRun, str]]:
    sandbox, run = start_run(tmp_path_factory.mktemp("desired_checks"))
    try:
        outcome = run.sync()
        assert outcome.success, outcome.failure
        yield run, outcome.run_id
    finally:
        run.instance.dispose()
        sandbox.stop()


def test_every_desired_asset_reports_its_rejected_records_as_a_table(synced: tuple[SandboxRun, str]) -> None:
    run, run_id = synced
    for entity in DESIRED:
        record = check_record(run.instance, ["desired", entity], "rejected_before_send", run_id)
        evaluation = record.event.dagster_event.event_specific_data
        rejected = [r for r in map(record_from_row, run.store.load_asset_value(f"desired/{entity}")) if r.rejected]
        assert evaluation.passed is (not rejected), entity
        assert evaluation.metadata["count"].value == len(rejected)
        table = evaluation.metadata["rejected"]
        assert [c.name for c in table.schema.columns] == ["key", "fields", "reason"]
        assert len(table.records) == min(len(rejected), 50)


def test_the_users_table_names_the_vista_field_of_each_reason(synced: tuple[SandboxRun, str]) -> None:
    run, run_id = synced
    record = check_record(run.instance, ["desired", "users"], "rejected_before_send", run_id)
    table = record.event.dagster_event.event_specific_data.metadata["rejected"]
    assert table.records, "the sandbox data set holds employees that cannot be sent"
    named = set()
    for row in table.records:
        fields = {f.strip() for f in row.data["fields"].split(",") if f.strip()}
        assert fields, row.data  # every reason the data set produces names a field
        assert all(f"field {f}" in row.data["reason"] for f in fields), row.data
        named |= fields
    assert {"Email", "FirstName"} <= named
