"""`qa check`: 报告体检 — each 法治政府建设 report against what 《法治政府建设与责任落实督察工作规定》 asks
of it, per report (Markdown, and the JSON record) and as one table across reports (CSV with BOM, Excel)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from qa.cli.console import err, out, progress_bars
from qa.core.config import Settings
from qa.genre import regulation

if TYPE_CHECKING:
    from qa.genre.regulation_text import Basis
    from qa.summary.checkup import Checkup


def _from_files(paths: list[Path], settings: Settings, basis: Basis) -> tuple[list[Checkup], int]:
    """Check-ups of report files (read and chunked as `qa ingest` would, nothing stored); failures named."""
    from qa.core.errors import QAError
    from qa.models.embeddings import make_embedder
    from qa.summary.batch import plan, view_from_file
    from qa.summary.checkup import check_report

    planned = plan(paths)
    for item in planned.failed:
        err.print(f"[red]failed[/] {escape(item.path)}  {escape(item.reason)}")
    failed = len(planned.failed)
    embedder_name = make_embedder(settings).name
    checkups = []
    with progress_bars() as progress:
        task = progress.add_task("报告体检", total=len(planned.files))
        for path in planned.files:
            try:
                checkups.append(check_report(view_from_file(path, settings, embedder_name), basis))
            except QAError as ex:
                failed += 1
                progress.console.print(f"[red]failed[/] {escape(str(path))}  {escape(str(ex))}")
            progress.advance(task)
    return checkups, failed


def _summary_table(checkups: list[Checkup]) -> Table:
    table = Table(title="报告体检", show_lines=False)
    for heading in ("报告", "年度", "缺少的内容", "公开", "每千字数字"):
        table.add_column(heading, overflow="fold")
    for c in checkups:
        if not c.applicable:
            table.add_row(escape(c.label), str(c.year or ""), escape(f"不适用（{c.kind}）"), "—", "—")
            continue
        missing = "、".join(c.missing) or ("无" if not c.note else "无（节选，其余无法判断）")
        timing = c.timeliness.status if c.timeliness else "—"
        table.add_row(escape(c.label), str(c.year or ""), escape(missing), timing, str(c.per_thousand))
    return table


def _write(checkups: list[Checkup], out_dir: Path) -> None:
    from qa.core.files import atomic_write
    from qa.summary.checkup_docs import checkup_markdown, file_names, table_bytes

    names = file_names([c.report_id for c in checkups])
    for c in checkups:
        atomic_write(out_dir / f"{names[c.report_id]}.check.md", checkup_markdown(c))
        atomic_write(out_dir / f"{names[c.report_id]}.check.json",
                     json.dumps(c.to_dict(), ensure_ascii=False, indent=1) + "\n")  # fmt: skip
    csv_data, xlsx_data = table_bytes(checkups)
    atomic_write(out_dir / "check.csv", csv_data)
    atomic_write(out_dir / "check.xlsx", xlsx_data)
    out.print(f"wrote {len(checkups)} check-up(s) (NAME.check.md, NAME.check.json) and the table "
              f"{escape(str(out_dir / 'check.xlsx'))} + check.csv")  # fmt: skip


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from qa.cli.library import open_library
    from qa.core.files import output_folder
    from qa.ingest.loaders import SUPPORTED  # a name with a report file's extension is a path
    from qa.ingest.regulation import read_regulation

    paths = [Path(r) for r in args.reports if Path(r).exists()]
    names = [r for r in args.reports if not Path(r).exists()]
    lost = [r for r in names if "/" in r or "\\" in r or Path(r).suffix.lower() in SUPPORTED]
    if lost:  # a stored report is named by its file name (zichuan_2024.txt, as `qa ls` shows it)
        stored = {record.report_id for record in open_library(settings).reports()}
        lost = [r for r in lost if r not in stored]
    if lost:  # a path that is not there is a file not found, not a report missing from the store
        err.print(
            f"[red]error:[/] no such file: {escape(', '.join(lost))} — check the path (stored reports: `qa ls`)"
        )
        return 1
    if args.regulation:
        settings = replace(settings, regulation_text=Path(args.regulation))
    basis = read_regulation(
        settings.regulation_text, settings.max_file_bytes
    )  # a wrong file: said before any work
    out_dir = output_folder(Path(args.out)) if args.out else None  # …and an --out that cannot be one
    checkups: list[Checkup] = []
    failed = 0
    if paths:
        checkups, failed = _from_files(paths, settings, basis)
    if names or not args.reports:
        checkups += open_library(settings).check(names or None, basis)
    if not checkups:
        err.print(
            "[red]error:[/] no report could be checked; name report files or folders, or stored reports (`qa ls`)"
        )
        return 1
    out.print(_summary_table(checkups))
    out.print(f"依据：{escape(basis.cited)}。{escape(basis.note)}。")
    if not basis.contents_article:
        out.print(f"[dim]{escape(regulation.CITE_CLI)}[/]")
    if out_dir is not None:
        _write(checkups, out_dir)
    return 1 if failed else 0
