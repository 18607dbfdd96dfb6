"""Driver link (DESIGN §7): externalIds first, else the first run of 4+ digits in the notes."""

from safetyamp_pipeline.core.driver_link import driver_employee_number


def test_external_ids_win_over_notes() -> None:
    driver = {"externalIds": {"payrollId": " 10234 "}, "notes": "Emp #55555"}
    assert driver_employee_number(driver) == "10234"
    assert driver_employee_number({"externalIds": {"employeeId": "777"}}) == "777"


def test_notes_give_the_first_run_of_four_or_more_digits() -> None:
    assert driver_employee_number({"notes": "Truck 12, emp #10234 – day shift, ext 5678"}) == "10234"
    assert driver_employee_number({"notes": "unit 123 only"}) is None


def test_nothing_to_link() -> None:
    assert driver_employee_number(None) is None
    assert driver_employee_number({"externalIds": {"samsara.serial": "G123"}, "notes": None}) is None
