"""SQLite under QA_DATA_DIR: a log of every LLM call and an opt-in response cache.

Observability must never break a call: any SQLite failure becomes a warning and the call goes on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from qa.core.redact import redact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    prompt_ref TEXT,
    model TEXT,
    endpoint TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms REAL,
    cost_usd REAL,
    cached INTEGER DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT,
    text TEXT,
    usage TEXT,
    time TEXT
);
"""


class CallLog:
    FILE_NAME = "llm_calls.sqlite"
    EMPTY_TOTALS = {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "errors": 0,
        "cached": 0,
    }

    @classmethod
    def in_dir(cls, data_dir: Path) -> CallLog:
        """The call log of a data dir (QA_DATA_DIR)."""
        return cls(data_dir / cls.FILE_NAME)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=5)
            self._db.executescript(_SCHEMA)
            self._db.commit()
        except (sqlite3.Error, OSError) as ex:
            warnings.warn(f"LLM call log {path} unavailable ({ex}); calls are not logged", stacklevel=2)
            self._db = None

    def _run(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        if self._db is None:
            return []
        try:
            with self._lock:
                rows = self._db.execute(sql, params).fetchall()
                self._db.commit()
                return rows
        except sqlite3.Error as ex:
            warnings.warn(f"LLM call log {self.path}: {ex}", stacklevel=3)
            return []

    def record(
        self,
        *,
        prompt_ref: str,
        model: str,
        endpoint: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        latency_ms: float,
        cost_usd: float | None,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        """One call. Its text fields are redacted here, whoever built them: a row never holds a secret."""
        self._run(
            "INSERT INTO calls (time, prompt_ref, model, endpoint, prompt_tokens, completion_tokens, latency_ms,"
            " cost_usd, cached, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.strftime("%Y-%m-%dT%H:%M:%S"),
                prompt_ref,
                redact(model),
                redact(endpoint),
                prompt_tokens,
                completion_tokens,
                round(latency_ms, 1),
                cost_usd,
                int(cached),
                None if error is None else redact(error),
            ),
        )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._run(
            "SELECT time, prompt_ref, model, endpoint, prompt_tokens, completion_tokens, latency_ms, cost_usd,"
            " cached, error FROM calls ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        keys = ("time", "prompt_ref", "model", "endpoint", "prompt_tokens", "completion_tokens", "latency_ms",
                "cost_usd", "cached", "error")  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def totals(self) -> dict[str, Any]:
        rows = self._run(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),"
            " COALESCE(SUM(cost_usd), 0), SUM(error IS NOT NULL), SUM(cached) FROM calls"
        )
        if not rows:
            return dict(self.EMPTY_TOTALS)
        calls, prompt, completion, cost, errors, cached = rows[0]
        return {
            "calls": calls,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost_usd": round(cost or 0, 6),
            "errors": errors or 0,
            "cached": cached or 0,
        }

    def unpriced(self) -> int:
        """Calls the model answered (not from the cache; a failed call only if it reported tokens) whose cost is
        unknown: no price for the model. While there is one, a total cost is unknown, not the priced part."""
        rows = self._run(
            "SELECT COUNT(*) FROM calls WHERE cost_usd IS NULL AND NOT cached AND (error IS NULL"
            " OR COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) > 0)"
        )
        return int(rows[0][0]) if rows else 0

    # ---- response cache (opt-in: QA_LLM_CACHE=1) ----------------------------------------------

    @staticmethod
    def cache_key(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        blob = json.dumps([model, messages, params], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def cached(self, key: str) -> tuple[str, dict[str, int]] | None:
        rows = self._run("SELECT text, usage FROM responses WHERE key = ?", (key,))
        return (rows[0][0], json.loads(rows[0][1] or "{}")) if rows else None

    def store(self, key: str, model: str, text: str, usage: dict[str, int]) -> None:
        self._run(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
            (key, model, text, json.dumps(usage), time.strftime("%Y-%m-%dT%H:%M:%S")),
        )
