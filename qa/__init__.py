"""reportqa: grounded Q&A and structured summaries over long reports."""

__version__ = "0.1.0"
