"""Deterministic synthetic data set for the sandbox: Vista SQLite + emulator fixture files.

`generate_dataset(directory)` writes

* `vista.db`        SQLite with the DESIGN §6 Vista tables (`clients.vista_tables.metadata`),
* `graph.json`      `{"users": [...]}`  (Graph user fields id, employeeId, mail, userPrincipalName, accountEnabled),
* `samsara.json`    `{"vehicles": [...], "drivers": [...]}`  (Samsara API shapes),
* `safetyamp.json`  `{"users", "sites", "site_clusters", "user_titles", "roles", "asset_types", "assets"}`,
* `summary.json`    the returned `DatasetSummary`.

The same seed and `as_of` always give the same content. Every kind of data-quality problem real
Vista extracts have is planted on purpose; `DatasetSummary.cases` names examples of each kind.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Table, create_engine

from safetyamp_pipeline.clients import vista_tables
from safetyamp_pipeline.sandbox.data_graph import build_graph_users
from safetyamp_pipeline.sandbox.data_safetyamp import build_safetyamp
from safetyamp_pipeline.sandbox.data_samsara import build_samsara
from safetyamp_pipeline.sandbox.data_vista import PAYROLL_WEEKS, PR_COMPANY, VistaData, build_vista

VISTA_DB = "vista.db"
GRAPH_JSON = "graph.json"
SAMSARA_JSON = "samsara.json"
SAFETYAMP_JSON = "safetyamp.json"
SUMMARY_JSON = "summary.json"

DEFAULT_EMPLOYEES = 1400
CASE_EXAMPLES = 20


@dataclass(frozen=True)
class DatasetSize:
    employees: int
    departments: int
    open_jobs: int
    vehicles: int


def dataset_size(employees: int, jobs: int | None = None, vehicles: int | None = None) -> DatasetSize:
    """Sizes grow sub-linearly with head count: 1,400 -> 45 departments, 580 open jobs, 80 vehicles;
    20,000 -> ~130 departments, ~4,300 open jobs (~5,100 jobs in all), ~800 vehicles."""
    if employees < 30:
        raise ValueError(f"employees must be at least 30 to carry every planted case, got {employees}")
    scale = employees / DEFAULT_EMPLOYEES
    return DatasetSize(
        employees=employees,
        departments=max(8, round(45 * scale**0.4)),
        open_jobs=jobs if jobs is not None else max(12, round(580 * scale**0.75)),
        vehicles=vehicles if vehicles is not None else max(5, round(80 * scale**0.866)),
    )


@dataclass
class DatasetSummary:
    seed: int
    as_of: str
    employees_active: int
    employees_terminated: int
    jobs_open: int
    jobs_closed: int
    jobs_pending: int
    departments: int
    regions: int
    payroll_rows: int
    payroll_weeks: int
    vehicles: int
    drivers: int
    graph_users: int
    other_company_rows: int
    # messiness kind -> up to CASE_EXAMPLES natural keys (employee numbers, job numbers, PRDept
    # codes, Samsara vehicle/driver ids) where it was planted
    cases: dict[str, list[str]] = field(default_factory=dict)


def generate_dataset(
    directory: Path,
    employees: int = DEFAULT_EMPLOYEES,
    seed: int = 7,
    as_of: date | None = None,
    jobs: int | None = None,
    vehicles: int | None = None,
) -> DatasetSummary:
    """Write the data set into `directory` (created if missing; existing files are replaced).

    `jobs` is the number of open company-1 jobs and `vehicles` the number of Samsara vehicles;
    both default to sizes scaled from `employees`. `as_of` (default today) anchors every date.
    """
    directory = Path(directory)
    as_of = as_of or date.today()
    size = dataset_size(employees, jobs, vehicles)
    master = random.Random(seed)
    # One stream per source, so resizing one part leaves the others unchanged.
    vista_rng, graph_rng, samsara_rng = (random.Random(master.getrandbits(64)) for _ in range(3))

    vista = build_vista(
        vista_rng, employees=size.employees, departments=size.departments, open_jobs=size.open_jobs, as_of=as_of
    )
    graph = {"users": build_graph_users(graph_rng, vista)}
    samsara = build_samsara(samsara_rng, vista, size.vehicles, as_of)
    safetyamp = build_safetyamp(as_of)

    directory.mkdir(parents=True, exist_ok=True)
    write_vista_db(directory / VISTA_DB, vista)
    _write_json(directory / GRAPH_JSON, graph)
    _write_json(directory / SAMSARA_JSON, samsara)
    _write_json(directory / SAFETYAMP_JSON, safetyamp)
    summary = summarize(vista, graph, samsara, seed=seed, as_of=as_of)
    _write_json(directory / SUMMARY_JSON, asdict(summary))
    return summary


def write_vista_db(path: Path, data: VistaData) -> None:
    """Create the Vista tables and bulk-insert every row in one transaction."""
    for stale in (path, path.with_name(path.name + "-journal")):
        stale.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    try:
        vista_tables.metadata.create_all(engine)
        with engine.begin() as conn:
            for table, rows in (
                (vista_tables.bPRDP, data.departments),
                (vista_tables.bJCCM, data.contracts),
                (vista_tables.bJCJM, data.jobs),
                (vista_tables.bPREH, data.employees),
                (vista_tables.bPRJC, data.payroll),
            ):
                _bulk_insert(conn, table, rows)
    finally:
        engine.dispose()


def _bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """executemany through the DBAPI cursor with the columns' own bind conversions.

    SQLAlchemy's per-row parameter handling costs more than SQLite itself for the ~0.5 M payroll
    rows of a 20,000-employee set; converting each distinct value once keeps 20k under 20 s, and
    the stored values stay exactly what `conn.execute(insert(table), rows)` would store.
    """
    if not rows:
        return
    dialect = conn.dialect
    columns = list(table.columns)
    converters = []
    for column in columns:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is None:
            converters.append(None)
        else:
            cache: dict = {}
            converters.append(lambda v, p=process, c=cache: c[v] if v in c else c.setdefault(v, p(v)))
    names = [column.name for column in columns]
    params = [
        tuple(row[n] if f is None or row[n] is None else f(row[n]) for n, f in zip(names, converters, strict=True))
        for row in rows
    ]
    quote = dialect.identifier_preparer.quote  # SQLite's DBAPI uses the qmark paramstyle
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    conn.exec_driver_sql(sql, params)


def summarize(vista: VistaData, graph: dict, samsara: dict, *, seed: int, as_of: date) -> DatasetSummary:
    employees = [e for e in vista.employees if e["PRCo"] == PR_COMPANY]
    jobs = [j for j in vista.jobs if j["JCCo"] == PR_COMPANY]
    departments = [d for d in vista.departments if d["PRCo"] == PR_COMPANY]
    payroll = sum(1 for r in vista.payroll if r["PRCo"] == PR_COMPANY)
    other = (
        len(vista.employees) - len(employees) + len(vista.jobs) - len(jobs)
        + len(vista.departments) - len(departments) + len(vista.payroll) - payroll
        + sum(1 for c in vista.contracts if c["JCCo"] != PR_COMPANY)
    )
    return DatasetSummary(
        seed=seed,
        as_of=as_of.isoformat(),
        employees_active=sum(1 for e in employees if e["TermDate"] is None),
        employees_terminated=sum(1 for e in employees if e["TermDate"] is not None),
        jobs_open=sum(1 for j in jobs if j["JobStatus"] == 1),
        jobs_closed=sum(1 for j in jobs if j["JobStatus"] in (2, 3)),
        jobs_pending=sum(1 for j in jobs if j["JobStatus"] == 0),
        departments=len(departments),
        regions=len({(d["udRegion"] or "").strip() for d in departments} - {""}),
        payroll_rows=payroll,
        payroll_weeks=PAYROLL_WEEKS,
        vehicles=len(samsara["vehicles"]),
        drivers=len(samsara["drivers"]),
        graph_users=len(graph["users"]),
        other_company_rows=other,
        cases={kind: vista.keys(kind)[:CASE_EXAMPLES] for kind in sorted(vista.cases)},
    )


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
