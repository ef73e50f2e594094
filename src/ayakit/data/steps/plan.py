"""Stage 3, plan: count what survived, apply the caps, allocate the budget and pick each sampling group's extra
copies, streaming (exact per-group key thresholds without holding one value per record)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ayakit.data import filters as F
from ayakit.data import mixture as M
from ayakit.data.steps.base import Context, Step
from ayakit.data.steps.minhash import near_duplicates
from ayakit.io import read_json, write_json_atomic


def group_codes(*cols: pa.ChunkedArray) -> tuple[np.ndarray, list[tuple]]:
    """Integer group ids for the combinations of several string columns, and the combination of each id."""
    joined = pc.binary_join_element_wise(*cols, M.SEP) if len(cols) > 1 else cols[0]
    enc = pc.dictionary_encode(joined).combine_chunks()
    names = [tuple(v.split(M.SEP)) for v in enc.dictionary.to_pylist()]
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), names


class _Survivors:
    """Streams the dedup buckets' group codes and record keys batch by batch, as often as the plan needs:
    the plan stage never holds one value per record."""

    def __init__(self, ctx: Context, batch_size: int) -> None:
        self.ctx, self.batch_size = ctx, batch_size
        self.dl_index: dict[tuple, int] = {}  # (source, dataset, language) -> code, filled by the first pass

    def batches(self):
        """(group codes, record keys, not-a-near-duplicate mask) per batch, in a fixed order."""
        cols = ["source", "dataset", "language", "_rkey"]
        for b in range(self.ctx.buckets):
            pf = pq.ParquetFile(self.ctx.work / "dedup" / f"bucket-{b:05d}.parquet")
            near = near_duplicates(self.ctx, b, pf.metadata.num_rows)
            offset = 0
            for batch in pf.iter_batches(batch_size=self.batch_size, columns=cols):
                t = pa.Table.from_batches([batch])
                local, names = group_codes(t.column("source"), t.column("dataset"), t.column("language"))
                remap = np.array([self.dl_index.setdefault(n, len(self.dl_index)) for n in names], dtype=np.int64)
                codes = remap[local] if len(names) else np.zeros(0, np.int64)
                yield codes, t.column("_rkey").to_numpy(), ~near[offset:offset + t.num_rows]
                offset += t.num_rows


def _window(n: int, k: int) -> tuple[int, int]:
    """Key range that holds the k-th smallest of n uniform 64-bit keys with overwhelming probability."""
    p = k / n
    width = 10 * math.sqrt(p * (1 - p) / n) + 2 / n
    lo = int(max(0.0, p - width) * 2.0 ** 64)
    hi = int(min(1.0, p + width) * 2.0 ** 64)
    return min(lo, M.KEY_MAX), min(hi, M.KEY_MAX + 1)


def select_thresholds(passes: Callable[[], Any], counts: np.ndarray, wants: dict[int, int]) -> dict[int, int]:
    """Exact threshold per group g (its wants[g] smallest keys are below it), streaming.

    passes() yields (codes, keys, mask) per batch. One pass counts the keys below a window around each
    group's expected quantile and keeps only the keys inside it (about 20 * sqrt(k) per group); a group
    whose k-th key falls outside its window (probability ~1e-20) gets an exact second pass of its own."""
    out: dict[int, int] = {g: 0 for g, k in wants.items() if k <= 0}  # keep none
    wants = {g: k for g, k in wants.items() if 0 < k < counts[g]}
    if not wants:
        return out
    size = len(counts)
    lo = np.zeros(size, np.uint64)
    hi = np.zeros(size, np.uint64)
    to_end = np.zeros(size, bool)
    wanted = np.zeros(size, bool)
    for g, k in wants.items():
        a, b = _window(int(counts[g]), k)
        lo[g], hi[g], to_end[g], wanted[g] = a, min(b, M.KEY_MAX), b > M.KEY_MAX, True
    below = np.zeros(size, np.int64)
    inside_codes, inside_keys = [], []
    for codes, keys, mask in passes():
        sel = mask & wanted[codes]
        c, k = codes[sel], keys[sel]
        below += np.bincount(c[k < lo[c]], minlength=size)
        win = (k >= lo[c]) & ((k < hi[c]) | to_end[c])
        inside_codes.append(c[win])
        inside_keys.append(k[win])
    codes = np.concatenate(inside_codes) if inside_codes else np.zeros(0, np.int64)
    keys = np.concatenate(inside_keys) if inside_keys else np.zeros(0, np.uint64)
    order = np.lexsort((keys, codes))
    codes, keys = codes[order], keys[order]
    bounds = np.searchsorted(codes, np.arange(size + 1))
    missed = {}
    for g, k in wants.items():
        window = keys[bounds[g]:bounds[g + 1]]
        rank = k - int(below[g])
        if 0 < rank <= len(window):
            out[g] = int(window[rank - 1]) + 1
        else:
            missed[g] = k
    for g, k in missed.items():  # exact fallback: every key of the group
        keys_g = np.concatenate([keys_b[mask_b & (codes_b == g)] for codes_b, keys_b, mask_b in passes()])
        out[g] = M.threshold(keys_g, k)
    return out


def _thresholds_array(size: int, thresholds: dict[int, int]) -> list[int]:
    return [thresholds.get(g, M.KEY_MAX + 1) for g in range(size)]


def below_each(keys: np.ndarray, codes: np.ndarray, thresholds: list[int]) -> np.ndarray:
    """keys < thresholds[code] row by row, for thresholds up to 2**64 (which keeps every key)."""
    thr = np.array([min(t, M.KEY_MAX) for t in thresholds], dtype=np.uint64)
    keep_all = np.array([t > M.KEY_MAX for t in thresholds], dtype=bool)
    if not len(thresholds):
        return np.zeros(len(keys), dtype=bool)
    return (keys < thr[codes]) | keep_all[codes]


class PlanStep(Step):
    """Count what survived, apply caps, allocate the budget and pick each group's extra copies (streaming)."""

    stage = name = "plan"

    def work(self, rank: int) -> None:
        ctx, recipe = self.ctx, self.ctx.get_recipe()
        data, caps = recipe.data, recipe.data.caps
        src = _Survivors(ctx, data.batch_size)
        # pass 1: what survived dedup, per (source, dataset, language)
        n0: Counter = Counter()
        near_codes: Counter = Counter()
        for codes, _, alive in src.batches():
            n0.update(dict(zip(*np.unique(codes[alive], return_counts=True), strict=True)))
            near_codes.update(dict(zip(*np.unique(codes[~alive], return_counts=True), strict=True)))
        dl_names = list(src.dl_index)
        size_dl = len(dl_names)
        d_index: dict[tuple, int] = {}
        d_of_dl = np.array([d_index.setdefault(n[:2], len(d_index)) for n in dl_names], dtype=np.int64)
        d_names = list(d_index)
        counts_dl = np.array([n0.get(g, 0) for g in range(size_dl)], dtype=np.int64)

        # caps per (dataset, language), then per dataset among what is left: the smallest cap keys stay
        def pass_dl():
            for codes, keys, alive in src.batches():
                yield codes, M.derived_keys(keys, M.CAP_LANGUAGE), alive

        wants = {g: F.cap_limits(n[0], n[1], caps)[1] for g, n in enumerate(dl_names)}
        thr_dl = select_thresholds(pass_dl, counts_dl, {g: k for g, k in wants.items() if k is not None})
        thr_dl_list = _thresholds_array(size_dl, thr_dl)

        def after_dl():
            for codes, keys, alive in src.batches():
                alive = alive & below_each(M.derived_keys(keys, M.CAP_LANGUAGE), codes, thr_dl_list)
                yield codes, keys, alive

        counts_d = np.zeros(len(d_names), dtype=np.int64)
        for codes, _, alive in after_dl():
            counts_d += np.bincount(d_of_dl[codes[alive]], minlength=len(d_names)) if size_dl else 0
        wants = {g: F.cap_limits(n[0], n[1], caps)[0] for g, n in enumerate(d_names)}

        def pass_d():
            for codes, keys, alive in after_dl():
                yield d_of_dl[codes], M.derived_keys(keys, M.CAP_DATASET), alive

        thr_d = select_thresholds(pass_d, counts_d, {g: k for g, k in wants.items() if k is not None})
        thr_d_list = _thresholds_array(len(d_names), thr_d)

        def after_caps():
            for codes, keys, alive in after_dl():
                d = d_of_dl[codes]
                yield codes, keys, alive & below_each(M.derived_keys(keys, M.CAP_DATASET), d, thr_d_list)

        counts_final = np.zeros(size_dl, dtype=np.int64)
        for codes, _, alive in after_caps():
            counts_final += np.bincount(codes[alive], minlength=size_dl)
        near_removed: Counter = Counter()
        cap_removed: Counter = Counter()
        for g, (_, _, lang) in enumerate(dl_names):
            near_removed[lang] += int(near_codes.get(g, 0))
            cap_removed[lang] += int(counts_dl[g] - counts_final[g])
        # what is available per (source, dataset) and per language, and the plan
        reports = [read_json(p) for p in sorted((ctx.work / "reports").glob("filter-*.json"))]
        skipped = {k: v for r in reports for k, v in r["skipped_sources"].items()}
        sizes: dict[str, dict[str, int]] = {s.name: {} for s in data.sources if s.weight > 0 and s.name not in skipped}
        lang_sizes: dict[str, dict[str, dict[str, int]]] = {}
        for g, (source, ds, lang) in enumerate(dl_names):
            if counts_final[g]:
                sizes.setdefault(source, {})
                sizes[source][ds] = sizes[source].get(ds, 0) + int(counts_final[g])
                lang_sizes.setdefault(source, {}).setdefault(ds, {})[lang] = int(counts_final[g])
        plan = M.plan(recipe, sizes, lang_sizes, skipped)
        # each sampling group's whole passes, and which records get one copy more (the smallest mix keys)
        by_lang = data.temperature is not None
        names = dl_names if by_lang else d_names
        index = {name: g for g, name in enumerate(names)}
        counts_g = counts_final if by_lang else np.bincount(d_of_dl, weights=counts_final,
                                                             minlength=len(d_names)).astype(np.int64)

        def pass_mix():
            for codes, keys, alive in after_caps():
                yield (codes if by_lang else d_of_dl[codes]), M.derived_keys(keys, M.MIX), alive

        remainders = {}
        for gp in plan.groups:
            name = (gp.source, gp.dataset, gp.language) if by_lang else (gp.source, gp.dataset)
            remainders[index[name]] = gp.remainder
        thr_mix = select_thresholds(pass_mix, counts_g, remainders)
        groups: dict[str, list[int]] = {}
        for gp in plan.groups:
            g = index[(gp.source, gp.dataset, gp.language) if by_lang else (gp.source, gp.dataset)]
            groups[gp.key] = [gp.copies, thr_mix.get(g, 0 if gp.remainder == 0 else M.KEY_MAX + 1)]
        write_json_atomic(ctx.work / "plan.json", {
            "plan": plan.to_dict(), "by_language": by_lang, "groups": groups,
            "caps": {"dataset_language": {M.SEP.join(dl_names[g]): t for g, t in thr_dl.items()},
                     "dataset": {M.SEP.join(d_names[g]): t for g, t in thr_d.items()}},
            "caps_removed": F.FilterCounts(sum(cap_removed.values()), +cap_removed).to_dict(),
            "minhash_removed": F.FilterCounts(sum(near_removed.values()), +near_removed).to_dict(),
        })
