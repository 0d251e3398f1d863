"""The benchmark's own PostgreSQL database: created, migrated and seeded once, then reused.

The database carries a comment with the seed key (seed version, size, migration files'
hash); a run whose key differs drops and re-creates it, so a stale seed is never measured.
"""

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("LORAHUB_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "lorahub_bench"
DATABASE_URL = f"{PG_SERVER}/{DB_NAME}"


def migrations_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/0*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _admin() -> psycopg.Connection:
    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


def current_key() -> str | None:
    with _admin() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [DB_NAME],
        ).fetchone()
    return row[0] if row else None


def recreate() -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))


@contextmanager
def seed_lock() -> Iterator[None]:
    """Serialise check-and-seed between benchmark processes (several reuse this database):
    without it, one process re-creating the database would kill another's seeding."""
    with _admin() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [DB_NAME])
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [DB_NAME])


def mark(key: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(DB_NAME), sql.Literal(key)
            )
        )


def setup_django(var_dir: Path) -> None:
    """Point this process's Django at the benchmark database (once per process)."""
    from django.apps import apps

    if apps.ready:
        from django.db import connection

        if connection.settings_dict["NAME"] != DB_NAME:
            raise RuntimeError("Django is already set up for another database")
        return
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["LORAHUB_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
