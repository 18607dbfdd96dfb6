"""`safetyamp-pipeline explain` on a synced sandbox: every entity type, the rejected cases, masking."""

from __future__ import annotations

import re

import pytest

from safetyamp_pipeline.core.normalize import title_key
from safetyamp_pipeline.sync.masking import mask_email


def _mirror(synced, entity: str) -> dict[str, dict]:
    return synced.run.store.mirror_records(entity)


def _shows_pair(out: str, name: str, value: object) -> bool:
    return re.search(rf"^\s+{re.escape(name)}\s+{re.escape(str(value))}$", out, re.MULTILINE) is not None


def _entra_employee(synced) -> tuple[str, dict]:
    """An employee created in SafetyAmp with an Entra e-mail and a birth date."""
    mirror = _mirror(synced, "users")
    for record in synced.desired("desired/users"):
        if (not record.rejected and not record.deactivate and record.key in mirror
                and record.provenance.get("email", "").startswith("Entra") and record.fields.get("date_of_birth")):
            return record.key, mirror[record.key]
    raise AssertionError("the sandbox has no synced employee with an Entra e-mail")


def test_employee_shows_sources_rules_safetyamp_record_plan_and_history(pipeline, synced):
    key, user = _entra_employee(synced)
    result = pipeline("explain", "employee", key.zfill(8))  # padded like Vista exports
    assert result.code == 0, result.err
    out = result.out
    assert f"natural key '{key}'" in out
    for heading in ("Source: Vista employee (bPREH", "Source: Vista payroll rows (bPRJC", "Source: Entra user",
                    "Desired record (desired/users)", "SafetyAmp record (mirror of users", "Pending plan", "Ledger history"):
        assert heading in out
    assert re.search(r"email\s+\S+\s+Entra mail \(employeeId match\)", out)
    assert "latest open job in the last 12 weeks of payroll" in out or "office site of the department's region" in out
    assert _shows_pair(out, "id", user["id"])
    assert "action: unchanged" in out
    assert re.search(r"create\s+ok\s+201", out)
    assert synced.first.run_id in out
    # person data masked by default, shown with --show-pii
    assert user["email"] not in out
    assert mask_email(user["email"]) in out
    assert user["date_of_birth"] not in out
    shown = pipeline("explain", "employee", key, "--show-pii").out
    assert user["email"] in shown and user["date_of_birth"] in shown


def test_employee_rejected_for_a_duplicate_email_names_the_rule_and_masks_the_address(pipeline, synced):
    rejected = [r for r in synced.desired("desired/users") if r.rejected and "also the email of employee" in r.rejected]
    assert rejected, "the planted duplicate_email case should reject one employee"
    record = rejected[0]
    vista = [r for r in synced.run.store.load_asset_value("viewpoint/employees") if str(r["Employee"]) == record.key][0]
    result = pipeline("explain", "employee", record.key)
    assert result.code == 0, result.err
    assert f"REJECTED before send: {record.rejected}" in result.out
    assert "action: rejected" in result.out
    assert "(not in SafetyAmp as far as the mirror knows)" in result.out
    assert vista["Email"].strip() not in result.out
    assert vista["Email"].strip() in pipeline("explain", "employee", record.key, "--show-pii").out


def test_employee_without_a_home_site_says_why(pipeline, synced):
    rejected = [r for r in synced.desired("desired/users") if r.rejected and "no home site" in r.rejected]
    assert rejected
    record = rejected[0]
    result = pipeline("explain", "employee", record.key)
    assert result.code == 0, result.err
    assert record.rejected in result.out
    assert "no payroll row in the look-back found" in result.out or "Hrs" in result.out


def test_pending_update_shows_each_changed_field_before_and_after(pipeline, synced):
    key, user = _entra_employee(synced)
    store = synced.run.store
    edited = {**user, "city": "Old Town", "last_name": "Formerly"}
    store.mirror_upsert("users", key, edited)
    try:
        out = pipeline("explain", "employee", key).out
    finally:
        store.mirror_upsert("users", key, user)
    assert f"action: update PATCH users/{user['id']}" in out
    assert re.search(rf"city\s+Old Town\s+→\s+{re.escape(user['city'])}", out)
    assert re.search(rf"last_name\s+Formerly\s+→\s+{re.escape(user['last_name'])}", out)


def test_site_by_job_number_without_its_dot_shows_job_and_department(pipeline, synced):
    mirror = _mirror(synced, "sites")
    record = next(r for r in synced.desired("desired/sites") if not r.rejected and r.key.endswith(".") and r.key in mirror)
    result = pipeline("explain", "site", f"  {record.key.rstrip('.')} ")
    assert result.code == 0, result.err
    out = result.out
    assert f"natural key '{record.key}'" in out
    assert "Source: Vista job (bJCJM" in out and "Source: Vista department" in out
    assert "bJCJM.Job - bJCJM.Description" in out
    assert _shows_pair(out, "id", mirror[record.key]["id"])
    assert "action: unchanged" in out


