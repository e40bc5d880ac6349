"""The test server's databases."""

from __future__ import annotations

from urllib.parse import urlsplit


def with_database(dsn: str, name: str) -> str:
    return urlsplit(dsn)._replace(path="/" + name).geturl()
