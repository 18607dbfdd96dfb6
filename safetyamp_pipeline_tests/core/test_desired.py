"""Desired-state builders: each rule of legacy-service.md §6 with its bugs fixed."""

from __future__ import annotations

import datetime as dt
import json

from safetyamp_pipeline.core.desired import (
    desired_assets,
    desired_hash,
    desired_site_clusters,
    desired_sites,
    desired_titles,
    desired_users,
    record_from_row,
    record_to_row,
)
from safetyamp_pipeline.core.settings import SyncSettings

from .factories import AS_OF, department, employee, job, payroll, vehicle

S = SyncSettings()
WEEK_END = dt.date(2026, 11, 22)


def users(employees, payroll_rows=(), entra=(), jobs=None, departments=None, settings=S):
    jobs = [job()] if jobs is None else jobs
    departments = [department()] if departments is None else departments
    return desired_users(employees, list(payroll_rows), list(entra), jobs, departments, settings, AS_OF)


def by_key(desired_set):
    return {r.key: r for r in desired_set.records}


# ----------------------------------------------------------------- clusters


def test_cluster_tree_root_region_department():
    got = by_key(desired_site_clusters([department("44", "Pipe", "Central"), department("07", "Elec", "Gulf")], S))
    assert set(got) == {"I&I", "Central", "Gulf", "44", "07"}
    assert got["I&I"].refs == {}
    assert got["Central"].fields["external_code"] == "Central" and got["Central"].refs == {"parent": "I&I"}
    assert got["44"].fields["name"] == "44 - Pipe"
    assert got["44"].fields["external_code"] == "44" and got["44"].refs == {"parent": "Central"}


def test_cluster_root_name_is_configuration():
    got = by_key(desired_site_clusters([department()], SyncSettings(root_cluster_name="ACME")))
    assert "ACME" in got and got["Central"].refs == {"parent": "ACME"}


def test_department_without_region_or_description_gets_no_cluster_and_is_reported():
    result = desired_site_clusters([department("44", "Pipe", None), department("45", "  ", "Central")], S)
    assert set(by_key(result)) == {"I&I", "Central"}
    fields = {(i.key, i.field) for i in result.issues}
    assert ("44", "udRegion") in fields and ("45", "Description") in fields


def test_regions_are_distinct_case_insensitively_first_spelling_wins():
    result = desired_site_clusters([department("44", "A", "Central"), department("45", "B", "CENTRAL ")], S)
    got = by_key(result)
    assert "CENTRAL" not in got and got["45"].refs == {"parent": "Central"}


def test_other_company_departments_ignored():
    got = by_key(desired_site_clusters([department("44"), department("99", PRCo=2, udRegion="Other")], S))
    assert "99" not in got and "Other" not in got


# ----------------------------------------------------------------- sites


def test_site_from_job_with_trimmed_job_number():
    got = by_key(desired_sites([job(" 12345. ", "Plant A", "44 ")], [department()], S))
    site = got["12345."]
    assert site.fields["name"] == "12345. - Plant A"
    assert site.fields["ext_id"] == "12345."
    assert site.refs == {"cluster": "44"}
    assert site.fields["state"] == "LA" and site.fields["zip_code"] == "70801"


def test_empty_site_address_is_not_desired_and_placeholders_are_for_create():
    row = job(ShipAddress=None, ShipCity="", ShipState=None, ShipZip=None)
    site = by_key(desired_sites([row], [department()], SyncSettings(default_state="TX", placeholder_zip="11111")))["12345."]
    assert (site.fields["street"], site.fields["city"], site.fields["state"], site.fields["zip_code"]) == (None,) * 4
    assert site.fields["country"] == "US" and site.fields["timezone"] == "America/Chicago"
    assert "placeholder 'Unknown' on create only" in site.provenance["street"]


def test_job_with_unknown_department_is_rejected_naming_the_field():
    site = by_key(desired_sites([job(dept="99")], [department()], S))["12345."]
    assert site.rejected and "Department" in site.rejected and "12345." in site.rejected


def test_closed_and_other_company_jobs_are_not_sites():
    got = desired_sites([job("1.", JobStatus=2), job("2.", JCCo=5)], [department()], S)
    assert got.records == []


