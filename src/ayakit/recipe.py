"""The recipe: one YAML file, validated by pydantic, for every stage; `key=value` overrides."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


DEFAULT_SEED = 1234
BASE_KEY = "base"  # a recipe that extends another: `base: demo.yaml` (relative to the recipe file) plus overrides


class RecipeError(ValueError):
    """A recipe that cannot be loaded; the message names the file and the key."""


class Strict(BaseModel):
    """A recipe section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _check_languages(codes: list[str] | None, *, allow_all: bool = False, allow_sets: bool = True) -> list[str] | None:
    """Every entry must be a language code (any ISO 639-3 language, any variety) or a set name (aya-101); unknown
    ones name the closest."""
    from ayakit.languages import SETS, UnknownLanguageError, parse

    if codes is None:
        return None
    if not codes:
        raise ValueError("an empty list selects nothing: name at least one language, or leave the key out")
    for code in codes:
        if allow_all and code == "all" or allow_sets and code in SETS:
            continue
        try:
            parse(code)
        except UnknownLanguageError as exc:
            raise ValueError(str(exc)) from None
    return codes


class SourceSpec(Strict):
    """One named source of examples and its share of the budget."""

    name: str
    type: str  # a reader name: embedded, files, aya_dataset, aya_collection, xp3x, flores, tatoeba, ...
    weight: float = Field(1.0, ge=0)
    path: str | None = None  # local file, folder or glob; for hub readers a local copy in the hub layout
    hub_id: str | None = None  # Hugging Face dataset id, used when path is not given
    configs: list[str] = []  # hub configs (aya_collection: templated_*, translated_*)
    columns: dict[str, str] = {}  # Example field -> column name in the file
    kind: str | None = None  # override the reader's kind (human / templated / translated / synthetic / safety)
    license: str | None = None
    languages: list[str] | None = None
    families: list[str] | None = None  # embedded source: task families to use
    dataset_weights: dict[str, float] = {}  # within-source weights; default: proportional to size
    options: dict[str, Any] = {}  # reader-specific settings

    _languages = field_validator("languages")(classmethod(lambda cls, v: _check_languages(v)))


class FilterConfig(Strict):
    """What the filter stage removes."""

    langid: bool = True
    langid_min_chars: int = Field(20, ge=0)  # shorter texts are not language-checked (counted as unchecked)
    min_input_chars: int = Field(1, ge=0)
    max_input_chars: int = Field(20000, ge=1)
    min_target_chars: int = Field(1, ge=0)
    max_target_chars: int = Field(20000, ge=1)
    licenses: list[str] | None = None  # allow-list; None keeps every licence
    heldout_datasets: list[str] = ["xcopa", "xnli", "xstory_cloze", "xwinograd", "hellaswag", "copa", "wsc",
                                   "winogrande", "anli", "rte", "cb"]
    heldout_tasks: list[str] = ["nli", "coreference", "sentence_completion", "textual_entailment",
                                "sentence_comparison"]
    templates_keep: list[str] | None = None
    templates_drop: list[str] = []
    dedup: Literal["none", "exact", "minhash"] = "exact"
    minhash_ngrams: int = Field(5, gt=0)  # word n-gram size of the MinHash shingles


class CapsConfig(Strict):
    """Caps applied before mixing (the paper: 20k per Data Provenance dataset, 3k per translated dataset and language)."""

    per_dataset: dict[str, int] = {}  # source name -> cap per dataset of that source
    per_dataset_language: dict[str, int] = {}  # source name -> cap per (dataset, language)
    exempt_datasets: list[str] = []  # datasets no cap applies to (the paper: Dolly)


