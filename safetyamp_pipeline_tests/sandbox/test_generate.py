"""The synthetic data set: deterministic, realistically sized, messy in every documented way, and in
the exact shapes the emulators and the Vista client rely on (DESIGN §6)."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import create_engine, func, inspect, select

from safetyamp_pipeline.clients import vista_tables as vt
from safetyamp_pipeline.sandbox.data_pools import REGIONS
from safetyamp_pipeline.sandbox.generate import generate_dataset

AS_OF = date(2026, 11, 26)  # a Thursday
LAST_SUNDAY = date(2026, 11, 29)

# DESIGN §6, verbatim.
DESIGN_COLUMNS = {
    "bPREH": "PRCo, Employee, FirstName, MidName, LastName, Sex, PRDept, Email, udEmpTitle, BirthDate, "
    "HireDate, TermDate, Phone, CellPhone, Address, City, State, Zip",
    "bPRDP": "PRCo, PRDept, Description, udRegion",
    "bJCJM": "JCCo, Job, Description, Contract, JobStatus, ShipAddress, ShipCity, ShipState, ShipZip",
    "bJCCM": "JCCo, Contract, Department",
    "bPRJC": "PRCo, Employee, JCCo, Job, PREndDate, Hrs",
}


class Dataset:
    def __init__(self, directory: Path, summary) -> None:
        self.dir = directory
        self.summary = summary
        self.engine = create_engine(f"sqlite:///{directory / 'vista.db'}")
        self.graph = self._json("graph.json")
        self.samsara = self._json("samsara.json")
        self.safetyamp = self._json("safetyamp.json")
        with self.engine.connect() as conn:
            self.employees = [dict(r._mapping) for r in conn.execute(select(vt.bPREH).where(vt.bPREH.c.PRCo == 1))]
            self.departments = [dict(r._mapping) for r in conn.execute(select(vt.bPRDP).where(vt.bPRDP.c.PRCo == 1))]
            self.jobs = [dict(r._mapping) for r in conn.execute(select(vt.bJCJM).where(vt.bJCJM.c.JCCo == 1))]
            self.contracts = {
                r.Contract: r.Department for r in conn.execute(select(vt.bJCCM).where(vt.bJCCM.c.JCCo == 1))
            }
            self.payroll = [dict(r._mapping) for r in conn.execute(select(vt.bPRJC).where(vt.bPRJC.c.PRCo == 1))]
        self.actives = [e for e in self.employees if e["TermDate"] is None]
        self.numbers = {str(e["Employee"]) for e in self.employees}

    def _json(self, name: str) -> dict:
        return json.loads((self.dir / name).read_text(encoding="utf-8"))

    def phones(self) -> list[str]:
        return [p for e in self.employees for p in (e["Phone"], e["CellPhone"]) if p]


def _generate(tmp_path_factory, name: str, employees: int):
    directory = tmp_path_factory.mktemp(name)
    dataset = Dataset(directory, generate_dataset(directory, employees=employees, as_of=AS_OF))
    yield dataset
    dataset.engine.dispose()


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    yield from _generate(tmp_path_factory, "default", 1400)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    yield from _generate(tmp_path_factory, "small", 50)


@pytest.fixture(params=["default", "small"])
def ds(request) -> Dataset:
    """Every planted case must exist in the default set and in a 50-employee one."""
    return request.getfixturevalue(request.param)


def _dump(directory: Path) -> dict:
    """Every row of every table (ordered) plus every fixture file's text."""
    engine = create_engine(f"sqlite:///{directory / 'vista.db'}")
    with engine.connect() as conn:
        tables = {
            name: sorted((tuple(map(repr, r)) for r in conn.execute(select(table))), key=str)
            for name, table in vt.TABLES.items()
        }
    engine.dispose()
    files = {name: (directory / name).read_text(encoding="utf-8") for name in
             ("graph.json", "samsara.json", "safetyamp.json", "summary.json")}
    return {"tables": tables, "files": files}


