"""Translators for `ayakit translate`: the Translator protocol and HFTranslator (any HF model dir, driven by
FLORES-200 codes when its vocabulary has them, else by the translation prompt of translate/rules.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ayakit import languages as L
from ayakit.data.sentences import rules
from ayakit.errors import DataError


class Translator(Protocol):
    """Translates sentences; `name`, `fingerprint` (of its weights) and `mode_for(target)` go into the audit trail."""

    name: str
    fingerprint: str

    def mode_for(self, target: str) -> str:
        """How this translator reaches a target language (e.g. "nllb" or "prompt")."""
        ...

    def translate(self, texts: list[str], source: str, target: str) -> list[tuple[str, bool]]:
        """(translation, contains an unknown token) per text."""
        ...


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace {name} placeholders in one pass (placeholders inside the values stay as they are)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass
class HFTranslator:
    """Any HF model dir: FLORES language codes when the vocabulary has them ("nllb"), else a prompt ("prompt").

    Prompts are tokenised as in training (ayakit.models.encoding.encode_source), except that a tokenizer with
    `src_lang` (NLLB's) adds its own source-language code; decoding is greedy, batched. engine "ctranslate2" runs
    the model through CTranslate2 (ayakit.models.ct2) in `compute_type`; its fingerprint then names the engine.
    """

    model: str
    mode: str = "auto"  # auto | nllb | prompt
    max_new_tokens: int = 256
    device: str | None = None
    name: str = ""
    fingerprint: str = ""
    engine: str = "hf"
    compute_type: str | None = None

    def __post_init__(self) -> None:
        from ayakit.models import check_engine, engine_key, load, weights_fingerprint

        if self.mode not in ("auto", "nllb", "prompt"):
            raise DataError(f"translation mode {self.mode!r}: use auto, nllb or prompt")
        check_engine(self.engine, self.compute_type)
        path = Path(self.model)
        if not path.is_dir():
            raise FileNotFoundError(f"translation model {path} is not a model directory")
        self.ct2: Any = None
        if self.engine == "ctranslate2":
            from ayakit.models import read_meta
            from ayakit.models.ct2 import CT2Backend

            self.ct2 = CT2Backend(path, device=self.device, compute_type=self.compute_type)
            self.arch = self.ct2.arch
            self.max_source = read_meta(path).get("max_source_length") or self.ct2.window or 1024
            self.tokenizer = self.ct2.tokenizer
            self.device = self.ct2.device
            self.compute_type = self.ct2.compute_type
        else:
            self.lm = load(path, device=self.device)
            self.arch = self.lm.arch
            self.max_source = self.lm.max_source_length or self.lm.positions or 1024
            self.tokenizer = self.lm.tokenizer
            self.hf = self.lm.model
            self.device = str(self.lm.device)
        self.name = self.name or path.name
        if not self.fingerprint:
            self.fingerprint = weights_fingerprint(path)  # ayakit.models.weights_fingerprint
            if self.engine != "hf":  # outputs may differ from hf's (int8): resume and ids are per engine
                from ayakit.io import fingerprint

                self.fingerprint = fingerprint({"weights": self.fingerprint,
                                                **engine_key(self.engine, self.compute_type)})[:20]

    def flores_token(self, language: str) -> str | None:
        """The language's FLORES-200 code when it is a token of this model's vocabulary."""
        tok = self.tokenizer
        exact = L.tag(language).replace("-", "_")  # zho_Hant for zho-Hant, before the language's other varieties
        for code in dict.fromkeys([exact, *L.info(language).flores]):
            tid = tok.convert_tokens_to_ids(code)
            if tid is not None and tid != tok.unk_token_id:
                return code
        return None

    def mode_for(self, target: str) -> str:
        """nllb when the target's code is in the vocabulary (auto), else prompt."""
        if self.mode != "auto":
            return self.mode
        return "nllb" if self.flores_token(target) else "prompt"

    def translate(self, texts: list[str], source: str, target: str) -> list[tuple[str, bool]]:
        """Greedy translations of sentences in one batch, each with whether it holds an unknown token."""
        from ayakit.models.encoding import encode_source

        tok = self.tokenizer
        kwargs: dict[str, Any] = {}
        if self.mode_for(target) == "nllb":
            src_code, tgt_code = self.flores_token(source), self.flores_token(target)
            if tgt_code is None:
                raise DataError(f"model {self.model}: no FLORES code of {target} in its vocabulary")
            kwargs["forced_bos_token_id"] = tok.convert_tokens_to_ids(tgt_code)
            if hasattr(tok, "src_lang") and src_code:
                tok.src_lang = src_code  # NLLB tokenizers prefix the source code themselves
                ids = [tok(t, truncation=True, max_length=self.max_source)["input_ids"] for t in texts]
            else:
                ids = [encode_source(tok, t, self.arch, self.max_source) for t in texts]
        else:
            names = {"source": L.display_name(source), "target": L.display_name(target)}
            ids = [encode_source(tok, _fill(rules()["prompt"], {**names, "text": t}), self.arch, self.max_source)
                   for t in texts]
        generated = self.generate_ids(ids, **kwargs)
        unk = tok.unk_token_id
        return [(tok.decode(g, skip_special_tokens=True).strip(), unk is not None and unk in g) for g in generated]

    def generate_ids(self, ids: list[list[int]], **kwargs: Any) -> list[list[int]]:
        """Generated token ids per prompt (one greedy batch; padding, the start token and eos removed)."""
        from ayakit.models import GenerationParams
        from ayakit.models.generation import generate

        width = max(len(i) for i in ids)
        params = GenerationParams(max_new_tokens=min(self.max_new_tokens, 2 * width + 16))
        if self.ct2 is not None:
            forced = kwargs.pop("forced_bos_token_id", None)
            self.ct2.batch_size = len(ids)
            return self.ct2.generate_ids(ids, params, prefix=None if forced is None else [forced])
        return generate(self.hf, self.arch, ids, params, pad_id=self.lm.pad_id, batch_size=None,
                        eos_ids={self.tokenizer.eos_token_id} - {None}, **kwargs)
