"""Desired state + plan at a size well above the unit tests' (4,000 employees, 100,000 payroll
rows): complete and consistent. How fast it is (the 20k-employee CPU budget) is a `make bench`
target (benchmarks/core_work.py), not a test: a test asserts only what no machine load can break."""

from __future__ import annotations

import datetime as dt
import random

from safetyamp_pipeline.core.plan import RefIndex, plan_entity
from safetyamp_pipeline.core.planners.common import WRITE_ACTIONS
from safetyamp_pipeline.core.settings import SyncSettings

from .factories import ENTITY_ORDER, base_state, desired_all
from .simulated_server import apply_plan

S = SyncSettings()


def dataset(employees: int, seed: int = 3):
    rng = random.Random(seed)
    jobs_n = max(employees // 4, 10)
    departments = [{"PRCo": 1, "PRDept": f"{i:02d}", "Description": f"Dept {i}", "udRegion": f"Region {i % 5}"} for i in range(30)]
    jobs = [{"JCCo": 1, "Job": f"{10000 + i}.", "Description": f"Job {i}", "Department": f"{i % 30:02d}", "JobStatus": 1}
            for i in range(jobs_n)]
    people = [{"PRCo": 1, "Employee": 1000 + i, "FirstName": f"F{i}", "LastName": f"L{i}", "Sex": "MF"[i % 2],
               "PRDept": f"{i % 30:02d}", "Email": f"u{i}@example.com", "udEmpTitle": f"Title {i % 90}",
               "HireDate": dt.datetime(2015, 1, 1), "TermDate": None,
               "Phone": f"225-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"} for i in range(employees)]
    payroll = [{"PRCo": 1, "Employee": 1000 + rng.randrange(employees), "JCCo": 1, "Job": f"{10000 + rng.randrange(jobs_n)}.",
                "PREndDate": dt.datetime(2026, 11, 22) - dt.timedelta(weeks=rng.randrange(14)), "Hrs": 8}
               for _ in range(employees * 25)]
    return departments, jobs, people, payroll


def first_sync(employees: int) -> dict[str, list[dict]]:
    departments, jobs, people, payroll = dataset(employees)
    desired = desired_all(departments, jobs, people, payroll)
    state = base_state()
    for entity in ENTITY_ORDER:
        items = plan_entity(entity, desired[entity], state.get(entity, []), RefIndex.from_state(state, S), S)
        state = apply_plan(state, items)
    return state


def test_a_large_first_sync_plans_every_record_once_and_a_second_plan_is_empty():
    employees = 4000
    state = first_sync(employees)
    users = [u for u in state["users"] if u.get("emp_id")]
    assert len(users) > employees * 0.9
    assert len({u["emp_id"] for u in users}) == len(users)
    assert len({s["ext_id"] for s in state["sites"] if s.get("ext_id")}) == employees // 4
    # Planning again against the result changes nothing (no record is written twice).
    departments, jobs, people, payroll = dataset(employees)
    desired = desired_all(departments, jobs, people, payroll)
    unchanged = 0
    for entity in ENTITY_ORDER:
        items = plan_entity(entity, desired[entity], state.get(entity, []), RefIndex.from_state(state, S), S)
        writes = [i for i in items if i.action in WRITE_ACTIONS]
        assert not writes, (entity, writes[:3])
        unchanged += sum(1 for i in items if i.action == "unchanged")
    assert unchanged > employees


def test_garbage_collector_state_is_restored():
    import gc

    departments, jobs, people, payroll = dataset(50)
    assert gc.isenabled()
    desired_all(departments, jobs, people, payroll)
    assert gc.isenabled()
    gc.disable()
    try:
        desired_all(departments, jobs, people, payroll)
        assert not gc.isenabled()
    finally:
        gc.enable()