# ------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_content(default, tmp_path):
    again = generate_dataset(tmp_path, seed=7, as_of=AS_OF)
    assert again == default.summary
    assert _dump(tmp_path) == _dump(default.dir)


def test_different_seed_gives_different_content(tmp_path):
    generate_dataset(tmp_path / "a", employees=200, seed=1, as_of=AS_OF)
    generate_dataset(tmp_path / "b", employees=200, seed=2, as_of=AS_OF)
    first, second = _dump(tmp_path / "a"), _dump(tmp_path / "b")
    for table in ("bPREH", "bJCJM", "bPRJC"):
        assert first["tables"][table] != second["tables"][table], table
    for name in ("graph.json", "samsara.json"):
        assert first["files"][name] != second["files"][name], name


def test_regenerating_into_the_same_directory_replaces_the_data(tmp_path):
    generate_dataset(tmp_path, employees=300, seed=3, as_of=AS_OF)
    summary = generate_dataset(tmp_path, employees=60, seed=3, as_of=AS_OF)
    engine = create_engine(f"sqlite:///{tmp_path / 'vista.db'}")
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(vt.bPREH).where(vt.bPREH.c.PRCo == 1)).scalar()
    engine.dispose()
    assert count == summary.employees_active + summary.employees_terminated == 60


def test_as_of_defaults_to_today(tmp_path):
    summary = generate_dataset(tmp_path, employees=40)
    assert summary.as_of == date.today().isoformat()


def test_too_small_a_head_count_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="employees"):
        generate_dataset(tmp_path, employees=5)


def test_fast_bulk_insert_stores_what_sqlalchemy_would(tmp_path):
    import random
    import sqlite3
    from contextlib import closing

    from sqlalchemy import insert

    from safetyamp_pipeline.sandbox.data_vista import build_vista
    from safetyamp_pipeline.sandbox.generate import write_vista_db

    data = build_vista(random.Random(5), employees=40, departments=8, open_jobs=12, as_of=AS_OF)
    write_vista_db(tmp_path / "fast.db", data)
    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    vt.metadata.create_all(engine)
    with engine.begin() as conn:
        for table, rows in ((vt.bPRDP, data.departments), (vt.bJCCM, data.contracts), (vt.bJCJM, data.jobs),
                            (vt.bPREH, data.employees), (vt.bPRJC, data.payroll)):
            conn.execute(insert(table), rows)
    engine.dispose()

    def raw(name: str) -> dict:
        with closing(sqlite3.connect(tmp_path / name)) as conn:
            result = {}
            for name_, table in vt.TABLES.items():
                types = ", ".join(f'typeof("{c.name}")' for c in table.columns)
                result[name_] = conn.execute(f'SELECT *, {types} FROM "{name_}"').fetchall()
            return result

    assert raw("fast.db") == raw("plain.db")


# ------------------------------------------------------------------------------------------------ sizes


def test_default_sizes_match_production_volumes(default):
    s = default.summary
    assert len(default.employees) == 1400
    assert 1100 <= len(default.actives) <= 1300
    assert s.employees_active == len(default.actives)
    assert s.employees_terminated == 1400 - len(default.actives) > 100
    statuses = Counter(j["JobStatus"] for j in default.jobs)
    assert statuses[1] == s.jobs_open == 580
    assert statuses[2] + statuses[3] == s.jobs_closed > 50
    assert statuses[0] == s.jobs_pending >= 2
    assert len(default.departments) == s.departments == 45
    regions = {(d["udRegion"] or "").strip() for d in default.departments} - {""}
    assert len(regions) == s.regions == 4
    assert len(default.samsara["vehicles"]) == s.vehicles == 80
    assert len(default.samsara["drivers"]) == s.drivers > 50
    assert len(default.graph["users"]) == s.graph_users
    assert len(default.payroll) == s.payroll_rows


