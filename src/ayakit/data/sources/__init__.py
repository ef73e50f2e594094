"""Sources: readers that turn a recipe's `data.sources` entries into streams of EXAMPLE_SCHEMA batches.

`open_source(spec, recipe)` looks the spec's `type` up in READERS and returns a `Source`: its
`iter_batches(batch_size)` yields pyarrow RecordBatches in ayakit.records.EXAMPLE_SCHEMA, languages
normalised to registry codes (rows outside the 101 are dropped and counted in `dropped_languages`),
with provenance (source, dataset, task, template, kind, license) and a deterministic id.
"""

from __future__ import annotations

from ayakit.data.sources.base import Reader, Source
from ayakit.data.sources.embedded import embedded_reader, heldout_families, heldout_items
from ayakit.data.sources.files import files_reader
from ayakit.data.sources.hub import (aya_collection_reader, aya_dataset_reader, aya_evaluation_suite_reader,
                                     data_provenance_reader, xp3x_reader)
from ayakit.data.sources.parallel import flores_reader, tatoeba_reader, tatoeba_split
from ayakit.errors import DataError
from ayakit.recipe import Recipe, SourceSpec

READERS: dict[str, Reader] = {
    "embedded": embedded_reader,
    "files": files_reader,
    "aya_dataset": aya_dataset_reader,
    "aya_collection": aya_collection_reader,
    "xp3x": xp3x_reader,
    "aya_evaluation_suite": aya_evaluation_suite_reader,
    "data_provenance": data_provenance_reader,
    "flores": flores_reader,
    "tatoeba": tatoeba_reader,
}


def open_source(spec: SourceSpec, recipe: Recipe) -> Source:
    """The Source a recipe entry names; DataError lists the known types when its type is unknown."""
    reader = READERS.get(spec.type)
    if reader is None:
        raise DataError(f"source {spec.name!r}: unknown type {spec.type!r}; known types: {', '.join(sorted(READERS))}")
    return reader(spec, recipe)


__all__ = ["READERS", "Source", "open_source", "heldout_items", "heldout_families", "tatoeba_split"]
