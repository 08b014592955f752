"""What the benchmark scripts share: an empty registry database to measure on."""

import contextlib
import os
import sys
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextlib.contextmanager
def empty_database(base_url: str | None, sqlite_file: Path):
    """Yield the URL of an empty database: ``sqlite_file``, or with a PostgreSQL ``base_url`` a fresh
    schema in that database (dropped afterwards), so a benchmark never touches existing tables."""
    if not base_url:
        yield f"sqlite:///{sqlite_file}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def print_verdicts(checks: list[tuple[str, bool]]) -> bool:
    """One line per check (``- PASS: ...`` / ``- FAIL: ...``); True when every check passed."""
    for line, passed in checks:
        print(f"- {'PASS' if passed else 'FAIL'}: {line}")
    return all(passed for _, passed in checks)


@contextlib.contextmanager
def stdout_to_stderr():
    """The tokenizer trainer writes progress to file descriptor 1: keep it out of the printed report."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