def test_payroll_covers_52_weekly_sundays_ending_the_week_of_as_of(default):
    weeks = sorted({r["PREndDate"] for r in default.payroll})
    assert len(weeks) == 52
    assert weeks[-1] == datetime(2026, 11, 29)
    assert all(w.weekday() == 6 for w in weeks)
    assert all(b - a == timedelta(days=7) for a, b in zip(weeks, weeks[1:], strict=False))


def test_not_every_employee_works_every_week(default):
    weeks_by_employee = defaultdict(set)
    for row in default.payroll:
        weeks_by_employee[row["Employee"]].add(row["PREndDate"])
    paid = len(weeks_by_employee)
    assert 10_000 < len(default.payroll) < paid * 52
    assert sum(1 for w in weeks_by_employee.values() if len(w) < 52) > paid * 0.8


def test_summary_json_is_the_returned_summary(default):
    on_disk = json.loads((default.dir / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == asdict(default.summary)


def test_small_run_scales_every_part_down(small):
    s = small.summary
    assert len(small.employees) == 50
    assert 5 <= s.jobs_open < 100
    assert s.departments < 45
    assert s.regions == 4
    assert 5 <= s.vehicles < 20
    assert s.payroll_rows < 50 * 52


@pytest.mark.slow
def test_twenty_thousand_employees_scale(tmp_path):
    # How long it takes is measured by `make bench` (scale20k), not asserted here.
    s = generate_dataset(tmp_path, employees=20_000, as_of=AS_OF)
    assert s.employees_active + s.employees_terminated == 20_000
    assert 4_500 <= s.jobs_open + s.jobs_closed + s.jobs_pending <= 5_500
    assert s.vehicles == 800
    assert s.payroll_rows < 20_000 * 52 * 0.6


# --------------------------------------------------------------------------------------- table columns


def test_tables_hold_exactly_the_design_columns(default):
    inspector = inspect(default.engine)
    assert set(inspector.get_table_names()) == set(DESIGN_COLUMNS)
    for table, listed in DESIGN_COLUMNS.items():
        expected = {c.strip() for c in listed.split(",")}
        assert {c["name"] for c in inspector.get_columns(table)} == expected, table
        assert set(vt.TABLES[table].columns.keys()) == expected, table


def test_primary_keys_are_vistas(default):
    inspector = inspect(default.engine)
    keys = {t: inspector.get_pk_constraint(t)["constrained_columns"] for t in DESIGN_COLUMNS}
    assert keys == {
        "bPREH": ["PRCo", "Employee"], "bPRDP": ["PRCo", "PRDept"], "bJCJM": ["JCCo", "Job"],
        "bJCCM": ["JCCo", "Contract"], "bPRJC": [],
    }


def test_values_read_back_with_their_database_types(default):
    emp = next(e for e in default.employees if e["BirthDate"] is not None)
    assert isinstance(emp["PRCo"], int) and isinstance(emp["Employee"], int)
    assert isinstance(emp["HireDate"], datetime) and isinstance(emp["BirthDate"], datetime)
    assert emp["HireDate"].time() == datetime.min.time()
    row = default.payroll[0]
    assert isinstance(row["Hrs"], Decimal) and isinstance(row["PREndDate"], datetime)


# ------------------------------------------------------------------------------ Vista messiness, per kind


def test_jobs_use_trailing_dot_numbers_and_every_status(ds):
    assert all(re.fullmatch(r"\s*\d{5}\.", j["Job"]) for j in ds.jobs)
    assert {j["JobStatus"] for j in ds.jobs} == {0, 1, 2, 3}


def test_some_job_number_is_padded(ds):
    assert any(j["Job"] != j["Job"].strip() for j in ds.jobs if j["JobStatus"] == 1)


def test_missing_emails(ds):
    assert any(e["Email"] is None for e in ds.actives)


def test_emails_with_inner_spaces(ds):
    assert any(e["Email"] and " " in e["Email"].strip() for e in ds.actives)


def test_emails_with_capitals(ds):
    assert any(e["Email"] and e["Email"] != e["Email"].lower() for e in ds.actives)


def test_two_employees_share_one_email(ds):
    counts = Counter(e["Email"].strip().lower() for e in ds.employees if e["Email"])
    assert any(n >= 2 for n in counts.values())


def test_household_cell_phone_shared_by_several_employees(ds):
    counts = Counter(e["CellPhone"] for e in ds.employees if e["CellPhone"])
    assert any(n >= 2 for n in counts.values())


@pytest.mark.parametrize("suffix", [r"x\s*\d+", r"ext\.\s*\d+", r"#\s*\d+"])
def test_phones_with_extensions(ds, suffix):
    assert any(re.search(rf"\d\s*{suffix}$", p, re.IGNORECASE) for p in ds.phones())


def test_malformed_phones_that_phonenumbers_rejects(ds):
    def invalid(text: str) -> bool:
        try:
            return not phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))
        except phonenumbers.NumberParseException:
            return True

    phones = ds.phones()
    bad = [p for p in phones if invalid(p)]
    assert bad
    # ... but they are the exception: ordinary numbers must survive validation (DESIGN §7).
    assert len(bad) < 0.05 * len(phones) + 10


