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


def _case_differs(mail: str) -> str:
    return mail.split("@")[0].title() + "@" + COMPANY_DOMAIN.replace("iandi", "IandI")


def _onmicrosoft(mail: str) -> str:
    return f"{mail.split('@')[0]}@{TENANT_DOMAIN}"


def build_graph_users(rng: random.Random, data: VistaData) -> list[dict]:
    """About 90 % of active employees have an account; some terminated ones still do."""
    users: list[dict] = []
    plain: list[tuple[str, dict]] = []  # accounts with no quirk yet: candidates for planting
    for emp in (e for e in data.employees if e["PRCo"] == PR_COMPANY):
        active = emp["TermDate"] is None
        if rng.random() > (0.9 if active else 0.4):
            if active:
                data.note("graph_missing_active", emp["Employee"])
            continue
        number = str(emp["Employee"])
        vista_mail = (emp["Email"] or "").strip().replace(" ", "").lower()
        mail = vista_mail if vista_mail.endswith("@" + COMPANY_DOMAIN) else f"{_alias(emp)}@{COMPANY_DOMAIN}"
        upn = mail
        employee_id = number
        quirky = True
        roll = rng.random()
        if roll < 0.04:
            mail = _case_differs(mail)
            data.note("graph_mail_case_differs", number)
        elif roll < 0.06:
            upn = mail = _onmicrosoft(mail)
            data.note("graph_mail_onmicrosoft", number)
        elif roll < 0.07:
            mail = None
            data.note("graph_mail_missing", number)
        elif roll < 0.09:
            employee_id = number.zfill(len(number) + 2)
            data.note("graph_employee_id_padded", number)
        else:
            quirky = False
        enabled = rng.random() < (0.99 if active else 0.3)
        if not enabled:
            data.note("graph_disabled", number)
        user = _user(rng, employee_id, mail, upn, enabled)
        users.append(user)
        if not quirky and enabled and active:
            plain.append((number, user))
    # However small the set, each quirk is present at least once.
    plant = iter(rng.sample(plain, len(plain)))
    for kind, change in (
        ("graph_mail_case_differs", lambda u: u.update(mail=_case_differs(u["mail"]))),
        ("graph_mail_onmicrosoft", lambda u: u.update(mail=_onmicrosoft(u["mail"]))),
        ("graph_mail_missing", lambda u: u.update(mail=None)),
        ("graph_employee_id_padded", lambda u: u.update(employeeId=u["employeeId"].zfill(len(u["employeeId"]) + 2))),
        ("graph_disabled", lambda u: u.update(accountEnabled=False)),
    ):
        if not data.cases.get(kind):
            number, user = next(plant)
            change(user)
            data.note(kind, number)
    # An employee with an old, disabled account next to the current one (same employeeId).
    number, current = next(plant)
    old_alias = current["userPrincipalName"].split("@")[0] + ".old"
    users.append(_user(rng, current["employeeId"], None, f"{old_alias}@{COMPANY_DOMAIN}", False))
    data.note("graph_duplicate_employee_id", number)
    for name in SERVICE_ACCOUNTS:
        users.append(_user(rng, None, f"{name}@{COMPANY_DOMAIN}", f"{name}@{TENANT_DOMAIN}", True))
    data.note("graph_service_account", SERVICE_ACCOUNTS[0])
    rng.shuffle(users)
    return users
