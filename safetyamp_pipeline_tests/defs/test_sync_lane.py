"""One sync at a time (issue 16.2) and a maximum runtime on every job (issue 17.4): the sync jobs
carry the sync-lane tag, and the schedules and the Vista sensor skip, naming the run, while a
sync-lane run is queued or running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_run_id

from safetyamp_pipeline.clients.resources import VistaResource
from safetyamp_pipeline.defs.automation import (
    MAX_RUNTIME_TAG,
    SYNC_LANE_TAGS,
    safetyamp_reconcile_nightly,
    safetyamp_sync_hourly,
)
from safetyamp_pipeline.defs.sensors import vista_change_sensor

SYNC_JOBS = ("safetyamp_sync", "safetyamp_employee_sync", "safetyamp_reconcile")
SCHEDULES = (safetyamp_sync_hourly, safetyamp_reconcile_nightly)


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from safetyamp_pipeline.definitions import defs

    return defs()


def create_run_for_test(
    instance: dg.DagsterInstance, job_name: str, status: dg.DagsterRunStatus, tags: dict[str, str] | None = None
) -> dg.DagsterRun:
    """A run record as the run queue holds it (a queued run names the code location it came from)."""
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=InProcessCodeLocationOrigin(
                loadable_target_origin=LoadableTargetOrigin(module_name="safetyamp_pipeline.definitions")
            ),
            repository_name="__repository__",
        ),
        job_name=job_name,
    )
    run = dg.DagsterRun(
        job_name=job_name, run_id=make_new_run_id(), status=status, tags=tags or {}, remote_job_origin=origin
    )
    return instance.add_run(run)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_every_sync_job_is_in_the_sync_lane(definitions: dg.Definitions) -> None:
    assert SYNC_LANE_TAGS == {"safetyamp/lane": "sync"}
    for name in SYNC_JOBS:
        tags = definitions.resolve_job_def(name).tags
        assert tags.get("safetyamp/lane") == "sync", name


def test_every_job_has_a_maximum_runtime_sized_for_an_initial_load(definitions: dg.Definitions) -> None:
    jobs = list(definitions.get_repository_def().get_all_jobs())
    assert {j.name for j in jobs} >= set(SYNC_JOBS)
    for job in jobs:
        if job.name == "__ASSET_JOB":
            continue
        runtime = job.tags.get(MAX_RUNTIME_TAG)
        assert runtime is not None, f"job {job.name} has no {MAX_RUNTIME_TAG} tag"
        # Bounded: a hung Vista query must not hold a run (or the sync lane) forever.
        assert 0 < float(runtime) <= 12 * 3600, (job.name, runtime)
        if job.tags.get("safetyamp/lane") == "sync" and job.name != "safetyamp_provision_on_demand":
            # Above the ~6.3 h a first load of 20,000 employees takes at 60 SafetyAmp requests a minute.
            assert float(runtime) >= 6.5 * 3600, (job.name, runtime)


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED])
def test_schedules_skip_naming_the_sync_run_that_is_queued_or_running(
    definitions: dg.Definitions, instance: dg.DagsterInstance, status: dg.DagsterRunStatus
) -> None:
    busy = create_run_for_test(instance, job_name="safetyamp_employee_sync", status=status, tags=dict(SYNC_LANE_TAGS))
    for schedule in SCHEDULES:
        with dg.build_schedule_context(instance=instance, repository_def=definitions.get_repository_def()) as context:
            data = schedule.evaluate_tick(context)
        assert not data.run_requests, schedule.name
        assert busy.run_id in (data.skip_message or ""), data.skip_message
        assert "one sync at a time" in (data.skip_message or "")


def test_schedules_run_when_the_lane_is_free(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    # Finished sync runs and runs outside the lane do not hold it.
    create_run_for_test(instance, job_name="safetyamp_sync", status=dg.DagsterRunStatus.SUCCESS, tags=dict(SYNC_LANE_TAGS))
    create_run_for_test(instance, job_name="safetyamp_sync", status=dg.DagsterRunStatus.FAILURE, tags=dict(SYNC_LANE_TAGS))
    create_run_for_test(instance, job_name="other", status=dg.DagsterRunStatus.STARTED)
    for schedule in SCHEDULES:
        with dg.build_schedule_context(instance=instance, repository_def=definitions.get_repository_def()) as context:
            data = schedule.evaluate_tick(context)
        assert len(data.run_requests) == 1, (schedule.name, data.skip_message)


def test_vista_sensor_skips_while_a_sync_is_queued_and_keeps_its_cursor(
    definitions: dg.Definitions, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = create_run_for_test(instance, job_name="safetyamp_sync", status=dg.DagsterRunStatus.QUEUED, tags=dict(SYNC_LANE_TAGS))
    # Vista is not even looked at: this database does not exist.
    monkeypatch.setenv("VIEWPOINT_DB_URL", f"sqlite:///{tmp_path / 'missing' / 'vista.db'}")
    cursor = '{"digest": "abc", "tables": {}}'
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"vista": VistaResource()}, definitions=definitions
    ) as context:
        data = vista_change_sensor.evaluate_tick(context)
    assert not data.run_requests
    assert busy.run_id in (data.skip_message or ""), data.skip_message
    assert data.cursor in (None, cursor)
