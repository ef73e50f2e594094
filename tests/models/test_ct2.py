"""The CTranslate2 engine against the HF engine on tiny local models: greedy text, scores, int8, conversion cache."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("ctranslate2", reason="the ctranslate2 engine needs the ctranslate2 package")
sys.path.insert(0, str(Path(__file__).parent))

from ct2_tiny_models import build_llama, build_t5  # noqa: E402

from ayakit.models import BackendError, GenerationParams, load_backend  # noqa: E402
from ayakit.models.ct2 import CT2Backend, check_compute_type, convert, load, vocabulary  # noqa: E402

PROMPTS = ["The man turned on the faucet.", "Die Katze schläft auf dem", "我们去北京大学。", "Answer: yes",
           "La mutation ajoute une nouvelle variation génétique. El niño come una manzana", "x",
           "Мальчик читает книгу. Девочка пишет письмо. " * 3, "الكتاب الأحمر"]
CHOICES = [" yes", " no", "", "Water flowed from the spout.", "書"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ct2-models")
    return {"t5": build_t5(root / "t5"), "t5-untied": build_t5(root / "t5-untied", seed=3, tie=False, extra_vocab=0),
            "llama": build_llama(root / "llama")}


@pytest.fixture(scope="module")
def engines(models: dict[str, Path]) -> dict[str, tuple]:
    """(HF backend, CTranslate2 float32 backend) per model."""
    return {name: (load_backend(str(path), threads=1, batch_size=4),
                   CT2Backend(path, threads=1, batch_size=4, compute_type="float32"))
            for name, path in models.items()}


@pytest.mark.parametrize("name", ["t5", "t5-untied", "llama"])
@pytest.mark.parametrize("max_new", [1, 5, 24])
def test_greedy_text_equals_hf(engines: dict, name: str, max_new: int) -> None:
    hf, ct = engines[name]
    params = GenerationParams(max_new_tokens=max_new)
    expected = hf.generate(PROMPTS, params)
    assert any(expected) or max_new == 1, "the model generated nothing: the comparison would be vacuous"
    assert ct.generate(PROMPTS, params) == expected


@pytest.mark.parametrize("name", ["t5", "t5-untied", "llama"])
@pytest.mark.parametrize("convention", ["ayakit", "lm-eval"])
def test_scores_agree_with_hf(engines: dict, name: str, convention: str) -> None:
    hf, ct = engines[name]
    greedy = hf.generate(PROMPTS, GenerationParams(max_new_tokens=3))  # a continuation that is all argmax
    # trailing spaces in some contexts: the lm-eval convention moves them to the continuation
    requests = [(p, CHOICES + [g]) for p, g in zip(PROMPTS, greedy)] + [(p + " ", CHOICES) for p in PROMPTS[:3]]
    saved = [(b.convention, b.score_eos) for b in (hf, ct)]
    for b in (hf, ct):
        b.convention, b.score_eos = convention, convention == "ayakit"
    try:
        assert ct.encode_requests(requests) == hf.encode_requests(requests)  # the same ids go in
        want, got = hf.loglikelihood(requests), ct.loglikelihood(requests)
    finally:
        for b, (conv, eos) in zip((hf, ct), saved):
            b.convention, b.score_eos = conv, eos
    assert [len(r) for r in got] == [len(r) for r in want]
    flat = [(a, b) for ra, rb in zip(want, got) for a, b in zip(ra, rb)]
    for a, b in flat:
        assert b.n_tokens == a.n_tokens and b.n_bytes == a.n_bytes
        assert abs(a.logprob - b.logprob) < 1e-4, (a, b)
        assert a.is_greedy == b.is_greedy, (a, b)
    assert any(a.n_tokens and not a.is_greedy for a, _ in flat)


@pytest.mark.parametrize("name", ["t5", "llama"])
def test_greedy_continuations_are_recognised(engines: dict, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Continuations made of CTranslate2's argmax tokens are greedy for both engines; a changed last token is not.

    Random tokens rarely survive decode -> encode, so the ids are given to both engines directly."""
    hf, ct = engines[name]
    encoded = []
    for prompt in PROMPTS:
        ctx = ct._context_ids(prompt)
        best = ct._decode([ctx], 4, None, argmax=True)[0]
        wrong = best[:-1] + [(best[-1] + 1) % len(ct.tokenizer)]
        encoded.append((ctx, [best, best[:2], wrong]))
    monkeypatch.setattr(hf, "encode_requests", lambda requests: encoded)
    monkeypatch.setattr(ct, "encode_requests", lambda requests: encoded)
    requests = [(p, ["a", "b", "c"]) for p in PROMPTS]
    want, got = hf.loglikelihood(requests), ct.loglikelihood(requests)
    assert [[x.is_greedy for x in row] for row in want] == [[True, True, False]] * len(PROMPTS)
    assert [[x.is_greedy for x in row] for row in got] == [[True, True, False]] * len(PROMPTS)
    for ra, rb in zip(want, got):
        assert all(abs(x.logprob - y.logprob) < 1e-4 for x, y in zip(ra, rb))


def test_sampling_is_seeded(engines: dict) -> None:
    _, ct = engines["t5"]
    a = ct.generate(PROMPTS, GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=1))
    b = ct.generate(PROMPTS, GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=1))
    c = ct.generate(PROMPTS, GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=2))
    assert a == b and a != c


