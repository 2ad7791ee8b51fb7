"""Data only: the small records that flow between modules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ReportMeta:
    """What a report says about itself (header table, title line, sign-off)."""

    title: str = ""
    issuer: str = ""  # the government/body the report is by
    publisher: str = ""  # the body that published it on the web, when different
    region: str = ""  # the most specific place the report is about, e.g. 淄川区, 蓉江新区; "" = 未识别
    year: int | None = None  # the year reported on (a 2024 report is published in 2025)
    publish_date: str | None = (
        None  # YYYY-MM-DD: the issue (发文/成文) date, else the sign-off, else the page's
    )
    made_public: str = (
        ""  # YYYY-MM-DD the page says it published the report (发布日期/发布时间); "" when it does not
    )
    doc_number: str = ""  # 文号
    index_no: str = ""  # 索引号
    region_path: tuple[
        str, ...
    ] = ()  # province first: (河南省, 漯河市, 舞阳县); may end in a zone (蓉江新区)
    region_code: str = ""  # the gazetteer's code of the deepest division in the path, e.g. 411121
    level: str = ""  # 省级 | 地市 | 区县, or 部门（省级/地市级/县级）for a department's report
    issuer_kind: str = ""  # 人民政府 | 党委 | 党委和政府 | 部门 | 管委会
    kind: str = ""  # 法治报告 | 政府工作报告 | 统计公报 | 信息公开年报 | 其他 (qa.genre.kinds)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """How answers and lists name the report: its place (and department), else its title; never the
        file name. "" when neither is known (shown as 未识别)."""
        if self.region and self.issuer_kind == "部门" and self.issuer:
            return self.issuer
        return self.region or self.title


@dataclass(frozen=True)
class Document:
    """A loaded report: clean body text plus what was stripped around it."""

    report_id: str  # file name, e.g. zichuan_2024.txt
    source_path: str
    text: str  # clean body, the offsets of every chunk point into this
    content_hash: str  # sha256 of the raw bytes
    format: str  # txt | md | html | pdf | docx
    encoding: str | None = None
    header: str = ""  # stripped header block (navigation, header table, title line)
    footer: str = ""  # stripped trailing boilerplate
    meta: ReportMeta = field(default_factory=ReportMeta)


@dataclass(frozen=True)
class Section:
    """A heading in the report's section tree."""

    level: int  # 1 一、 | 2 （一） | 3 1. | 4 一是
    title: str
    start: int  # offset of the heading in Document.text
    path: tuple[str, ...]  # titles from the top level down to this one


@dataclass(frozen=True)
class Chunk:
    id: str  # "<version[:16]>-<start>": stable for the same text, chunker and embedder
    report_id: str
    version: str  # ingest version of the report this chunk belongs to
    ordinal: int
    section: str  # section path joined with " > "
    start: int  # char offsets into Document.text
    end: int
    text: str
    embed_text: str  # "title · section path · text": the title prefix matters for dense recall
    title: str = ""
    region: str = ""
    year: int | None = None


@dataclass(frozen=True)
class ReportRecord:
    """One stored report as the store's registry knows it."""

    report_id: str
    version: str
    meta: ReportMeta
    n_chunks: int
    source_path: str = ""
    content_hash: str = ""
    format: str = ""
    encoding: str | None = None
    ingested_at: str = ""
    embedded: bool = True  # False: stored and searchable by keywords, its vectors still to come


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the ranks it had in each retriever."""

    chunk: Chunk
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True)
class IngestResult:
    path: str
    report_id: str | None
    status: str  # ingested | updated | unchanged | failed
    reason: str = ""
    n_chunks: int = 0
    embedded: int = 0  # chunks that had to be embedded (not found in the cache)
    pending: int = 0  # chunks whose vectors follow in the background pass (searchable by keywords now)
    code: str = ""  # a failure's error code (qa.core.errors) and the fields its reason is built from,
    fields: dict = field(default_factory=dict, compare=False)  # so an interface can say it in its own words


@dataclass(frozen=True)
class Source:
    """A numbered passage given to the engine: one chunk, or overlapping chunks of a report merged."""

    n: int
    report_id: str
    title: str
    section: str
    start: int  # offsets into the report's clean text
    end: int
    text: str
    chunk_ids: tuple[str, ...]
    region: str = ""
    rank: int = 0  # best retrieval rank among its chunks (0 = top)
    part: str = "body"  # body: offsets into the clean text | header: into the page header (文号, 发文日期…)
    label: str = ""  # how answers name the report: its place or title (ReportMeta.label), never a file name


@dataclass(frozen=True)
class Citation:
    n: int
    report_id: str
    title: str
    section: str
    chunk_ids: tuple[str, ...]
    passage: str  # the whole cited passage (display)
    start: int  # passage offsets in the report's clean text
    end: int
    quote: str  # the supporting span inside the passage (highlighted in the UI)
    quote_start: int  # span offsets in the report's clean text (or its header, see part)
    quote_end: int
    part: str = "body"  # body | header


@dataclass(frozen=True)
class UnverifiedNumber:
    raw: str
    reason: str  # "not in the cited passages" | "no citation" | "another measure"
    stated: str = ""  # another measure: what the cited passage gives the number for (行政复议)…
    asked: str = ""  # …and the measure the question asks (行政诉讼)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation]
    unverified_numbers: list[UnverifiedNumber]
    refused: bool
    engine: str  # extractive | llm
    model: str | None
    prompt_ref: str | None
    standalone_question: str = ""
    scope: tuple[str, ...] = ()  # the reports the answer was allowed to use (qa.question.scope.route)
    scope_note: str = ""  # why it refused, or what the question's scope is, in words
    year_note: str = (
        ""  # the answer quotes a report of another year than the question asks (said, in Chinese)
    )
    dropped_claims: tuple[str, ...] = ()  # sentences removed because they cited a report outside the scope
    dropped_citations: tuple[int, ...] = ()  # [n] markers that pointed at no given source
    sources: list[Source] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float = 0.0

    @property
    def uncited(self) -> bool:
        """An answer (not a refusal) that cites no passage: nothing in it is traceable."""
        return not self.refused and not self.citations

    def to_dict(self) -> dict:
        return {**asdict(self), "uncited": self.uncited}
