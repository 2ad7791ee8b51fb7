"""Reading the regulation's text from a file the user gives (`qa check --regulation FILE`,
QA_REGULATION_TEXT): loaded as a report file is (txt, md, html, pdf, docx), then read by the pure
qa.genre.regulation_text. Errors name the file and say what to give instead."""

from __future__ import annotations

from pathlib import Path

from qa.core.errors import InputError
from qa.genre.regulation_text import UNREAD, Basis, NotTheRegulation, read_basis
from qa.ingest.loaders import load

_WHOLE = "give the whole text of 《法治政府建设与责任落实督察工作规定》"


def read_regulation(path: Path | None, max_bytes: int) -> Basis:
    """The Basis a check-up cites: read from the file when one is given, else UNREAD (cite by name)."""
    if path is None:
        return UNREAD
    document = load(path, max_bytes)
    text = "\n".join(part for part in (document.header, document.text, document.footer) if part)
    try:
        return read_basis(text, path.name)
    except NotTheRegulation as ex:
        if ex.code == "no_articles":
            raise InputError(f"no article (第…条) in the text; {_WHOLE}", str(path),
                             code="input.regulation_no_articles") from ex  # fmt: skip
        raise InputError(f"no article lists what an annual report contains (主要举措和成效, 不足和原因…); {_WHOLE}",
                         str(path), code="input.regulation_no_contents") from ex  # fmt: skip
