"""Job records and file ownership in SQLite, beside the result store.

Why SQLite: a restart must not lose what clients were promised (a completed job's result, a queued
job's request), and the server must answer "whose is this file" without a scan. One small file,
written at every status change (not at every step: progress lives in memory), in WAL mode so
readers never wait on the writer. Calls are short and serialized by one lock, so they are made
from the event loop directly.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    request TEXT NOT NULL,
    progress TEXT,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created);
CREATE TABLE IF NOT EXISTS files (
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    job_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    PRIMARY KEY (id, owner)
);
"""

#: Statuses after which a job never changes again.
FINAL_STATUSES = ("completed", "failed", "cancelled")


class JobRecords:
    """The jobs table and the files table (see the module docstring)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def insert(self, job_id: str, owner: str, task: str, request: dict[str, Any], created: float) -> None:
        self._execute(
            "INSERT INTO jobs (id, owner, task, status, created, request) VALUES (?, ?, ?, 'queued', ?, ?)",
            (job_id, owner, task, created, json.dumps(request)),
        )

    def mark_running(self, job_id: str) -> None:
        self._execute("UPDATE jobs SET status = 'running', started = ? WHERE id = ?", (time.time(), job_id))

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        result: list[dict[str, Any]] | None = None,
        error: dict[str, Any] | None = None,
        owner: str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        """Record a final status (and the last progress); result files become the job owner's in the
        same transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "UPDATE jobs SET status = ?, finished = ?, progress = ?, result = ?, error = ? WHERE id = ?",
                    (status, time.time(), _dumps(progress), _dumps(result), _dumps(error), job_id),
                )
                for item in result or ():
                    self._db.execute(
                        "INSERT OR IGNORE INTO files (id, owner, job_id, content_type) VALUES (?, ?, ?, ?)",
                        (item["file_id"], owner, job_id, item["content_type"]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = self._execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _row(rows[0]) if rows else None

    def list(self, owner: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._execute("SELECT * FROM jobs WHERE owner = ? ORDER BY created DESC LIMIT ?", (owner, limit))
        return [_row(row) for row in rows]

    def file_content_type(self, file_id: str, owner: str) -> str | None:
        rows = self._execute("SELECT content_type FROM files WHERE id = ? AND owner = ?", (file_id, owner))
        return rows[0]["content_type"] if rows else None

    def recover(self) -> list[dict[str, Any]]:
        """After a restart: jobs that were running failed; the queued ones are returned, oldest first, to run."""
        error = {"message": "interrupted by restart", "type": "server_error", "code": "interrupted"}
        self._execute(
            "UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE status = 'running'",
            (time.time(), json.dumps(error)),
        )
        rows = self._execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created")
        return [_row(row) for row in rows]


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _row(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for key in ("request", "progress", "result", "error"):
        if record.get(key) is not None:
            record[key] = json.loads(record[key])
    return record


__all__ = ["FINAL_STATUSES", "JobRecords"]