def test_blank_titles(ds):
    titles = [e["udEmpTitle"] for e in ds.actives]
    assert None in titles
    assert any(t is not None and t.strip() == "" for t in titles)


def test_padded_titles(ds):
    assert any(t and t.strip() and t != t.strip() for t in (e["udEmpTitle"] for e in ds.actives))


def test_case_and_spacing_variants_of_one_title(ds):
    titles = {e["udEmpTitle"] for e in ds.actives}
    assert {"Project Engineer", "project engineer", "Project  Engineer"} <= titles


def test_default_set_has_about_as_many_titles_as_production(default):
    distinct = {" ".join(e["udEmpTitle"].split()) for e in default.actives if e["udEmpTitle"]}
    assert 100 <= len(distinct) <= 160


def test_terminated_employees_including_recent_ones(ds):
    terminated = [e for e in ds.employees if e["TermDate"] is not None]
    assert terminated
    assert any(e["TermDate"].date() >= AS_OF - timedelta(days=30) for e in terminated)
    assert all(e["TermDate"] >= e["HireDate"] for e in terminated)


def test_rehired_employees_have_payroll_before_their_current_hire_date(ds):
    first_week = {}
    for row in ds.payroll:
        first_week[row["Employee"]] = min(first_week.get(row["Employee"], row["PREndDate"]), row["PREndDate"])
    rehired = [
        e for e in ds.actives
        if e["Employee"] in first_week and first_week[e["Employee"]] < e["HireDate"] - timedelta(days=7)
    ]
    assert rehired


def test_active_employees_without_payroll_rows(ds):
    paid = {r["Employee"] for r in ds.payroll}
    assert any(e["Employee"] not in paid for e in ds.actives)


def test_departments_without_region(ds):
    regions = [d["udRegion"] for d in ds.departments]
    assert None in regions
    assert any(r is not None and r.strip() == "" for r in regions)


def test_jobs_whose_contract_department_matches_no_pr_department(ds):
    codes = {d["PRDept"] for d in ds.departments}
    unknown = [
        j for j in ds.jobs
        if j["JobStatus"] == 1 and j["Contract"] in ds.contracts and ds.contracts[j["Contract"]] not in codes
    ]
    assert unknown


def test_names_with_padding(ds):
    assert any(
        (e["FirstName"] and e["FirstName"] != e["FirstName"].strip()) or e["LastName"] != e["LastName"].strip()
        for e in ds.actives
    )


def test_an_employee_with_a_non_ascii_name(ds):
    assert any(not f"{e['FirstName'] or ''}{e['LastName']}".isascii() for e in ds.actives)


