"""Conversations kept across `qa ask --session NAME` calls: one JSONL file per session under
QA_DATA_DIR/sessions, a line per turn (role, content, the scope it was answered in)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from qa.answer.pipeline import Turn
from qa.core.errors import InputError

_NAME = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff.-]{0,63}$")


def session_path(data_dir: Path, name: str) -> Path:
    if not _NAME.match(name) or ".." in name:
        raise InputError(
            f"session name {name!r} is not usable: letters, digits, Chinese, '.', '-', '_' (up to 64)",
            "--session",
        )
    return data_dir / "sessions" / f"{name}.jsonl"


def load(data_dir: Path, name: str) -> list[Turn]:
    """The turns so far ([] for a new session)."""
    path = session_path(data_dir, name)
    if not path.exists():
        return []
    turns = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
            turns.append(Turn(str(row["role"]), str(row["content"])))
        except (json.JSONDecodeError, KeyError, TypeError) as ex:
            raise InputError(f"line {number} is not a session turn ({ex}); delete the file to start over",
                             str(path)) from ex  # fmt: skip
    return turns


def append(data_dir: Path, name: str, question: str, answer_text: str, scope: tuple[str, ...]) -> None:
    """Add a question and its answer (appended and flushed: an interrupted call loses only itself)."""
    path = session_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer_text, "scope": list(scope)},
    ]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        handle.flush()
        os.fsync(handle.fileno())
