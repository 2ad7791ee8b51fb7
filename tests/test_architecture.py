"""The shape of the code: no function in qa/ or app_pages/ more tangled than a reader can follow."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class, Function

ROOT = Path(__file__).resolve().parents[1]
MAX_COMPLEXITY = 25  # radon's cyclomatic complexity: above it a function makes more than one decision

# Functions allowed above the limit, as (path, name): none. Never add to it; split the function instead.
ALLOWED: set[tuple[str, str]] = set()


def _blocks(blocks: Iterable[Function | Class]) -> Iterator[Function]:
    """Every function radon sees: top-level ones, methods, closures, and those of nested classes (a method
    comes twice, in radon's list and in its class's: too_complex keeps one)."""
    for block in blocks:
        if isinstance(block, Class):
            yield from _blocks(block.methods)
            yield from _blocks(block.inner_classes)
        else:
            yield block
            yield from _blocks(block.closures)


def too_complex() -> list[tuple[str, str, int, int]]:
    found: dict[tuple[str, str, int], int] = {}
    for path in sorted([*(ROOT / "qa").rglob("*.py"), *(ROOT / "app_pages").rglob("*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        for function in _blocks(cc_visit(path.read_text(encoding="utf-8"))):
            if function.complexity > MAX_COMPLEXITY:
                name = f"{function.classname}.{function.name}" if function.classname else function.name
                found[relative, name, function.lineno] = function.complexity
    return [(path, name, line, cc) for (path, name, line), cc in found.items()]


def test_no_function_is_above_the_complexity_limit() -> None:
    over = [f for f in too_complex() if (f[0], f[1]) not in ALLOWED]
    listing = "\n".join(f"  {path}:{line} {name} — {cc}" for path, name, line, cc in over)
    assert not over, f"functions above complexity {MAX_COMPLEXITY} (split them by decision):\n{listing}"


# ---- the import graph ---------------------------------------------------------------------------------

# The stages from the bottom up (docs/architecture.md): a module may import its own stage and the stages
# below it, never one above. Imports only for type annotations (under TYPE_CHECKING) do not count; an
# import inside a function does.
STAGES = [
    "core",  # config, errors, schemas, text, files, office, naming, redact
    "team",  # who may do what: users, roles, sign-in sessions
    "genre",  # the report genre's vocabulary: numbers, figures, indicators, kinds, parts, places
    "models",  # model adapters: the OpenAI-compatible client, embedders, prompts, reply checks, call log
    "compare",  # catalogue indicators per report: the comparison table
    "store",  # Chroma: chunks and the report registry
    "question",  # a question read once (Query): scope, what it asks for; which reports may answer
    "index",  # the derived search index (packs) and the hybrid retriever
    "ingest",  # file → text → identity → chunks → vectors → store and index
    "answer",  # plan → gather → engine → verify
    "summary",  # a report's summary, its documents, the batch runner
    "engines",  # the Engine seam: offline and model engines over answer and summary
    "evals",  # datasets, scoring, the eval pipeline, baselines, reports
    "wiring",  # adapters built from Settings
    "api",  # Library, the front door
    "cli",  # the `qa` command
]


def _imports(path: Path) -> Iterator[str]:
    """The qa modules a file imports at run time (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qa":
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                yield target if _module_path(target) else node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "qa")


def _module_path(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "qa").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = {t for t in _imports(path) if _module_path(t) and t != module}
    return graph


def test_every_stage_imports_only_itself_and_the_stages_below() -> None:
    rank = {stage: n for n, stage in enumerate(STAGES)}
    upward = sorted(
        f"  {module} ({_stage(module)}) imports {target} ({_stage(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if _stage(module) and _stage(target) and rank[_stage(target)] > rank[_stage(module)]
    )
    assert not upward, "imports up the stages (move the code, or pass it in):\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not circles, "import circles:\n" + "\n".join("  " + " → ".join(c) for c in circles)


def test_the_core_package_does_not_import_the_app() -> None:
    """The wheel carries qa/ only: nothing in it may need app_pages/ (or Streamlit) to run."""
    reaching = sorted(
        f"{path.relative_to(ROOT)}"
        for path in (ROOT / "qa").rglob("*.py")
        if re.search(r"^\s*(?:from|import) (?:app_pages|streamlit)\b", path.read_text(encoding="utf-8"), re.M)
    )
    assert not reaching, reaching


# ---- what an offline answer loads ------------------------------------------------------------------------

# An offline `qa ask` needs none of these: the LLM client and its HTTP stack, the prompt templates, the
# summarizer and its Office exporters, the app.
NOT_FOR_AN_OFFLINE_ANSWER = ("openai", "jinja2", "qa.models.llm", "qa.models.prompts", "qa.engines.chat",
                             "qa.summary", "qa.evals", "docx", "openpyxl", "streamlit", "app_pages")  # fmt: skip


def test_an_offline_ask_loads_no_model_client_templates_exporters_or_app(corpus_services) -> None:
    probe = (
        "import sys\nfrom qa.cli.main import main\n"
        "code = main(['ask', '淄川区办理行政复议案件多少件？'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "QA_DATA_DIR": str(corpus_services.settings.data_dir)})  # fmt: skip
    assert done.returncode == 0 and "151件" in done.stdout, done.stderr[-2000:]
    loaded = set(done.stderr.split())
    assert "qa.engines.offline" in loaded and "chromadb" in loaded  # the probe ran the real thing
    wasted = sorted(
        m for m in loaded if any(m == n or m.startswith(n + ".") for n in NOT_FOR_AN_OFFLINE_ANSWER)
    )
    assert not wasted, wasted
