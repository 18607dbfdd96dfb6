"""Synthetic Samsara vehicles and drivers (external-apis §2.2 and §2.4 shapes; empty fields omitted)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from safetyamp_pipeline.sandbox import data_pools as pools
from safetyamp_pipeline.sandbox.data_vista import PR_COMPANY, VistaData, valid_phone

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
SERIAL_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ23456789"
BAD_VINS = ("1FTFW1E5XJFB1234", "1FT-FW1E5-XJFB12345", "UNKNOWN", "1ftfw1e5xjfb12345", "1FTFW1E5XJFB123456")


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(rng: random.Random, as_of: date, max_days_back: int, min_days_back: int = 1) -> datetime:
    day = as_of - timedelta(days=rng.randint(min_days_back, max_days_back))
    return datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randint(0, 86399))


def _unique(rng: random.Random, taken: set[str], make) -> str:
    while True:
        value = make()
        if value not in taken:
            taken.add(value)
            return value


def _drivers(rng: random.Random, data: VistaData, count: int, as_of: date) -> list[dict]:
    actives = [e for e in data.employees if e["PRCo"] == PR_COMPANY and e["TermDate"] is None]
    terminated = [e for e in data.employees if e["PRCo"] == PR_COMPANY and e["TermDate"] is not None]
    people = rng.sample(actives, min(count, len(actives)))
    if terminated:
        people[-1] = rng.choice(terminated)  # a driver who has since left the company
    taken: set[str] = set()
    drivers = []
    for i, emp in enumerate(people):
        number = str(emp["Employee"])
        first = (emp["FirstName"] or "Driver").strip()
        last = (emp["LastName"] or "").strip() or number
        created = _moment(rng, as_of, 1500, 30)
        driver: dict = {
            "id": _unique(rng, taken, lambda: str(rng.randint(10**7, 10**8 - 1))),
            "name": f"{first} {last}",
            "username": f"{first[0]}{last}".lower().replace(" ", ""),
        }
        if rng.random() < 0.8:
            area = rng.choice(("225", "337", "504", "409"))
            driver["phone"] = "+1" + valid_phone(rng, area).replace("-", "")
        # How the employee number is recorded varies: notes only, externalIds only, both, none.
        # The first three are fixed so that even a tiny data set has each way.
        style = ("none", "notes", "payrollId")[i] if i < 3 else rng.choices(
            ("notes", "payrollId", "employeeId", "both"), (0.6, 0.2, 0.05, 0.15)
        )[0]
        if style in ("notes", "both"):
            template = "Emp #{} – {}" if i == 1 else rng.choice(
                ("Emp #{} – {}", "Emp# {} {}", "Employee {} / {}", "{} - {}", "EMP#{}, {}")
            )
            driver["notes"] = template.format(number, rng.choice(pools.DRIVER_SHIFTS))
            data.note("driver_number_in_notes", driver["id"])
        elif style == "none":
            driver["notes"] = "Contract driver – no badge yet"
            data.note("driver_without_number", driver["id"])
        if style in ("payrollId", "both"):
            driver["externalIds"] = {"payrollId": number}
            data.note("driver_payroll_id", driver["id"])
        elif style == "employeeId":
            driver["externalIds"] = {"employeeId": number}
            data.note("driver_employee_id", driver["id"])
        if emp["TermDate"] is not None:
            data.note("driver_terminated_employee", driver["id"])
        driver["licenseNumber"] = f"{rng.randint(10**7, 10**9 - 1)}"
        driver["licenseState"] = emp["State"] or "LA"
        driver["driverActivationStatus"] = "active"
        driver["timezone"] = "America/Chicago"
        driver["createdAtTime"] = rfc3339(created)
        driver["updatedAtTime"] = rfc3339(max(created, _moment(rng, as_of, 30)))
        drivers.append(driver)
    return drivers


def _vin(rng: random.Random) -> str:
    return "".join(rng.choice(VIN_ALPHABET) for _ in range(17))


def _plate(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"C{rng.randint(100000, 999999)}"
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(3)) + f"{rng.randint(1000, 9999)}"


def build_samsara(rng: random.Random, data: VistaData, vehicles: int, as_of: date) -> dict[str, list[dict]]:
    count = max(vehicles, 5)
    drivers = _drivers(rng, data, max(3, round(count * 0.9)), as_of)
    departments = [d for d in data.departments if d["PRCo"] == PR_COMPANY][:12]
    dept_tags = [
        {"id": str(4_000_000 + i), "name": f"Department {d['PRDept']} - {d['Description'].strip()}"}
        for i, d in enumerate(departments)
    ]
    ids: set[str] = set()
    serials: set[str] = set()
    result = []
    assignable = list(drivers[1:])
    rng.shuffle(assignable)
    assignable.append(drivers[0])  # the driver without any employee number gets the first truck
    for i in range(count):
        vid = _unique(rng, ids, lambda: str(rng.randint(10**14, 10**15 - 1)))
        serial = _unique(
            rng, serials,
            lambda: "G" + "-".join("".join(rng.choice(SERIAL_ALPHABET) for _ in range(3)) for _ in range(3)),
        )
        make, model = rng.choice(pools.VEHICLES)
        created = _moment(rng, as_of, 2000, 60)
        vehicle: dict = {"id": vid, "name": f"Unit {1000 + i}" if rng.random() > 0.05 else serial}
        if vehicle["name"] == serial:
            data.note("vehicle_named_by_serial", vid)
        # Planted on fixed positions too, so even a 5-vehicle set has each kind.
        vin = _vin(rng) if i != 1 and rng.random() > 0.05 else BAD_VINS[i % len(BAD_VINS)]
        if len(vin) != 17 or not vin.isalnum() or vin != vin.upper():
            data.note("vehicle_bad_vin", vid)
        vehicle["vin"] = vin
        if i != 2 and rng.random() > 0.1:
            vehicle["licensePlate"] = _plate(rng)
        else:
            data.note("vehicle_without_plate", vid)
        vehicle.update({"make": make, "model": model, "year": str(rng.randint(2012, as_of.year))})
        vehicle["serial"] = serial
        if rng.random() < 0.3:
            vehicle["notes"] = rng.choice(("Crew truck", "Welding rig", "Assigned to yard", "Spare", "Fuel truck"))
        vehicle["externalIds"] = {"samsara.serial": serial, "samsara.vin": vin}
        vehicle["gateway"] = {"model": rng.choice(pools.GATEWAY_MODELS), "serial": serial}
        if assignable and i != 4 and (i < 4 or rng.random() < 0.85):
            driver = assignable.pop()
            vehicle["staticAssignedDriver"] = {"id": driver["id"], "name": driver["name"]}
            driver["staticAssignedVehicle"] = {"id": vid, "name": vehicle["name"]}
        else:
            data.note("vehicle_without_driver", vid)
        vehicle["tags"] = [rng.choice(dept_tags)]
        regulated = i != 3 and rng.random() < 0.7
        vehicle["vehicleRegulationMode"] = "regulated" if regulated else "unregulated"
        if not regulated:
            data.note("vehicle_unregulated", vid)
        vehicle["createdAtTime"] = rfc3339(created)
        vehicle["updatedAtTime"] = rfc3339(max(created, _moment(rng, as_of, 60)))
        result.append(vehicle)
    # A vehicle without a gateway has no serial (and so no match key).
    bare = next(v for v in reversed(result) if v["name"] != v["serial"])
    for key in ("serial", "gateway"):
        bare.pop(key, None)
    bare["externalIds"] = {"samsara.vin": bare["vin"]}
    data.note("vehicle_without_serial", bare["id"])
    for driver in drivers:
        if "staticAssignedVehicle" not in driver:
            data.note("driver_unassigned", driver["id"])
    return {"vehicles": result, "drivers": drivers}
