"""Prompt templates: strict validation, StrictUndefined rendering, refs, and snapshots of every rendered
prompt so a prompt change shows up in review (UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py to accept)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.core.errors import ConfigError
from qa.models.prompts import PROMPTS_DIR, all_templates, get_template, load_template

SNAPSHOTS = Path(__file__).parent / "snapshots"
SOURCES = [
    {"n": 1, "title": "淄川区人民政府2024年度法治政府建设情况报告",
     "section": "一、推进法治政府建设的主要举措和成效 > (三)有效化解矛盾纠纷,切实维护群众合法权益",
     "text": "办理行政复议案件151件,审结67件,综合纠错率达29.8%。"},
    {"n": 2, "title": "泉州市洛江区人民政府关于2024年法治政府建设情况的报告", "section": "",
     "text": "2024年以来,新收行政复议申请121件,受理后共审结行政复议案件103件。"},
]  # fmt: skip
HISTORY = [
    {"role": "user", "content": "淄川区办理行政复议案件多少件？"},
    {"role": "assistant", "content": "151件[1]"},
]
VARIABLES = {
    "answer": {
        "question": "淄川区和洛江区分别办理行政复议案件多少件？",
        "sources": SOURCES,
        "history": HISTORY,
    },
    "condense": {"question": "那洛江区呢？", "history": HISTORY},
}
PASSAGES = [{"id": "ab12-862", "section": "一、主要举措 > (三)有效化解矛盾纠纷", "text": SOURCES[0]["text"]}]
NOTES = (
    '[{"points": [], "key_figures": [{"indicator": "行政复议案件", "raw": "151件", '
    '"quote": "办理行政复议案件151件", "chunk_id": "ab12-862"}], "problems": [], "plans": []}]'
)
META = {"title": SOURCES[0]["title"], "issuer": "淄川区人民政府", "region": "淄川区", "year": 2024}
REDUCE = {"title": SOURCES[0]["title"], "meta": META, "notes": NOTES, "overview_max": 200, "budget": 800}
VARIABLES["summary_map"] = {"title": SOURCES[0]["title"], "passages": PASSAGES}
VARIABLES["summary_rule_of_law"] = REDUCE
VARIABLES["summary_generic"] = REDUCE
VARIABLES["judge"] = {"question": "淄川区办理行政复议案件多少件？", "gold": "151件",
                      "answer": "淄川区：办理行政复议案件151件,审结67件。[1]"}  # fmt: skip


def _render(template_id: str) -> str:
    template = get_template(template_id)
    messages = template.render(**VARIABLES[template_id])
    return f"# {template.ref}\n" + "\n".join(f"--- {m['role']} ---\n{m['content']}" for m in messages) + "\n"


@pytest.mark.parametrize("template_id", sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml")))
def test_rendered_prompt_snapshot(template_id: str) -> None:
    assert template_id in VARIABLES, f"add example variables for the new template {template_id!r}"
    rendered = _render(template_id)
    snapshot = SNAPSHOTS / f"{template_id}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") or not snapshot.exists():
        snapshot.write_text(rendered, encoding="utf-8")
    assert rendered == snapshot.read_text(encoding="utf-8"), (
        f"prompt {template_id} changed: review the diff and run UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py"
    )


def test_refs_are_id_version_and_file_hash() -> None:
    for template in all_templates():
        ident, rest = template.ref.split("@")
        version, sha8 = rest.split("#")
        assert ident == template.id and int(version) == template.version and len(sha8) == 8


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="question"):
        get_template("answer").render(sources=SOURCES, history=[])


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "answer.yaml"
    path.write_text(
        "id: answer\nversion: 1\ndescription: d\nsystem: s\nuser: u\ntemperture: 0\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="temperture"):
        load_template(path)


def test_id_must_match_file_name_and_syntax_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("id: answer\nversion: 1\ndescription: d\nsystem: s\nuser: u\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="file name"):
        load_template(path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "id: broken\nversion: 1\ndescription: d\nsystem: '{% if %}'\nuser: u\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="syntax"):
        load_template(broken)


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(
        "id: evil\nversion: 1\ndescription: d\nsystem: s\nuser: '{{ x.__class__.__mro__[1].__subclasses__() }}'\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError):
        load_template(path).render(x="")


def test_editing_a_prompt_changes_its_ref(tmp_path: Path) -> None:
    original = (PROMPTS_DIR / "answer.yaml").read_text(encoding="utf-8")
    (tmp_path / "answer.yaml").write_text(original, encoding="utf-8")
    before = get_template("answer", tmp_path).ref
    (tmp_path / "answer.yaml").write_text(original.replace("简洁", "简短"), encoding="utf-8")
    after = get_template("answer", tmp_path).ref
    assert before.split("#")[0] == after.split("#")[0] and before != after