class DataConfig(Strict):
    """Sources, filters and the mixture budget."""

    budget: int = Field(10000, gt=0)
    sources: list[SourceSpec]
    languages: list[str] | None = None  # None: every language; else these varieties (`zho` takes zho-Hans and zho-Hant)
    temperature: float | None = Field(None, gt=0)  # mT5-style language sampling exponent alpha
    filters: FilterConfig = FilterConfig()
    caps: CapsConfig = CapsConfig()
    shard_size: int = Field(50000, gt=0)
    executor: Literal["local", "slurm", "ray"] = "local"
    tasks: int = Field(2, gt=0)
    workers: int = Field(2, gt=0)
    on_error: Literal["raise", "skip"] = "raise"
    batch_size: int = Field(10000, gt=0)  # rows per pyarrow batch read from a source
    executor_options: dict[str, Any] = {}  # extra keyword arguments of the datatrove executor (slurm: partition, time)

    _languages = field_validator("languages")(classmethod(lambda cls, v: _check_languages(v)))

    @field_validator("sources")
    @classmethod
    def _weights(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        if not sources:
            raise ValueError("data.sources is empty: name at least one source")
        if sum(s.weight for s in sources) <= 0:
            raise ValueError("data.sources: all weights are zero")
        names = [s.name for s in sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"data.sources: duplicate source names {sorted(dupes)}")
        return sources


class TokenizerConfig(Strict):
    """A SentencePiece tokenizer trained on the mixture, or the pretrained model's."""

    pretrained: str | None = None  # path or hub id; None trains one when the model is built from scratch
    vocab_size: int = Field(8000, gt=0)
    model_type: Literal["unigram", "bpe"] = "unigram"
    character_coverage: float = Field(0.9999, gt=0, le=1)
    max_sentences: int = Field(200000, gt=0)
    max_piece_length: int = Field(16, gt=0, le=512)  # longest piece in characters (▁ counts); 16: SentencePiece's default


class ModelConfig(Strict):
    """A size preset built from scratch, or any HF model id or local path."""

    arch: Literal["seq2seq", "causal"] = "seq2seq"
    preset: str | None = "tiny"
    name_or_path: str | None = None
    overrides: dict[str, Any] = {}  # config fields on top of the preset


class TrainConfig(Strict):
    """Finetuning settings (the paper: Adafactor 3e-4, batch 256, 1024/1024, packing, per-sequence loss)."""

    max_source_length: int = Field(1024, gt=1)
    max_target_length: int = Field(1024, gt=1)
    packing: bool = True
    pack_source_length: int | None = Field(None, gt=1)  # packed encoder row (causal: whole row); None: max_source_length
    pack_target_length: int | None = Field(None, gt=1)  # packed decoder row; None: sized from the mixture's length ratio
    batch_size: int = Field(32, gt=0)  # rows per step per process (packed rows when packing)
    grad_accum: int = Field(1, gt=0)
    steps: int | None = Field(None, gt=0)
    epochs: float | None = Field(1.0, gt=0)
    max_minutes: float | None = Field(None, gt=0)
    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    clip: float | None = Field(1.0, gt=0)
    loss_normalization: Literal["sequence", "token"] = "sequence"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = Field(200, gt=0)
    keep_checkpoints: int = Field(2, gt=0)
    eval_every: int = Field(100, gt=0)
    validation_fraction: float = Field(0.02, ge=0, lt=1)
    validation_max_examples: int = Field(1000, gt=0)
    log_every: int = Field(10, gt=0)
    compile: bool = False
    threads: int | None = Field(None, gt=0)
    # shard parameters, gradients and optimiser state over the processes (FSDP2); an accelerate FSDP config does too
    fsdp: bool = False


class EvalConfig(Strict):
    """Which tasks to run and how."""

    suite: str | None = "aya-mini"
    tasks: list[str] | None = None
    languages: list[str] | None = None
    prompts: int = Field(5, gt=0)  # the paper reports the median over 5 prompts
    max_items: int | None = Field(None, gt=0)  # per (task, language)
    num_fewshot: int = Field(0, ge=0)
    batch_size: int = Field(32, gt=0)
    normalization: Literal["none", "token", "byte"] = "none"
    max_new_tokens: int | None = Field(None, gt=0)  # caps every generation task; None keeps each task's own
    baseline: bool = True  # evaluate the untrained model too
    # ctranslate2: generation through CTranslate2 (scoring stays on hf); the names are ayakit.models.ENGINES'
    engine: Literal["hf", "ctranslate2"] = "hf"
    compute_type: Literal["float32", "int8", "float16", "int8_float16"] | None = None  # ctranslate2 only

    @field_validator("compute_type")
    @classmethod
    def _compute_type_needs_ct2(cls, value: str | None, info: Any) -> str | None:
        """A compute type belongs to the ctranslate2 engine."""
        if value is not None and info.data.get("engine", "hf") == "hf":
            raise ValueError(f"compute_type {value!r} needs engine: ctranslate2 (the hf engine has none)")
        return value

    _languages = field_validator("languages")(
        classmethod(lambda cls, v: _check_languages(v, allow_all=True, allow_sets=False)))

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, value: str | None) -> str | None:
        """Suite names are checked when the recipe loads, not after the data and training stages."""
        from ayakit.eval.tasks import check_names  # the eval stage owns its suite and task names

        check_names(value, None)
        return value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str] | None) -> list[str] | None:
        """Task names (built-in, embedded) and task files are checked when the recipe loads."""
        from ayakit.eval.tasks import check_names

        check_names(None, value)
        return value


