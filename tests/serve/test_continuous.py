"""Continuous batching in the engine: a row joining a running batch decodes exactly as it would alone."""

from __future__ import annotations

import pytest

PROMPTS = ["Where is the cat?", "Le chat dort sur le lit. Où est la gare ?", "Paka anakaa kwenye mkeka.",
           "Hello", "Write a short poem about the sea. Maktaba iko wapi? Ninapenda chai ya kijani."]


def _greedy(max_tokens: int):
    from ayakit.serve.engine import SamplingParams

    return SamplingParams(max_tokens=max_tokens, temperature=0, logprobs=3)


def _trace(completion) -> list[tuple[int, float, list]]:
    return [(t.id, t.logprob, t.top) for t in completion.tokens]


def _hf_greedy(engine, prompt: str, n: int) -> list[float]:
    """The log-probability of each greedy token under `model.generate` (the reference decoding loop)."""
    import torch

    ids = torch.tensor([engine.encode_prompt(prompt)])
    with torch.inference_mode():
        out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                    min_new_tokens=n, do_sample=False, pad_token_id=engine.pad_id,
                                    output_logits=True, return_dict_in_generate=True)
    logp = [torch.log_softmax(step[0].double(), -1) for step in out.logits]
    tokens = out.sequences[0, -n:]
    return [float(lp[int(t)]) for lp, t in zip(logp, tokens)]


def _assert_same(a, b) -> None:
    assert a.text == b.text and a.finish_reason == b.finish_reason
    assert [t.id for t in a.tokens] == [t.id for t in b.tokens]
    for x, y in zip(a.tokens, b.tokens):  # every step's distribution, not only the argmax, is the same
        assert x.logprob == pytest.approx(y.logprob, abs=1e-6)
        assert [name for name, _ in x.top] == [name for name, _ in y.top]
        assert [v for _, v in x.top] == pytest.approx([v for _, v in y.top], abs=1e-6)


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_a_row_joining_a_running_batch_decodes_as_alone(arch: str, tiny_seq2seq, tiny_causal) -> None:
    import torch

    from ayakit.serve.decoding import RunningBatch
    from ayakit.serve.engine import Engine, GenRequest

    torch.set_num_threads(1)
    engine = Engine(tiny_seq2seq if arch == "seq2seq" else tiny_causal, device="cpu")
    engine.model.to(torch.float64)  # float32 rounding differs with batch shape; in float64 any real difference shows
    lengths = [12, 3, 9, 1, 7]  # rows leave at different steps, so the batch shrinks and trims its padding
    alone = [engine.run([GenRequest(engine.encode_prompt(p), _greedy(n))])[0] for p, n in zip(PROMPTS, lengths)]
    assert [c.completion_tokens for c in alone] == lengths
    for prompt, n, completion in zip(PROMPTS, lengths, alone):  # alone, the loop is HF's own greedy decoding
        assert _hf_greedy(engine, prompt, n) == pytest.approx([t.logprob for t in completion.tokens], abs=1e-6)

    batch = RunningBatch(engine)
    rows, sizes = [], []
    for prompt, n in zip(PROMPTS, lengths):  # each request arrives while the earlier ones are mid-decoding
        rows += batch.admit([GenRequest(engine.encode_prompt(prompt), _greedy(n))])
        sizes.append(len(batch))
        batch.step()
        batch.step()
    while batch:
        batch.step()
    assert max(sizes) > 1  # requests really shared the batch
    assert all(row.done for row in rows)
    for row, ref in zip(rows, alone):
        _assert_same(row.result, ref)


def test_admitting_several_at_once_equals_alone(tiny_seq2seq) -> None:
    import torch

    from ayakit.serve.engine import Engine, GenRequest

    engine = Engine(tiny_seq2seq, device="cpu")
    engine.model.to(torch.float64)

    alone = [engine.run([GenRequest(engine.encode_prompt(p), _greedy(8))])[0] for p in PROMPTS]
    together = engine.run([GenRequest(engine.encode_prompt(p), _greedy(8)) for p in PROMPTS])
    for a, b in zip(together, alone):
        _assert_same(a, b)


def test_a_failing_row_fails_alone(hf_engine) -> None:
    engine = hf_engine
    from ayakit.serve.decoding import RunningBatch
    from ayakit.serve.engine import GenRequest

    def broken_listener(_delta) -> None:
        raise ConnectionError("the client went away")

    batch = RunningBatch(engine)
    good = batch.admit([GenRequest(engine.encode_prompt(p), _greedy(6)) for p in PROMPTS[:3]])
    bad = batch.admit([GenRequest(engine.encode_prompt(PROMPTS[3]), _greedy(6), on_delta=broken_listener)])
    while batch:
        batch.step()
    assert isinstance(bad[0].result, ConnectionError)
    assert all(row.result.completion_tokens == 6 for row in good)



def test_a_prefill_that_fails_for_one_request_fails_only_it(tiny_causal, monkeypatch) -> None:
    from ayakit.serve.decoding import RunningBatch
    from ayakit.serve.engine import Engine, GenRequest

    engine = Engine(tiny_causal, device="cpu")
    poison = engine.encode_prompt("Maktaba iko wapi?")
    real = engine.model.forward

    def forward(*args, **kwargs):
        rows = kwargs["input_ids"].tolist()
        if any(row[len(row) - len(poison):] == poison for row in rows):  # left-padded: the prompt ends the row
            raise RuntimeError("this prompt breaks the model")
        return real(*args, **kwargs)

    expected = engine.run([GenRequest(engine.encode_prompt(p), _greedy(5)) for p in PROMPTS[:2]])
    monkeypatch.setattr(engine.model, "forward", forward)
    batch = RunningBatch(engine)
    rows = batch.admit([GenRequest(engine.encode_prompt(PROMPTS[0]), _greedy(5)), GenRequest(poison, _greedy(5)),
                        GenRequest(engine.encode_prompt(PROMPTS[1]), _greedy(5))])
    while batch:
        batch.step()
    assert isinstance(rows[1].result, RuntimeError)
    assert [rows[0].result.text, rows[2].result.text] == [c.text for c in expected]


def test_a_failing_step_fails_its_rows_and_the_next_batch_works(hf_engine, monkeypatch) -> None:
    engine = hf_engine
    from ayakit.serve.decoding import RunningBatch
    from ayakit.serve.engine import GenRequest

    batch = RunningBatch(engine)
    rows = batch.admit([GenRequest(engine.encode_prompt(p), _greedy(6)) for p in PROMPTS[:3]])
    with monkeypatch.context() as patch:
        patch.setattr(engine.model, "forward", lambda *a, **kw: (_ for _ in ()).throw(MemoryError("out of memory")))
        batch.step()
    assert not batch and all(isinstance(row.result, MemoryError) for row in rows)
    again = batch.admit([GenRequest(engine.encode_prompt(PROMPTS[0]), _greedy(6))])
    while batch:
        batch.step()
    assert again[0].result.completion_tokens == 6
