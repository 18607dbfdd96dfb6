"""SafetyAmp emulator writes: Laravel 422 rules, uniqueness, partial updates, ignored fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.sandbox.test_safetyamp_emulator_support import (
    PHONE_A,
    PHONE_B,
    Running,
    new_user,
    start,
    write_fixture,
)


@pytest.fixture(scope="module")
def sa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory: Path = tmp_path_factory.mktemp("safetyamp_validation")
    running = start(directory, fixture=write_fixture(directory))
    yield running
    running.stop()


def assert_422(answer, field: str, message: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["errors"][field] == [message]
    assert body["message"].startswith(next(iter(body["errors"].values()))[0])


# ------------------------------------------------------------------ message format


def test_required_fields_on_user_create_with_the_more_errors_suffix(sa):
    answer = sa.post("/api/users", {"middle_name": "Q"})
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "The first name field is required. (and 2 more errors)",
        "errors": {
            "first_name": ["The first name field is required."],
            "last_name": ["The last name field is required."],
            "email": ["The email field is required."],
        },
    }


def test_single_more_error_suffix_and_no_suffix(sa):
    two = sa.post(
        "/api/users", {"first_name": "A", "email": "two@example.com", "date_of_birth": "1990/01/01"}
    )
    assert two.json()["message"] == "The last name field is required. (and 1 more error)"
    one = sa.post("/api/users", new_user(email="one@example.com", current_hire_date="2024-13-01"))
    assert one.json()["message"] == "The current hire date does not match the format Y-m-d."


def test_blank_strings_count_as_missing(sa):
    answer = sa.post("/api/users", new_user(first_name="   "))
    assert_422(answer, "first_name", "The first name field is required.")


# ------------------------------------------------------------------ dates and phones


@pytest.mark.parametrize("value", ["01/02/1990", "1990-2-1", "1990-02-30", "1990-02-01 00:00:00"])
def test_date_of_birth_must_be_y_m_d(sa, value):
    assert_422(
        sa.post("/api/users", new_user(date_of_birth=value)),
        "date_of_birth",
        "The date of birth does not match the format Y-m-d.",
    )


def test_current_hire_date_must_be_y_m_d(sa):
    assert_422(
        sa.post("/api/users", new_user(current_hire_date="20240105")),
        "current_hire_date",
        "The current hire date does not match the format Y-m-d.",
    )


@pytest.mark.parametrize(
    "value",
    [
        "555-0143",  # not E.164
        "2025550143",  # no +country
        "+1 202 555 0143",  # formatted
        "+15555550100",  # E.164 syntax but area code 555 does not exist
        "+11234567890",  # area codes never start with 1
    ],
)
def test_mobile_phone_must_be_a_valid_e164_number(sa, value):
    assert_422(sa.post("/api/users", new_user(mobile_phone=value)), "mobile_phone", "validation.phone")


def test_work_phone_is_validated_too(sa):
    assert_422(sa.post("/api/users", new_user(work_phone="+15555550100")), "work_phone", "validation.phone")


# ------------------------------------------------------------------ uniqueness


def test_duplicate_email_is_rejected_case_insensitively(sa):
    assert_422(
        sa.post("/api/users", new_user(email="Dana.REYES@example.com")),
        "email",
        "The email has already been taken.",
    )


def test_invalid_email_format(sa):
    assert_422(
        sa.post("/api/users", new_user(email="not-an-email")),
        "email",
        "The email must be a valid email address.",
    )


def test_duplicate_mobile_phone_is_rejected_but_work_phone_is_not_unique(sa):
    assert_422(
        sa.post("/api/users", new_user(email="m1@example.com", mobile_phone=PHONE_A)),
        "mobile_phone",
        "The mobile phone has already been taken.",
    )
    ok = sa.post("/api/users", new_user(email="m2@example.com", work_phone=PHONE_A, mobile_phone=PHONE_B))
    assert ok.status_code == 201, ok.text


def test_updating_a_user_to_another_users_email_is_rejected_but_own_email_is_fine(sa):
    assert_422(
        sa.patch("/api/users/Pq2Rs", {"email": "dana.reyes@example.com"}),
        "email",
        "The email has already been taken.",
    )
    same = sa.patch("/api/users/Xy7Qa", {"email": "Dana.Reyes@example.com", "mobile_phone": PHONE_A})
    assert same.status_code == 200


def test_duplicate_site_ext_id(sa):
    assert_422(
        sa.post("/api/sites", {"name": "Twin", "cluster_id": 712, "ext_id": "12345."}),
        "ext_id",
        "The site code is already in use.",
    )
    assert_422(sa.put("/api/sites/5146", {"ext_id": "12345."}), "ext_id", "The site code is already in use.")


def test_duplicate_cluster_external_code(sa):
    body = {"name": "44 - Again", "parent_cluster_id": 709, "external_code": "44", "osha_establishment": 0}
    assert_422(sa.post("/api/site_clusters", body), "external_code", "The cluster code is already in use.")


def test_asset_serials_are_not_unique(sa):
    body = {"name": "Truck 12b", "serial": "1FTFW1E50NFA00001", "site_id": 5145, "asset_type_id": 3183}
    answer = sa.post("/api/assets", body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["serial"] == "1FTFW1E50NFA00001"


# ------------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/users", new_user(home_site_id=999), "home_site_id"),
        ("/api/users", new_user(current_title_id=999), "current_title_id"),
        ("/api/sites", {"name": "X", "cluster_id": 999}, "cluster_id"),
        (
            "/api/site_clusters",
            {"name": "X", "parent_cluster_id": 999, "osha_establishment": 0},
            "parent_cluster_id",
        ),
        ("/api/assets", {"name": "X", "site_id": 999, "asset_type_id": 3183}, "site_id"),
        ("/api/assets", {"name": "X", "site_id": 5145, "asset_type_id": 999}, "asset_type_id"),
        (
            "/api/assets",
            {"name": "X", "site_id": 5145, "asset_type_id": 3183, "current_user_id": 281474},
            "current_user_id",
        ),
    ],
)
def test_unknown_references_are_invalid(sa, path, body, field):
    assert_422(sa.post(path, body), field, f"The selected {field.replace('_', ' ')} is invalid.")


def test_asset_type_must_belong_to_the_assets_site(sa):
    answer = sa.post("/api/assets", {"name": "X", "site_id": 5146, "asset_type_id": 3183})
    assert_422(answer, "asset_type_id", "The selected asset type id is invalid.")


def test_cluster_create_needs_a_parent_and_cannot_become_its_own_descendant(sa):
    root = sa.post("/api/site_clusters", {"name": "Another root", "osha_establishment": 0})
    assert_422(root, "parent_cluster_id", "The parent cluster id field is required.")
    cycle = sa.put(
        "/api/site_clusters/709", {"name": "Central", "parent_cluster_id": 712, "osha_establishment": 0}
    )
    assert_422(cycle, "parent_cluster_id", "The selected parent cluster id is invalid.")


def test_cluster_put_with_only_the_parent_needs_the_other_fields(sa):
    answer = sa.put("/api/site_clusters/712", {"parent_cluster_id": 720})
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"name", "osha_establishment"}
    assert answer.json()["errors"]["name"] == ["The name field is required."]


def test_title_and_asset_required_fields(sa):
    assert_422(sa.post("/api/user_titles", {}), "name", "The name field is required.")
    assert_422(sa.put("/api/assets/40", {"name": "Renamed"}), "site_id", "The site id field is required.")


def test_unknown_role_in_user_create(sa):
    assert_422(
        sa.post("/api/users", new_user(email="r@example.com", roles=[{"id": 77}])),
        "roles.0.id",
        "The selected roles.0.id is invalid.",
    )


# ------------------------------------------------------------------ PUT and PATCH semantics


def test_user_put_with_a_partial_body_requires_the_core_fields(sa):
    answer = sa.put("/api/users/Pq2Rs", {"middle_name": "K"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == {
        "first_name": ["The first name field is required."],
        "last_name": ["The last name field is required."],
        "email": ["The email field is required."],
    }


def test_user_put_with_core_fields_writes_the_fields_sent(sa):
    before = sa.get("/api/users/Pq2Rs").json()["data"]
    body = {"first_name": "Lee", "last_name": "Tran", "email": "lee.tran@example.com", "city": "Austin"}
    after = sa.put("/api/users/Pq2Rs", body).json()["data"]
    assert after["city"] == "Austin"
    assert (
        after["home_site_id"] == before["home_site_id"] and after["current_title"] == before["current_title"]
    )


def test_patch_changes_only_the_fields_sent_and_ignores_unknown_fields(sa):
    before = sa.get("/api/users/Xy7Qa").json()["data"]
    answer = sa.patch(
        "/api/users/Xy7Qa", {"system_access": 0, "favourite_colour": "green", "current_title_id": 18055}
    )
    assert answer.status_code == 200
    after = answer.json()["data"]
    assert after["system_access"] is False
    assert after["current_title"] == {"id": 18055, "name": "Project Engineer"}
    assert "favourite_colour" not in after
    unchanged = {k: v for k, v in after.items() if k not in ("system_access", "current_title")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("system_access", "current_title")}
    assert sa.get("/api/users/Xy7Qa").json()["data"] == after


def test_patch_with_a_null_required_field_is_rejected(sa):
    assert_422(
        sa.patch("/api/users/Xy7Qa", {"last_name": None}), "last_name", "The last name field is required."
    )


def test_user_create_as_the_sync_sends_it(sa):
    body = {
        "first_name": "Ana",
        "middle_name": "M",
        "last_name": "Lopez",
        "email": "ana.lopez@example.com",
        "gender": 0,
        "date_of_birth": "1988-04-12",
        "current_hire_date": "2019-06-03",
        "street": "12 Elm St",
        "city": "Baton Rouge",
        "state": "LA",
        "zip_code": "70801",
        "country": "US",
        "mobile_phone": "+12255550161",
        "work_phone": "+12255550161",
        "home_site_id": 5146,
        "system_access": 1,
        "text_opt_out": 1,
        "timezone": "America/Chicago",
        "roles": [{"id": 3}],
        "sites": [],
        "current_title_id": 18054,
        "current_department_id": None,
        "current_supervisor_id": None,
        "emp_id": "2044",
    }
    answer = sa.post("/api/users", body)
    assert answer.status_code == 201, answer.text
    user = answer.json()["data"]
    assert (user["emp_id"], user["gender"], user["system_access"], user["text_opt_out"]) == (
        "2044",
        0,
        True,
        1,
    )
    assert user["home_site"]["id"] == 5146 and user["current_title"]["name"] == "Foreman"
    assert [r["id"] for r in user["roles"]] == [3]
    assert sa.get(f"/api/users/{user['id']}").json()["data"] == user


def test_invalid_gender_and_boolean(sa):
    assert_422(
        sa.post("/api/users", new_user(email="g@example.com", gender="M")),
        "gender",
        "The selected gender is invalid.",
    )
    assert_422(
        sa.patch("/api/users/Xy7Qa", {"system_access": "maybe"}),
        "system_access",
        "The system access field must be true or false.",
    )


def test_site_put_is_partial_and_keeps_other_fields(sa):
    answer = sa.put("/api/sites/5146", {"zip_code": "77002", "external_code": "ignored"})
    assert answer.status_code == 200
    site = answer.json()["data"]
    assert (site["zip_code"], site["ext_id"], site["name"], site["cluster_id"]) == (
        "77002",
        "23456.",
        "23456. - Dock Repair",
        720,
    )
    assert "external_code" not in site


def test_invalid_json_body_reads_as_no_input(sa):
    answer = sa.request(
        "POST", "/api/user_titles", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert_422(answer, "name", "The name field is required.")
