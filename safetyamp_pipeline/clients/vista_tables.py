"""SQLAlchemy Core definitions of the Vista tables the pipeline reads (DESIGN §6).

Only the columns the pipeline reads are declared, so a database holding exactly these columns is
enough (the sandbox's SQLite file is created from this metadata). Types are portable SQLAlchemy
types with SQL Server variants matching Vista's user-defined types (bCompany tinyint, bDate
smalldatetime, ...), so the same `Table` objects build queries for SQLite and compile to T-SQL.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, Numeric, SmallInteger, String, Table
from sqlalchemy.dialects import mssql

metadata = MetaData()

# bCompany is tinyint in Vista; SQLite has no tinyint, so SmallInteger elsewhere.
Company = SmallInteger().with_variant(mssql.TINYINT(), "mssql")
# bDate is smalldatetime (minute precision, values at midnight in practice).
VistaDate = DateTime().with_variant(mssql.SMALLDATETIME(), "mssql")
Status = SmallInteger().with_variant(mssql.TINYINT(), "mssql")


def _key(name: str, type_) -> Column:
    return Column(name, type_, primary_key=True, autoincrement=False, nullable=False)


bPREH = Table(
    "bPREH",
    metadata,
    _key("PRCo", Company),
    _key("Employee", Integer),
    Column("FirstName", String(30)),
    Column("MidName", String(15)),
    Column("LastName", String(30), nullable=False),
    # Vista enforces 'M'/'F' by trigger; real extracts still show NULLs, so nullable here.
    Column("Sex", String(1)),
    Column("PRDept", String(10), nullable=False),
    Column("Email", String(60)),
    Column("udEmpTitle", String(60)),
    Column("BirthDate", VistaDate),
    Column("HireDate", VistaDate),
    Column("TermDate", VistaDate),
    Column("Phone", String(20)),
    Column("CellPhone", String(20)),
    Column("Address", String(60)),
    Column("City", String(30)),
    Column("State", String(4)),
    Column("Zip", String(12)),
)

bPRDP = Table(
    "bPRDP",
    metadata,
    _key("PRCo", Company),
    _key("PRDept", String(10)),
    Column("Description", String(60)),
    Column("udRegion", String(30)),
)

bJCJM = Table(
    "bJCJM",
    metadata,
    _key("JCCo", Company),
    _key("Job", String(10)),
    Column("Description", String(60)),
    Column("Contract", String(10)),
    # 0 pending, 1 open, 2 soft-closed, 3 hard-closed.
    Column("JobStatus", Status, nullable=False),
    Column("ShipAddress", String(60)),
    Column("ShipCity", String(30)),
    Column("ShipState", String(4)),
    Column("ShipZip", String(12)),
)

bJCCM = Table(
    "bJCCM",
    metadata,
    _key("JCCo", Company),
    _key("Contract", String(10)),
    Column("Department", String(10), nullable=False),
)

# Real bPRJC has a 14-column unique key (phase, cost type, pay sequence, ...); with only the columns
# read here it has no natural key, so none is declared: rows may repeat (several phases a week).
bPRJC = Table(
    "bPRJC",
    metadata,
    Column("PRCo", Company, nullable=False),
    Column("Employee", Integer, nullable=False),
    Column("JCCo", Company, nullable=False),
    Column("Job", String(10), nullable=False),
    Column("PREndDate", VistaDate, nullable=False),
    Column("Hrs", Numeric(10, 2)),
    Index("ix_bPRJC_PRCo_PREndDate", "PRCo", "PREndDate"),
    Index("ix_bPRJC_PRCo_Employee", "PRCo", "Employee"),
)

TABLES: dict[str, Table] = {t.name: t for t in (bPREH, bPRDP, bJCJM, bJCCM, bPRJC)}
