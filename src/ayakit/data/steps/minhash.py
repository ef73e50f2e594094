"""MinHash near-dedup (optional, after exact dedup): datatrove's three MinHash stages over the dedup buckets, with a
word tokenizer for every script and the mask of the rows they mark."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.word_tokenizers import WordTokenizer

from ayakit.data import filters as F
from ayakit.data.steps.base import Context
from ayakit.recipe import Recipe


class MultilingualWordTokenizer(WordTokenizer):
    """datatrove word tokenizer for every language: characters of scripts written without spaces (the table in
    resources/scripts.yaml) are single tokens (datatrove's default English tokenizer needs spaCy, splits on spaces)."""

    def __init__(self) -> None:
        super().__init__("multilingual")

    def word_tokenize(self, text: str) -> list[str]:
        return F.words(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [p for p in re.split(r"(?<=[.!?。！？])\s*", text) if p]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in F.word_pattern().finditer(text)]


class BucketDocuments(PipelineStep):
    """Reads one dedup bucket as datatrove Documents (inputs + targets), ids = row numbers in the bucket."""

    type = "ayakit"
    name = "bucket reader"

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        path = self.ctx.work / "dedup" / f"bucket-{rank:05d}.parquet"
        row = 0
        for batch in pq.ParquetFile(path).iter_batches(columns=["inputs", "targets"]):
            for x, y in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                yield Document(text=f"{x}\n{y}", id=str(row))
                row += 1


def minhash_config(recipe: Recipe):
    """datatrove's MinHash settings from the recipe (14 bands x 8 hashes: ~0.7 Jaccard)."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    return MinhashConfig(n_grams=recipe.data.filters.minhash_ngrams, num_buckets=14, hashes_per_bucket=8,
                         seed=recipe.seed)


def minhash_pipelines(ctx: Context) -> list[tuple[str, list, int]]:
    """(stage, pipeline, tasks) of datatrove's three MinHash stages: signatures, buckets, clusters."""
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature

    cfg = minhash_config(ctx.get_recipe())
    root = ctx.work / "minhash"
    return [
        ("minhash-signatures", [BucketDocuments(ctx), MinhashDedupSignature(
            output_folder=str(root / "signatures"), config=cfg, language=MultilingualWordTokenizer())], ctx.buckets),
        ("minhash-buckets", [MinhashDedupBuckets(input_folder=str(root / "signatures"),
                                                 output_folder=str(root / "buckets"), config=cfg)], cfg.num_buckets),
        ("minhash-clusters", [MinhashDedupCluster(input_folder=str(root / "buckets"),
                                                  output_folder=str(root / "remove"), config=cfg)], 1),
    ]


def near_duplicates(ctx: Context, bucket: int, rows: int) -> np.ndarray:
    """Mask of the bucket's rows that MinHash marked as near-duplicates (all False without MinHash)."""
    mask = np.zeros(rows, dtype=bool)
    path = ctx.work / "minhash" / "remove" / f"{bucket:06d}.remove"
    if path.is_file():
        mask[np.fromfile(path, dtype="<u4")] = True
    return mask
