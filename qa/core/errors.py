"""One small error tree. Interfaces (cli.py, app.py) turn these into messages; nothing else does.

Every error carries a stable `code` ("llm.rate_limited", "input.not_pdf"…) and the fields its message is
built from (status, path, endpoint, limit…). The CLI prints the English message; the app looks the code up
in its Chinese table and fills the template from the fields, so rewording an English message never changes
what the app says. A raise site passes its fields as keywords and builds its English text from them."""

from __future__ import annotations

import copy
from typing import Any, Self


class QAError(Exception):
    """Base for every error a user can act on. The message says what, where, and what to do.

    code: what went wrong, stable across rewordings (the class's default, or narrower per raise site).
    fields: the facts the message is built from (str/int/float), for an interface's own wording.
    retriable / retry_after: a retry may fix it (retry_after: the server's hint in seconds, None for none).
    not_sent: refused without a request (the batch's endpoint already failed for good).
    context: which report / step it happened in ("zichuan.txt (map, part 2/5)"), shown before the message.
    note: what happened around it ("(after 3 tries in 12 s)"), shown after the message."""

    code = "error"
    exit_code = 1
    stops_batch = False  # True: every other report of a batch would fail the same way, so stop it

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        retriable: bool = False,
        retry_after: float | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields: dict[str, Any] = fields
        self.retriable = retriable
        self.retry_after = retry_after
        self.not_sent = False
        self.context = ""
        self.note = ""

    def __str__(self) -> str:
        text = f"{self.context}: {self.message}" if self.context else self.message
        return f"{text} {self.note}" if self.note else text

    def _copy(self) -> Self:
        # not type(self)(str(self)): subclasses take other arguments, and the copy keeps code and fields
        twin = copy.copy(self)
        twin.fields = dict(self.fields)
        return twin

    def within(self, context: str) -> Self:
        """The same error, said to have happened in `context` (a report, a step): 'context: message'."""
        twin = self._copy()
        twin.context = f"{context}: {self.context}" if self.context else context
        return twin

    def noted(self, note: str) -> Self:
        """The same error with a note after its message ('… (after 3 tries in 12 s)'), no longer retriable."""
        twin = self._copy()
        twin.note = f"{self.note} {note}" if self.note else note
        twin.retriable, twin.retry_after = False, None
        return twin

    def unsent(self) -> Self:
        """The same error for a call that was refused without a request (nothing to log, nothing tried)."""
        twin = self._copy()
        twin.not_sent = True
        return twin

    def __copy__(self) -> Self:
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.args = self.args
        return twin


class ConfigError(QAError):
    """Settings are missing, invalid, or point at something unreachable."""

    code = "config"
    exit_code = 2
    stops_batch = True


class InputError(QAError):
    """A file or argument the user gave cannot be used. reason: the message without the path."""

    code = "input"

    def __init__(self, message: str, path: str | None = None, *, code: str | None = None, **fields: Any):
        super().__init__(f"{path}: {message}" if path else message, code=code, **fields)
        self.path = path
        self.reason = message


class ProviderError(QAError):
    """An embedding or LLM endpoint failed (after retries)."""

    code = "llm.error"


class EndpointUnreachable(ProviderError):
    """No connection to the endpoint at all (after retries): a setting or a server to fix, not one call."""

    code = "llm.unreachable"
    stops_batch = True


class EmptyIndexError(QAError):
    """The store has no reports (or none match the filter)."""

    code = "store.empty"


class OutputError(QAError):
    """Model output could not be parsed or validated."""

    code = "output"


class TruncatedReply(OutputError):
    """The model hit its max_tokens budget: the reply is cut, so it is neither parsed nor repaired."""

    code = "llm.truncated"


class DegenerateReply(OutputError):
    """The reply is not a reply (an echo of the prompt, a loop, empty): see qa.models.sanity."""

    code = "llm.degenerate"


class DeadlineExceeded(ProviderError):
    """A call ran past its total deadline (waiting for a slot, retries and streaming together)."""

    code = "llm.deadline"
