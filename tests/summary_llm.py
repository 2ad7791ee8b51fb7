"""A scripted "model" for summary tests and bench/summarize.py: answers the map and reduce prompts that
qa.summary.summarize sends with valid JSON built from the passages it was shown (figures quoted verbatim).

It is deliberately dumb — it only copies — so any failed verification points at our code, not at it.
Used as `OpenAIServer(responder=summary_responder)`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openai_server import Reply, Request

from qa.genre.figures import extract_figures

_PASSAGE = re.compile(r"^\[([0-9a-f]+-\d+)\] ?(.*)$", re.M)


def schema_name(request: Request) -> str:
    """Which prompt a chat request is for: summary_map, summary_rule_of_law, summary_generic…"""
    return ((request.body.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def passages(request: Request) -> list[tuple[str, str, str]]:
    """(chunk id, section, text) of every passage in a map prompt."""
    user = next(
        m["content"] for m in request.messages if m["role"] == "user" and "</passages>" in m["content"]
    )
    body = user.split("<passages>", 1)[1].rsplit("</passages>", 1)[0]
    marks = list(_PASSAGE.finditer(body))
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out.append((mark.group(1), mark.group(2).strip(), body[mark.end() : end].strip()))
    return out


def map_notes(request: Request) -> dict[str, Any]:
    points, figures, problems, plans = [], [], [], []
    for chunk_id, section, text in passages(request):
        first = re.split(r"(?<=[。！？])", text)[0].strip()
        point = {"text": first, "figures": [], "citations": [chunk_id]}
        if re.search(r"问题|不足|短板", section.split(" > ")[0]):
            problems.append(point)
        elif re.search(r"计划|安排|打算|下一步", section.split(" > ")[0]):
            plans.append(point)
        else:
            area = section.split(" > ")[-1] or "总体情况"
            points.append({"area": area, "points": [point]})
        for figure in extract_figures(text)[:3]:
            figures.append({"indicator": figure.indicator or "数据", "raw": figure.raw, "quote": figure.quote,
                            "chunk_id": chunk_id})  # fmt: skip
    return {"points": points, "key_figures": figures, "problems": problems, "plans": plans}


def reduce_summary(request: Request) -> dict[str, Any]:
    user = next(
        m["content"] for m in request.messages if m["role"] == "user" and "分段笔记：" in m["content"]
    )
    notes = json.loads(user.split("分段笔记：", 1)[1].strip())
    measures = [area for note in notes for area in note["points"]]
    first = next((p for area in measures for p in area["points"]), None)
    return {
        "overview": (first["text"] if first else "")[:200],
        "overview_citations": first["citations"] if first else [],
        "measures": measures,
        "key_figures": [f for note in notes for f in note["key_figures"]][:30],
        "problems": [p for note in notes for p in note["problems"]],
        "plans": [p for note in notes for p in note["plans"]],
    }


def summary_responder(request: Request) -> Reply:
    """Valid JSON for whichever step is asked (map → notes, reduce → summary)."""
    if schema_name(request) == "summary_map":
        return Reply(json.dumps(map_notes(request), ensure_ascii=False))
    return Reply(json.dumps(reduce_summary(request), ensure_ascii=False))
