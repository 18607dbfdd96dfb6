"""Synthetic Vista rows (bPRDP, bJCCM, bJCJM, bPREH, bPRJC) with the messiness real extracts carry.

Every kind of data-quality problem is planted deliberately and its examples are listed in
`VistaData.cases` (kind -> natural keys), so tests and demos can find them.
"""

from __future__ import annotations

import random
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from safetyamp_pipeline.sandbox import data_pools as pools

PR_COMPANY = 1
OTHER_COMPANY = 2
COMPANY_DOMAIN = "iandi-co.example"
OFFICE_PHONE = "225-644-1000"
PAYROLL_WEEKS = 52
UNKNOWN_CONTRACT_DEPARTMENTS = ("99", "ZZ")

_BAD_EXCHANGES = {"555", "950", "958", "959", "976"}


@dataclass
class VistaData:
    departments: list[dict] = field(default_factory=list)
    contracts: list[dict] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    employees: list[dict] = field(default_factory=list)
    payroll: list[dict] = field(default_factory=list)
    # kind -> natural keys, kept as an insertion-ordered set
    cases: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))

    def note(self, kind: str, key: object) -> None:
        self.cases[kind][str(key)] = None

    def keys(self, kind: str) -> list[str]:
        return list(self.cases.get(kind, ()))


