"""Mixture maths: budget -> sources -> datasets (-> languages) -> copies per record, with no engine imports.

The paper's sampling (aya-recipe.md 3.1): each source gets its weight's share of the budget; within a source,
dataset weights or size-proportional shares; an allocation larger than what is available repeats it (whole
passes, then a sample without replacement of the remainder). Optional mT5-style temperature sampling across
languages (p_l proportional to n_l ** alpha) inside each (source, dataset). Every random choice is a hash of
(seed, record id), so a mixture does not depend on how many tasks or workers built it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import xxhash

from ayakit.errors import DataError
from ayakit.recipe import Recipe

KEY_MAX = (1 << 64) - 1
SEP = "\x1f"


@dataclass
class GroupPlan:
    """One sampling unit: a (source, dataset[, language]) group, what is available and how often it is used."""

    source: str
    dataset: str
    language: str | None
    available: int
    allocated: int

    @property
    def copies(self) -> int:
        """Whole passes over the group (every record appears at least this often)."""
        return self.allocated // self.available if self.available else 0

    @property
    def remainder(self) -> int:
        """Records that get one extra copy: a sample without replacement."""
        return self.allocated % self.available if self.available else 0

    @property
    def key(self) -> str:
        """The group's name in plan files."""
        return group_key(self.source, self.dataset, self.language)


@dataclass
class Plan:
    """The allocation of a budget to sources, datasets and (with a temperature) languages."""

    budget: int
    seed: int
    requested: dict[str, float]  # source -> requested share (normalised weights)
    sources: dict[str, int]  # source -> allocated examples
    datasets: dict[str, dict[str, int]]  # source -> dataset -> allocated examples
    available: dict[str, dict[str, int]]  # source -> dataset -> available examples (None: unknown)
    groups: list[GroupPlan] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it has no share

    @property
    def total(self) -> int:
        """Examples the mixture will hold."""
        return sum(self.sources.values())

    def repetition(self) -> dict[str, float]:
        """Source -> allocated / available (how many times the source is seen)."""
        out = {}
        for name, alloc in self.sources.items():
            avail = sum(self.available.get(name, {}).values())
            out[name] = alloc / avail if avail else 0.0
        return out

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        d = asdict(self)
        d["total"] = self.total
        d["repetition"] = self.repetition()
        return d


def group_key(source: str, dataset: str, language: str | None = None) -> str:
    """The name of a sampling or cap group."""
    return SEP.join([source, dataset] if language is None else [source, dataset, language])


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split an integer total in proportion to weights, exactly (Hamilton's method, ties broken by name)."""
    items = [(k, float(w)) for k, w in weights.items()]
    for k, w in items:
        if w < 0 or math.isnan(w):
            raise DataError(f"weight of {k!r} is {w}: negative weights are not allowed (use 0 to leave it out)")
    mass = sum(w for _, w in items)
    if total < 0:
        raise DataError(f"cannot split a negative total {total}")
    if not items or mass <= 0:
        if total:
            raise DataError(f"cannot split {total} over {sorted(weights)}: all weights are zero")
        return {k: 0 for k, _ in items}
    exact = {k: total * w / mass for k, w in items}
    out = {k: int(math.floor(v)) for k, v in exact.items()}
    left = total - sum(out.values())
    order = sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))
    for k in order[:left]:
        out[k] += 1
    return out


def source_weights(recipe: Recipe) -> dict[str, float]:
    """Source -> weight, checked: no negative weights, not all zero (the error names the recipe key)."""
    weights = {}
    for i, spec in enumerate(recipe.data.sources):
        if spec.weight < 0:
            raise DataError(f"data.sources[{i}] ({spec.name}): weight {spec.weight} is negative")
        weights[spec.name] = spec.weight
    if sum(weights.values()) <= 0:
        raise DataError("data.sources: all weights are zero")
    return weights