def test_duplicate_job_rows_rejected():
    got = desired_sites([job("1."), job(" 1.")], [department()], S)
    assert [r.rejected is None for r in got.records] == [True, False]


# ----------------------------------------------------------------- titles


def test_titles_matched_case_and_space_insensitively_majority_spelling():
    emps = [employee(1, udEmpTitle="Foreman"), employee(2, udEmpTitle="foreman"), employee(3, udEmpTitle=" foreman "),
            employee(4, udEmpTitle="Project  Engineer"), employee(5, udEmpTitle="project engineer")]
    got = by_key(desired_titles(emps, S))
    assert got["foreman"].fields["name"] == "foreman"
    assert got["project engineer"].fields["name"] == "Project Engineer"  # tie: alphabetical first


def test_titles_only_from_active_employees():
    emps = [employee(1, udEmpTitle="Boss", TermDate=dt.date(2024, 1, 1)), employee(2, udEmpTitle=None)]
    assert desired_titles(emps, S).records == []


# ----------------------------------------------------------------- users


def test_active_user_fields():
    row = employee(123, FirstName=" Ann ", MidName="B", Sex="F", Phone="225-555-0199", CellPhone=None, Zip=70801)
    user = by_key(users([row]))["123"]
    f = user.fields
    assert f["emp_id"] == "123" and f["first_name"] == "Ann" and f["middle_name"] == "B"
    assert f["gender"] == 0
    assert f["date_of_birth"] == "1990-01-02" and f["current_hire_date"] == "2020-01-01"
    assert f["zip_code"] == "70801" and f["country"] == "US"
    assert f["mobile_phone"] == "+12255550199" and f["work_phone"] == "+12255550199"
    assert f["system_access"] is True
    assert user.refs["current_title"] == "Foreman" and user.refs["role"] == "Field"


def test_mobile_from_cellphone_when_valid_else_phone():
    a = by_key(users([employee(1, Phone="225-555-0199", CellPhone="504-555-0111")]))["1"].fields
    assert a["mobile_phone"] == "+15045550111" and a["work_phone"] == "+12255550199"
    b = by_key(users([employee(1, Phone="225-555-0199", CellPhone="12")]))["1"]
    assert b.fields["mobile_phone"] == "+12255550199"
    c = users([employee(1, Phone="0123456789", CellPhone=None)])
    assert "mobile_phone" not in by_key(c)["1"].fields and "work_phone" not in by_key(c)["1"].fields
    assert any(i.field == "Phone" for i in c.issues)


def test_email_from_enabled_entra_user_by_numeric_employee_id():
    entra = [{"employeeId": "00123", "mail": "Ann.Lee@Corp.com", "accountEnabled": True}]
    user = by_key(users([employee(123, Email="old@example.com")], entra=entra))["123"]
    assert user.fields["email"] == "ann.lee@corp.com" and "Entra" in user.provenance["email"]


def test_entra_onmicrosoft_and_disabled_users_are_ignored():
    entra = [{"employeeId": "123", "mail": "x@tenant.onmicrosoft.com", "accountEnabled": True},
             {"employeeId": "124", "mail": "y@corp.com", "accountEnabled": False}]
    got = by_key(users([employee(123), employee(124)], entra=entra))
    assert got["123"].fields["email"] == "e123@example.com"
    assert got["124"].fields["email"] == "e124@example.com"


def test_missing_names_and_email_reject_naming_fields():
    got = by_key(users([employee(1, LastName="  "), employee(2, Email="not-an-email"), employee(3, Email=None)]))
    assert "LastName" in got["1"].rejected
    assert "Email" in got["2"].rejected and "2" in got["2"].rejected
    assert "Email" in got["3"].rejected


def test_terminated_employee_is_a_deactivate_intent_and_rehire_is_active():
    got = by_key(users([employee(1, TermDate=dt.datetime(2025, 3, 1)), employee(2, TermDate=None, HireDate=dt.date(2025, 6, 1))]))
    assert got["1"].deactivate and got["1"].fields["system_access"] is False
    assert not got["2"].deactivate and got["2"].fields["system_access"] is True


