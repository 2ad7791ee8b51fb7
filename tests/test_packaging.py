"""The installable package: a built wheel carries every file the code reads at runtime. (`make wheel-check`
goes further: it installs the wheel in a clean venv and writes a summary with it outside the repository.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT

from qa.models.prompts import PROMPTS_DIR


def test_the_wheel_ships_every_prompt_template_inside_the_package(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("prompts", "qa"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), "."],
        cwd=source, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "dist").glob("reportqa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"qa/prompts_data/{path.name}" for path in PROMPTS_DIR.glob("*.yaml")}
    assert len(templates) >= 6 and templates <= names, sorted(templates - names)
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "qa").rglob("*.py")}
    assert modules <= names, sorted(modules - names)  # every stage package, not only the top one
    assert not [n for n in names if n.startswith(("prompts/", "tests/", "data/"))]  # nothing loose at the top
    # the Streamlit app and its helpers stay beside the package: the core wheel carries none of them
    assert not [n for n in names if n.startswith(("app_pages/", "app.py")) or "/ui" in n]


def test_only_the_prompt_loader_looks_for_files_beside_the_code() -> None:
    """A module that reads a file next to its own source breaks once installed unless the file ships in the
    package (pyproject.toml package data) and is found with importlib.resources, as qa/models/prompts.py
    does."""
    readers = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "qa").rglob("*.py")
        if re.search(r"__file__|\.\./", path.read_text(encoding="utf-8"))
    )
    assert readers == ["qa/models/prompts.py"]
