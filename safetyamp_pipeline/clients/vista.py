"""Read-only queries on Viewpoint Vista, built with SQLAlchemy Core on `vista_tables`.

The same statements run on the sandbox's SQLite file and compile to T-SQL for `mssql+pyodbc`.
Every query filters on the configured company (PRCo / JCCo); nothing is hard-coded, no date.
Rows come back as plain dicts keyed by the Vista column names, values in their database types.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Date, Table, and_, cast, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ColumnElement, Select

from safetyamp_pipeline.clients import vista_tables as vt

EMPLOYEE_COLUMNS = (
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
)
JOB_COLUMNS = (
    "JCCo",
    "Job",
    "Description",
    "Contract",
    "JobStatus",
    "ShipAddress",
    "ShipCity",
    "ShipState",
    "ShipZip",
)
OPEN_JOB_STATUS = 1


class VistaClient:
    """`VistaClient(engine, pr_company=1, jc_company=1)`; `query_count` counts executed queries."""

    def __init__(self, engine: Engine, pr_company: int = 1, jc_company: int = 1) -> None:
        self.engine = engine
        self.pr_company = int(pr_company)
        self.jc_company = int(jc_company)
        self.query_count = 0

    # --- statements (public so they can be compiled and inspected) ---------------------------

    def departments_query(self) -> Select:
        dp = vt.bPRDP
        return (
            select(dp.c.PRCo, dp.c.PRDept, dp.c.Description, dp.c.udRegion)
            .where(dp.c.PRCo == self.pr_company)
            .order_by(dp.c.PRDept)
        )

    def open_jobs_query(self) -> Select:
        jm, cm = vt.bJCJM, vt.bJCCM
        return (
            select(*(jm.c[name] for name in JOB_COLUMNS), cm.c.Department)
            .select_from(jm.outerjoin(cm, and_(cm.c.JCCo == jm.c.JCCo, cm.c.Contract == jm.c.Contract)))
            .where(jm.c.JCCo == self.jc_company, jm.c.JobStatus == OPEN_JOB_STATUS)
            .order_by(jm.c.Job)
        )

    def employees_query(
        self,
        term_window_days: int | None = None,
        as_of: date | None = None,
        require_hire_date: bool = True,
    ) -> Select:
        eh = vt.bPREH
        stmt = (
            select(*(eh.c[name] for name in EMPLOYEE_COLUMNS))
            .where(eh.c.PRCo == self.pr_company)
            .order_by(eh.c.Employee)
        )
        if require_hire_date:
            # The legacy rule: a bPREH row without HireDate is not (yet) an employee.
            stmt = stmt.where(eh.c.HireDate.is_not(None))
        if term_window_days is not None:
            if term_window_days < 0:
                raise ValueError(f"term_window_days must be >= 0, got {term_window_days}")
            today = as_of if as_of is not None else date.today()
            if isinstance(today, datetime):
                today = today.date()
            since = _bound(eh.c.TermDate, today - timedelta(days=term_window_days))
            stmt = stmt.where(or_(_still_employed(eh), eh.c.TermDate >= since))
        return stmt

    def payroll_rows_query(self, week_start: date, week_end: date) -> Select:
        jc = vt.bPRJC
        if week_end < week_start:
            raise ValueError(f"payroll window ends ({week_end}) before it starts ({week_start})")
        start = _bound(jc.c.PREndDate, week_start)
        # Half-open upper bound: PREndDate may carry a time of day (smalldatetime).
        end = _bound(jc.c.PREndDate, week_end + timedelta(days=1))
        group = (jc.c.PRCo, jc.c.Employee, jc.c.JCCo, jc.c.Job, jc.c.PREndDate)
        return (
            select(*group, func.sum(jc.c.Hrs).label("Hrs"))
            .where(jc.c.PRCo == self.pr_company, jc.c.PREndDate >= start, jc.c.PREndDate < end)
            .group_by(*group)
            .order_by(jc.c.Employee, jc.c.PREndDate, jc.c.JCCo, jc.c.Job)
        )

    def fingerprint_queries(self) -> dict[str, Select]:
        """One aggregate query per source table, each filtered on its company.

        Vista's base tables (as far as DESIGN §6 reads them) have no rowversion/timestamp column,
        so a change is detected from portable aggregates: row count, sums of key numbers, the
        latest dates and the total length of the text columns. An edit keeping all of those equal
        (e.g. a same-length text change) is missed until the next scheduled full sync.
        """
        eh, dp, jm, cm, jc = vt.bPREH, vt.bPRDP, vt.bJCJM, vt.bJCCM, vt.bPRJC
        return {
            "bPREH": select(
                func.count().label("row_count"),
                _sum(eh.c.Employee).label("employees"),
                func.max(eh.c.HireDate).label("max_hire"),
                func.max(eh.c.TermDate).label("max_term"),
                func.count(eh.c.TermDate).label("terminated"),
                _text_length(eh, exclude=("PRCo", "Employee", "BirthDate", "HireDate", "TermDate")),
            ).where(eh.c.PRCo == self.pr_company),
            "bPRDP": select(func.count().label("row_count"), _text_length(dp, exclude=("PRCo",))).where(
                dp.c.PRCo == self.pr_company
            ),
            "bJCJM": select(
                func.count().label("row_count"),
                _sum(jm.c.JobStatus).label("statuses"),
                _text_length(jm, exclude=("JCCo", "JobStatus")),
            ).where(jm.c.JCCo == self.jc_company),
            "bJCCM": select(func.count().label("row_count"), _text_length(cm, exclude=("JCCo",))).where(
                cm.c.JCCo == self.jc_company
            ),
            "bPRJC": select(
                func.count().label("row_count"),
                func.max(jc.c.PREndDate).label("max_end"),
                _sum(jc.c.Employee).label("employees"),
                func.sum(jc.c.Hrs).label("hours"),
            ).where(jc.c.PRCo == self.pr_company),
        }

    # --- reads ------------------------------------------------------------------------------

    def departments(self) -> list[dict[str, Any]]:
        """PR departments (bPRDP) of the PR company."""
        return self._fetch(self.departments_query())

    def open_jobs(self) -> list[dict[str, Any]]:
        """Open jobs (bJCJM JobStatus 1) of the JC company, with their contract's `Department`
        (None when the contract is missing from bJCCM)."""
        return self._fetch(self.open_jobs_query())

    def employees(
        self,
        term_window_days: int | None = None,
        as_of: date | None = None,
        require_hire_date: bool = True,
    ) -> list[dict[str, Any]]:
        """Employees (bPREH) of the PR company with a HireDate (unless `require_hire_date=False`):
        active ones (TermDate NULL) and terminated ones — all of them when `term_window_days` is
        None, else those terminated on or after `as_of - term_window_days` (default as_of: today),
        plus rehires whose HireDate is after a TermDate nobody cleared."""
        return self._fetch(self.employees_query(term_window_days, as_of, require_hire_date))

    def payroll_rows(self, week_start: date, week_end: date) -> list[dict[str, Any]]:
        """bPRJC hours of the PR company with PREndDate in [week_start, week_end], summed per
        (Employee, JCCo, Job, PREndDate)."""
        return self._fetch(self.payroll_rows_query(week_start, week_end))

    def fingerprints(self) -> dict[str, str]:
        """Table name → a short text that changes when the table's rows (of the company) change."""
        out: dict[str, str] = {}
        for table, stmt in self.fingerprint_queries().items():
            row = self._fetch(stmt)[0]
            out[table] = ";".join(f"{k}={_plain(v)}" for k, v in row.items())
        return out

    def _fetch(self, stmt: Select) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self.query_count += 1
            result = conn.execute(stmt)
            return [dict(row) for row in result.mappings()]


def _bound(column: ColumnElement[Any], day: date) -> date | datetime:
    """A day as the column's type wants it (midnight datetime for DATETIME/smalldatetime)."""
    if isinstance(column.type, Date):
        return day
    return datetime.combine(day, time.min)


def _sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # SUM(int) overflows int on SQL Server past 2^31 (1400 six-digit employee numbers get close).
    return func.coalesce(func.sum(cast(column, BigInteger)), 0)


def _text_length(table: Any, exclude: tuple[str, ...]) -> ColumnElement[Any]:
    lengths = [func.coalesce(func.length(col), 0) for col in table.c if col.name not in exclude]
    total = lengths[0]
    for part in lengths[1:]:
        total = total + part
    return func.coalesce(func.sum(cast(total, BigInteger)), 0).label("text_length")


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else str(value)


def _still_employed(eh: Table) -> ColumnElement[bool]:
    """The rule of `core/rows.py::is_terminated` in SQL: terminated only when TermDate is set and
    not earlier than HireDate; a HireDate after the TermDate is a rehire (the old TermDate is often
    left in place) and is active."""
    return or_(eh.c.TermDate.is_(None), and_(eh.c.HireDate.is_not(None), eh.c.HireDate > eh.c.TermDate))
