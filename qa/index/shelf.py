"""Packs on disk: one folder per pack and a manifest naming them (with each pack's SHA-256), replaced under a
file lock; a missing or damaged pack is dropped and its reports read from the store again."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.core.files import atomic_write
from qa.index.packs import MAX_PACK_ROWS, MERGE_PACKS, Pack, PackDamaged, stale_indexes
from qa.index.searcher import Index

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# ---- packs on disk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """A pack found damaged on disk (and dropped): its reports are read from the store again."""

    pack: str
    keys: tuple[str, ...]  # the report versions it held, when its list could still be read
    why: str

    @property
    def reports(self) -> list[str]:
        return sorted({k.split("\t", 1)[0] for k in self.keys})

    def describe(self) -> str:
        held = f"for {', '.join(self.reports)}" if self.keys else self.pack
        return f"index pack {held} was damaged: {self.why}"


class Shelf:
    """The packs on disk for one store and embedder (folder None, or a folder that cannot be written: the
    packs live in this process's memory only). dim: the embedder's, which every pack's vectors must have."""

    def __init__(self, folder: Path | None, dim: int | None = None) -> None:
        self.folder = folder
        self.dim = dim
        self._loaded: dict[str, Pack] = {}
        self._local: list[str] = []  # packs kept in memory only
        self._warned = False
        self._swept = False
        self._damaged: list[Damage] = []  # found by packs(), until the caller takes them

    def sweep_stale(self) -> int:
        """Remove (once) what other versions of the pack code left beside this index, saying so in one line:
        its reports are packed again from the store into this one. How many entries were removed."""
        if self.folder is None or self._swept:
            return 0
        self._swept = True
        stale = stale_indexes(self.folder)
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if stale:
            log.warning("warning: the search index in %s was built by another version of reportqa's text "
                        "processing (tokenizer, comparison cells); it is built again from the store",
                        self.folder.parent)  # fmt: skip
        return len(stale)

    def _lock(self):
        import filelock

        return filelock.FileLock(str(self.folder / "manifest.lock"), timeout=30, thread_local=False)

    def _manifest(self) -> tuple[list[str], dict[str, str]]:
        """(pack names, their SHA-256 where written) from manifest.json."""
        if self.folder is None:
            return [], {}
        try:
            manifest = json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
            names = [str(n) for n in manifest["packs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return [], {}
        sums = manifest.get("sha256")
        return names, ({str(k): str(v) for k, v in sums.items()} if isinstance(sums, dict) else {})

    def names(self) -> list[str]:
        return self._manifest()[0]

    def packs(self) -> list[Pack]:
        """The packs named in the manifest, then this process's own. Each is checked when loaded
        (Pack.load): a damaged one is dropped from disk and noted (take_damage); its reports are then held
        by no pack, so they are read from the store again."""
        listed, sums = self._manifest()
        names = [*listed, *self._local]
        for name in set(self._loaded) - set(names):  # merged away by another process
            del self._loaded[name]
        out, damaged = [], []
        for name in names:
            if name not in self._loaded:
                try:
                    self._loaded[name] = Pack.load(self.folder, name, sums.get(name), self.dim)
                except (OSError, PackDamaged) as ex:
                    if name not in self.names():  # merged away and deleted while we read it: not damage
                        continue
                    why = str(ex) if isinstance(ex, PackDamaged) else f"unreadable: {type(ex).__name__}: {ex}"
                    damaged.append(Damage(name, _keys_of(self.folder / name), why))
                    log.info("index pack %s is damaged (%s); its reports are read from the store", name, why)
                    continue
            out.append(self._loaded[name])
        if damaged:
            self._damaged.extend(damaged)
            self.drop([d.pack for d in damaged])
        return out

    def take_damage(self) -> list[Damage]:
        """The damaged packs found (and dropped) since the last call."""
        damaged, self._damaged = self._damaged, []
        return damaged

    def add(self, pack: Pack) -> None:
        self._loaded[pack.name] = pack

        def write() -> None:
            self._update(add={pack.name: pack.save(self.folder)})

        if not self._persist(write):
            self._local.append(pack.name)

    def replace(self, merged: Pack, replaced: Sequence[str]) -> None:
        """merged takes the place of the packs named (packs another process added meanwhile stay)."""
        self.add(merged)
        self.drop(replaced)

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            self._loaded.pop(name, None)
        self._local = [n for n in self._local if n not in set(names)]
        if self.folder is None:
            return
        # listed, or still on disk (a pack whose folder went missing is taken out of the manifest too)
        gone = [n for n in names if (self.folder / n).exists() or n in set(self.names())]
        if gone and self._persist(lambda: self._update(remove=gone)):
            for name in gone:
                shutil.rmtree(self.folder / name, ignore_errors=True)

    def compact(self, index: Index) -> bool:
        """Drop packs no alive row is in; merge the smallest packs when there are more than MERGE_PACKS, and
        rewrite a pack whose rows are mostly dead — never into a pack past MAX_PACK_ROWS alive rows, so a
        merge's memory stays bounded whatever the library's size. True when the packs changed."""
        packs, alive = index.packs, index.alive
        live = [int(a.sum()) for a in alive]
        empty = [p.name for p, n in zip(packs, live, strict=True) if n == 0]
        if empty:
            self.drop(empty)
        kept = [i for i, n in enumerate(live) if n]
        by_size = sorted(kept, key=lambda i: live[i])
        chosen: list[int] = []
        if len(kept) > MERGE_PACKS:
            total = 0
            for i in by_size:
                if total + live[i] > MAX_PACK_ROWS and len(chosen) >= 2:
                    break
                chosen.append(i)
                total += live[i]
        if not chosen:  # mostly dead: rewritten alone, keeping its alive rows
            chosen = [i for i in kept if live[i] * 2 < packs[i].n_rows][:1]
        if chosen:
            self.replace(Pack.merge([(packs[i], alive[i]) for i in chosen]), [packs[i].name for i in chosen])
        return bool(empty or chosen)

    def _persist(self, write) -> bool:
        """Run a disk write; False (logged) when there is no folder or it cannot be written — a cache that
        cannot be kept slows the next process down, it never stops this one."""
        if self.folder is None:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write()
            return True
        except Exception as ex:  # OSError, filelock.Timeout…
            if not self._warned:  # once per process: every command would otherwise repeat it
                self._warned = True
                log.warning("warning: cannot keep the search index on disk in %s (%s); searches work, but each "
                            "new process re-reads the reports it lacks: make the folder writable (it is under "
                            "QA_DATA_DIR)", self.folder, ex)  # fmt: skip
            return False

    def _update(self, add: Mapping[str, str] | None = None, remove: Sequence[str] = ()) -> None:
        """Rewrite the manifest under its lock: add packs (name → SHA-256), remove others."""
        add = dict(add or {})
        with self._lock():
            listed, sums = self._manifest()
            names = [n for n in listed if n not in set(remove)] + list(add)
            sums = {n: v for n, v in {**sums, **add}.items() if n in set(names)}
            atomic_write(self.folder / "manifest.json", json.dumps({"packs": names, "sha256": sums}))


def _keys_of(where: Path) -> tuple[str, ...]:
    """The report versions a (damaged) pack says it holds; () when even that cannot be read."""
    try:
        keys = json.loads((where / "pack.json").read_text(encoding="utf-8"))["keys"]
    except Exception:  # garbage, a cut file, a list of the wrong shape: nothing to name
        return ()
    return tuple(keys) if isinstance(keys, list) and all(isinstance(k, str) for k in keys) else ()
