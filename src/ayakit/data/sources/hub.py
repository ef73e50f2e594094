"""Readers for the paper's Hugging Face datasets, with their exact column names (aya-recipe.md section 7).

Each reads a local copy in the hub layout when the spec has `path:` (what `huggingface-cli download
--repo-type dataset` leaves: Parquet or JSONL files under config folders, `data/` for a single-config
dataset, split names as file-name prefixes such as `train-00000-of-00004.parquet`), else streams
`datasets.load_dataset(hub_id, config, split=...)`; a hub that cannot be reached is a DataError saying to
download it and set `path:`.

Common options: `splits` (default `[train]`; the evaluation suite: `[test]`), `batch_size`.
`configs:` selects configs (shell patterns allowed, e.g. `translated_*`); default: every config found.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ayakit import languages as L
from ayakit.data.sources.base import Block, Source, make_source
from ayakit.data.sources.files import FILE_SUFFIXES, Mapping, file_format, iter_file_rows, resolve_mapping
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError
from ayakit.recipe import Recipe, SourceSpec

SPLIT_NAMES = ("train", "validation", "test", "dev", "devtest")

# Row hook: (row, config) -> row, applied after the column mapping.
Hook = Callable[[dict[str, Any], str], dict[str, Any]]


def hub_files(root: Path, where: str) -> list[tuple[str, str, Path]]:
    """(config, split, file) for every data file of a local hub copy; `data/<files>` is config 'default'."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{where}: path {root} is not a folder in the hub layout")
    out = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if not f.is_file() or not f.name.lower().endswith(FILE_SUFFIXES) or any(p.startswith(".") for p in rel.parts):
            continue
        folders = list(rel.parts[:-1])
        split = _split_of(f.name, folders)
        folders = [p for p in folders if p not in SPLIT_NAMES]
        if folders and folders[0] == "data":
            folders = folders[1:]
        config = folders[0] if folders else "default"
        out.append((config, split, f))
    if not out:
        raise DataError(f"{where}: no data files ({', '.join(FILE_SUFFIXES)}) under {root}")
    return out


def _split_of(name: str, folders: Sequence[str]) -> str:
    stem = name.split(".")[0]
    for sep in ("-", "_"):
        head = stem.split(sep)[0]
        if head in SPLIT_NAMES:
            return head
    for p in reversed(folders):
        if p in SPLIT_NAMES:
            return p
    if "_" in stem:  # xP3x: xp3_{dataset}_{config}_{split}_{template}; the split is a field of its own
        for part in stem.split("_"):
            if part in SPLIT_NAMES:
                return "train" if part in ("dev", "validation") else part
    return "train"


