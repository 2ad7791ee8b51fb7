"""reportqa: grounded Q&A and structured summaries over long reports.

`from qa import Library` is the Python API (qa/library.py); it is imported on first use, so `import qa`
stays cheap for the CLI."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Library"]


def __getattr__(name: str) -> Any:
    if name == "Library":
        from qa.api import Library

        return Library
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