def test_sex_is_m_f_or_null(ds):
    assert {e["Sex"] for e in ds.employees} == {"M", "F", None}


def test_another_company_shares_numbers_and_must_be_filtered(ds):
    with ds.engine.connect() as conn:
        other_emps = set(conn.execute(select(vt.bPREH.c.Employee).where(vt.bPREH.c.PRCo == 2)).scalars())
        other_rows = conn.execute(select(vt.bPRJC).where(vt.bPRJC.c.PRCo == 2)).all()
        other_jobs = set(conn.execute(select(vt.bJCJM.c.Job).where(vt.bJCJM.c.JCCo == 2)).scalars())
        other_depts = set(conn.execute(select(vt.bPRDP.c.PRDept).where(vt.bPRDP.c.PRCo == 2)).scalars())
    assert other_emps and other_emps <= {e["Employee"] for e in ds.employees}
    assert other_jobs and other_jobs <= {j["Job"] for j in ds.jobs if j["JobStatus"] == 1}
    assert other_depts and other_depts <= {d["PRDept"] for d in ds.departments}
    # Company 2 worked the latest week: without a company filter it would win "latest job".
    assert other_rows and all(r.PREndDate == datetime(2026, 11, 29) for r in other_rows)


def test_planted_employee_cases_name_company_one_employees(ds):
    employee_kinds = [k for k in ds.summary.cases if not k.startswith(("job_", "department_", "driver_",
                                                                       "vehicle_", "graph_service",
                                                                       "other_company_department",
                                                                       "other_company_job"))]
    for kind in employee_kinds:
        keys = [k.lstrip("0") for k in ds.summary.cases[kind]]
        assert keys and set(keys) <= ds.numbers, kind


# ------------------------------------------------------------------------------------------------ Graph

GRAPH_KEYS = {"id", "employeeId", "mail", "userPrincipalName", "accountEnabled"}


def test_graph_users_have_the_selected_fields_and_types(ds):
    users = ds.graph["users"]
    assert list(ds.graph) == ["users"]
    for user in users:
        assert set(user) == GRAPH_KEYS
        uuid.UUID(user["id"])
        assert isinstance(user["accountEnabled"], bool)
        assert isinstance(user["userPrincipalName"], str) and "@" in user["userPrincipalName"]
        assert user["employeeId"] is None or isinstance(user["employeeId"], str)
        assert user["mail"] is None or isinstance(user["mail"], str)
    assert len({u["id"] for u in users}) == len(users)


def test_graph_covers_about_ninety_percent_of_actives(ds):
    ids = {u["employeeId"].lstrip("0") for u in ds.graph["users"] if u["employeeId"]}
    covered = sum(1 for e in ds.actives if str(e["Employee"]) in ids)
    assert 0.8 * len(ds.actives) <= covered < len(ds.actives)


def test_graph_employee_ids_are_vista_employees(ds):
    ids = {u["employeeId"].lstrip("0") for u in ds.graph["users"] if u["employeeId"]}
    assert ids <= ds.numbers


def test_graph_disabled_accounts(ds):
    assert any(not u["accountEnabled"] for u in ds.graph["users"] if u["employeeId"])


def test_graph_onmicrosoft_mail(ds):
    assert any(u["mail"] and u["mail"].lower().endswith(".onmicrosoft.com") for u in ds.graph["users"])


def test_graph_padded_employee_id(ds):
    assert any(u["employeeId"] and u["employeeId"].startswith("0") for u in ds.graph["users"])


def test_graph_mail_differs_from_vista_only_in_case(ds):
    vista = {str(e["Employee"]): (e["Email"] or "").strip() for e in ds.employees}
    assert any(
        u["mail"] and u["mail"] != vista.get(u["employeeId"]) and u["mail"].lower() == vista.get(u["employeeId"], "").lower()
        for u in ds.graph["users"]
    )


def test_graph_service_accounts_without_employee_id(ds):
    assert any(u["employeeId"] is None and u["accountEnabled"] for u in ds.graph["users"])