class Sampling(Strict):
    """Open-ended sampling of the safety stages (harm, toxicity, distillation): the Aya paper's temperature 0.9 and
    top-p 0.8; the seed is the recipe's unless given. The one place these defaults are written."""

    temperature: float = Field(0.9, ge=0)  # 0: greedy
    top_p: float = Field(0.8, gt=0, le=1)
    seed: int = DEFAULT_SEED


class HarmConfig(Strict):
    """Harmful rate on held-out XSafety prompts per language, and over-refusal on benign ones."""

    enabled: bool = True
    per_language: int = Field(40, gt=0)  # held-out harmful prompts per language (sampled across categories)
    benign_per_language: int = Field(20, ge=0)  # benign prompts per language (over-refusal)
    max_new_tokens: int = Field(64, gt=0)
    classifier: Literal["refusal", "judge"] = "refusal"  # refusal: the offline refusal-phrase detector
    judge: str | None = None  # classifier judge: an OpenAI-compatible URL ('http://host:port/v1#model') or a model dir
    judge_model: str | None = None  # the model name to ask at the judge URL

    @model_validator(mode="after")
    def _judge(self) -> HarmConfig:
        if self.classifier == "judge" and not self.judge:
            raise ValueError("safety.harm.classifier 'judge' needs safety.harm.judge (an OpenAI-compatible URL or "
                             "a local model directory)")
        return self


class ToxicityConfig(Strict):
    """Toxicity of open-ended continuations (RealToxicityPrompts protocol; the paper: k = 25 samples)."""

    enabled: bool = True
    prompt_set: Literal["flores", "identity", "holistic"] = "flores"
    samples: int = Field(4, gt=0)  # per prompt; 4 keeps CPU runs short
    per_language: int = Field(20, gt=0)  # prompts per language (flores, embedded); per axis for holistic
    languages: list[str] | None = None  # None: every language the prompt set and the scorer have
    max_new_tokens: int = Field(32, gt=0)
    scorer: Literal["lexicon", "perspective", "classifier"] = "lexicon"
    classifier: str | None = None  # scorer classifier: a sequence-classification checkpoint directory
    filter_toxic_prompts: bool = True  # the paper drops prompts that are already toxic


class DistillConfig(Strict):
    """Safety context distillation: a teacher answers the TRAIN split with the safety preamble; the filtered answers
    (without the preamble) become a source of kind safety in a second training of the same recipe."""

    enabled: bool = False
    teacher: str | None = None  # a model dir or OpenAI-compatible URL; None: this run's trained model
    share: float = Field(0.03, gt=0, lt=1)  # requested share of the mixture (the paper: 3%)
    per_language: int | None = Field(None, gt=0)  # cap on training prompts per language (None: all)
    max_new_tokens: int = Field(128, gt=0)
    min_chars: int = Field(20, ge=0)  # the paper's filters: answers of 20 to 1000 characters whose longest repeated
    max_chars: int = Field(1000, gt=0)  # substring is at most 1 / repeat_ratio of the answer
    repeat_ratio: float = Field(2.1, gt=1)
    require_refusal: bool = False  # also drop answers the refusal detector does not call refusals
    source_name: str = "safety"
    translate_to: list[str] = []  # more languages: English TRAIN prompts translated with translation_model
    translation_model: str | None = None


