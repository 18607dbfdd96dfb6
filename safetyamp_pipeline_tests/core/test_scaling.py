"""Desired state + plan grow linearly with the data (the full-size budget is 20k employees,
5k jobs, 500k payroll rows in about 2 s CPU; see docs/business-rules.md)."""

from __future__ import annotations

import datetime as dt
import random
import time

from safetyamp_pipeline.core.plan import RefIndex, apply_plan, plan_entity
from safetyamp_pipeline.core.settings import SyncSettings

from .factories import ENTITY_ORDER, base_state, desired_all

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


def cpu_seconds(employees: int) -> float:
    departments, jobs, people, payroll = dataset(employees)
    start = time.process_time()
    desired = desired_all(departments, jobs, people, payroll)
    state = base_state()
    for entity in ENTITY_ORDER:
        items = plan_entity(entity, desired[entity], state.get(entity, []), RefIndex.from_state(state, S), S)
        state = apply_plan(state, items)
    assert sum(1 for u in state["users"] if u.get("emp_id")) > employees * 0.9
    return time.process_time() - start


def test_desired_and_plan_scale_linearly():
    small = min(cpu_seconds(1000) for _ in range(2))
    large = cpu_seconds(4000)
    assert large < small * 8, (small, large)  # 4x the data; quadratic work would be ~16x
    assert large < 4.0, large  # generous absolute ceiling (4k employees, 100k payroll rows)


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
