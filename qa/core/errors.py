"""One small error tree. Interfaces (cli.py, app.py) turn these into messages; nothing else does."""


class QAError(Exception):
    """Base for every error a user can act on. The message says what, where, and what to do."""

    exit_code = 1
    stops_batch = False  # True: every other report of a batch would fail the same way, so stop it


class ConfigError(QAError):
    """Settings are missing, invalid, or point at something unreachable."""

    exit_code = 2
    stops_batch = True


class InputError(QAError):
    """A file or argument the user gave cannot be used."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class ProviderError(QAError):
    """An embedding or LLM endpoint failed (after retries)."""


class EndpointUnreachable(ProviderError):
    """No connection to the endpoint at all (after retries): a setting or a server to fix, not one call."""

    stops_batch = True


class EmptyIndexError(QAError):
    """The store has no reports (or none match the filter)."""


class OutputError(QAError):
    """Model output could not be parsed or validated."""


class TruncatedReply(OutputError):
    """The model hit its max_tokens budget: the reply is cut, so it is neither parsed nor repaired."""


class DegenerateReply(OutputError):
    """The reply is not a reply (an echo of the prompt, a loop, empty): see qa.engines.sanity."""


class DeadlineExceeded(ProviderError):
    """A call ran past its total deadline (waiting for a slot, retries and streaming together)."""
