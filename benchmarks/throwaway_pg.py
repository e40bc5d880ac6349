"""A throw-away embedded PostgreSQL for benchmarks (or CBT_DATABASE_URL when set)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cbt.platform import db


@contextlib.contextmanager
def throwaway_postgres(prefix: str = "cbt-bench-", options: str = "") -> Iterator[tuple[str, Path]]:
    """Yield (dsn, scratch folder); everything is removed afterwards. options: more server settings."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    # When run as root, PostgreSQL's own user must be able to reach its folder.
    root.chmod(0o755)
    try:
        if os.environ.get("CBT_DATABASE_URL"):
            yield os.environ["CBT_DATABASE_URL"], root
            return
        pg = db.EmbeddedPostgres(root / "data", options)
        pg.acquire(exclusive=True)
        sock = pg.start()
        try:
            asyncio.run(db.ensure_database(pg.dsn(sock, "postgres")))
            yield pg.dsn(sock), root
        finally:
            pg.stop()
            pg.release()
    finally:
        shutil.rmtree(root, ignore_errors=True)
