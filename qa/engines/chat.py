"""The model engine: a ChatModel (qa.engines.base) prompted with the templates in prompts/ — answers from
the numbered sources (answer.yaml), follow-ups rewritten as standalone questions (condense.yaml), summaries
mapped over every section and reduced into the report's template (summary_map.yaml + summary_*.yaml).
What the model writes is verified by the answer chain and the summarizer, never trusted as is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.answer.pipeline import Draft, Gathered, Plan, Turn, prompt_sources
from qa.core.schemas import ReportRecord
from qa.models import sanity
from qa.models.base import ChatModel
from qa.models.prompts import get_template

if TYPE_CHECKING:
    from qa.models.prompts import PromptTemplate
    from qa.summary.summarize import ReportView, SummaryContent


class ChatEngine:
    name = "llm"
    streams = True

    def __init__(self, chat: ChatModel, prompts_dir: Path | None = None) -> None:
        self.chat = chat
        self.prompts_dir = prompts_dir
        self.template = get_template("answer", prompts_dir)
        self.model: str | None = chat.model
        self.prompt_ref: str | None = self.template.ref
        self.instructions: tuple[str, ...] = (self.template.system, self.template.user)

    @property
    def label(self) -> str | None:
        return self.chat.label

    def answer(self, plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
               vocabulary: frozenset[str], history: Sequence[Turn],
               on_token: Callable[[str], None] | None) -> Draft:  # fmt: skip
        messages = self.template.render(
            question=plan_.standalone, sources=prompt_sources(gathered.sources),
            history=[{"role": t.role, "content": t.content} for t in history],
        )  # fmt: skip
        completion = self.chat.complete(messages, prompt_ref=self.template.ref, on_token=on_token)
        # "（如 [1]、[2]）" copied from the rules cites nothing: only markers the model wrote count
        instructions = "\n".join(m["content"] for m in messages if m["role"] == "system")
        text = sanity.drop_echoed_markers(completion.text, instructions)
        return Draft(text, [], completion.prompt_tokens, completion.completion_tokens,
                     completion.cost_usd)  # fmt: skip

    def condense(self, question: str, history: Sequence[Turn]) -> str | None:
        """The follow-up rewritten as a standalone question (the scope is still decided by the plan)."""
        template = get_template("condense", self.prompts_dir)
        messages = template.render(
            question=question, history=[{"role": t.role, "content": t.content} for t in history]
        )
        rewritten = self.chat.complete(messages, prompt_ref=template.ref).text.strip()
        return rewritten.splitlines()[0].strip() if rewritten else question

    def summary_content(self, report: ReportView, template: PromptTemplate, usage: dict[str, Any],
                        map_workers: int) -> tuple[SummaryContent, list[str]]:  # fmt: skip
        from qa.summary.summarize import llm_content

        return llm_content(report, self.chat, template, usage, self.prompts_dir, map_workers)

    def summary_refs(self, template: PromptTemplate) -> list[str]:
        from qa.summary.summarize import MAP

        return [get_template(MAP, self.prompts_dir).ref, template.ref]

    def limited(self, calls: int) -> ChatEngine:
        return ChatEngine(self.chat.limited(calls), self.prompts_dir)
