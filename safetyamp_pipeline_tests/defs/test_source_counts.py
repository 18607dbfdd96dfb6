"""What the blocking source checks count: active employees as the sync treats them (issue 15.2)
and Entra users that carry ``mail`` (issue 15.9; the UPN does not count)."""

from __future__ import annotations

from datetime import datetime

from safetyamp_pipeline.defs.sources.entra import _with_email
from safetyamp_pipeline.defs.sources.viewpoint import _active_count


def test_a_rehire_with_an_old_termdate_counts_as_active() -> None:
    rows = [
        {"Employee": 1, "HireDate": datetime(2020, 1, 1), "TermDate": None},
        {"Employee": 2, "HireDate": datetime(2024, 3, 1), "TermDate": datetime(2022, 5, 1)},  # rehired
        {"Employee": 3, "HireDate": datetime(2020, 1, 1), "TermDate": datetime(2025, 6, 1)},  # terminated
        {"Employee": 4, "HireDate": datetime(2025, 6, 1), "TermDate": datetime(2025, 6, 1)},  # same day: terminated
    ]
    assert _active_count(rows) == 2


def test_only_users_with_an_employee_id_and_a_mail_count() -> None:
    users = [
        {"employeeId": "1", "mail": "a@example.com", "userPrincipalName": "a@example.com"},
        {"employeeId": "2", "mail": None, "userPrincipalName": "b@example.com"},  # mail lost: not counted
        {"employeeId": "3", "mail": "  ", "userPrincipalName": "c@example.com"},
        {"employeeId": "", "mail": "d@example.com", "userPrincipalName": "d@example.com"},
        {"employeeId": " 5 ", "mail": "e@example.com", "userPrincipalName": "e@example.com"},
    ]
    assert _with_email(users) == 2
