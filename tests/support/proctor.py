"""An exam under lockdown policies and a proctor's signed-in client."""

import pytest

from cbt import bank, exams
from cbt.platform.app import create_app
from support.accounts import csrf_of, login
from support.bank import trust
from support.delivery import STUDENTS, exam_yaml


def with_policies(policies: str, code="LOCK-T") -> str:
    return exam_yaml(code=code) + "policies:\n" + policies


@pytest.fixture
async def locked_exam(conn, signed_demo, request):
    """An open exam in THPT-A (the staff fixture's school) with the given policies."""
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    policies = getattr(request, "param", "  one_device: true\n")
    await exams.create_exam(conn, exams.parse_exam(with_policies(policies)), "THPT-A")
    await exams.add_roster(conn, "LOCK-T", STUDENTS)
    await exams.open_exam(conn, "LOCK-T")
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "LOCK-T")}


async def proctor_client(aiohttp_client, settings, who="proctor"):
    client = await aiohttp_client(create_app(settings))
    assert (await login(client, who)).status == 303
    token = await csrf_of(client, "/staff")
    return client, {"X-CSRF-Token": token}