def test_workers_keep_order_and_seeds(models: dict, engines: dict) -> None:
    """threads=2 runs batches on two CTranslate2 workers: results come back in prompt order, equal to one worker's,
    and seeded sampling (one worker) stays reproducible."""
    _, one = engines["t5"]
    two = CT2Backend(models["t5"], threads=2, batch_size=2, compute_type="float32")
    assert two.model.num_translators == 2
    assert (two._batch(2), two._batch(3), two._batch(40)) == (1, 2, 2)  # one call's prompts spread over both
    prompts = PROMPTS * 3  # 12 batches of 2 spread over the workers
    greedy = GenerationParams(max_new_tokens=8)
    assert two.generate(prompts, greedy) == one.generate(prompts, greedy)
    requests = [(p, CHOICES) for p in prompts]
    assert [x.logprob for r in two.loglikelihood(requests) for x in r] == \
        pytest.approx([x.logprob for r in one.loglikelihood(requests) for x in r], abs=1e-5)
    sample = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=5)
    assert two.generate(prompts, sample) == two.generate(prompts, sample)


def test_stop_strings_cut(engines: dict) -> None:
    _, ct = engines["llama"]
    full = ct.generate(PROMPTS[:1], GenerationParams(max_new_tokens=12))[0]
    assert len(full) > 2
    cut = ct.generate(PROMPTS[:1], GenerationParams(max_new_tokens=12, stop=[full[2:4]]))[0]
    assert cut == full[: full.find(full[2:4])]


@pytest.mark.parametrize("name", ["t5", "llama"])
def test_int8_runs_close_to_float32(models: dict, engines: dict, name: str) -> None:
    _, f32 = engines[name]
    q = CT2Backend(models[name], threads=1, compute_type="int8")
    assert (q.path / "manifest.json").is_file() and q.path != f32.path
    texts = q.generate(PROMPTS, GenerationParams(max_new_tokens=8))
    assert len(texts) == len(PROMPTS) and any(texts)
    requests = [(p, CHOICES) for p in PROMPTS]
    a, b = f32.loglikelihood(requests), q.loglikelihood(requests)
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            assert math.isfinite(y.logprob) and y.n_tokens == x.n_tokens
            assert abs(x.logprob - y.logprob) <= 0.05 * abs(x.logprob) + 0.05  # quantised, not identical


def test_conversion_cache_by_fingerprint(tmp_path: Path) -> None:
    model = build_t5(tmp_path / "m")
    notes: list[str] = []
    first = convert(model, "float32", notify=notes.append)
    assert first.parent == model / ".ct2" and first.name.startswith("float32-")
    assert len(notes) == 1 and "converting" in notes[0]
    assert convert(model, "float32", notify=notes.append) == first and len(notes) == 1  # hit: nothing redone
    (model / "config.json").touch()  # same bytes, new mtime: rehashed, still a hit
    assert convert(model, "float32", notify=notes.append) == first and len(notes) == 1
    build_t5(tmp_path / "other", seed=7)
    shutil.copy(tmp_path / "other" / "model.safetensors", model / "model.safetensors")  # new weights
    second = convert(model, "float32", notify=notes.append)
    assert second != first and (second / "model.bin").is_file()
    assert not first.exists(), "the conversion of the old weights is removed"
    assert "converting" in notes[1] and "removed 1 conversion" in notes[2] and first.name in notes[2]
    assert not [p for p in second.parent.iterdir() if p.name.startswith(".tmp")]
    hf = load_backend(str(model), threads=1)
    ct = CT2Backend(model, threads=1, notify=notes.append)
    assert ct.path == second and len(notes) == 3
    params = GenerationParams(max_new_tokens=6)
    assert ct.generate(PROMPTS, params) == hf.generate(PROMPTS, params)  # the new weights are what runs


def test_compute_type_errors() -> None:
    with pytest.raises(BackendError, match="is a cuda compute type.*float32, int8"):
        check_compute_type("cpu", "float16")
    with pytest.raises(BackendError, match="expected one of float32, int8"):
        check_compute_type("cpu", "fp8")
    with pytest.raises(BackendError, match="unknown device"):
        check_compute_type("tpu", None)
    assert check_compute_type("cpu", None) == "float32"


def test_device_errors(models: dict) -> None:
    with pytest.raises(BackendError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
        CT2Backend(models["t5"], device="cuda:x")
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        with pytest.raises(BackendError, match="no CUDA device"):
            CT2Backend(models["t5"], device="cuda:0")
        assert not list((models["t5"] / ".ct2").glob("float16-*")), "nothing is converted for a missing device"


def test_vocabulary_is_id_exact(engines: dict) -> None:
    hf, ct = engines["t5"]
    n = len(hf.tokenizer)
    assert ct.tokens[:n] == hf.tokenizer.convert_ids_to_tokens(list(range(n)))
    assert len(ct.tokens) == hf.model.config.vocab_size == n + 3
    assert len(set(ct.tokens)) == len(ct.tokens)

    class Dup:
        def __len__(self) -> int:
            return 3

        def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
            return ["a", "b", "a"][: len(ids)]

    with pytest.raises(BackendError, match="ids 0 and 2"):
        vocabulary(Dup(), 3)


def test_describe_differs_from_hf_and_by_compute_type(models: dict, engines: dict) -> None:
    from ayakit.models.backend import model_fingerprint

    hf, ct = engines["t5"]
    q = CT2Backend(models["t5"], threads=1, compute_type="int8")
    assert len({model_fingerprint(hf), model_fingerprint(ct), model_fingerprint(q)}) == 3


def test_load_takes_backend_options(models: dict) -> None:
    ct = load(str(models["llama"]), batch_size=2, threads=1, convention="lm-eval", chat=False, model=None)
    assert isinstance(ct, CT2Backend) and ct.batch_size == 2 and ct.convention == "lm-eval" and not ct.score_eos
    with pytest.raises(BackendError, match="does not take dtype, strategy"):
        load(str(models["llama"]), dtype="bfloat16", strategy="packed")