def test_other_company_employees_ignored_and_unhired_rejected():
    got = by_key(users([employee(1, PRCo=2), employee(2, HireDate=None)]))
    assert "1" not in got and "HireDate" in got["2"].rejected


def test_home_site_is_latest_open_job_within_lookback():
    jobs = [job("100."), job("200."), job("300.", JobStatus=1)]
    rows = [payroll(1, "100.", WEEK_END - dt.timedelta(weeks=1)), payroll(1, "200.", WEEK_END),
            payroll(1, "900.", WEEK_END + dt.timedelta(days=0), hrs=80)]  # 900. is not an open job
    user = by_key(users([employee(1)], rows, jobs=jobs))["1"]
    assert user.refs["home_site"] == "200."


def test_home_site_ties_most_hours_then_lowest_job():
    jobs = [job("100."), job("200."), job("300.")]
    rows = [payroll(1, "300.", WEEK_END, 10), payroll(1, "200.", WEEK_END, 30), payroll(1, "300.", WEEK_END, 25),
            payroll(2, "300.", WEEK_END, 20), payroll(2, "200.", WEEK_END, 20)]
    got = by_key(users([employee(1), employee(2)], rows, jobs=jobs))
    assert got["1"].refs["home_site"] == "300."  # 35 h beats 30 h
    assert got["2"].refs["home_site"] == "200."  # equal hours: lowest job number


def test_home_site_ignores_old_weeks_other_company_and_closed_jobs():
    jobs = [job("100."), job("200.", JCCo=2)]
    rows = [payroll(1, "100.", AS_OF - dt.timedelta(weeks=13)),
            payroll(2, "100.", WEEK_END, PRCo=2),
            payroll(3, "200.", WEEK_END, JCCo=2)]
    got = by_key(users([employee(1), employee(2), employee(3)], rows, jobs=jobs))
    for emp in ("1", "2", "3"):
        assert "home_site" not in got[emp].refs
        assert got[emp].refs["home_site_region_office"] == "Central"


def test_lookback_weeks_is_configuration():
    rows = [payroll(1, "12345.", AS_OF - dt.timedelta(weeks=13))]
    got = by_key(users([employee(1)], rows, settings=SyncSettings(lookback_weeks=20)))
    assert got["1"].refs["home_site"] == "12345."


def test_payroll_rows_match_padded_job_and_string_employee():
    rows = [payroll("00001", " 12345. ", dt.datetime(2026, 11, 22))]
    assert by_key(users([employee(1)], rows))["1"].refs["home_site"] == "12345."


def test_no_job_and_no_region_rejects():
    got = by_key(users([employee(1, PRDept="ZZ")]))
    assert "home site" in got["1"].rejected and "PRDept" in got["1"].rejected


def test_duplicate_mobile_phone_first_holder_keeps_it():
    got = by_key(users([employee(20, Phone="225-555-0199"), employee(10, Phone="(225) 555-0199")]))
    assert got["10"].fields["mobile_phone"] == "+12255550199"
    assert "mobile_phone" not in got["20"].fields
    assert got["20"].fields["work_phone"] == "+12255550199"
    assert "10" in got["20"].provenance["mobile_phone"]


def test_duplicate_email_rejects_all_but_first():
    got = by_key(users([employee(30, Email="same@x.com"), employee(10, Email="SAME@x.com"), employee(20, Email="same@x.com ")]))
    assert got["10"].rejected is None
    for emp in ("20", "30"):
        assert "email" in got[emp].rejected and "10" in got[emp].rejected


def test_duplicate_employee_rows_rejected():
    records = users([employee(1), employee(1)]).records
    assert sum(r.rejected is None for r in records) == 1


# ----------------------------------------------------------------- assets


def test_asset_from_vehicle():
    asset = by_key(desired_assets([vehicle(driverEmployeeNumber="0123")], S))["GABC1234"]
    f = asset.fields
    assert f["serial"] == "GABC1234" and f["code"] == "ABC123" and f["status"] == 1
    assert f["vin"] == "1FTFW1ET5DFC10312" and f["year"] == 2019 and f["description"] == "blue"
    assert asset.refs == {"current_user": "123"}