# ---------------------------------------------------------------------------------------------- Samsara

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _nulls_or_empties(value, path="") -> list[str]:
    if value is None or value == "" or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls_or_empties(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls_or_empties(v, f"{path}[{i}]")]
    return []


def test_samsara_vehicle_shape(ds):
    assert list(ds.samsara) == ["vehicles", "drivers"]
    vehicles = ds.samsara["vehicles"]
    for v in vehicles:
        assert re.fullmatch(r"\d{15}", v["id"])
        assert isinstance(v["name"], str) and v["name"]
        assert re.fullmatch(r"\d{4}", v["year"])
        assert isinstance(v["make"], str) and isinstance(v["model"], str)
        assert v["vehicleRegulationMode"] in ("regulated", "unregulated")
        assert RFC3339.match(v["createdAtTime"]) and RFC3339.match(v["updatedAtTime"])
        assert v["createdAtTime"] <= v["updatedAtTime"]
        assert all(isinstance(k, str) and isinstance(x, str) for k, x in v["externalIds"].items())
        if "serial" in v:
            assert v["serial"].startswith("G") and v["gateway"]["serial"] == v["serial"]
        if "staticAssignedDriver" in v:
            assert set(v["staticAssignedDriver"]) == {"id", "name"}
        assert _nulls_or_empties(v) == [], "empty fields are omitted, not null"
    assert len({v["id"] for v in vehicles}) == len(vehicles)
    serials = [v["serial"] for v in vehicles if "serial" in v]
    assert len(set(serials)) == len(serials)


def test_samsara_vehicle_without_plate(ds):
    assert any("licensePlate" not in v for v in ds.samsara["vehicles"])


def test_samsara_vehicle_with_bad_vin(ds):
    assert any(not re.fullmatch(r"[A-Za-z0-9]{17}", v.get("vin", "")) for v in ds.samsara["vehicles"])


def test_samsara_vehicle_without_serial(ds):
    assert any("serial" not in v for v in ds.samsara["vehicles"])


def test_samsara_regulation_modes_both_present(ds):
    assert {v["vehicleRegulationMode"] for v in ds.samsara["vehicles"]} == {"regulated", "unregulated"}


def test_most_vehicles_have_an_existing_driver(ds):
    drivers = {d["id"]: d for d in ds.samsara["drivers"]}
    assigned = [v["staticAssignedDriver"] for v in ds.samsara["vehicles"] if "staticAssignedDriver" in v]
    assert len(assigned) >= 0.6 * len(ds.samsara["vehicles"])
    for ref in assigned:
        assert drivers[ref["id"]]["name"] == ref["name"]


def _driver_number(driver: dict) -> str | None:
    """DESIGN §7 driver link: externalIds employeeId/payrollId, else first 4+ digit run in notes."""
    ids = driver.get("externalIds", {})
    if ids.get("employeeId") or ids.get("payrollId"):
        return ids.get("employeeId") or ids.get("payrollId")
    match = re.search(r"\d{4,}", driver.get("notes", ""))
    return match.group(0) if match else None


def test_samsara_driver_shape(ds):
    for d in ds.samsara["drivers"]:
        assert re.fullmatch(r"\d+", d["id"]) and isinstance(d["name"], str)
        assert d["driverActivationStatus"] in ("active", "deactivated")
        assert RFC3339.match(d["createdAtTime"]) and RFC3339.match(d["updatedAtTime"])
        assert _nulls_or_empties(d) == []


def test_driver_numbers_in_notes_and_in_external_ids_are_vista_employees(ds):
    drivers = ds.samsara["drivers"]
    in_notes = [d for d in drivers if "externalIds" not in d and _driver_number(d)]
    in_ids = [d for d in drivers if "payrollId" in d.get("externalIds", {})]
    assert in_notes and in_ids
    assert any("Emp #" in d.get("notes", "") for d in drivers)
    numbers = {_driver_number(d) for d in drivers} - {None}
    assert numbers <= ds.numbers


