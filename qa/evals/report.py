"""Eval reports in Markdown and HTML: metrics (with deltas against the baseline), what newly fails and
passes, each failing question with the answer given, the gold and the passages retrieved, and the
summary checks, and the questions that failed with an error (with its message). Pure: metrics dict
(+ comparison) in, text out — through qa.core.redact, so no report holds a key or a password."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, StrictUndefined

from qa.core.redact import redact
from qa.evals.gate import INFO_METRICS, Comparison, scalar_metrics

PASSAGE_CHARS = 240
LABELS = {
    "retrieval_recall_at_k": "retrieval recall@k", "answer_accuracy": "answer accuracy",
    "refusal_accuracy": "refusal accuracy", "citation_precision": "citation precision",
    "number_grounding": "number grounding", "judge_accuracy": "judge accuracy (LLM)",
    "confidently_wrong": "confidently wrong (lower is better)", "false_refusals": "false refusals (lower is better)",
    "summary.metadata_accuracy": "summary · metadata", "summary.figure_recall": "summary · figure recall",
    "summary.number_grounding": "summary · number grounding",
    "summary.section_completeness": "summary · sections", "p50_ms": "p50 ms", "p95_ms": "p95 ms",
}  # fmt: skip


def failing_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Questions answered wrongly (or, retrieval-only, whose evidence was not retrieved)."""
    rows = metrics.get("rows", [])
    return [
        r
        for r in rows
        if r.get("correct") is False or (r.get("correct") is None and r.get("retrieval_hit") is False)
    ]


def error_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Questions whose answer failed with a provider or output error (row `error`); they count as wrong."""
    return [r for r in metrics.get("rows", []) if r.get("error")]


def _metric_rows(metrics: dict[str, Any], comparison: Comparison | None) -> list[dict[str, Any]]:
    current = scalar_metrics(metrics)
    rows = []
    if comparison is not None:
        for d in comparison.deltas:
            status = "REGRESSED" if d.regressed else ("better" if (d.delta or 0) > 0 else "ok")
            rows.append({"name": d.name, "label": LABELS.get(d.name, d.name), "current": d.current,
                         "baseline": d.baseline, "delta": d.delta, "tolerance": d.tolerance, "status": status})  # fmt: skip
    else:
        rows += [{"name": n, "label": LABELS.get(n, n), "current": v, "baseline": None, "delta": None,
                  "tolerance": None, "status": ""} for n, v in current.items()]  # fmt: skip
    rows += [{"name": n, "label": LABELS[n], "current": metrics.get(n), "baseline": None, "delta": None,
              "tolerance": None, "status": "info"} for n in INFO_METRICS if metrics.get(n) is not None]  # fmt: skip
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:+.4f}".lstrip("+") if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _context(metrics: dict[str, Any], comparison: Comparison | None, meta: dict[str, Any]) -> dict[str, Any]:
    failing = failing_rows(metrics)
    newly = set(comparison.newly_failing) if comparison else set()
    summary = metrics.get("summary") or {}
    return {
        "meta": meta,
        "m": metrics,
        "metric_rows": _metric_rows(metrics, comparison),
        "comparison": comparison,
        "failing": [
            {
                **r,
                "newly": r["id"] in newly,
                "passages_short": [
                    {**p, "text": p["text"][:PASSAGE_CHARS] + ("…" if len(p["text"]) > PASSAGE_CHARS else "")}
                    for p in r.get("passages", [])
                ],
            }
            for r in failing
        ],  # fmt: skip
        "summary_rows": summary.get("rows", []),
        "errors": error_rows(metrics),
        "fmt": _fmt,
        "delta": _delta,
    }


_MARKDOWN = """\
# Eval report — {{ m.engine }}{% if m.model %} · {{ m.model }}{% endif %}

- dataset: `{{ meta.dataset }}` ({{ m.n }} questions{% if meta.dataset_sha %}, sha {{ meta.dataset_sha }}{% endif %}), k={{ m.k }}, mode {{ m.get('mode', 'hybrid') }}, scope {{ m.get('scope', 'doc') }}
- git commit: {{ meta.git_commit or "unknown" }} · config {{ m.get('config_hash') or "—" }} · prompts: {{ (m.get('prompt_refs') or ['none (extractive)'])|join(', ') }}
- wall time: {{ m.get('wall_s', '—') }} s · p50 {{ m.p50_ms }} ms · p95 {{ m.p95_ms }} ms
{% if errors %}- **errors: {{ errors|length }} questions failed with an error** (each counted wrong; see *Errors*)
{% endif %}{% if comparison %}- baseline: `{{ meta.baseline }}` → **{{ "REGRESSED" if comparison.regressed else "no regression" }}**
{% for w in comparison.warnings %}- ⚠ {{ w }}
{% endfor %}{% endif %}
## Metrics

