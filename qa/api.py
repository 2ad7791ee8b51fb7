"""The Python API for notebooks and scripts — the same operations the CLI and the app use:

    from qa import Library

    lib = Library.open()                      # QA_DATA_DIR (or data_dir=...), settings from the environment
    lib.ingest(["reports/"])                  # → [IngestResult]
    answer = lib.ask("淄川区办理行政复议案件多少件？", session="s1", regions=["淄川区"])
    answer.text, answer.citations             # every number checked against the passages cited
    lib.summarize("zichuan_2024.txt")         # → Summary (verified), offline unless an LLM is configured
    lib.remove("zichuan_2024.txt")

Errors are `qa.core.errors.QAError` subclasses whose message says what failed and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.core.config import Settings
from qa.core.errors import InputError

if TYPE_CHECKING:  # the heavy parts (chromadb, the embedder, openai) load on first use, not on import
    from qa.answer.pipeline import Turn
    from qa.compare.table import CompareTable
    from qa.core.schemas import Answer, IngestResult, ReportRecord
    from qa.engines.base import Engine
    from qa.genre.regulation_text import Basis
    from qa.index.retriever import SearchResult
    from qa.summary.checkup import Checkup
    from qa.summary.summarize import Summary
    from qa.wiring import Services


class Library:
    """One store (a data dir, or a Chroma server) with its embedder and an engine (offline, or the configured
    LLM)."""

    def __init__(self, settings: Settings, engine: str | Engine | None = None,
                 services: Services | None = None) -> None:  # fmt: skip
        """engine: 'offline', 'llm', None (llm when QA_LLM_MODEL is set), or an engine already built."""
        self.settings = settings
        # built on first use unless given (the CLI opens them with its messages, the app shares its own)
        self._engine = engine
        self._services = services

    @classmethod
    def open(cls, data_dir: str | Path | None = None, *, workspace: str | None = None, engine: str | None = None,
             env: dict[str, str] | None = None) -> Library:  # fmt: skip
        env = dict(os.environ if env is None else env)
        workspace = workspace or env.pop("QA_WORKSPACE", None)
        settings = Settings.from_env({k: v for k, v in env.items() if k != "QA_WORKSPACE"})
        if data_dir is not None:
            settings = settings.replace(data_dir=Path(data_dir))
        return cls(settings.in_workspace(workspace), engine)

    # ---- the parts, built once --------------------------------------------------------------------

    @property
    def services(self) -> Services:
        if self._services is None:
            from qa.wiring import open_services

            self._services = open_services(self.settings)
        return self._services

    @property
    def engine(self) -> Engine:
        if self._engine is None or isinstance(self._engine, str):
            from qa.wiring import make_engine

            self._engine = make_engine(self.settings, self._engine)
        return self._engine

    # ---- operations --------------------------------------------------------------------------------

    def reports(self) -> list[ReportRecord]:
        return self.services.store.reports()

    def ingest(self, paths: Iterable[str | Path], on_result: Callable[[IngestResult], None] | None = None,
               progress: Callable[[int], None] | None = None) -> list[IngestResult]:  # fmt: skip
        """Add or update reports (files or folders, recursive); one result per file, failures say why."""
        from qa.ingest.pipeline import ingest_paths

        services = self.services
        return ingest_paths([Path(p) for p in paths], services.store, services.embedder, self.settings,
                            on_result=on_result, progress=progress)  # fmt: skip

    def resolve(self, report: str) -> str:
        """A report id from an id or a file name/path (`zichuan_2024.txt`, `data/reports/zichuan_2024.txt`)."""
        ids = [r.report_id for r in self.reports()]
        if report in ids:
            return report
        matches = [i for i in ids if i.rsplit(".", 1)[0] == report or Path(report).name == i]
        if len(matches) == 1:
            return matches[0]
        raise InputError(
            f"no report {report!r} in the store; `qa ls` lists the reports it holds"
            + (f" (did you mean {', '.join(matches)}?)" if matches else ""),
            code="input.unknown_report",
            report=report,
        )

    def ask(self, question: str, *, session: str | None = None, reports: Sequence[str] | None = None,
            regions: Sequence[str] | None = None, years: Sequence[int] | None = None, k: int = 6,
            on_token: Callable[[str], None] | None = None, history: Sequence[Turn] | None = None) -> Answer:  # fmt: skip
        """Answer with citations (offline extractive engine unless an LLM is configured). session: keep a
        conversation under QA_DATA_DIR/sessions, as `qa ask --session`; history: the conversation so far
        when the caller keeps it (the app)."""
        from qa.answer import sessions
        from qa.answer.pipeline import ask

        if not question.strip():
            raise InputError(
                "the question is empty: ask about the reports, e.g. 淄川区办理行政复议案件多少件？"
            )
        if history is None:
            history = sessions.load(self.settings.data_dir, session) if session else []
        report_ids = [self.resolve(r) for r in reports] if reports else None
        answer = ask(question, self.services.retriever, engine=self.engine, k=k, report_ids=report_ids,
                     regions=regions, years=years, history=history, on_token=on_token)  # fmt: skip
        if session:
            sessions.append(self.settings.data_dir, session, question, answer.text, answer.scope)
        return answer

    def search(self, question: str, *, reports: Sequence[str] | None = None, regions: Sequence[str] | None = None,
               years: Sequence[int] | None = None, k: int = 5, mode: str = "hybrid") -> SearchResult:  # fmt: skip
        """The passages that best match a question (hybrid BM25 + dense by default), narrowed to the question's
        scope and the filters, with a note when the scope names a report the library lacks."""
        report_ids = [self.resolve(r) for r in reports] if reports else None
        return self.services.retriever.search(question, k=k, report_ids=report_ids, regions=regions, years=years,
                                              mode=mode)  # fmt: skip

    def compare(self, reports: Sequence[str] | None = None) -> CompareTable:
        """The catalogue indicators of the reports, one column each, every value quoted from its passage.
        reports: the ones named, whatever their kind; default: every 法治 report (a work report or a bulletin
        would be an empty column)."""
        from qa.compare.columns import compared_records, report_columns

        records = self.reports()
        if reports:
            wanted = {self.resolve(r) for r in reports}
            records = [r for r in records if r.report_id in wanted]
        else:
            records = compared_records(records)
        if not records:
            raise InputError("no reports to compare; run `qa ingest PATH` first", code="input.no_reports")
        return self.services.retriever.compare_table(report_columns(records))

    def regulation(self) -> Basis:
        """What check-ups cite: the regulation's articles read from QA_REGULATION_TEXT, else its name alone.
        An InputError naming the file when it is not the regulation's text."""
        from qa.ingest.regulation import read_regulation

        settings = self.services.settings
        return read_regulation(settings.regulation_text, settings.max_file_bytes)

    def check(self, reports: Sequence[str] | None = None, basis: Basis | None = None) -> list[Checkup]:
        """报告体检 of stored reports against 《法治政府建设与责任落实督察工作规定》 (qa.summary.checkup).
        reports: the ones named, whatever their kind (another kind's check-up says it does not apply);
        default: every 法治 report. basis: what to cite (default `regulation()`)."""
        from qa.compare.columns import compared_records
        from qa.summary.batch import view_from_store
        from qa.summary.checkup import check_report

        basis = basis if basis is not None else self.regulation()

        records = self.reports()
        if reports:
            wanted = [self.resolve(r) for r in reports]
            records = [r for r in records if r.report_id in set(wanted)]
        else:
            records = compared_records(records)
        if not records:
            raise InputError("no reports to check; run `qa ingest PATH` first", code="input.no_reports")
        return [check_report(view_from_store(self.services.store, r.report_id), basis) for r in records]

    def remove(self, report: str) -> bool:
        """Remove a report and all its chunks. An InputError when the store has no such report (as `qa rm`
        says); False when another process removed it in the meantime."""
        return self.services.store.remove_report(self.resolve(report))

    def summarize(self, report: str, *, template: str | None = None, strict: bool = False) -> Summary:
        """A verified structured summary of a stored report (the whole report, never top-k)."""
        from qa.summary.batch import view_from_store
        from qa.summary.summarize import summarize_report

        view = view_from_store(self.services.store, self.resolve(report))
        return summarize_report(view, self.engine, template=template, strict=strict)
