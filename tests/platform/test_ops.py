"""/healthz and /metrics."""

import asyncio
from urllib.parse import urlsplit

import asyncpg
from support.accounts import login

from cbt.platform.ops import metrics_allowed


async def test_healthz_ok(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok"}


async def test_healthz_503_when_the_database_is_gone(client, dsn, pg_admin_dsn):
    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        resp = await client.get("/healthz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable" and body["database"]
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # The pool recovers by itself, no restart needed, as a load balancer
        # polling /healthz sees: a connection it held when the database went
        # away may fail one more check, and on a busy machine the new one may
        # take longer than the check's 2 s to open.
        statuses = []
        for _ in range(20):
            statuses.append((await client.get("/healthz")).status)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.5)
        assert statuses[-1] == 200, statuses
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_metrics_count_requests_by_route_and_status(client, staff):
    await client.get("/login")
    await client.get("/nowhere")
    await login(client, "teacher")
    await client.get("/staff/users")  # 403 for a teacher
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    assert 'cbt_http_requests_total{method="GET",route="login",status="200"}' in text
    assert 'cbt_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'cbt_http_requests_total{method="GET",route="staff_users",status="403"}' in text
    assert 'cbt_http_requests_total{method="POST",route="login_submit",status="303"}' in text
    assert 'cbt_http_request_duration_seconds_bucket{le="0.5",route="login"}' in text
    assert 'cbt_db_pool_connections{state="max"} 4.0' in text


def test_metrics_access_rule():
    assert metrics_allowed("127.0.0.1", "", "")
    assert metrics_allowed("::1", "", "")
    assert not metrics_allowed("10.1.2.3", "", "")
    assert not metrics_allowed("10.1.2.3", "Bearer guess", "s3cret-token")
    assert metrics_allowed("10.1.2.3", "Bearer s3cret-token", "s3cret-token")
    assert not metrics_allowed("10.1.2.3", "Bearer ", "")
