"""Evaluation metrics: accuracy, chrF++, spBLEU, script-aware ROUGE-L, MLQA-style QA F1 / EM, script share, numeric
match (the final number in any script's digits); their bootstrap CIs come from ayakit.stats.

Every metric works in two steps so that confidence intervals are cheap and exact: `item_stats` turns one
prediction into a vector of sufficient statistics, `aggregate` turns a matrix of them into the score (for
corpus metrics such as chrF++ the statistics are summed, exactly as sacrebleu does). Scores are on a 0-100 scale.
"""

from __future__ import annotations

import functools
import os
import re
import string
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from ayakit import languages as L
from ayakit import scripts


@functools.lru_cache(maxsize=1)
def _rules() -> dict:
    return yaml.safe_load(resources.files("ayakit.eval").joinpath("metric_rules.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _punct() -> frozenset[str]:
    chars = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}
    return frozenset(chars | set(string.punctuation))


@functools.lru_cache(maxsize=1024)
def rule_code(language: str) -> str:
    """The key of metric_rules.yaml for a code or tag: its ISO 639-3 language (zho-Hant -> zho), else the Aya-101
    row it rolls up into (yue-Hant -> zho, arb-Arab -> ara)."""
    base = language.split("-")[0].split("_")[0]
    rules = _rules()
    if not base or base in rules["articles"]:
        return base
    try:
        return L.rollup(language)
    except (ValueError, LookupError):
        return base


def char_level(language: str) -> bool:
    """True for languages written without spaces between words (ayakit.languages.unspaced: zho, jpn, tha, ...)."""
    if not language:
        return False
    try:
        return L.unspaced(language)
    except ValueError:  # not a language code: words are split on spaces
        return False


def mixed_segmentation(text: str) -> list[str]:
    """MLQA's segmentation: characters of unspaced scripts (ayakit.scripts.is_unspaced_char) and punctuation are
    tokens, the rest splits on spaces."""
    out: list[str] = []
    buf = ""
    punct = _punct()
    for ch in text:
        if scripts.is_unspaced_char(ch) or ch in punct:
            out.extend(buf.split())
            buf = ""
            out.append(ch)
        else:
            buf += ch
    out.extend(buf.split())
    return out


def tokenize(text: str, language: str) -> list[str]:
    """Script-aware word tokens for ROUGE: lower-cased words; per character where words are not space-separated."""
    text = text.lower()
    if char_level(language):
        return [ch for ch in text if not ch.isspace() and ch not in _punct()]
    return re.findall(scripts.word_run(), text)


# --- QA (SQuAD / MLQA) ------------------------------------------------------------------------------------


def normalize_answer(text: str, language: str) -> str:
    """MLQA's answer normalisation: lower case, drop punctuation, drop the language's articles, fix spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _punct())
    pattern = _rules()["articles"].get(rule_code(language)) if language else None
    if pattern:
        text = re.sub(pattern, " ", text)
    tokens = mixed_segmentation(text) if char_level(language) else text.split()
    return " ".join(t for t in tokens if t.strip())


def qa_exact(prediction: str, gold: str, language: str) -> float:
    """1.0 when the normalised answers are equal."""
    return float(normalize_answer(prediction, language) == normalize_answer(gold, language))


def qa_f1(prediction: str, gold: str, language: str) -> float:
    """Token-overlap F1 between normalised answers (SQuAD's definition, MLQA's tokenisation)."""
    pred = normalize_answer(prediction, language).split()
    ref = normalize_answer(gold, language).split()
    if not pred or not ref:
        return float(pred == ref)
    common: dict[str, int] = {}
    counts = {t: ref.count(t) for t in set(ref)}
    same = 0
    for t in pred:
        if counts.get(t, 0) > common.get(t, 0):
            common[t] = common.get(t, 0) + 1
            same += 1
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


# --- ROUGE-L ------------------------------------------------------------------------------------------------


def _lcs_table(a: Sequence[str], b: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        row, prev = table[i], table[i - 1]
        for j, y in enumerate(b, 1):
            row[j] = prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1])
    return table


def _lcs_indices(ref: Sequence[str], cand: Sequence[str]) -> set[int]:
    table = _lcs_table(ref, cand)
    i, j, hits = len(ref), len(cand), set()
    while i > 0 and j > 0:
        if ref[i - 1] == cand[j - 1]:
            hits.add(i - 1)
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return hits


def _f(hits: float, n_pred: int, n_ref: int) -> float:
    if hits == 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    p, r = hits / n_pred, hits / n_ref
    return 2 * p * r / (p + r)


def rouge_l(prediction: str, reference: str, language: str) -> float:
    """ROUGE-L F-measure (0-1) over script-aware tokens."""
    pred, ref = tokenize(prediction, language), tokenize(reference, language)
    hits = _lcs_table(ref, pred)[-1][-1] if pred and ref else 0
    return _f(hits, len(pred), len(ref))


def _sentences(text: str) -> list[str]:
    return [s for s in text.split("\n") if s.strip()]


def rouge_lsum(prediction: str, reference: str, language: str) -> float:
    """ROUGE-Lsum F-measure (0-1): summary-level union LCS over newline-separated sentences (rouge_score's rule)."""
    preds = [tokenize(s, language) for s in _sentences(prediction)]
    refs = [tokenize(s, language) for s in _sentences(reference)]
    n_pred, n_ref = sum(map(len, preds)), sum(map(len, refs))
    if not n_pred or not n_ref:
        return 0.0
    pred_counts: dict[str, int] = {}
    ref_counts: dict[str, int] = {}
    for s in preds:
        for t in s:
            pred_counts[t] = pred_counts.get(t, 0) + 1
    for s in refs:
        for t in s:
            ref_counts[t] = ref_counts.get(t, 0) + 1
    hits = 0
    for r in refs:
        union: set[int] = set()
        for c in preds:
            union |= _lcs_indices(r, c)
        for idx in sorted(union):
            t = r[idx]
            if pred_counts.get(t, 0) > 0 and ref_counts.get(t, 0) > 0:
                hits += 1
                pred_counts[t] -= 1
                ref_counts[t] -= 1
    return _f(hits, n_pred, n_ref)


# --- spBLEU ---------------------------------------------------------------------------------------------------


def flores_spm_path() -> Path | None:
    """The FLORES-200 SentencePiece model, if it is on this machine ($AYAKIT_FLORES200_SPM or sacrebleu's cache)."""
    from sacrebleu.utils import SACREBLEU_DIR

    for candidate in (os.environ.get("AYAKIT_FLORES200_SPM"),
                      os.path.join(SACREBLEU_DIR, "models", "flores200sacrebleuspm")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def spbleu_unavailable_reason() -> str | None:
    """Why spBLEU cannot be computed here, or None when it can."""
    if flores_spm_path() is None:
        return ("spBLEU not computed: the FLORES-200 SentencePiece model is not on this machine "
                "(set AYAKIT_FLORES200_SPM or place it at ~/.sacrebleu/models/flores200sacrebleuspm)")
    return None


@functools.lru_cache(maxsize=1)
def _spm():
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(flores_spm_path()))


# --- the Metric protocol ------------------------------------------------------------------------------------------


class Metric(Protocol):
    """A metric: per-item sufficient statistics, and a score (0-100) from a matrix of them."""

    name: str

    def item_stats(self, prediction: str, references: list[str], language: str) -> list[float]:
        """Sufficient statistics of one prediction."""
        ...

    def aggregate(self, stats: np.ndarray) -> float:
        """The score of a set of items from their statistics (rows)."""
        ...


@dataclass
class MeanMetric:
    """A metric that is the mean of a per-item value (accuracy, F1, EM, ROUGE): best over references."""

    name: str
    fn: Callable[[str, str, str], float]

    def item_stats(self, prediction: str, references: list[str], language: str) -> list[float]:
        """The item's value, the best over its references."""
        return [max((self.fn(prediction, r, language) for r in references), default=0.0)]

    def aggregate(self, stats: np.ndarray) -> float:
        """The mean, times 100."""
        return float(np.mean(stats[:, 0]) * 100) if len(stats) else float("nan")


@dataclass
class SacreMetric:
    """A sacrebleu corpus metric (chrF++, BLEU): statistics per sentence, summed for the corpus score."""

    name: str
    factory: Callable[[], object]
    preprocess: Callable[[str], str] | None = None

    @functools.cached_property
    def _metric(self):
        return self.factory()

    def item_stats(self, prediction: str, references: list[str], language: str) -> list[float]:
        """sacrebleu's sentence statistics (one reference stream per reference)."""
        prep = self.preprocess or (lambda s: s)
        m = self._metric
        stats = m._extract_corpus_statistics([prep(prediction)], [[prep(r)] for r in references])
        return [float(x) for x in stats[0]]

    def aggregate(self, stats: np.ndarray) -> float:
        """sacrebleu's corpus score from the summed statistics."""
        if not len(stats):
            return float("nan")
        summed = np.rint(stats.sum(axis=0)).astype(np.int64).tolist()
        return float(self._metric._compute_score_from_stats(summed).score)


def _accuracy(prediction: str, gold: str, language: str) -> float:
    return float(prediction == gold)


def _script_share(prediction: str, gold: str, language: str) -> float:
    """Share of the prediction's letters written in the reference's main script (0 for an answer without letters)."""
    from ayakit.data.sources.facts import text_script

    want = text_script(gold)
    letters = [ch for ch in prediction if ch.isalpha()]
    if not want or not letters:
        return 0.0
    return sum(text_script(ch) == want for ch in letters) / len(letters)


_NUMBER = re.compile(r"[-+]?\d+(?:[\u00a0\u202f' ]\d{3}(?!\d)|[.,]\d+)*")


def _ascii_digits(text: str) -> str:
    """Every script's decimal digits as ASCII (Arabic-Indic, Devanagari, Bengali, Thai, fullwidth, ...), the
    Arabic decimal / thousands separators and the minus sign as '.', ',' and '-'."""
    out = []
    for ch in text:
        d = unicodedata.decimal(ch, None)
        out.append(str(d) if d is not None else {"\u066b": ".", "\u066c": ",", "\u2212": "-", "\uff0e": ".",
                                                  "\uff0c": ",", "\uff0d": "-", "\u060c": ","}.get(ch, ch))
    return "".join(out)


def final_number(text: str) -> float | None:
    """The last number of a text in any script's digits. Separators: both '.' and ',' present -> the last one is the
    decimal mark; one of them repeated -> thousands; a single ',' before exactly three digits -> thousands; any
    other single '.' or ',' -> decimal ('3,5' is 3.5, '1,234' is 1234, '1 234,5' is 1234.5)."""
    found = _NUMBER.findall(_ascii_digits(text))
    if not found:
        return None
    raw = found[-1]
    sign = -1.0 if raw.startswith("-") else 1.0
    body = re.sub(r"[\u00a0\u202f' +-]", "", raw)
    marks = [ch for ch in body if ch in ".,"]
    decimal = None
    if len(set(marks)) == 2:
        decimal = marks[-1]
    elif len(marks) == 1 and not (marks[0] == "," and re.search(r",\d{3}$", body)):
        decimal = marks[0]
    if decimal:
        whole, _, frac = body.rpartition(decimal)
        return sign * float(f"{re.sub(r'[.,]', '', whole) or 0}.{frac}")
    return sign * float(re.sub(r"[.,]", "", body))


def numeric_match(prediction: str, gold: str, language: str) -> float:
    """1.0 when the last number of the prediction equals the gold answer's (in any script's digits)."""
    want, got = final_number(gold), final_number(prediction)
    return float(want is not None and got is not None and abs(want - got) <= 1e-9 * max(1.0, abs(want)))


def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2)


def _bleu_none():
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none")


def _spm_pieces(text: str) -> str:
    return " ".join(_spm().encode(text, out_type=str))


def _rouge_l(p: str, r: str, lang: str) -> float:
    return rouge_l(p, r, lang)


def _rouge_lsum(p: str, r: str, lang: str) -> float:
    return rouge_lsum(p, r, lang)


METRICS: dict[str, Callable[[], Metric]] = {
    "accuracy": lambda: MeanMetric("accuracy", _accuracy),
    "exact_match": lambda: MeanMetric("exact_match", qa_exact),
    "f1": lambda: MeanMetric("f1", qa_f1),
    "rougeL": lambda: MeanMetric("rougeL", _rouge_l),
    "rougeLsum": lambda: MeanMetric("rougeLsum", _rouge_lsum),
    "chrf++": lambda: SacreMetric("chrf++", _chrf),
    "script_share": lambda: MeanMetric("script_share", _script_share),
    "numeric_match": lambda: MeanMetric("numeric_match", numeric_match),
    "spbleu": lambda: SacreMetric("spbleu", _bleu_none, _spm_pieces),
}


def get_metric(name: str) -> Metric:
    """A metric by name; spBLEU raises ValueError (with the reason) when the FLORES-200 model is absent."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    if name == "spbleu" and (why := spbleu_unavailable_reason()):
        raise ValueError(why)
    return METRICS[name]()


# --- convenience corpus functions (also what the tests compare with sacrebleu) -------------------------------


def chrf_pp(predictions: list[str], references: list[str]) -> float:
    """Corpus chrF++ (sacrebleu, word order 2) of predictions against one reference each."""
    m = get_metric("chrf++")
    return m.aggregate(np.array([m.item_stats(p, [r], "") for p, r in zip(predictions, references)]))


def spbleu(predictions: list[str], references: list[str]) -> float:
    """Corpus spBLEU (FLORES-200 SentencePiece, then BLEU); ValueError saying why when it cannot be computed."""
    m = get_metric("spbleu")
    return m.aggregate(np.array([m.item_stats(p, [r], "") for p, r in zip(predictions, references)]))
