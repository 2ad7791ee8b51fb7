"""The offline engine: answers quote the best-supported sentences of the sources verbatim
(qa.answer.pipeline.ExtractiveAnswerer), summaries are composed from the report's own words
(qa.summary.summarize.OFFLINE_WRITER). No model, no network, no prompt templates loaded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qa.answer.pipeline import Draft, ExtractiveAnswerer, Gathered, Plan, Turn
from qa.core.schemas import ReportRecord

if TYPE_CHECKING:
    from qa.models.prompts import PromptTemplate
    from qa.summary.summarize import ReportView, SummaryContent


class OfflineEngine:
    name = "extractive"
    model: str | None = None
    label: str | None = None
    prompt_ref: str | None = None
    instructions: tuple[str, ...] = ()
    streams = False

    def __init__(self) -> None:
        self._answerer = ExtractiveAnswerer()

    def answer(self, plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
               vocabulary: frozenset[str], history: Sequence[Turn],
               on_token: Callable[[str], None] | None) -> Draft:  # fmt: skip
        return self._answerer.answer(plan_, gathered, records, vocabulary, history, on_token)

    def condense(self, question: str, history: Sequence[Turn]) -> str | None:
        return None  # the plan reads a follow-up's place and years from the turns before it

    def summary_content(self, report: ReportView, template: PromptTemplate, usage: dict[str, Any],
                        map_workers: int) -> tuple[SummaryContent, list[str]]:  # fmt: skip
        from qa.summary.summarize import OFFLINE_WRITER  # here: an offline answer never loads the summarizer

        return OFFLINE_WRITER.summary_content(report, template, usage, map_workers)

    def summary_refs(self, template: PromptTemplate) -> list[str]:
        from qa.summary.summarize import OFFLINE_WRITER

        return OFFLINE_WRITER.summary_refs(template)

    def limited(self, calls: int) -> OfflineEngine:
        return self