def _wanted(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _unreachable(hub_id: str) -> DataError:
    return DataError(f"cannot fetch {hub_id} from the Hugging Face hub (offline?): download it and set `path:` "
                     "in the recipe")


def _hub_stream(hub_id: str, configs: Sequence[str], splits: Sequence[str], mapping: Mapping,
                required: Sequence[str], keep: Sequence[str], shard: tuple[int, int] | None = None
                ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(config, row) from datasets.load_dataset(..., streaming=True); DataError when the hub is unreachable.

    With a shard (index, count), a stream of at least `count` files is split by file (IterableDataset.shard);
    a smaller stream k is read whole by task k % count. Either way each row is read once over all tasks.
    """
    try:
        import datasets

        plans = [(c, s) for c in (configs or [None]) for s in splits]
        streams = [(c or "default", datasets.load_dataset(hub_id, c, split=s, streaming=True)) for c, s in plans]
    except Exception:  # noqa: BLE001 - any failure to reach or resolve the hub means the same to the user
        raise _unreachable(hub_id) from None
    if shard is not None:
        index, count = shard
        streams = [(c, s.shard(num_shards=count, index=index)) if s.num_shards >= count else (c, s)
                   for k, (c, s) in enumerate(streams) if s.num_shards >= count or k % count == index]
    for config, stream in streams:
        cols: dict[str, str] | None = None
        try:
            for obj in stream:
                if cols is None:
                    cols = resolve_mapping(mapping, list(obj), Path(f"{hub_id}/{config}"), required)
                    cols.update({k: k for k in keep if k in obj and k not in cols})
                yield config, {fld: obj.get(col) for fld, col in cols.items()}
        except DataError:
            raise
        except Exception:  # noqa: BLE001
            raise _unreachable(hub_id) from None


def hub_reader(spec: SourceSpec, recipe: Recipe, *, default_id: str, mapping: Mapping, kind: str | Callable[[str], str],
               license: str, default_splits: Sequence[str] = ("train",), dataset: Callable[[str], str] | None = None,
               split_value: str = "train", hook: Hook | None = None, keep: Sequence[str] = (),
               language: str | None = None, folder_language: bool = False) -> Source:
    """A Source over a hub dataset's files (local copy or streamed); the reader functions below configure it."""
    opts = spec.options
    mapping = {**mapping, **spec.columns}
    splits = list(opts.get("splits", default_splits))
    batch_size = int(opts.get("batch_size", 4096))
    hub_id = spec.hub_id or default_id
    where = f"source {spec.name!r} ({hub_id})"
    kind_of = kind if callable(kind) else (lambda _c, k=kind: k)
    dataset_of = dataset or (lambda c: c)
    required = ("inputs", "targets") if language else ("inputs", "targets", "language")

    def base_row(config: str) -> dict[str, str]:
        row = {"dataset": dataset_of(config), "kind": kind_of(config), "split": split_value}
        if language:
            row["language"] = language
        return row

    if spec.path:
        files = [(c, s, f) for c, s, f in hub_files(Path(spec.path), where)
                 if s in splits and _wanted(c, spec.configs)]
        if not files:
            raise DataError(f"{where}: no files for configs {spec.configs or ['*']} and splits {splits} under "
                            f"{spec.path}")
    else:
        files = []

    def rows(source: Source) -> Iterator[dict[str, Any]]:
        if not spec.path:
            for config, row in _hub_stream(hub_id, spec.configs, splits, mapping, required, keep, source.shard):
                full = {**base_row(config), **{k: v for k, v in row.items() if v is not None}}
                yield hook(full, config) if hook else full
            return
        for unit, (config, _split, f) in enumerate(files):  # a file is one unit of a shard
            if not source.owns(unit):
                continue
            if folder_language and not _folder_selected(f.parent.name, source, f):
                continue
            for row in iter_file_rows(f, mapping, source, recipe.data.on_error, required, batch_size,
                                      extra=base_row(config), keep=keep):
                yield _hooked(row, hook, config) if hook else row

    def sizes() -> dict[str, int] | None:
        if not files or not all(file_format(f) == "parquet" for _c, _s, f in files):
            return None
        if "dataset" in mapping and mapping["dataset"]:
            return None
        out: dict[str, int] = {}
        for config, _s, f in files:
            out[dataset_of(config)] = out.get(dataset_of(config), 0) + pq.ParquetFile(f).metadata.num_rows
        return out

    default_kind = kind if isinstance(kind, str) else "templated"
    return make_source(spec, recipe, kind=default_kind, license=license, rows=rows, sizes=sizes, shardable=True)


def _hooked(item: dict[str, Any] | Block, hook: Hook, config: str) -> dict[str, Any] | Block:
    """Apply a per-row hook to a row or, row by row, to a column Block."""
    if not isinstance(item, Block):
        return hook(item, config)
    cols = {k: v if isinstance(v, list) else [v] * item.n for k, v in item.columns.items()}
    rows = [hook({k: cols[k][i] for k in cols}, config) for i in range(item.n)]
    keys = set().union(*rows) if rows else set()
    return Block({k: [r.get(k) for r in rows] for k in keys}, item.n)


def _folder_selected(folder: str, source: Source, f: Path) -> bool:
    """xP3x keeps one folder per language: skip folders that name no language (counted) or not selected, unread."""
    try:
        code = L.tag(folder)
    except UnknownLanguageError:
        with open(f, "rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        source.dropped_languages[folder] = source.dropped_languages.get(folder, 0) + lines
        return False
    return source.languages is None or source.languages.keeps(code)


def _none(*fields: str) -> dict[str, None]:
    return {f: None for f in fields}


def aya_dataset_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """CohereForAI/aya_dataset: inputs, targets, language (a name), language_code (ISO 639-3), annotation_type,
    user_id. Kind human; `task` is the annotation type (original-annotations / re-annotations); train split only
    (its test split is the aya_human_annotated evaluation set)."""
    mapping: Mapping = {"inputs": "inputs", "targets": "targets", "language": "language_code",
                        "task": "annotation_type", **_none("script", "source", "dataset", "template", "kind",
                                                             "license", "split", "id")}
    return hub_reader(spec, recipe, default_id="CohereForAI/aya_dataset", mapping=mapping, kind="human",
                      license="Apache-2.0", dataset=lambda _c: "aya_dataset")


def _collection_kind(config: str) -> str:
    if config.startswith("translated_"):
        return "translated"
    if config == "aya_dataset":
        return "human"
    return "templated"


def aya_collection_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """CohereForAI/aya_collection: templated_* configs (kind templated) and translated_* (kind translated).

    Both column sets: v1 (id, inputs, targets, dataset_name, sub_dataset_name, task_type, template_id,
    language_code, split, script) and the later one (inputs, targets, info_uuid, id, dataset_name,
    sub_dataset_name, task_type, template_id, language, script, split). `dataset` is the config name
    (e.g. translated_dolly, so caps and weights address configs); `task` is task_type; `template` is template_id.
    """
    mapping: Mapping = {"inputs": "inputs", "targets": "targets", "language": ["language_code", "language"],
                        "script": ["script"], "task": ["task_type"], "template": ["template_id"],
                        **_none("source", "dataset", "kind", "license", "split", "id")}
    return hub_reader(spec, recipe, default_id="CohereForAI/aya_collection", mapping=mapping, kind=_collection_kind,
                      license="Apache-2.0")


def _xp3x_dataset(row: dict[str, Any], _config: str) -> dict[str, Any]:
    name, sub = row.get("dataset") or "", row.pop("config", None)
    if sub and sub not in ("default", "None"):
        row["dataset"] = f"{name}/{sub}" if name else str(sub)
    return row


def xp3x_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """CohereForAI/xP3x: per-language folders (FLORES codes, e.g. jpn_Jpan) of JSONL files
    `xp3_{dataset}_{config}_{split}_{template}.jsonl` with columns inputs, targets, language, split, template,
    dataset, config. `dataset` becomes "<dataset>/<config>"; every row is a training row (split train) whatever
    its source split; folders of languages outside the 101 are skipped unread (their lines counted as dropped).
    `configs:` selects language folders."""
    mapping: Mapping = {"inputs": "inputs", "targets": "targets", "language": "language", "template": ["template"],
                        "dataset": ["dataset"], **_none("script", "source", "task", "kind", "license", "split", "id")}
    return hub_reader(spec, recipe, default_id="CohereForAI/xP3x", mapping=mapping, kind="templated",
                      license="Apache-2.0", default_splits=SPLIT_NAMES, dataset=lambda _c: "xp3x",
                      hook=_xp3x_dataset, keep=("config",), folder_language=True)


def _eval_kind(config: str) -> str:
    return "translated" if config == "dolly_machine_translated" else "human"


def _eval_id(row: dict[str, Any], config: str) -> dict[str, Any]:
    if row.get("id") not in (None, ""):
        row["id"] = f"{config}:{row['id']}"
    return row


def aya_evaluation_suite_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """CohereForAI/aya_evaluation_suite: configs aya_human_annotated (kind human), dolly_machine_translated
    (translated) and dolly_human_edited (human); columns id, inputs, targets, language, script; test split
    (rows carry split "test"; ids are "<config>:<id>")."""
    mapping: Mapping = {"inputs": "inputs", "targets": "targets", "language": "language", "script": ["script"],
                        "id": ["id"], **_none("source", "dataset", "task", "template", "kind", "license", "split")}
    return hub_reader(spec, recipe, default_id="CohereForAI/aya_evaluation_suite", mapping=mapping, kind=_eval_kind,
                      license="Apache-2.0", default_splits=("test",), split_value="test", hook=_eval_id)


def data_provenance_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """DataProvenanceInitiative/Commercially-Verified-Licenses. Its schema is UNCONFIRMED (aya-recipe.md section 7);
    assumed: `inputs`, `targets`, the originating collection in `dataset` (or `dataset_name` / `source`), and
    optional `language` (default eng), `license`, `task` / `task_type` and `template` columns. Kind templated.
    Override any of these with `columns:`."""
    mapping: Mapping = {"inputs": "inputs", "targets": "targets", "language": ["language", "language_code"],
                        "dataset": ["dataset", "dataset_name", "source"], "license": ["license"],
                        "task": ["task", "task_type"], "template": ["template", "template_id"],
                        **_none("script", "source", "kind", "split", "id")}
    return hub_reader(spec, recipe, default_id="DataProvenanceInitiative/Commercially-Verified-Licenses",
                      mapping=mapping, kind="templated", license="commercially-verified (per dataset)",
                      dataset=lambda c: "data_provenance" if c == "default" else c,
                      language=str(spec.options.get("language", "eng")))