| metric | value | baseline | Δ | tolerance | status |
| --- | --- | --- | --- | --- | --- |
{% for r in metric_rows %}| {{ r.label }} | {{ fmt(r.current) }} | {{ fmt(r.baseline) }} | {{ delta(r.delta) }} | {{ fmt(r.tolerance) }} | {{ r.status }} |
{% endfor %}
{% if comparison %}
## Changes against the baseline

- newly failing ({{ comparison.newly_failing|length }}): {{ comparison.newly_failing|join(', ') or 'none' }}
- newly passing ({{ comparison.newly_passing|length }}): {{ comparison.newly_passing|join(', ') or 'none' }}
{% if comparison.new_ids %}- not in the baseline: {{ comparison.new_ids|join(', ') }}
{% endif %}{% if comparison.removed_ids %}- in the baseline, not in this run: {{ comparison.removed_ids|join(', ') }}
{% endif %}{% endif %}{% if errors %}
## Errors ({{ errors|length }})

{% for r in errors %}- {{ r.id }} — {{ r.question }}: {{ r.error|replace('\n', ' ') }}
{% endfor %}{% endif %}
## Failing questions ({{ failing|length }})
{% for r in failing %}
### {{ r.id }}{% if r.newly %} (newly failing){% endif %} — {{ r.question }}

- doc: `{{ r.doc }}` · type {{ r.answer_type }} · retrieval hit: {{ r.retrieval_hit }}
- gold: {{ r.gold }}
{% if r.get('error') %}- error: {{ r.error|replace('\n', ' ') }}
{% else %}- answer: {{ (r.answer or '(none)')|replace('\n', ' ') }}{% if r.get('echo') %} — an echo of the prompt, not credited{% endif %}
{% endif %}{% if r.get('judge') %}- judge: {{ r.judge.verdict }} ({{ r.judge.votes|join(', ') }})
{% endif %}{% for p in r.passages_short %}  - [{{ p.n }}] {{ p.report }} · {{ p.section or '(opening)' }}: {{ p.text|replace('\n', ' ') }}
{% endfor %}{% endfor %}
{% if summary_rows %}
## Summaries

| report | ok | metadata wrong | figures missing | numbers not in report | sections |
| --- | --- | --- | --- | --- | --- |
{% for s in summary_rows %}| {{ s.doc }} | {{ "✓" if s.ok else "✗" }} | {{ s.metadata_wrong.items()|map('join', '=')|join('; ') or '—' }} | {{ s.figures_missing|join(', ') or '—' }} | {{ s.numbers_ungrounded|join(', ') or '—' }} | {% for k, v in s.sections.items() %}{{ k }} {{ "✓" if v else "✗" }} {% endfor %}{% if s.get('error') %} error: {{ s.error }}{% endif %} |
{% endfor %}{% endif %}"""

_HTML = """\
<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>Eval report — {{ m.engine }}</title>
<style>
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2rem auto; max-width: 1100px;
       line-height: 1.6; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ddd; padding: 4px 10px; }
