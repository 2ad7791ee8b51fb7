"""Section tree and chunks on the real corpus: offsets, paths, ids, numbers never split from units."""

from __future__ import annotations

import re

import pytest
from conftest import CORPUS

from qa.ingest import identity as metadata
from qa.ingest.chunking import chunk_document, heading_level, sections
from qa.ingest.loaders import load


def _chunks(name: str, size: int = 400, overlap: int = 60, version: str = "v" * 32):
    document = load(CORPUS / name)
    meta = metadata.extract(document)
    return document, meta, chunk_document(name, document.text, meta, version, size, overlap)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("一、推进法治政府建设的主要举措和成效", 1),
        ("十二、其他", 1),
        ("(一)提升政务服务效能", 2),
        ("（三）有效化解矛盾纠纷", 2),
        ("1.加大习近平法治思想学习宣传贯彻力度。", 3),
        ("2、着力发挥表率示范作用", 3),
        ("一是坚持以习近平法治思想为指导", 4),
        ("1.1亿元用于…", None),  # a number, not a heading
        ("2024年,区政府坚持…", None),
    ],
)
def test_heading_levels(line: str, level: int | None) -> None:
    assert heading_level(line) == level


def test_section_tree_of_zichuan() -> None:
    tree = sections(load(CORPUS / "zichuan_2024.txt").text)
    top = [s.title for s in tree if s.level == 1]
    assert top == [
        "一、推进法治政府建设的主要举措和成效",
        "二、党政主要负责人履行推进法治建设第一责任人职责情况",
        "三、推进法治政府建设存在的不足和原因",
        "四、2025年推进法治政府建设的主要计划安排",
    ]
    third = next(s for s in tree if s.title.startswith("(三)有效化解矛盾纠纷"))
    assert third.path == ("一、推进法治政府建设的主要举措和成效", "(三)有效化解矛盾纠纷,切实维护群众合法权益")
    assert any(s.level == 4 and s.title.startswith("一是") for s in tree)


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.txt")))
def test_chunks_point_into_the_clean_text(name: str) -> None:
    document, meta, chunks = _chunks(name)
    assert chunks
    covered = 0
    for i, chunk in enumerate(chunks):
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert chunk.embed_text.startswith(meta.title + " · ")
        assert chunk.section in chunk.embed_text
        assert chunk.id == f"{'v' * 16}-{chunk.start}"
        assert chunk.ordinal == i
        assert len(chunk.text) <= 400 + 80  # size, plus a heading merged into its paragraph
        covered = max(covered, chunk.end)
        if i:
            assert chunk.start > chunks[i - 1].start
            assert chunk.start <= chunks[i - 1].end + 1  # contiguous or overlapping: nothing dropped
    assert covered == len(document.text.rstrip())


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.txt")))
@pytest.mark.parametrize("size", [120, 400])
def test_numbers_never_split_from_units(name: str, size: int) -> None:
    document, _, chunks = _chunks(name, size=size, overlap=min(60, size // 4))
    for chunk in chunks:
        # the character before the chunk and the one after must not glue a number to a unit
        before = document.text[chunk.start - 1 : chunk.start + 1] if chunk.start else ""
        after = document.text[chunk.end - 1 : chunk.end + 1]
        for pair in (before, after):
            assert not re.fullmatch(r"[\d.][\d.%％件人次项个万亿元宗家场余]|\d\s", pair), (pair, chunk.id)


def test_space_between_number_and_unit_is_not_a_boundary() -> None:
    text = "办理案件517 宗,其中" + "调解成功的案件较多," * 30 + "结案率 98%。"
    from qa.core.schemas import ReportMeta

    chunks = chunk_document("t.txt", text, ReportMeta(title="T"), "x" * 32, 60, 10)
    joined = [c.text for c in chunks]
    assert any("517 宗" in c for c in joined)
    assert any("结案率 98%" in c for c in joined)


def test_ids_are_stable_and_depend_on_version() -> None:
    _, _, first = _chunks("luojiang_2024.txt")
    _, _, again = _chunks("luojiang_2024.txt")
    _, _, other = _chunks("luojiang_2024.txt", version="w" * 32)
    assert [c.id for c in first] == [c.id for c in again]
    assert not {c.id for c in first} & {c.id for c in other}


def test_heading_is_not_left_alone_in_a_chunk() -> None:
    for name in (p.name for p in CORPUS.glob("*.txt")):
        _, _, chunks = _chunks(name)
        for chunk in chunks:
            assert not (heading_level(chunk.text) and "\n" not in chunk.text and len(chunk.text) < 60), (
                chunk.text
            )


def test_a_heading_line_that_goes_on_is_a_section_of_its_own() -> None:
    """(二)收到政府信息公开申请情况。本年度共收到依申请公开17条。 on one line: its text is under (二), not
    joined to the next section as a bare heading would be."""
    from qa.core.schemas import ReportMeta

    text = ("一、总体情况\n(一)主动公开情况。全年主动公开信息4702条,其中政务要闻672条,视频新闻259条,部门动态798条。\n"
            "(二)收到政府信息公开申请情况。本年度共收到依申请公开17条,均按要求完成答复。\n"
            "(三)政府信息管理情况。一是建立健全政府信息公开工作机制,信息发布严格实行“三审三校”制度。\n")  # fmt: skip
    chunks = chunk_document("x.txt", text, ReportMeta(), "v" * 16)
    holder = next(c for c in chunks if "17条" in c.text)
    assert holder.section.endswith("(二)收到政府信息公开申请情况") and "三审三校" not in holder.text
