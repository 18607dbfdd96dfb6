"""Person data shown in Dagster metadata, logs and CLI output is masked."""

from __future__ import annotations

from safetyamp_pipeline.sync.masking import mask_email, mask_phone, mask_record, mask_text


def test_emails_phones_and_birth_dates_are_masked() -> None:
    record = mask_record(
        {"email": "Jane.Doe@example.com", "mobile_phone": "+12255550187", "date_of_birth": "1980-04-02",
         "street": "12 Main St", "first_name": "Jane", "zip_code": "70816"}
    )
    assert record["email"] == "J***@example.com"
    assert record["mobile_phone"] == "***87"
    assert record["date_of_birth"] == "****-**-**"
    assert record["street"] == "***"
    assert record["first_name"] == "Jane" and record["zip_code"] == "70816"


def test_free_text_keeps_dates_and_job_numbers_but_not_contacts() -> None:
    text = "422 for jane@example.com: mobile_phone +1 (225) 555-0187 taken; hired 2022-05-29 on job 12345."
    masked = mask_text(text)
    assert "jane@example.com" not in masked and "555-0187" not in masked
    assert "2022-05-29" in masked and "12345." in masked


def test_empty_values_stay_empty() -> None:
    assert mask_email(None) is None and mask_email("") == ""
    assert mask_phone(None) is None and mask_phone("") == ""
