"""A day of Vista churn, applied to the sandbox's Vista database: some employees edited (mixed
fields), new hires, terminations and new open jobs. Each change touches exactly one SafetyAmp
record, so ``Churn.expected_writes`` is the number of requests a frugal sync sends for it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

# Employee columns edited in turn (each maps to one compared SafetyAmp user field).
EDITS = ("FirstName", "LastName", "Address", "CellPhone", "udEmpTitle", "City")
EMPLOYEE_COLUMNS = (
    "PRCo", "Employee", "FirstName", "MidName", "LastName", "Sex", "PRDept", "Email", "udEmpTitle",
    "BirthDate", "HireDate", "TermDate", "Phone", "CellPhone", "Address", "City", "State", "Zip",
)
JOB_COLUMNS = ("JCCo", "Job", "Description", "Contract", "JobStatus", "ShipAddress", "ShipCity", "ShipState", "ShipZip")


@dataclass
class Churn:
    """What was changed, by SafetyAmp natural key."""

    edited: dict[str, str] = field(default_factory=dict)  # employee -> edited column
    hired: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    new_jobs: list[str] = field(default_factory=list)

    @property
    def expected_writes(self) -> int:
        return len(self.edited) + len(self.hired) + len(self.terminated) + len(self.new_jobs)

    @property
    def user_keys(self) -> set[str]:
        return set(self.edited) | set(self.hired) | set(self.terminated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "edited": len(self.edited),
            "edited_columns": sorted(set(self.edited.values())),
            "hired": len(self.hired),
            "terminated": len(self.terminated),
            "new_jobs": len(self.new_jobs),
            "expected_writes": self.expected_writes,
        }


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())[-10:]


def _synced_employees(state: dict[str, list[dict]]) -> list[str]:
    """Employees with an active SafetyAmp user who drive no vehicle (safe to edit or terminate)."""
    drivers = {a.get("current_user_id") for a in state.get("assets", []) if a.get("current_user_id")}
    keys = {
        str(u["emp_id"]).strip()
        for u in state["users"]
        if u.get("system_access") and str(u.get("emp_id") or "").strip().isdigit() and u.get("id") not in drivers
    }
    return sorted(keys, key=int)


def _sharing_unique_values(db: sqlite3.Connection) -> set[str]:
    holders: dict[str, set[str]] = {}
    for emp, cell, phone, email in db.execute("SELECT Employee, CellPhone, Phone, Email FROM bPREH WHERE PRCo = 1"):
        for value in (_digits(cell), _digits(phone), str(email or "").strip().casefold()):
            if value:
                holders.setdefault(value, set()).add(str(emp))
    return {emp for emps in holders.values() if len(emps) > 1 for emp in emps}


class _PhoneSource:
    """Fresh valid NANP mobile numbers nobody in Vista or SafetyAmp holds yet."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.next = 0

    def __call__(self) -> str:
        while True:
            self.next += 1
            number = f"(504) 7{self.next // 10000 % 10}{self.next // 1000 % 10}-{self.next % 1000:04d}"
            if _digits(number) not in self.taken:
                self.taken.add(_digits(number))
                return number


