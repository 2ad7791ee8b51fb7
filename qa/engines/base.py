"""The engine seam (the chat model's is qa.models.base.ChatModel).

`Engine`: what writes an answer's text, a follow-up's standalone form and a summary's content —
`offline.OfflineEngine` (quotes the reports, no model) and `chat.ChatEngine` (a ChatModel with the prompt
templates). `qa.wiring.make_engine` is the one place that picks an engine; the answer chain, the
summarizer, the batch runner, the eval pipeline and both interfaces only call its methods."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from qa.answer.pipeline import Draft, Gathered, Plan, Turn
    from qa.core.schemas import ReportRecord
    from qa.models.prompts import PromptTemplate
    from qa.summary.summarize import ReportView, SummaryContent


class Engine(Protocol):
    name: str  # "extractive" or "llm": recorded on every answer, summary and eval row
    model: str | None  # the chat model's name; None offline
    label: str | None  # how the interfaces name the model; None offline
    prompt_ref: str | None  # the answer template's ref; None offline
    instructions: tuple[str, ...]  # what the model is told (a reply copying it back is an echo); () offline
    streams: bool  # the answer arrives token by token (worth showing as it comes); offline: all at once

    def answer(self, plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
               vocabulary: frozenset[str], history: Sequence[Turn],
               on_token: Callable[[str], None] | None) -> Draft: ...  # fmt: skip

    def condense(self, question: str, history: Sequence[Turn]) -> str | None:
        """A follow-up rewritten as a standalone question; None: the engine leaves it to the plan."""

    def summary_content(self, report: ReportView, template: PromptTemplate, usage: dict[str, Any],
                        map_workers: int) -> tuple[SummaryContent, list[str]]:  # fmt: skip
        """A summary's content (checked and fitted by the summarizer afterwards) and the prompt refs used."""

    def summary_refs(self, template: PromptTemplate) -> list[str]:
        """The prompt refs a summary made now would record (a batch redoes a summary whose refs differ)."""

    def limited(self, calls: int) -> Engine:
        """This engine for one batch: at most `calls` model calls in flight (offline: itself)."""
