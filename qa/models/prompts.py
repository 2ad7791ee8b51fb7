"""Prompt templates: YAML files in prompts/, validated strictly, rendered with Jinja StrictUndefined.

Every template has a `ref` (id@version#sha8 of the file) recorded on each answer, log row and eval row,
so a change in results traces back to a prompt edit.

The templates are edited in prompts/ at the top of the repository and ship inside the package as
qa/prompts_data (pyproject.toml maps one onto the other): installed from a wheel they are found with
importlib.resources, in a checkout (or an editable install) in prompts/ beside qa/.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.core.errors import ConfigError


def _shipped_prompts() -> Path:
    """The folder of the templates that came with the code."""
    installed = files("qa") / "prompts_data"  # a pathlib.Path: qa is a regular package on disk
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parents[2] / "prompts"


PROMPTS_DIR = _shipped_prompts()
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: int = Field(ge=1)
    description: str
    system: str
    user: str
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    match: str | None = (
        None  # summary templates: regex on a report's title/opening that selects this template
    )
    sha8: str = Field(default="", exclude=True)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}#{self.sha8}"

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages; a variable the template uses but the caller did not pass is an error."""
        try:
            return [
                {"role": "system", "content": _ENV.from_string(self.system).render(**variables).strip()},
                {"role": "user", "content": _ENV.from_string(self.user).render(**variables).strip()},
            ]
        except TemplateError as ex:
            raise ConfigError(f"prompt {self.ref}: {ex}") from ex


def load_template(path: Path) -> PromptTemplate:
    try:
        raw = path.read_bytes()
        data = yaml.safe_load(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as ex:
        raise ConfigError(f"prompt file {path}: cannot read it ({ex})") from ex
    if not isinstance(data, dict):
        raise ConfigError(
            f"prompt file {path}: expected a mapping with id, version, description, system, user"
        )
    try:
        template = PromptTemplate.model_validate(data)
    except ValidationError as ex:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in ex.errors())
        raise ConfigError(f"prompt file {path}: {problems}") from ex
    if template.id != path.stem:
        raise ConfigError(f"prompt file {path}: id {template.id!r} must match the file name")
    for part in (template.system, template.user):
        try:
            _ENV.parse(part)
        except TemplateError as ex:
            raise ConfigError(f"prompt file {path}: template syntax error: {ex}") from ex
    return template.model_copy(update={"sha8": hashlib.sha256(raw).hexdigest()[:8]})


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> PromptTemplate:
    return load_template(Path(path))


def get_template(template_id: str, prompts_dir: Path | None = None) -> PromptTemplate:
    """The template prompts/<id>.yaml (reloaded when the file changes)."""
    path = (prompts_dir or PROMPTS_DIR) / f"{template_id}.yaml"
    if not path.is_file():
        raise ConfigError(f"no prompt template {template_id!r} ({path} not found)")
    return _load_cached(str(path), path.stat().st_mtime_ns)


def all_templates(prompts_dir: Path | None = None) -> list[PromptTemplate]:
    folder = prompts_dir or PROMPTS_DIR
    return [get_template(p.stem, folder) for p in sorted(folder.glob("*.yaml"))]
