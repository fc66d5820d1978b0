"""The planner: cache keys, store lookups before a batch, rows written after it, and the in-flight log.

Everything the engine reads from or writes to the store goes through here. A batch is *planned* (which
candidates this search already has, which the store's cache can serve, which are left to compute), then
*committed* in one transaction with the unit-cost totals and the removal of its in-flight record.

The in-flight log names every batch being computed (store meta ``inflight``, written before the batch is
submitted). A process that dies leaves its records behind, and the next run names them on stderr and
computes each of them alone. When the dead process left crash evidence (``RUN_DIR/.crash``: a plugin called
``os._exit``, or a fatal signal such as a segfault, written by the scheduler's crash guard) each batch in
flight is charged a death (meta ``deaths``); a batch charged ``MAX_DEATHS`` deaths is FAILED with that reason
instead of computed again. A process killed from outside (SIGKILL, the OOM killer) leaves no evidence: its
batches run alone but are never skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eacps.engine.batch import Pair
from eacps.recipe import Recipe
from eacps.store import Candidate, ReplayError, Store
from eacps.types import Condition, Generated, Image, Status

INFLIGHT_META = "inflight"
DEATHS_META = "deaths"
#: crash evidence of the last process, in the run directory (see ``eacps.engine.scheduler``)
CRASH_FILE = ".crash"
#: a batch that killed the process this many times is FAILED on resume instead of computed again
MAX_DEATHS = 2
#: recipes longer than this are cut in a ``ReplayError``'s message
RECIPE_SHOWN = 160


def image_hash(image: Image | None) -> str | None:
    return None if image is None else hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]


def cache_key(generator_fp: str, potential_fp: str, condition: Condition, recipe: Recipe, steps: int) -> str:
    """What determines a candidate: generator and potential fingerprints, the condition (with its reference
    and prior images), the recipe and its steps."""
    spec = [generator_fp, potential_fp, condition.describe(), image_hash(condition.reference),
            recipe.with_steps(None).key, steps]
    if condition.prior is not None:  # scorers and img2img generators see the prior: part of the key
        spec.append({"prior": image_hash(condition.prior)})
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass
class Planned:
    """A batch resolved against the store: ``todo`` indices are left to compute."""

    recipes: list[Recipe]
    condition: Condition  # as scored (with the search's prior)
    search: str
    seq0: int
    role: str
    strategy: str | None
    keys: list[str]
    cands: list[Candidate | None] = field(default_factory=list)
    computed: list[bool] = field(default_factory=list)  # per recipe: computed by this process
    #: per recipe: stored FAILED without computing (its batch killed the process ``MAX_DEATHS`` times)
    skipped: list[bool] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    new: list[Candidate] = field(default_factory=list)
    parents: list[int | None] | None = None  # per recipe: seq of its parent path in the search (path recipes)
    charges: list[int | None] | None = None  # per recipe: the steps its search is charged (role 'search')
    deaths: int = 0  # times this batch was in flight when a plugin ended the process
    alone: bool = False  # in flight when a process died: computed with nothing else in flight

    def __post_init__(self) -> None:
        self.cands = [None] * len(self.recipes)
        self.computed = [False] * len(self.recipes)
        self.skipped = [False] * len(self.recipes)

    @property
    def id(self) -> str:
        """Stable across runs: the same search asks the same recipes at the same seq on resume."""
        text = json.dumps([self.search, self.seq0, [self.recipes[i].key for i in self.todo]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"batch {self.id} of search {self.search!r} (seq {self.seq0}..{self.seq0 + len(self.recipes) - 1})"


def _cut(text: str, limit: int = RECIPE_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class Planner:
    def __init__(self, store: Store, generator_fp: str, key_of: Callable[[Recipe], tuple[str, int]]) -> None:
        """``key_of(recipe)``: (fingerprint of the potential that scores it, its steps)."""
        self.store = store
        self.generator_fp = generator_fp
        self.key_of = key_of
        self.reference_paths: dict[str, str] = {}
        self.deaths: dict[str, dict[str, Any]] = store.get_meta(DEATHS_META, {})
        self.inflight: dict[str, dict[str, Any]] = {}

    def cache_key(self, recipe: Recipe, condition: Condition) -> str:
        pot_fp, steps = self.key_of(recipe)
        return cache_key(self.generator_fp, pot_fp, condition, recipe, steps)

    def plan(self, recipes: Sequence[Recipe], condition: Condition, *, search: str, seq0: int, role: str,
             strategy: str | None, cache: bool = True, parents: Sequence[int | None] | None = None,
             charges: Sequence[int | None] | None = None) -> Planned:
        """Resolve what the store already has (this search's rows, then, with ``cache``, any row with the same
        cache key); the rest is ``todo`` (to compute). ``parents`` and ``charges``: per recipe, the parent's seq and
        the charged steps its strategy gave it (``Strategy.ask_records``), stored with the candidate; a search
        row without them is charged its own steps. ``ReplayError`` when the store holds another recipe at one of
        the batch's seqs (a resumed search that no longer asks what it asked when it was stored)."""
        stored = self._replayed(recipes, search, seq0)
        if charges is None and role == "search":
            charges = [self.key_of(r)[1] for r in recipes]
        b = Planned(list(recipes), condition, search, seq0, role, strategy,
                    [self.cache_key(r, condition) for r in recipes], parents=None if parents is None else list(parents),
                    charges=None if charges is None else list(charges))
        for i, r in enumerate(recipes):
            if (row := stored.get(seq0 + i) or self.store.find_in_search(search, r)) is not None:
                b.cands[i] = row  # resumed: told again, not recomputed, not re-stored
            elif cache and (hit := self.store.find_cached(b.keys[i])) is not None:
                b.cands[i] = replace(hit, search=search, seq=seq0 + i, role=role, recipe=r, strategy=strategy,
                                     reused_from=hit.reused_from or hit.id, id=None,
                                     parent=b.parents[i] if b.parents else None,
                                     charged=b.charges[i] if b.charges else None)
                b.new.append(b.cands[i])
            else:
                b.todo.append(i)
        if b.todo:
            rec = self.deaths.get(b.id, {})
            b.deaths, b.alone = int(rec.get("deaths", 0)), bool(rec)
        return b

    def _replayed(self, recipes: Sequence[Recipe], search: str, seq0: int) -> dict[int, Candidate]:
        """The search's stored rows at the batch's seqs, each holding the recipe asked there (a replay asks, at every
        stored seq, the recipe stored there); the first difference is a ``ReplayError``."""
        stored = self.store.candidates_at(search, seq0, len(recipes))
        for i, r in enumerate(recipes):
            if (row := stored.get(seq0 + i)) is not None and row.recipe.key != r.key:
                raise ReplayError(
                    f"{self.store.root / 'store.sqlite'}: search {search!r} asks {_cut(r.key)} at seq {seq0 + i}, "
                    f"where the store holds {_cut(row.recipe.key)}: the code or its defaults (a strategy's "
                    "parameters) changed since this run was stored; use another --out, or the version that wrote it")
        return stored

    # -- the in-flight log ----------------------------------------------------------------------
    def recover(self) -> list[str]:
        """The batches a dead process left in flight (charged a death when it left crash evidence); returns
        one line per batch."""
        crash = self.store.root / CRASH_FILE
        evidence = " ".join(crash.read_text(errors="replace").split())[:200] if crash.exists() else ""
        crash.unlink(missing_ok=True)
        left = self.store.get_meta(INFLIGHT_META, {})
        if not left:
            return []
        out = []
        for bid, info in left.items():
            rec = self.deaths.setdefault(bid, {**info, "deaths": 0})
            if evidence:
                rec["deaths"] += 1
                out.append(f"the previous run died while computing {info['what']} ({evidence}; died with it "
                           f"{rec['deaths']} time(s))")
            else:
                out.append(f"the previous run was killed while computing {info['what']} (no crash recorded: killed "
                           "from outside?); it is computed alone now")
        with self.store.transaction():
            self.store.set_meta(DEATHS_META, self.deaths)
            self.store.set_meta(INFLIGHT_META, {})
        return out

    def begin(self, b: Planned) -> None:
        """Record ``b`` as being computed, before it is submitted."""
        self.inflight[b.id] = {"what": b.describe()}
        self.store.set_meta(INFLIGHT_META, self.inflight)

    def abandon(self) -> None:
        """Forget the in-flight records of this process's unfinished batches (it did not die with them)."""
        if self.inflight:
            self.inflight.clear()
            self.store.set_meta(INFLIGHT_META, {})

    def killed_reason(self, b: Planned) -> str | None:
        """Why ``b`` is not computed again (it killed the process ``MAX_DEATHS`` times), or None."""
        if b.deaths < MAX_DEATHS:
            return None
        return (f"the process died {b.deaths} times while computing this batch (a plugin crashed or called "
                "os._exit); skipped on resume")

    # -- commit ---------------------------------------------------------------------------------
    def commit(self, b: Planned, results: Sequence[Pair] | None, steps: Sequence[int],
               meta: dict[str, Any] | None = None) -> list[Candidate]:
        """Turn computed results into candidates and write every new row, ``meta`` and the removal of the
        batch's in-flight record in one transaction. The rows of a batch skipped after ``MAX_DEATHS`` deaths are
        stored FAILED and not marked computed (nothing was generated)."""
        skipped = self.killed_reason(b) is not None
        for i, (g, sc) in zip(b.todo, results or [], strict=True):
            b.cands[i] = self._candidate(b, i, steps[i], g, sc)
            b.computed[i], b.skipped[i] = not skipped, skipped
            b.new.append(b.cands[i])
        meta = dict(meta or {})
        if self.inflight.pop(b.id, None) is not None:
            meta[INFLIGHT_META] = self.inflight
        if b.new or meta:
            desc = b.condition.describe()
            if b.condition.id in self.reference_paths:
                desc["reference_image"] = self.reference_paths[b.condition.id]
            self.store.add(b.new, desc, meta)
        return b.cands  # type: ignore[return-value]

    def _candidate(self, b: Planned, i: int, steps: int, g: Generated, sc: Any) -> Candidate:
        r = b.recipes[i]
        key = b.keys[i] if b.role != "calibration" else f"calibration:{b.keys[i]}"  # never served as a search cand.
        c = Candidate(b.search, b.seq0 + i, b.role, b.condition.id, r, steps, g.status, None,
                      cache_key=key, strategy=b.strategy, gen_seconds=g.seconds,
                      parent=b.parents[i] if b.parents else None, charged=b.charges[i] if b.charges else None)
        if g.status is Status.OK and sc is not None:
            c.scores, c.potential, c.score_seconds = sc.scores, sc.potential, sc.seconds
            if sc.reason is not None and b.role != "calibration":
                c.status, c.reason = Status.FAILED, sc.reason
        else:
            c.reason = g.reason
        if g.image is not None and np.all(np.isfinite(g.image)) and b.role != "calibration":
            c.image_path = self.store.write_image(key, g.image)
        return c

    def stash_reference(self, condition: Condition) -> None:
        """Store the condition's reference image once (reports show it beside the prior)."""
        if condition.reference is None or condition.id in self.reference_paths:
            return
        key = "reference:" + hashlib.sha256(np.ascontiguousarray(condition.reference).tobytes()).hexdigest()
        path = self.store.image_path_for(key)
        if not (self.store.root / path).exists():
            self.store.write_image(key, condition.reference)
        self.reference_paths[condition.id] = path