def requested_shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Normalised source weights."""
    mass = sum(weights.values())
    return {k: w / mass for k, w in weights.items()}


def dataset_shares(sizes: Mapping[str, int], weights: Mapping[str, float], where: str = "") -> dict[str, float]:
    """Within-source shares: listed datasets take their weight as a share of the source, the rest split the
    remaining share in proportion to size; when every dataset is listed the weights are normalised."""
    lower = {d.lower(): d for d in sizes}
    listed: dict[str, float] = {}
    for name, w in weights.items():
        if w < 0:
            raise DataError(f"{where}dataset_weights[{name!r}] = {w} is negative")
        if name.lower() not in lower:
            raise DataError(f"{where}dataset_weights names {name!r}, which has no examples (after filters); "
                            f"datasets: {', '.join(sorted(sizes)) or 'none'}")
        listed[lower[name.lower()]] = float(w)
    present = {d: n for d, n in sizes.items() if n > 0}
    listed = {d: w for d, w in listed.items() if d in present}
    rest = {d: n for d, n in present.items() if d not in listed}
    if not present:
        return {}
    if not rest:
        if sum(listed.values()) <= 0:
            raise DataError(f"{where}dataset_weights are all zero")
        return requested_shares(listed)
    fixed = sum(listed.values())
    if fixed > 1 + 1e-9:
        raise DataError(f"{where}dataset_weights sum to {fixed:g} > 1 while other datasets are unlisted: "
                        "give shares of the source (<= 1), or list every dataset")
    mass = sum(rest.values())
    out = dict(listed)
    for d, n in rest.items():
        out[d] = (1 - fixed) * n / mass
    return out


def temperature_shares(counts: Mapping[str, int], alpha: float) -> dict[str, float]:
    """mT5-style language sampling: p_l proportional to n_l ** alpha (alpha 1: by size; alpha -> 0: uniform)."""
    if alpha <= 0:
        raise DataError(f"temperature alpha must be > 0, got {alpha}")
    raw = {k: float(n) ** alpha for k, n in counts.items() if n > 0}
    mass = sum(raw.values())
    return {k: v / mass for k, v in raw.items()} if mass else {}


def plan(recipe: Recipe, sizes: Mapping[str, Mapping[str, int] | None],
         language_sizes: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
         skipped: Mapping[str, str] | None = None) -> Plan:
    """Allocate the recipe's budget without reading data.

    sizes: source -> dataset -> available examples (after filters and caps), or None where unknown (then
    only the source level is planned). language_sizes: source -> dataset -> language -> available, needed
    for temperature sampling. skipped: sources that could not be read (their share goes to the others).
    A source whose sizes are known and empty is an error.
    """
    data = recipe.data
    weights = source_weights(recipe)
    skipped = dict(skipped or {})
    requested = requested_shares(weights)
    for name, per_ds in sizes.items():
        if per_ds is not None and name not in skipped and weights.get(name, 0) > 0 \
                and sum(per_ds.values()) == 0:
            raise DataError(f"source {name!r} is empty: no examples left after reading and filtering")
    live = {k: w for k, w in weights.items() if k not in skipped}
    if sum(live.values()) <= 0:
        raise DataError("no source is left to sample from: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    per_source = largest_remainder(data.budget, live)
    per_source.update({k: 0 for k in skipped})
    specs = {s.name: s for s in data.sources}
    result = Plan(budget=data.budget, seed=recipe.seed, requested=requested, sources=per_source, datasets={},
                  available={k: dict(v) for k, v in sizes.items() if v is not None}, skipped=skipped)
    for name, alloc in per_source.items():
        per_ds = sizes.get(name)
        if per_ds is None or name in skipped:
            continue
        shares = dataset_shares(per_ds, specs[name].dataset_weights, where=f"source {name!r}: ")
        ds_alloc = largest_remainder(alloc, shares) if shares else {}
        result.datasets[name] = ds_alloc
        for ds, a in sorted(ds_alloc.items()):
            langs = (language_sizes or {}).get(name, {}).get(ds)
            if data.temperature is not None and langs:
                for lang, la in sorted(largest_remainder(a, temperature_shares(langs, data.temperature)).items()):
                    result.groups.append(GroupPlan(name, ds, lang, langs[lang], la))
            else:
                result.groups.append(GroupPlan(name, ds, None, per_ds[ds], a))
    return result


# ---- per-record keys: the hash-keyed scatter/gather ------------------------------------------------------

# Purposes of the keys derived from one record key (any distinct odd constants).
CAP_LANGUAGE, CAP_DATASET, MIX, ORDER = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5


def record_keys(seed: int, ids: Iterable[str]) -> np.ndarray:
    """One 64-bit key per record id: xxh3 of (seed, id), the only source of randomness in a mixture."""
    h = xxhash.xxh3_64_intdigest
    prefix = f"{seed}{SEP}"
    return np.fromiter((h(prefix + i) for i in ids), dtype=np.uint64)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser over a uint64 array: a bijective mix that makes derived keys independent."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def derived_keys(keys: np.ndarray, purpose: int, copy: np.ndarray | int = 0) -> np.ndarray:
    """A key for one purpose (cap, mix, order of copy c) from record keys: hash(seed, id, purpose, copy)."""
    with np.errstate(over="ignore"):
        salted = keys ^ np.uint64(purpose)
        if not (isinstance(copy, int) and copy == 0):
            salted = salted + np.asarray(copy, dtype=np.uint64) * np.uint64(ORDER)
        return splitmix64(splitmix64(salted))


def threshold(keys: np.ndarray, k: int) -> int:
    """The smallest t such that exactly the k smallest keys are < t (0 keeps none; KEY_MAX + 1 keeps all)."""
    if k <= 0:
        return 0
    if k >= len(keys):
        return KEY_MAX + 1
    kth = np.partition(keys, k - 1)[k - 1]
    return int(kth) + 1


def below(keys: np.ndarray, thr: int) -> np.ndarray:
    """Boolean mask keys < thr, for thresholds up to 2**64."""
    if thr > KEY_MAX:
        return np.ones(len(keys), dtype=bool)
    return keys < np.uint64(thr)


def copies_per_record(mixkeys: np.ndarray, copies: int, extra_threshold: int) -> np.ndarray:
    """How many times each record of one group appears: whole passes, +1 for the remainder sample."""
    return np.full(len(mixkeys), copies, dtype=np.int64) + below(mixkeys, extra_threshold)
