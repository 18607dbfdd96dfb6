"""Vista queries on a small SQLite Vista database, and their T-SQL compilation."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from safetyamp_pipeline.clients import vista_tables as vt
from safetyamp_pipeline.clients.vista import VistaClient


def _employee(co: int, number: int, **values) -> dict:
    base = {
        "PRCo": co,
        "Employee": number,
        "FirstName": "First",
        "MidName": None,
        "LastName": "Last",
        "Sex": "M",
        "PRDept": "44",
        "Email": None,
        "udEmpTitle": "Laborer",
        "BirthDate": None,
        "HireDate": datetime(2015, 1, 5),
        "TermDate": None,
        "Phone": None,
        "CellPhone": None,
        "Address": None,
        "City": None,
        "State": None,
        "Zip": None,
    }
    return {**base, **values}


def _job(co: int, job: str, status: int, contract: str | None, **values) -> dict:
    base = {
        "JCCo": co,
        "Job": job,
        "Description": f"Job {job}",
        "Contract": contract,
        "JobStatus": status,
        "ShipAddress": "1 Main St",
        "ShipCity": "Austin",
        "ShipState": "TX",
        "ShipZip": "78701",
    }
    return {**base, **values}


def _pay(co: int, employee: int, job: str, end: datetime, hrs: str, jcco: int = 1) -> dict:
    return {"PRCo": co, "Employee": employee, "JCCo": jcco, "Job": job, "PREndDate": end, "Hrs": Decimal(hrs)}


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'vista.db'}")
    vt.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            vt.bPRDP.insert(),
            [
                {"PRCo": 1, "PRDept": "44", "Description": "Electrical Central", "udRegion": "Central"},
                {"PRCo": 1, "PRDept": "07", "Description": "Mechanical", "udRegion": None},
                {"PRCo": 2, "PRDept": "44", "Description": "Other company", "udRegion": "East"},
            ],
        )
        conn.execute(
            vt.bJCCM.insert(),
            [
                {"JCCo": 1, "Contract": "12345.", "Department": "44"},
                {"JCCo": 2, "Contract": "55555.", "Department": "99"},
                {"JCCo": 1, "Contract": "55555.", "Department": "07"},
            ],
        )
        conn.execute(
            vt.bJCJM.insert(),
            [
                _job(1, "12345.", 1, "12345."),
                _job(1, "12345.-01", 1, "12345."),
                _job(1, "55555.", 1, "55555."),  # same contract code exists in JCCo 2 with dept 99
                _job(1, "77777.", 1, "77777."),  # contract missing from bJCCM
                _job(1, "30000.", 2, "12345."),  # soft-closed
                _job(1, "30001.", 0, "12345."),  # pending
                _job(2, "40000.", 1, "55555."),  # other company
            ],
        )
        conn.execute(
            vt.bPREH.insert(),
            [
                _employee(1, 1001, FirstName="Ana ", LastName="Lopez  "),
                _employee(1, 1002, TermDate=datetime(2019, 3, 1)),  # terminated long ago
                _employee(1, 1003, TermDate=datetime(2024, 5, 20)),  # terminated recently
                _employee(1, 1004, HireDate=datetime(2024, 2, 1), TermDate=datetime(2020, 6, 30)),  # rehired
                _employee(1, 1005, HireDate=None),  # never hired
                _employee(2, 1001, FirstName="Other", LastName="Company"),
            ],
        )
        conn.execute(
            vt.bPRJC.insert(),
            [
                _pay(1, 1001, "12345.", datetime(2024, 1, 7), "6.00"),
                _pay(1, 1001, "12345.", datetime(2024, 1, 7), "4.50"),  # same week and job: summed
                _pay(1, 1001, "55555.", datetime(2024, 1, 7), "2.00"),
                _pay(1, 1003, "12345.", datetime(2024, 1, 1), "8.00"),  # first day of the window
                _pay(1, 1003, "12345.", datetime(2024, 1, 8), "8.00"),  # after the window
                _pay(1, 1003, "12345.", datetime(2023, 12, 31), "8.00"),  # before the window
                _pay(2, 1001, "40000.", datetime(2024, 1, 7), "9.00", jcco=2),  # other PR company
            ],
        )
    yield engine
    engine.dispose()


def test_departments_are_those_of_the_pr_company(engine) -> None:
    client = VistaClient(engine, pr_company=1)
    assert client.departments() == [
        {"PRCo": 1, "PRDept": "07", "Description": "Mechanical", "udRegion": None},
        {"PRCo": 1, "PRDept": "44", "Description": "Electrical Central", "udRegion": "Central"},
    ]
    assert [d["Description"] for d in VistaClient(engine, pr_company=2).departments()] == ["Other company"]


def test_open_jobs_of_the_jc_company_with_their_contract_department(engine) -> None:
    jobs = VistaClient(engine, jc_company=1).open_jobs()
    assert [(j["Job"], j["Department"]) for j in jobs] == [
        ("12345.", "44"),
        ("12345.-01", "44"),
        ("55555.", "07"),
        ("77777.", None),
    ]
    first = jobs[0]
    assert first == {
        "JCCo": 1,
        "Job": "12345.",
        "Description": "Job 12345.",
        "Contract": "12345.",
        "JobStatus": 1,
        "ShipAddress": "1 Main St",
        "ShipCity": "Austin",
        "ShipState": "TX",
        "ShipZip": "78701",
        "Department": "44",
    }
    assert [(j["Job"], j["Department"]) for j in VistaClient(engine, jc_company=2).open_jobs()] == [
        ("40000.", "99")
    ]


def test_employees_without_window_are_all_of_the_company(engine) -> None:
    rows = VistaClient(engine, pr_company=1).employees()
    assert [r["Employee"] for r in rows] == [1001, 1002, 1003, 1004], "1005 has no HireDate"
    ana = rows[0]
    assert ana["FirstName"] == "Ana " and ana["LastName"] == "Lopez  ", "values are returned untrimmed"
    assert isinstance(ana["HireDate"], datetime) and ana["TermDate"] is None
    assert set(ana) == {
        "PRCo",
        "Employee",
        "FirstName",
        "MidName",
        "LastName",
        "Sex",
        "PRDept",
        "Email",
        "udEmpTitle",
        "BirthDate",
        "HireDate",
        "TermDate",
        "Phone",
        "CellPhone",
        "Address",
        "City",
        "State",
        "Zip",
    }
    assert [r["FirstName"] for r in VistaClient(engine, pr_company=2).employees()] == ["Other"]


def test_employees_never_hired_are_included_only_on_request(engine) -> None:
    rows = VistaClient(engine).employees(require_hire_date=False)
    assert 1005 in [r["Employee"] for r in rows]


def test_term_window_keeps_active_recent_terminations_and_rehires(engine) -> None:
    client = VistaClient(engine)
    rows = client.employees(term_window_days=30, as_of=date(2024, 6, 1))
    assert [r["Employee"] for r in rows] == [1001, 1003, 1004]
    assert [r["Employee"] for r in client.employees(term_window_days=5, as_of=date(2024, 6, 1))] == [
        1001,
        1004,
    ]
    # the window's first day is included
    assert 1003 in [
        r["Employee"] for r in client.employees(term_window_days=12, as_of=datetime(2024, 6, 1, 15))
    ]
    with pytest.raises(ValueError, match="term_window_days"):
        client.employees(term_window_days=-1)


def test_payroll_rows_of_the_week_summed_per_employee_job_and_week(engine) -> None:
    rows = VistaClient(engine, pr_company=1).payroll_rows(date(2024, 1, 1), date(2024, 1, 7))
    assert rows == [
        {
            "PRCo": 1,
            "Employee": 1001,
            "JCCo": 1,
            "Job": "12345.",
            "PREndDate": datetime(2024, 1, 7),
            "Hrs": Decimal("10.50"),
        },
        {
            "PRCo": 1,
            "Employee": 1001,
            "JCCo": 1,
            "Job": "55555.",
            "PREndDate": datetime(2024, 1, 7),
            "Hrs": Decimal("2.00"),
        },
        {
            "PRCo": 1,
            "Employee": 1003,
            "JCCo": 1,
            "Job": "12345.",
            "PREndDate": datetime(2024, 1, 1),
            "Hrs": Decimal("8.00"),
        },
    ]
    other = VistaClient(engine, pr_company=2).payroll_rows(date(2024, 1, 1), date(2024, 1, 7))
    assert [(r["Employee"], r["Job"]) for r in other] == [(1001, "40000.")]
    with pytest.raises(ValueError, match="before it starts"):
        VistaClient(engine).payroll_rows(date(2024, 1, 7), date(2024, 1, 1))


def test_fingerprints_change_only_with_the_company_rows(engine) -> None:
    client = VistaClient(engine, pr_company=1, jc_company=1)
    before = client.fingerprints()
    assert set(before) == {"bPREH", "bPRDP", "bJCJM", "bJCCM", "bPRJC"}
    assert client.query_count == 5
    assert client.fingerprints() == before

    with engine.begin() as conn:  # other companies' changes are invisible
        conn.execute(vt.bPREH.update().where(vt.bPREH.c.PRCo == 2).values(LastName="Changed"))
        conn.execute(vt.bJCJM.update().where(vt.bJCJM.c.JCCo == 2).values(JobStatus=3))
    assert client.fingerprints() == before

    with engine.begin() as conn:
        conn.execute(
            vt.bPREH.update()
            .where(vt.bPREH.c.Employee == 1001, vt.bPREH.c.PRCo == 1)
            .values(LastName="Lopez-Garcia")
        )
        conn.execute(vt.bJCJM.update().where(vt.bJCJM.c.Job == "12345.-01").values(JobStatus=2))
    after = client.fingerprints()
    assert after["bPREH"] != before["bPREH"] and after["bJCJM"] != before["bJCJM"]
    assert after["bPRDP"] == before["bPRDP"] and after["bPRJC"] == before["bPRJC"]

    with engine.begin() as conn:
        conn.execute(vt.bPRJC.insert(), [_pay(1, 1004, "12345.", datetime(2024, 1, 14), "1.00")])
    assert client.fingerprints()["bPRJC"] != after["bPRJC"]
    assert client.query_count == 25


def _tsql(stmt) -> str:
    return str(stmt.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True}))


def test_every_query_compiles_to_tsql_with_its_filters() -> None:
    client = VistaClient(None, pr_company=3, jc_company=4)  # type: ignore[arg-type]

    departments = _tsql(client.departments_query())
    assert "FROM [bPRDP]" in departments and "[bPRDP].[PRCo] = 3" in departments

    jobs = _tsql(client.open_jobs_query())
    assert "[bJCJM] LEFT OUTER JOIN [bJCCM]" in jobs
    assert "[bJCCM].[JCCo] = [bJCJM].[JCCo]" in jobs and "[bJCCM].[Contract] = [bJCJM].[Contract]" in jobs
    assert "[bJCJM].[JCCo] = 4" in jobs and "[bJCJM].[JobStatus] = 1" in jobs

    employees = _tsql(client.employees_query(30, date(2024, 6, 1)))
    assert "[bPREH].[PRCo] = 3" in employees
    assert "[bPREH].[TermDate] >= '2024-05-02 00:00:00'" in employees
    assert "[bPREH].[HireDate] IS NOT NULL" in employees
    where = _tsql(client.employees_query()).split("WHERE", 1)[1]
    assert "TermDate" not in where, "no window: every terminated employee"

    payroll = _tsql(client.payroll_rows_query(date(2024, 1, 1), date(2024, 1, 7)))
    assert "[bPRJC].[PRCo] = 3" in payroll
    assert "[bPRJC].[PREndDate] >= '2024-01-01 00:00:00'" in payroll
    assert "[bPRJC].[PREndDate] < '2024-01-08 00:00:00'" in payroll
    assert re.search(r"sum\(\[bPRJC\]\.\[Hrs\]\) AS \[Hrs\]", payroll)
    assert (
        "GROUP BY [bPRJC].[PRCo], [bPRJC].[Employee], [bPRJC].[JCCo], [bPRJC].[Job], [bPRJC].[PREndDate]"
        in payroll
    )

    company_filter = {
        "bPREH": "[bPREH].[PRCo] = 3",
        "bPRDP": "[bPRDP].[PRCo] = 3",
        "bJCJM": "[bJCJM].[JCCo] = 4",
        "bJCCM": "[bJCCM].[JCCo] = 4",
        "bPRJC": "[bPRJC].[PRCo] = 3",
    }
    for table, stmt in client.fingerprint_queries().items():
        sql = _tsql(stmt)
        assert company_filter[table] in sql, table
        assert "LEN(" in sql or table == "bPRJC"
        assert "CAST(" in sql  # sums as BIGINT: SUM(int) overflows on SQL Server