def payroll_weeks(as_of: date, weeks: int = PAYROLL_WEEKS) -> list[date]:
    """Weekly PREndDate values (Sundays), oldest first, the last one ending the week of `as_of`."""
    last = as_of + timedelta(days=6 - as_of.weekday())
    return [last - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


def _pad(rng: random.Random, text: str, rate: float = 0.25) -> str:
    """Vista char-ish columns often come back with trailing blanks."""
    return text + " " * rng.randint(1, 4) if rng.random() < rate else text


def valid_phone(rng: random.Random, area: str) -> str:
    while True:
        exchange = f"{rng.randint(200, 999)}"
        if exchange[1:] != "11" and exchange not in _BAD_EXCHANGES:
            break
    return f"{area}-{exchange}-{rng.randint(0, 9999):04d}"


def _reformat_phone(rng: random.Random, phone: str) -> str:
    area, exchange, line = phone.split("-")
    style = rng.random()
    if style < 0.75:
        return phone
    if style < 0.9:
        return f"({area}) {exchange}-{line}"
    return f"{area}{exchange}{line}"


# --------------------------------------------------------------------------------------------- departments


def build_departments(rng: random.Random, data: VistaData, count: int) -> list[str]:
    """bPRDP rows for PRCo 1 (+ a few of company 2); returns company-1 department codes."""
    count = max(count, 6)
    width = 2 if count <= 90 else 3
    numbers = sorted(rng.sample(range(1, 10**width), count))
    codes = [f"{n:0{width}d}" for n in numbers]
    names = list(pools.DEPARTMENT_NAMES)
    for i, code in enumerate(codes):
        name = names[i % len(names)]
        if i >= len(names):
            name = f"{name} {i // len(names) + 1}"
        region: str | None = pools.REGIONS[i] if i < len(pools.REGIONS) else rng.choice(pools.REGIONS)
        data.departments.append(
            {"PRCo": PR_COMPANY, "PRDept": code, "Description": name, "udRegion": region}
        )
    # Messiness: a department without region (NULL), one with a blank region, one padded region.
    tail = data.departments[-3:]
    tail[0]["udRegion"] = None
    data.note("department_region_null", tail[0]["PRDept"])
    tail[1]["udRegion"] = "   "
    data.note("department_region_blank", tail[1]["PRDept"])
    padded = data.departments[len(pools.REGIONS)]
    padded["udRegion"] = f"{padded['udRegion']} "
    data.note("department_region_padded", padded["PRDept"])
    padded_desc = data.departments[len(pools.REGIONS) + 1]
    padded_desc["Description"] = f"{padded_desc['Description']}  "
    data.note("department_description_padded", padded_desc["PRDept"])
    # Another company reusing the same department codes: must never leak into company 1.
    for code in codes[:3]:
        data.departments.append(
            {"PRCo": OTHER_COMPANY, "PRDept": code, "Description": "Other Company Dept", "udRegion": "Elsewhere"}
        )
    data.note("other_company_department", codes[0])
    return codes


# ------------------------------------------------------------------------------------------------- jobs


def _address(rng: random.Random) -> tuple[str, str, str, str, str]:
    city, state, zip_prefix, areas = rng.choice(pools.CITIES)
    street = f"{rng.randint(100, 19999)} {rng.choice(pools.STREET_NAMES)}"
    zip_code = f"{zip_prefix}{rng.randint(0, 99):02d}"
    if rng.random() < 0.6:
        zip_code += f"-{rng.randint(1, 9999):04d}"
    return street, city, state, zip_code, rng.choice(areas)


def build_jobs(
    rng: random.Random, data: VistaData, dept_codes: list[str], open_count: int
) -> dict[int, list[str]]:
    """bJCCM + bJCJM rows; returns job numbers by JobStatus for company 1."""
    open_count = max(open_count, 12)
    closed_count = max(4, round(open_count * 0.18))
    pending_count = max(2, round(open_count * 0.01))
    total = open_count + closed_count + pending_count
    statuses = [1] * open_count + [2 + (i % 2) for i in range(closed_count)] + [0] * pending_count
    rng.shuffle(statuses)
    numbers = sorted(rng.sample(range(10000, 100000), total))
    dept_weights = [rng.uniform(0.3, 3.0) for _ in dept_codes]
    by_status: dict[int, list[str]] = defaultdict(list)
    contracts: dict[str, str] = {}
    previous_contract: str | None = None
    for number, status in zip(numbers, statuses, strict=True):
        job = f"{number}."
        # Several jobs often roll up to one contract.
        if previous_contract is not None and rng.random() < 0.2:
            contract = previous_contract
        else:
            contract = job
            contracts[contract] = rng.choices(dept_codes, dept_weights)[0]
        previous_contract = contract
        street, city, state, zip_code, _ = _address(rng)
        description = f"{rng.choice(pools.JOB_CLIENTS)} - {rng.choice(pools.JOB_SCOPES)}"
        row = {
            "JCCo": PR_COMPANY,
            "Job": job,
            "Description": _pad(rng, description, 0.1),
            "Contract": contract,
            "JobStatus": status,
            "ShipAddress": street if rng.random() > 0.05 else None,
            "ShipCity": city if rng.random() > 0.03 else None,
            "ShipState": state if rng.random() > 0.03 else None,
            "ShipZip": zip_code if rng.random() > 0.04 else None,
        }
        data.jobs.append(row)
        by_status[status].append(job)

    open_jobs = [j for j in data.jobs if j["JobStatus"] == 1]
    # Contracts whose JC department matches no PR department (and so no cluster).
    own_contracts = [j for j in open_jobs if j["Contract"] == j["Job"]]
    for row, unknown in zip(own_contracts[:2], UNKNOWN_CONTRACT_DEPARTMENTS, strict=False):
        contracts[row["Contract"]] = unknown
        data.note("job_department_unknown", row["Job"])
    # An open job whose contract is missing from bJCCM, and one with no contract at all.
    orphan = own_contracts[2]
    orphan["Contract"] = f"{orphan['Job'][:-1]}9."[:10]
    data.note("job_contract_missing", orphan["Job"])
    open_jobs[-1]["Contract"] = None
    data.note("job_without_contract", open_jobs[-1]["Job"])
    # A job whose mask-formatted number comes back right-justified (leading blank).
    padded = open_jobs[-2]
    by_status[1].remove(padded["Job"])
    padded["Job"] = f" {padded['Job']}"
    by_status[1].append(padded["Job"])
    data.note("job_number_padded", padded["Job"])
    for job in open_jobs:
        if not job["ShipAddress"]:
            data.note("job_missing_address", job["Job"])
    data.contracts.extend(
        {"JCCo": PR_COMPANY, "Contract": c, "Department": d} for c, d in sorted(contracts.items())
    )
    # Company 2 reuses company-1 job numbers; its open jobs must never become sites.
    for job in by_status[1][:4]:
        data.jobs.append(
            {
                "JCCo": OTHER_COMPANY, "Job": job, "Description": "Other Company Job", "Contract": job,
                "JobStatus": 1, "ShipAddress": None, "ShipCity": None, "ShipState": None, "ShipZip": None,
            }
        )
        data.contracts.append({"JCCo": OTHER_COMPANY, "Contract": job, "Department": "01"})
        data.note("other_company_job", job)
    for status in (0, 2, 3):
        data.note(f"job_status_{status}", by_status[status][0])
    return dict(by_status)


# -------------------------------------------------------------------------------------------- employees


def _titles(rng: random.Random) -> tuple[list[str], list[float]]:
    titles = [f"{trade} {grade}" for trade in pools.TRADES for grade in pools.GRADES]
    titles += list(pools.STAFF_TITLES)
    weights = [rng.uniform(0.5, 6.0) for _ in pools.TRADES for _ in pools.GRADES]
    weights += [rng.uniform(0.1, 1.5) for _ in pools.STAFF_TITLES]
    return titles, weights


def ascii_fold(text: str) -> str:
    """Mail systems spell "José Muñoz" as jose.munoz."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _email(first: str, last: str, taken: set[str]) -> str:
    base = ascii_fold(f"{first}.{last}").lower().replace(" ", "").replace("'", "")
    candidate, n = f"{base}@{COMPANY_DOMAIN}", 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{n}@{COMPANY_DOMAIN}"
    taken.add(candidate)
    return candidate


def build_employees(rng: random.Random, data: VistaData, dept_codes: list[str], count: int, as_of: date) -> None:
    count = max(count, 30)
    numbers = sorted(rng.sample(range(1000, 100000 if count < 60000 else 1000000), count))
    titles, title_weights = _titles(rng)
    dept_weights = [rng.uniform(0.2, 3.0) for _ in dept_codes]
    taken_emails: set[str] = set()
    for i, number in enumerate(numbers):
        roll = rng.random()
        sex = "M" if roll < 0.86 else ("F" if roll < 0.985 else None)
        first = rng.choice(pools.FIRST_NAMES_F if sex == "F" else pools.FIRST_NAMES_M)
        last = rng.choice(pools.LAST_NAMES)
        if i < len(pools.NON_ASCII_NAMES):
            first, last = pools.NON_ASCII_NAMES[i]
        mid_roll = rng.random()
        middle = rng.choice(pools.MIDDLE_INITIALS) if mid_roll < 0.6 else (
            rng.choice(pools.FIRST_NAMES_M) if mid_roll < 0.68 else None
        )
        street, city, state, zip_code, area = _address(rng)
        hire = as_of - timedelta(days=int(rng.expovariate(1 / 1500)) + 3)
        hire = max(hire, as_of - timedelta(days=365 * 35))
        birth = hire - timedelta(days=rng.randint(19 * 365, 45 * 365))
        term: date | None = None
        if rng.random() < 0.15 and (as_of - hire).days > 40:
            term = hire + timedelta(days=rng.randint(30, (as_of - hire).days - 1))
        email: str | None = _email(first, last, taken_emails)
        if rng.random() < 0.07:
            email = None
        elif rng.random() < 0.05:
            email = f"{ascii_fold(last).lower()}{rng.randint(1, 99)}@gmail.com"
        data.employees.append(
            {
                "PRCo": PR_COMPANY,
                "Employee": number,
                "FirstName": _pad(rng, first),
                "MidName": middle,
                "LastName": _pad(rng, last),
                "Sex": sex,
                "PRDept": rng.choices(dept_codes, dept_weights)[0],
                "Email": email,
                "udEmpTitle": rng.choices(titles, title_weights)[0],
                "BirthDate": _midnight(birth) if rng.random() > 0.01 else None,
                "HireDate": _midnight(hire),
                "TermDate": _midnight(term) if term else None,
                "Phone": _reformat_phone(rng, valid_phone(rng, area)) if rng.random() < 0.65 else None,
                "CellPhone": _reformat_phone(rng, valid_phone(rng, area)) if rng.random() < 0.85 else None,
                "Address": street if rng.random() > 0.02 else None,
                "City": _pad(rng, city),
                "State": state,
                "Zip": zip_code if rng.random() > 0.02 else None,
            }
        )
    _plant_employee_messiness(rng, data, as_of)


def _plant_employee_messiness(rng: random.Random, data: VistaData, as_of: date) -> None:
    """Make sure every kind of problem is present.

    Each group of columns draws its victims from its own shuffled order, so two kinds touching the
    same columns never land on one employee (which would hide one of them), while small data sets
    still have enough employees to carry every kind.
    """
    emps = data.employees
    candidates = range(len(pools.NON_ASCII_NAMES), len(emps))
    orders: dict[str, Iterator[int]] = {}

    def take(group: str, active: bool | None = True) -> dict:
        if group not in orders:
            orders[group] = iter(rng.sample(candidates, len(candidates)))
        for idx in orders[group]:
            emp = emps[idx]
            if active is None or (emp["TermDate"] is None) == active:
                return emp
        raise ValueError("data set too small to plant every kind of messiness")

    # Status first, so later kinds are chosen among employees that are still active.
    for days in (3, 10, 20):
        emp = take("status")
        emp["TermDate"] = _midnight(as_of - timedelta(days=days))
        emp["HireDate"] = min(emp["HireDate"], _midnight(as_of - timedelta(days=400)))
        data.note("terminated_recently", emp["Employee"])
    for _ in range(max(2, len(emps) // 200)):
        emp = take("status")
        emp["HireDate"] = _midnight(as_of - timedelta(days=rng.randint(30, 120)))
        data.note("rehired", emp["Employee"])
    for _ in range(max(3, len(emps) // 100)):
        data.note("no_payroll", take("status")["Employee"])

    data.note("non_ascii_name", emps[0]["Employee"])
    for emp in emps:
        for kind, test in (
            ("terminated", emp["TermDate"] is not None),
            ("missing_email", emp["Email"] is None),
            ("sex_null", emp["Sex"] is None),
            ("sex_f", emp["Sex"] == "F"),
            ("name_padded", emp["FirstName"] != emp["FirstName"].rstrip()),
        ):
            if test and len(data.cases[kind]) < 25:
                data.note(kind, emp["Employee"])
    if not data.cases["sex_null"]:
        emp = take("sex")
        emp["Sex"] = None
        data.note("sex_null", emp["Employee"])

    def company_mail(emp: dict) -> str:
        return emp["Email"] if emp["Email"] and emp["Email"].endswith(COMPANY_DOMAIN) else (
            f"{(emp['FirstName'] or 'x').strip().lower()}.{emp['Employee']}@{COMPANY_DOMAIN}"
        )

    for kind, mangle in (
        ("email_inner_space", lambda m: m.replace("@", "@ ")),
        ("email_capitals", lambda m: m.split("@")[0].title() + "@" + COMPANY_DOMAIN.upper()),
        ("email_padded", lambda m: f" {m}  "),
    ):
        for _ in range(3):
            emp = take("email")
            emp["Email"] = mangle(company_mail(emp))
            data.note(kind, emp["Employee"])
    first, second = take("email"), take("email")
    second["Email"] = first["Email"] = f"{ascii_fold(first['LastName'].strip()).lower()}.family@gmail.com"
    data.note("duplicate_email", first["Employee"])
    data.note("duplicate_email", second["Employee"])

    for _ in range(max(3, len(emps) // 60)):
        head = take("phone")
        shared = valid_phone(rng, rng.choice(("225", "337", "504")))
        members = [head] + [take("phone", active=None) for _ in range(rng.choice((1, 1, 2)))]
        for member in members:
            member["CellPhone"] = shared
            member["LastName"] = head["LastName"]
            data.note("shared_cell_phone", member["Employee"])
    for _ in range(max(3, len(emps) // 40)):
        emp = take("phone", active=None)
        emp["Phone"] = OFFICE_PHONE
        data.note("shared_office_phone", emp["Employee"])
    for template in ("{} x12", "{} ext. 12", "{} #12", "{} Ext 4402", "{}x7"):
        emp = take("phone")
        emp[rng.choice(("Phone", "CellPhone"))] = template.format(valid_phone(rng, "225"))
        data.note("phone_extension", emp["Employee"])
    for bad in ("555-1234", "225-12-3456", "N/A", "000-000-0000", "1234", "225-555-01234", "123-456-7890"):
        emp = take("phone")
        emp[rng.choice(("Phone", "CellPhone"))] = bad
        data.note("phone_malformed", emp["Employee"])
    for _ in range(2):
        emp = take("phone")
        emp["Phone"] = emp["CellPhone"] = None
        data.note("no_phone", emp["Employee"])

    for blank in (None, None, "", "   "):
        emp = take("title")
        emp["udEmpTitle"] = blank
        data.note("title_blank", emp["Employee"])
    for variant in ("  Foreman ", "Foreman  ", " Superintendent"):
        emp = take("title")
        emp["udEmpTitle"] = variant
        data.note("title_padded", emp["Employee"])
    for variant in ("Project Engineer", "Project Engineer", "project engineer", "Project  Engineer",
                    "PROJECT ENGINEER"):
        emp = take("title")
        emp["udEmpTitle"] = variant
        if variant != "Project Engineer":
            data.note("title_case_variant", emp["Employee"])

    for _ in range(2):
        emp = take("name")
        emp["FirstName"] = f" {(emp['FirstName'] or 'Sam').strip()}  "
        data.note("name_padded", emp["Employee"])
    emp = take("name")
    emp["FirstName"] = None
    data.note("first_name_missing", emp["Employee"])
    emp = take("name")
    emp["LastName"] = ""
    data.note("last_name_blank", emp["Employee"])
    # Later kinds may have overwritten an early example; keep only those that still hold.
    by_number = {str(e["Employee"]): e for e in emps}
    data.cases["terminated"] = {
        k: None for k in data.cases["terminated"] if by_number[k]["TermDate"] is not None
    }
    data.cases["name_padded"] = {
        k: None for k in data.cases["name_padded"]
        if by_number[k]["FirstName"] and by_number[k]["FirstName"] != by_number[k]["FirstName"].strip()
    }


# ---------------------------------------------------------------------------------------------- payroll


_QUARTER_HOURS = [(Decimal(n) / 4).quantize(Decimal("0.01")) for n in range(0, 241)]


def _hours(rng: random.Random, low: int = 16, high: int = 240) -> Decimal:
    return _QUARTER_HOURS[low + int(rng.random() * (high - low + 1))]


def build_payroll(rng: random.Random, data: VistaData, jobs_by_status: dict[int, list[str]], as_of: date) -> None:
    weeks = payroll_weeks(as_of)
    week_dt = [_midnight(w) for w in weeks]
    open_jobs = jobs_by_status[1]
    closed_jobs = jobs_by_status.get(2, []) + jobs_by_status.get(3, [])
    job_weights = list(accumulate(rng.paretovariate(1.2) for _ in open_jobs))
    no_payroll = set(data.cases["no_payroll"])
    rehired = set(data.cases["rehired"])
    rows = data.payroll
    for emp in data.employees:
        key = str(emp["Employee"])
        if key in no_payroll or (emp["TermDate"] is None and key not in rehired and rng.random() < 0.1):
            if key not in no_payroll:
                data.note("no_payroll", key)
            continue
        hire = emp["HireDate"].date()
        end = emp["TermDate"].date() if emp["TermDate"] else as_of
        # first week ending on/after the hire; last week starting (Monday) on/before the end
        first_idx = max(0, -((weeks[0] - hire).days // 7))
        last_idx = min(len(weeks) - 1, (end - (weeks[0] - timedelta(days=6))).days // 7)
        spans: list[tuple[int, int]] = []
        if key in rehired:
            # An earlier stint inside the window, a gap, then the new hire.
            spans.append((0, max(0, first_idx - rng.randint(5, 12))))
        spans.append((first_idx, last_idx))
        attendance = rng.uniform(0.45, 0.95)
        current = rng.choices(open_jobs, cum_weights=job_weights)[0]
        if emp["TermDate"] is None and rng.random() < 0.04 and closed_jobs:
            current = rng.choice(closed_jobs)
            data.note("latest_job_closed", key)
        previous = rng.choice(closed_jobs + open_jobs)
        switch = rng.randint(0, len(weeks) - 1)
        for start, stop in spans:
            for i in range(start, stop + 1):
                # A rehire's stints always show in payroll: that is what makes them a rehire.
                if rng.random() > attendance and not (key in rehired and i in (start, stop)):
                    continue
                job = current if i >= switch else previous
                rows.append(_row(PR_COMPANY, emp["Employee"], job, week_dt[i], _hours(rng)))
                roll = rng.random()
                if roll < 0.04:
                    other = rng.choices(open_jobs, cum_weights=job_weights)[0]
                    rows.append(_row(PR_COMPANY, emp["Employee"], other, week_dt[i], _hours(rng, 8, 80)))
                    data.note("payroll_two_jobs_same_week", key)
                elif roll < 0.06:
                    # Same job, same week, another phase/cost type: a repeated key here.
                    rows.append(_row(PR_COMPANY, emp["Employee"], job, week_dt[i], _hours(rng, 4, 40)))
                    data.note("payroll_repeated_job_week", key)
    # Company 2 payroll for colliding employee numbers, in the latest week: must be filtered out.
    actives = [e for e in data.employees if e["TermDate"] is None and str(e["Employee"]) not in no_payroll]
    for emp in actives[:5]:
        data.employees.append(
            {**emp, "PRCo": OTHER_COMPANY, "FirstName": "Other", "LastName": "Company", "Email": None}
        )
        rows.append(_row(OTHER_COMPANY, emp["Employee"], jobs_by_status[1][0], week_dt[-1], Decimal("40.00")))
        data.note("other_company_employee", emp["Employee"])


def _row(company: int, employee: int, job: str, week: datetime, hours: Decimal) -> dict:
    return {"PRCo": company, "Employee": employee, "JCCo": company, "Job": job, "PREndDate": week, "Hrs": hours}


def build_vista(
    rng: random.Random, *, employees: int, departments: int, open_jobs: int, as_of: date
) -> VistaData:
    data = VistaData()
    codes = build_departments(rng, data, departments)
    jobs_by_status = build_jobs(rng, data, codes, open_jobs)
    build_employees(rng, data, codes, employees, as_of)
    build_payroll(rng, data, jobs_by_status, as_of)
    return data