def apply_churn(
    vista_path: str,
    state: dict[str, list[dict]],
    *,
    share: float = 0.01,
    hires: int = 2,
    terminations: int = 2,
    new_jobs: int = 1,
    round_no: int = 1,
    today: date | None = None,
    edits: int | None = None,
) -> Churn:
    """Edit ``share`` of the active employees (one column each, in turn), hire, terminate and open
    jobs in the Vista SQLite file; ``state`` is SafetyAmp's current state (to pick synced records
    and titles); ``edits`` fixes the number of edited employees instead. ``round_no`` makes a second
    churn on the same data touch other records."""
    today = today or date.today()
    churn = Churn()
    titles = sorted({str(t["name"]) for t in state["user_titles"] if t.get("name")})
    candidates = _synced_employees(state)
    with sqlite3.connect(vista_path) as db:
        db.row_factory = sqlite3.Row
        active = db.execute("SELECT COUNT(*) FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL").fetchone()[0]
        edits = edits if edits is not None else max(1, round(active * share))
        taken = {_digits(v) for (v,) in db.execute("SELECT CellPhone FROM bPREH UNION SELECT Phone FROM bPREH")}
        taken |= {_digits(u.get("mobile_phone")) for u in state["users"]} | {_digits(u.get("work_phone")) for u in state["users"]}
        phone = _PhoneSource(taken)
        # An employee sharing a phone or e-mail with another would, once edited or terminated,
        # release that value to the other (a second, legitimate write): only unshared ones are picked.
        sharing = _sharing_unique_values(db)
        candidates = [c for c in candidates if c not in sharing]
        needed = edits + terminations
        step = max(2, len(candidates) // (needed + 1))
        picked = candidates[round_no - 1 :: step][:needed]
        if len(picked) != needed:
            raise RuntimeError(f"only {len(candidates)} synced employees: too few for {needed} distinct edits")
        for i, emp in enumerate(picked[:edits]):
            column = EDITS[i % len(EDITS)]
            row = db.execute("SELECT * FROM bPREH WHERE PRCo = 1 AND Employee = ?", (int(emp),)).fetchone()
            if column == "CellPhone":
                value: Any = phone()
            elif column == "udEmpTitle":
                current = str(row["udEmpTitle"] or "").strip().casefold()
                value = next(t for t in titles[(i + round_no) % len(titles):] + titles if t.casefold() != current)
            else:
                value = f"{str(row[column] or '').strip()[:20]} Bench{round_no}{chr(65 + i % 26)}"
            db.execute(f"UPDATE bPREH SET {column} = ? WHERE PRCo = 1 AND Employee = ?", (value, int(emp)))
            churn.edited[emp] = column
        term_day = f"{today - timedelta(days=1):%Y-%m-%d} 00:00:00.000000"
        for emp in picked[edits:]:
            db.execute("UPDATE bPREH SET TermDate = ? WHERE PRCo = 1 AND Employee = ?", (term_day, int(emp)))
            churn.terminated.append(emp)

        untouched = set(candidates) - set(picked)
        # A new hire is a copy of a synced employee whose department has a region (so a home site).
        template = next(
            row
            for row in db.execute(
                "SELECT e.* FROM bPREH e JOIN bPRDP d ON d.PRCo = e.PRCo AND d.PRDept = e.PRDept "
                "WHERE e.PRCo = 1 AND e.TermDate IS NULL AND TRIM(COALESCE(d.udRegion, '')) != '' ORDER BY e.Employee DESC"
            )
            if str(row["Employee"]) in untouched
        )
        site_keys = {str(s.get("ext_id") or "").strip() for s in state["sites"]}
        job_template = next(
            dict(r)
            for r in db.execute("SELECT * FROM bJCJM WHERE JCCo = 1 AND JobStatus = 1 ORDER BY Job")
            if str(r["Job"]).strip() in site_keys
        )
        week_end = db.execute("SELECT MAX(PREndDate) FROM bPRJC WHERE PRCo = 1").fetchone()[0]
        highest = db.execute("SELECT MAX(Employee) FROM bPREH").fetchone()[0]
        for n in range(hires):
            emp = highest + 1 + n
            values = dict(template)
            values.update(
                Employee=emp,
                FirstName=f"Newhire{round_no}{chr(65 + n)}",
                LastName=f"Bench{emp}",
                Email=f"newhire.{emp}@bench.example.com",
                CellPhone=phone(),
                Phone=None,
                HireDate=f"{today - timedelta(days=2):%Y-%m-%d} 00:00:00.000000",
                TermDate=None,
            )
            db.execute(
                f"INSERT INTO bPREH ({', '.join(EMPLOYEE_COLUMNS)}) VALUES ({', '.join('?' for _ in EMPLOYEE_COLUMNS)})",
                [values[c] for c in EMPLOYEE_COLUMNS],
            )
            # New hires book hours on a synced job this payroll week, which gives them a home site.
            db.execute(
                "INSERT INTO bPRJC (PRCo, Employee, JCCo, Job, PREndDate, Hrs) VALUES (1, ?, 1, ?, ?, 40)",
                (emp, job_template["Job"], week_end),
            )
            churn.hired.append(str(emp))
        for n in range(new_jobs):
            job = f"9{round_no}{n:03d}."
            values = {**job_template, "Job": job, "Description": f"Benchmark new job {round_no}-{n}"}
            db.execute(
                f"INSERT INTO bJCJM ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)})",
                [values[c] for c in JOB_COLUMNS],
            )
            churn.new_jobs.append(job)
    return churn