th { background: #f5f5f5; text-align: left; } .REGRESSED { background: #ffccc7; font-weight: 600; }
.better { background: #d9f7be; } .newly { color: #cf1322; font-weight: 600; } .muted { color: #888; }
details { margin: 0.6rem 0; border: 1px solid #eee; border-radius: 6px; padding: 0.4rem 0.8rem; }
summary { cursor: pointer; } .passage { color: #555; font-size: 0.92em; margin: 0.3rem 0 0.3rem 1rem; }
</style></head><body>
<h1>Eval report — {{ m.engine }}{% if m.model %} · {{ m.model }}{% endif %}</h1>
<p>dataset <code>{{ meta.dataset }}</code> ({{ m.n }} questions{% if meta.dataset_sha %}, sha {{ meta.dataset_sha }}{% endif %}),
k={{ m.k }} · git {{ meta.git_commit or "unknown" }} · config {{ m.get('config_hash') or "—" }} ·
prompts {{ (m.get('prompt_refs') or ['none (extractive)'])|join(', ') }} · wall {{ m.get('wall_s', '—') }} s</p>
{% if errors %}<p class="REGRESSED">errors: {{ errors|length }} questions failed with an error (each counted wrong; see Errors)</p>{% endif %}
{% if comparison %}<p>baseline <code>{{ meta.baseline }}</code>:
<strong class="{{ 'REGRESSED' if comparison.regressed else 'better' }}">{{ "REGRESSED" if comparison.regressed else "no regression" }}</strong></p>
{% for w in comparison.warnings %}<p class="muted">⚠ {{ w }}</p>{% endfor %}{% endif %}
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th><th>baseline</th><th>Δ</th><th>tolerance</th><th>status</th></tr>
{% for r in metric_rows %}<tr class="{{ r.status }}"><td>{{ r.label }}</td><td>{{ fmt(r.current) }}</td><td>{{ fmt(r.baseline) }}</td>
<td>{{ delta(r.delta) }}</td><td>{{ fmt(r.tolerance) }}</td><td>{{ r.status }}</td></tr>
{% endfor %}</table>
{% if comparison %}<h2>Changes against the baseline</h2>
<p>newly failing ({{ comparison.newly_failing|length }}): <span class="newly">{{ comparison.newly_failing|join(', ') or 'none' }}</span></p>
<p>newly passing ({{ comparison.newly_passing|length }}): {{ comparison.newly_passing|join(', ') or 'none' }}</p>{% endif %}
{% if errors %}<h2>Errors ({{ errors|length }})</h2>
<table><tr><th>question</th><th>error</th></tr>
{% for r in errors %}<tr><td><strong>{{ r.id }}</strong> {{ r.question }}</td><td>{{ r.error }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Failing questions ({{ failing|length }})</h2>
{% for r in failing %}<details><summary><strong>{{ r.id }}</strong>{% if r.newly %} <span class="newly">newly failing</span>{% endif %}
— {{ r.question }}</summary>
<p>doc <code>{{ r.doc }}</code> · {{ r.answer_type }} · retrieval hit {{ r.retrieval_hit }}</p>
<p><strong>gold</strong> {{ r.gold }}</p>{% if r.get('error') %}<p><strong>error</strong> {{ r.error }}</p>{% else %}
<p><strong>answer</strong> {{ r.answer or '(none)' }}{% if r.get('echo') %} <em>(an echo of the prompt: not credited)</em>{% endif %}</p>{% endif %}
{% if r.get('judge') %}<p><strong>judge</strong> {{ r.judge.verdict }} ({{ r.judge.votes|join(', ') }})</p>{% endif %}
{% for p in r.passages_short %}<p class="passage">[{{ p.n }}] {{ p.report }} · {{ p.section or '(opening)' }}<br>{{ p.text }}</p>{% endfor %}
</details>{% endfor %}
{% if summary_rows %}<h2>Summaries</h2>
<table><tr><th>report</th><th>ok</th><th>metadata wrong</th><th>figures missing</th><th>numbers not in report</th><th>sections</th></tr>
{% for s in summary_rows %}<tr class="{{ '' if s.ok else 'REGRESSED' }}"><td>{{ s.doc }}</td><td>{{ "✓" if s.ok else "✗" }}</td>
<td>{{ s.metadata_wrong.items()|map('join', '=')|join('; ') or '—' }}</td><td>{{ s.figures_missing|join(', ') or '—' }}</td>
<td>{{ s.numbers_ungrounded|join(', ') or '—' }}</td>
<td>{% for k, v in s.sections.items() %}{{ k }} {{ "✓" if v else "✗" }} {% endfor %}{% if s.get('error') %}error: {{ s.error }}{% endif %}</td></tr>
{% endfor %}</table>{% endif %}
</body></html>
"""

_MD_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML_ENV = Environment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)


def to_markdown(metrics: dict[str, Any], comparison: Comparison | None = None, **meta: Any) -> str:
    return redact(_MD_ENV.from_string(_MARKDOWN).render(**_context(metrics, comparison, _meta(meta))))


def to_html(metrics: dict[str, Any], comparison: Comparison | None = None, **meta: Any) -> str:
    return redact(_HTML_ENV.from_string(_HTML).render(**_context(metrics, comparison, _meta(meta))))


def to_json(payload: dict[str, Any]) -> str:
    """The run as JSON (metrics, rows, baseline comparison), as report.json and `qa eval --json` write it."""
    return redact(json.dumps(payload, ensure_ascii=False, indent=2))


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": "", "dataset_sha": "", "git_commit": None, "baseline": "", **meta}