class SafetyConfig(Strict):
    """Measure harm and toxicity of the trained model; optionally distill, retrain and measure again."""

    enabled: bool = False
    languages: list[str] | None = None  # XSafety languages evaluated and distilled (None: all ten)
    categories: list[str] | None = None  # harmful XSafety categories (None: the paper's six)
    test_fraction: float | None = Field(None, gt=0, lt=1)  # held out per category; None: XSafety's 0.2 (40 of 200)
    sampling: Sampling = Field(default_factory=Sampling)
    batch_size: int = Field(32, gt=0)  # generation batch size
    harm: HarmConfig = Field(default_factory=HarmConfig)
    toxicity: ToxicityConfig = Field(default_factory=ToxicityConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)


class ReportConfig(Strict):
    """The report stage."""

    title: str | None = None
    top_languages: int = Field(5, gt=0)


class Recipe(Strict):
    """Every stage's settings in one place."""

    name: str
    description: str = ""
    seed: int = DEFAULT_SEED
    data_dir: str | None = None  # public data (../shared/data layout); default: $AYAKIT_DATA_DIR
    data: DataConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    report: ReportConfig = ReportConfig()
    safety: SafetyConfig = Field(default_factory=SafetyConfig)

    @model_validator(mode="after")
    def _safety_seed(self) -> Recipe:
        if "seed" not in self.safety.sampling.model_fields_set:  # sample with the recipe's seed unless told
            self.safety.sampling.seed = self.seed
        return self

    def resolved_data_dir(self) -> Path | None:
        """The public data directory: the recipe's, else $AYAKIT_DATA_DIR, else None."""
        value = self.data_dir or os.environ.get("AYAKIT_DATA_DIR")
        return Path(value).expanduser() if value else None

    def dump(self) -> str:
        """The resolved recipe as YAML, every default filled in."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=1e-3' -> (['train', 'lr'], 0.001); the value is read as YAML."""
    if "=" not in text:
        raise RecipeError(f"override {text!r} is not key=value")
    key, value = text.split("=", 1)
    if not key:
        raise RecipeError(f"override {text!r} has no key")
    return key.split("."), yaml.safe_load(value) if value != "" else ""


def apply_override(data: dict, path: list[str], value: Any) -> None:
    """Set one dotted path in a plain dict; list items are addressed by index or by their `name`."""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        node = _child(node, part, path[: i + 1], create=True)
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(node, last, path)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"override {'.'.join(path)}: {'.'.join(path[:-1])} is not a section")


def _child(node: Any, part: str, so_far: list[str], create: bool) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, so_far)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            node[part] = {}
        return node[part]
    raise RecipeError(f"override {'.'.join(so_far)}: not a section")


def _list_index(items: list, part: str, path: list[str]) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if -len(items) <= idx < len(items):
            return idx
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    names = [item.get("name") for item in items if isinstance(item, dict)]
    raise RecipeError(f"override {'.'.join(path)}: no item {part!r} (items: {names})")


def deep_merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`: mappings merge key by key, anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_recipe_data(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A recipe file as a plain dict, its `base:` chain resolved (each base relative to the file naming it,
    deep-merged under it); a cycle is an error that shows the chain."""
    path = Path(path)
    if not path.is_file():
        via = f" (base of {_chain[-1]})" if _chain else ""
        raise RecipeError(f"recipe {path} does not exist{via}")
    real = path.resolve()
    if real in _chain:
        raise RecipeError("recipe base cycle: " + " -> ".join(str(p) for p in (*_chain, real)))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise RecipeError(f"{path}: {BASE_KEY!r} is the path of another recipe (relative to {path.parent})")
    return deep_merge(read_recipe_data(path.parent / base, (*_chain, real)), data)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read (resolving `base:`), override and validate a recipe; every problem is one RecipeError naming the file
    and key."""
    data = read_recipe_data(path)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return recipe_from_dict(data, where=str(path))


def recipe_from_dict(data: dict, where: str = "recipe") -> Recipe:
    """Validate a plain dict as a Recipe."""
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(f"{where}: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    msgs = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            hint = _suggest(err["loc"])
            msgs.append(f"unknown key {loc!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        elif err["type"] == "missing":
            msgs.append(f"missing key {loc!r}")
        elif err["type"] == "value_error":
            msgs.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        else:
            msgs.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(msgs)


def _suggest(loc: tuple) -> str | None:
    model: Any = Recipe
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            inner = [a for c in candidates for a in getattr(c, "__args__", ())]
            model = next((c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    names = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return close[0] if close else None
