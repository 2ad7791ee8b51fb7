"""The store's errors: what went wrong with Chroma, said so a user can act on it."""

from __future__ import annotations

import logging
import os
from typing import TypeVar

import httpx

from qa.core.errors import QAError
from qa.core.schemas import ReportRecord

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402  (telemetry must be off before import)
import chromadb.errors  # noqa: E402

log = logging.getLogger(__name__)
T = TypeVar("T")


# What a failing Chroma call raises: its own errors (InternalError "Error finding id"…) and, for a server,
# the HTTP client's (connection refused, timeouts).
CHROMA_ERRORS = (chromadb.errors.ChromaError, httpx.HTTPError)


# ---- errors ------------------------------------------------------------------------------------------


class StoreError(QAError):
    """The store could not be read or written, is busy, or holds a damaged report; the message says what
    to do. `retryable`: a reconnect and a second try may succeed (another process changed the store)."""

    code = "store.error"
    retryable = False


class StoreReadError(StoreError):
    """A read failed twice (the second time after reconnecting)."""

    code = "store.read_failed"
    retryable = True


class StoreChanged(StoreError):
    """Another process changed the store while this one read it; reading again sees the new state."""

    code = "store.changed"
    retryable = True


class StoreBusy(StoreError):
    """Another writer held the store's writer lock for longer than this one would wait."""

    code = "store.busy"


class StoreDamaged(StoreError):
    """The store's database file is damaged (empty, or missing beside Chroma's index data). It is never
    opened: Chroma would write a new, empty database over an empty file, and every report would be lost."""

    code = "store.damaged"
    stops_batch = True


class StoreReadOnly(StoreError):
    """A write to a store this process may not write to (permissions, a read-only disk). Reads work."""

    code = "store.read_only"
    stops_batch = True


class ReportDamaged(StoreError):
    """A listed report's chunks are missing or belong to another report: it must be ingested again."""

    code = "store.report_damaged"

    def __init__(self, message: str, report_id: str):
        super().__init__(message, report=report_id)
        self.report_id = report_id


def damaged(record: ReportRecord, problem: str) -> ReportDamaged:
    """The error for a report that is not stored as listed: it names the file to ingest again."""
    source = record.source_path or record.report_id
    return ReportDamaged(
        f"report {record.report_id} is damaged in the store ({problem}); ingest its file again: "
        f"qa ingest {source}",
        record.report_id,
    )


def _reason(ex: BaseException) -> str:
    text = str(ex).strip()
    return f"{type(ex).__name__}: {text}" if text else type(ex).__name__