def test_unregulated_vehicle_stays_active():
    asset = by_key(desired_assets([vehicle(vehicleRegulationMode="unregulated")], S))["GABC1234"]
    assert asset.fields["status"] == 1


def test_asset_code_falls_back_to_unit_and_bad_vin_dropped():
    asset = by_key(desired_assets([vehicle(licensePlate=None, vin="1FTFW1-T5DFC10312")], S))["GABC1234"]
    assert asset.fields["code"] == "Unit_0655"
    assert "vin" not in asset.fields


def test_vehicle_without_serial_rejected():
    got = desired_assets([vehicle(serial=None, vid="99")], S)
    assert got.records[0].rejected and "serial" in got.records[0].rejected


def test_gateway_serial_used_when_top_level_missing():
    got = by_key(desired_assets([vehicle(serial=None, gateway={"serial": "G-XY"})], S))
    assert "G-XY" in got


# ----------------------------------------------------------------- persistence


def test_record_row_round_trip_is_json_and_keeps_hash():
    record = by_key(users([employee(1, Phone="225-555-0199")]))["1"]
    row = json.loads(json.dumps(record_to_row(record)))
    back = record_from_row(row)
    assert back == record
    assert desired_hash(back) == desired_hash(record)


def test_desired_hash_changes_with_desired_value_only():
    a = by_key(users([employee(1)]))["1"]
    b = by_key(users([employee(1)]))["1"]
    c = by_key(users([employee(1, City="Lafayette")]))["1"]
    assert desired_hash(a) == desired_hash(b) != desired_hash(c)


def test_desired_hash_is_stable_across_processes():
    import os
    import subprocess
    import sys

    code = (
        "from safetyamp_pipeline.core.models import DesiredRecord, desired_hash;"
        "print(desired_hash(DesiredRecord('users', '7', {'email': 'a@x.com', 'gender': 0, 'n': None, 'ok': True},"
        " {'home_site': '100.'})))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and len(outputs.pop()) == 24


def test_legacy_checklist_missing_last_name_and_email_are_both_reported():
    reason = by_key(users([employee(1, LastName=None, Email=None)]))["1"].rejected
    assert "LastName" in reason and "Email" in reason and "FirstName" not in reason


def test_legacy_checklist_bulk_two_valid_one_invalid():
    rows = [employee(1), employee(2), {"PRCo": 1, "Employee": 3, "FirstName": "Only", "HireDate": dt.date(2020, 1, 1), "PRDept": "44"}]
    got = users(rows).records
    assert [r.key for r in got if r.rejected is None] == ["1", "2"]
    assert "LastName" in by_key(users(rows))["3"].rejected


def test_legacy_checklist_valid_employee_and_whitespace_trimmed():
    row = employee(1, FirstName="  Jo ", LastName=" Doe  ", City=" Hammond ", Phone="555 12", Sex="M", Email="jo@ x.com")
    user = by_key(users([row]))["1"]
    assert user.rejected is None
    assert (user.fields["first_name"], user.fields["last_name"], user.fields["city"]) == ("Jo", "Doe", "Hammond")
    assert user.fields["gender"] == 1 and user.fields["email"] == "jo@x.com"
    assert "work_phone" not in user.fields  # too short: left out, record still valid


def test_repeated_columns_are_normalized_once_per_value_and_an_unhashable_one_is_only_dropped():
    rows = [
        employee(1, City="  Houma  ", State="la", Sex="m"),
        employee(2, City="  Houma  ", State="la", Sex="m"),
        employee(3, City=["Houma"], State={"la": 1}, Sex=["M"], BirthDate=["1990-01-02"]),
    ]
    by_key = {r.key: r for r in users(rows).records}
    assert [(by_key[k].fields["city"], by_key[k].fields["state"], by_key[k].fields["gender"]) for k in ("1", "2")] == [
        ("Houma", "LA", 1), ("Houma", "LA", 1)]
    hostile = by_key["3"]
    assert hostile.rejected is None
    assert (hostile.fields["city"], hostile.fields["state"]) == (None, None)
    assert "gender" not in hostile.fields and "date_of_birth" not in hostile.fields