def test_site_whose_department_has_no_cluster_is_explained(pipeline, synced):
    record = next(r for r in synced.desired("desired/sites") if r.rejected and "has no site cluster" in r.rejected)
    out = pipeline("explain", "site", record.key).out
    assert record.rejected in out
    assert "action: rejected" in out


def test_cluster_by_code_and_by_name_is_the_same_record(pipeline, synced):
    record = next(r for r in synced.desired("desired/site_clusters") if r.refs.get("parent") and r.key != r.fields["name"]
                  and " - " in r.fields["name"])
    by_code = pipeline("explain", "cluster", record.key)
    by_name = pipeline("explain", "cluster", record.fields["name"].upper())
    assert by_code.code == by_name.code == 0
    assert f"natural key '{record.key}'" in by_code.out and f"natural key '{record.key}'" in by_name.out
    assert "Source: Vista department (bPRDP" in by_code.out
    assert "bPRDP.PRDept - bPRDP.Description" in by_code.out


def test_region_cluster_lists_its_departments(pipeline, synced):
    departments = synced.run.store.load_asset_value("viewpoint/departments")
    record = next(r for r in synced.desired("desired/site_clusters") if r.refs.get("parent") and r.key == r.fields["name"])
    out = pipeline("explain", "cluster", record.key).out
    assert "Vista departments of this region" in out
    codes = {str(d["PRDept"]).strip() for d in departments if str(d.get("udRegion") or "").strip().casefold() == record.key.casefold()}
    assert codes
    for code in codes:
        assert re.search(rf"\s{re.escape(code)}\s", out)


def test_title_case_insensitive_lists_the_employees_holding_it(pipeline, synced):
    employees = synced.run.store.load_asset_value("viewpoint/employees")
    record = max(synced.desired("desired/titles"),
                 key=lambda r: sum(1 for e in employees if title_key(e.get("udEmpTitle")) == r.key))
    holders = [e for e in employees if title_key(e.get("udEmpTitle")) == record.key]
    result = pipeline("explain", "title", f"  {record.fields['name'].upper()}  ")
    assert result.code == 0, result.err
    assert f"holding this title (bPREH.udEmpTitle), {len(holders)}" in result.out
    for holder in holders[:50]:
        assert re.search(rf"^\s+{holder['Employee']}\s", result.out, re.MULTILINE)
    assert "action: unchanged" in result.out


@pytest.mark.parametrize("form", ["serial", "id", "licensePlate"])
def test_vehicle_by_serial_samsara_id_or_plate(pipeline, synced, form):
    vehicles = synced.run.store.load_asset_value("samsara/vehicles")
    desired = {r.key: r for r in synced.desired("desired/assets")}
    vehicle = next(v for v in vehicles if v.get("licensePlate") and v.get("serial") and v["serial"].upper() in desired)
    result = pipeline("explain", "vehicle", vehicle[form].lower())
    assert result.code == 0, result.err
    assert f"natural key '{vehicle['serial'].upper()}'" in result.out
    assert "Source: Samsara vehicle (samsara/vehicles)" in result.out
    assert _shows_pair(result.out, "id", vehicle["id"])
    assert "Samsara licensePlate" in result.out


def test_vehicle_without_serial_is_found_by_its_samsara_id(pipeline, synced):
    record = next(r for r in synced.desired("desired/assets") if r.rejected and "serial is empty" in r.rejected)
    samsara_id = record.key.removeprefix("samsara:")
    result = pipeline("explain", "vehicle", samsara_id)
    assert result.code == 0, result.err
    assert f"REJECTED before send: {record.rejected}" in result.out
    assert _shows_pair(result.out, "id", samsara_id)


def test_a_job_address_is_not_masked_like_a_persons(pipeline, synced):
    jobs = synced.run.store.load_asset_value("viewpoint/jobs")
    record = next(r for r in synced.desired("desired/sites") if not r.rejected and r.fields["street"] != "Unknown")
    job = next(j for j in jobs if str(j["Job"]).strip() == record.key)
    out = pipeline("explain", "site", record.key).out
    assert _shows_pair(out, "ShipAddress", job["ShipAddress"].strip()) or job["ShipAddress"] in out
    assert re.search(rf"street\s+{re.escape(record.fields['street'])}\s", out)


def test_unknown_key_is_not_found(pipeline):
    result = pipeline("explain", "employee", "987654321")
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1 and "no employee '987654321'" in result.err
