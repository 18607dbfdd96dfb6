"""Synthetic Entra ID users (Graph `$select=id,employeeId,mail,userPrincipalName,accountEnabled`)."""

from __future__ import annotations

import random
import uuid

from safetyamp_pipeline.sandbox.data_vista import COMPANY_DOMAIN, PR_COMPANY, VistaData, ascii_fold

TENANT_DOMAIN = "iandico.onmicrosoft.com"
SERVICE_ACCOUNTS = ("svc-scanner", "svc-backup", "conference.room.a", "svc-dagster", "helpdesk")


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _user(rng: random.Random, employee_id: str | None, mail: str | None, upn: str, enabled: bool) -> dict:
    return {
        "id": _guid(rng),
        "employeeId": employee_id,
        "mail": mail,
        "userPrincipalName": upn,
        "accountEnabled": enabled,
    }


def _alias(emp: dict) -> str:
    first = (emp["FirstName"] or "user").strip().lower().replace(" ", "")
    last = (emp["LastName"] or "").strip().lower().replace(" ", "") or str(emp["Employee"])
    return ascii_fold(f"{first}.{last}.{emp['Employee']}")


def build_graph_users(rng: random.Random, data: VistaData) -> list[dict]:
    """About 90 % of active employees have an account; some terminated ones still do."""
    users: list[dict] = []
    for emp in (e for e in data.employees if e["PRCo"] == PR_COMPANY):
        active = emp["TermDate"] is None
        if rng.random() > (0.9 if active else 0.4):
            if active:
                data.note("graph_missing_active", emp["Employee"])
            continue
        number = str(emp["Employee"])
        vista_mail = (emp["Email"] or "").strip().replace(" ", "").lower()
        mail = vista_mail if vista_mail.endswith("@" + COMPANY_DOMAIN) else f"{_alias(emp)}@{COMPANY_DOMAIN}"
        roll = rng.random()
        if roll < 0.04:
            mail = mail.split("@")[0].title() + "@" + COMPANY_DOMAIN.replace("iandi", "IandI")
            data.note("graph_mail_case_differs", number)
        elif roll < 0.06:
            mail = f"{mail.split('@')[0]}@{TENANT_DOMAIN}"
            data.note("graph_mail_onmicrosoft", number)
        elif roll < 0.07:
            mail = None
            data.note("graph_mail_missing", number)
        employee_id = number
        if rng.random() < 0.02:
            employee_id = number.zfill(len(number) + 2)
            data.note("graph_employee_id_padded", number)
        enabled = rng.random() < (0.99 if active else 0.3)
        if not enabled:
            data.note("graph_disabled", number)
        upn = (mail or f"{_alias(emp)}@{COMPANY_DOMAIN}").lower()
        users.append(_user(rng, employee_id, mail, upn, enabled))
    # An employee with an old, disabled account next to the current one (same employeeId).
    current = next(u for u in users if u["accountEnabled"] and u["employeeId"] and u["mail"])
    old_alias = current["userPrincipalName"].split("@")[0] + ".old"
    users.append(_user(rng, current["employeeId"], None, f"{old_alias}@{COMPANY_DOMAIN}", False))
    data.note("graph_duplicate_employee_id", current["employeeId"])
    for name in SERVICE_ACCOUNTS:
        users.append(_user(rng, None, f"{name}@{COMPANY_DOMAIN}", f"{name}@{TENANT_DOMAIN}", True))
    data.note("graph_service_account", SERVICE_ACCOUNTS[0])
    rng.shuffle(users)
    return users