def test_a_driver_with_no_employee_number_at_all(ds):
    assert any(_driver_number(d) is None for d in ds.samsara["drivers"])


# -------------------------------------------------------------------------------------------- SafetyAmp

ROLE_KEYS = ["id", "account_default", "name", "default_role_id", "scim_external_id", "guard_name",
             "created_by", "updated_by", "created_at", "updated_at", "deleted_at", "deleted_by"]
CLUSTER_KEYS = ["id", "name", "parent_cluster_id", "path", "external_code", "osha_establishment",
                "created_at", "updated_at", "created_by", "updated_by", "deleted_at", "deleted_by", "depth"]
SITE_KEYS = ["id", "cluster_id", "name", "street", "street2", "city", "state", "zip_code", "country", "timezone",
             "latitude", "longitude", "naics_code", "industry_description", "ext_id", "em_enabled",
             "em_weather_override", "created_by", "created_at", "updated_at", "updated_by", "deleted_at",
             "deleted_by"]
SQL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def test_safetyamp_tenant_is_empty_but_for_the_manual_setup(ds):
    state = ds.safetyamp
    assert list(state) == ["users", "sites", "site_clusters", "user_titles", "roles", "asset_types", "assets"]
    assert state["users"] == state["user_titles"] == state["assets"] == []
    assert len(state["asset_types"]) == 1
    # Root + one cluster per region, and the yard + one regional office per region.
    assert len(state["site_clusters"]) == len(state["sites"]) == 1 + len(REGIONS)


def test_safetyamp_roles(ds):
    roles = ds.safetyamp["roles"]
    assert {r["name"]: r["account_default"] for r in roles} == {
        "Company Administrator": 0, "Supervisor": 0, "Field": 1, "Safety Representative": 0,
    }
    for role in roles:
        assert list(role) == ROLE_KEYS and isinstance(role["id"], int) and role["guard_name"] == "api"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", role["created_at"])
        assert len(role["updated_at"]) == 27


def test_safetyamp_root_cluster(ds):
    root = ds.safetyamp["site_clusters"][0]
    assert list(root) == CLUSTER_KEYS
    assert (root["name"], root["parent_cluster_id"], root["external_code"], root["depth"], root["path"]) == (
        "I&I", None, None, 0, "/",
    )
    assert isinstance(root["id"], int) and SQL_DATETIME.match(root["created_at"])


def test_safetyamp_regions_each_have_an_office_site(ds):
    root, *regions = ds.safetyamp["site_clusters"]
    assert [r["external_code"] for r in regions] == list(REGIONS)
    assert all(r["parent_cluster_id"] == root["id"] and r["depth"] == 1 for r in regions)
    offices = {s["cluster_id"]: s for s in ds.safetyamp["sites"][1:]}
    assert set(offices) == {r["id"] for r in regions}
    assert all(s["ext_id"] is None for s in offices.values())


def test_safetyamp_yard_site_and_vehicle_asset_type(ds):
    root = ds.safetyamp["site_clusters"][0]
    yard = ds.safetyamp["sites"][0]
    (vehicles,) = ds.safetyamp["asset_types"]
    assert list(yard) == SITE_KEYS
    assert yard["name"] == "Yard" and yard["cluster_id"] == root["id"] and yard["ext_id"] in (None, "YARD")
    assert isinstance(yard["id"], int) and SQL_DATETIME.match(yard["updated_at"])
    assert isinstance(yard["created_by"], str) and len(yard["created_by"]) == 5
    assert vehicles["name"] == "Vehicles" and vehicles["site_id"] == yard["id"]
    assert set(vehicles) == {"id", "name", "site_id", "asset_category_id", "relationships"}
    assert isinstance(vehicles["id"], int) and isinstance(vehicles["asset_category_id"], int)
