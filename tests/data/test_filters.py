"""Each filter on small tables; language ID on real FLORES sentences; exact and MinHash dedup of CJK text."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from ayakit.data import filters as F
from ayakit.data import langid
from ayakit.recipe import CapsConfig, FilterConfig, recipe_from_dict
from ayakit.records import Example, examples_to_table


def _t(*examples: Example):
    return examples_to_table(list(examples))


def test_length_bounds_count_per_language():
    t = _t(Example("hi", "ok", "eng"), Example("x" * 50, "ok", "swa"), Example("hello", "", "swa"))
    kept, removed = F.length_filter(t, FilterConfig(max_input_chars=20))
    assert kept.column("inputs").to_pylist() == ["hi"]
    assert removed == {"swa": 2}


def test_license_allow_list_is_case_insensitive():
    t = _t(Example("a", "b", "eng", license="Apache-2.0"), Example("a", "c", "fra", license="CC-BY-NC"))
    kept, removed = F.license_filter(t, ["apache-2.0", "mit"])
    assert kept.num_rows == 1 and removed == {"fra": 1}
    assert F.license_filter(t, None)[0].num_rows == 2


def test_heldout_datasets_and_tasks():
    for name in ("Muennighoff/xwinograd", "XNLI", "templated_xcopa", "translated_xstory_cloze", "super_glue/rte"):
        assert F.dataset_is_heldout(name, ["xwinograd", "xnli", "xcopa", "xstory_cloze", "rte"]), name
    for name in ("aya_dataset", "translated_dolly", "xquad", "paws-x"):
        assert not F.dataset_is_heldout(name, ["xwinograd", "xnli", "xcopa", "xstory_cloze", "rte"]), name
    assert F.task_is_heldout("Sentence Completion", ["sentence_completion"])
    assert F.task_is_heldout("nli", ["nli"]) and F.task_is_heldout("Coreference Resolution", ["coreference"])
    assert not F.task_is_heldout("question answering", ["nli", "coreference"])
    t = _t(Example("a", "b", "eng", dataset="xnli"), Example("a", "c", "yor", task="coreference"),
           Example("a", "d", "yor", dataset="xquad", task="qa"))
    kept, removed = F.heldout_filter(t, ["xnli"], ["coreference"])
    assert kept.column("dataset").to_pylist() == ["xquad"] and removed == {"eng": 1, "yor": 1}


def test_template_keep_and_drop_lists():
    t = _t(Example("a", "1", "eng", template="T1"), Example("a", "2", "eng", template="t2"),
           Example("a", "3", "eng", template=""), Example("a", "4", "eng", template="t3"))
    kept, _ = F.template_filter(t, ["t1", "t2"], ["T2"])
    assert kept.column("targets").to_pylist() == ["1", "3"]  # rows without a template are not affected


def _flores(shared_data, flores: str, n: int) -> list[str]:
    path = shared_data / "sib200" / "data" / "annotated" / flores / "test.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not in the shared data")
    with open(path, encoding="utf-8") as fh:
        return [r["text"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)][:n]


LANGID_SAMPLE = {"swa": "swh_Latn", "yor": "yor_Latn", "hin": "hin_Deva", "zho": "zho_Hans", "jpn": "jpn_Jpan",
                 "ara": "arb_Arab", "fra": "fra_Latn", "amh": "amh_Ethi", "kur": "kmr_Latn", "tha": "tha_Thai"}


def test_langid_on_flores_keeps_the_right_and_drops_the_wrong_language(shared_data):
    texts = {code: _flores(shared_data, fl, 15) for code, fl in LANGID_SAMPLE.items()}
    codes = list(texts)
    right = [Example("Translate this sentence.", t, code) for code, ts in texts.items() for t in ts]
    # the same sentences declared as the next language in the list: wrong labels
    wrong = [Example("Translate this sentence.", t, codes[(i + 1) % len(codes)])
             for i, code in enumerate(codes) for t in texts[code]]
    kept, removed, unchecked = F.langid_filter(_t(*right))
    assert kept.num_rows >= 0.97 * len(right), removed
    kept, removed, _ = F.langid_filter(_t(*wrong))
    assert kept.num_rows <= 0.03 * len(wrong)
    assert sum(removed.values()) == len(wrong) - kept.num_rows and len(removed) == len(codes)


def test_langid_script_check_short_texts_and_labels():
    assert langid.dominant_script("Привет, как дела у тебя сегодня?") == "Cyrl"
    assert langid.dominant_script("今日はいい天気ですね") in ("Hani", "Hira")
    # a Hindi row written in Cyrillic is wrong without asking a detector
    assert langid.verdict("Привет, как дела у тебя сегодня, мой друг?", "hin") == langid.MISMATCH
    assert langid.verdict("今日はいい天気ですね、散歩に行きましょう。公園はとても綺麗です。", "jpn") == langid.MATCH
    assert langid.verdict("Ndiyo", "swa") == langid.SHORT
    assert langid.label_code("iw") == "heb" and langid.label_code("zh-Hant") == "zho"
    assert langid.label_code("xx-Latn") is None
    t = _t(Example("Yes?", "Ndiyo", "swa"), Example("Say it", "Bonjour à tous, comment allez-vous ce matin ?", "swa"))
    kept, removed, unchecked = F.langid_filter(t)
    assert kept.column("targets").to_pylist() == ["Ndiyo"] and removed == {"swa": 1} and unchecked == 1


def test_row_filters_count_every_filter():
    counts: dict[str, F.FilterCounts] = {}
    t = _t(Example("a", "b", "eng", dataset="xnli"), Example("a", "", "eng"), Example("a", "ok", "eng"))
    out = F.row_filters(t, FilterConfig(langid=False), counts)
    assert out.num_rows == 1
    assert counts["length"].to_dict() == {"removed": 1, "by_language": {"eng": 1}}
    assert counts["heldout"].removed == 1 and "langid" not in counts


def test_exact_dedup_normalises_cjk_width_case_and_spaces():
    t = _t(Example("日本語のテスト", "答え１２３", "jpn"),  # full-width digits
           Example("日本語の テスト", "答え123", "jpn"),  # different spacing, ASCII digits (NFKC-equal)
           Example("ｶﾀｶﾅ", "x", "jpn"), Example("カタカナ", "X", "jpn"),  # half-width kana, case
           Example("中文问题", "答案", "zho"), Example("中文問題", "答案", "zho"))  # simplified vs traditional differ
    keys = F.dedup_keys(t)
    assert keys[2] == keys[3] and keys[4] != keys[5]
    assert keys[0] != keys[1]  # a space inside CJK text changes it (only runs of spaces are collapsed)
    t2 = _t(Example("日本語の  テスト ", "答え１２３", "jpn"), Example("日本語の テスト", "答え123", "jpn"))
    k2 = F.dedup_keys(t2)
    assert k2[0] == k2[1]
    # which copy survives is decided by the tie-break (source order, then id), not by arrival order
    keep = F.first_of_duplicates(k2, np.array([1, 0]), np.array([5, 9], dtype=np.uint64))
    assert keep.tolist() == [False, True]


def test_words_split_scripts_without_spaces():
    assert F.words("今日は晴れ。Hello world ภาษาไทย") == ["今", "日", "は", "晴", "れ", "Hello", "world",
                                                       "ภ", "า", "ษ", "า", "ไ", "ท", "ย"]


def test_caps_and_exemptions():
    caps = CapsConfig(per_dataset={"dp": 20000}, per_dataset_language={"tr": 3000}, exempt_datasets=["dolly"])
    assert F.cap_limits("dp", "flan", caps) == (20000, None)
    assert F.cap_limits("tr", "translated_paws", caps) == (None, 3000)
    assert F.cap_limits("tr", "translated_Dolly", caps) == (None, None)
    assert F.cap_limits("other", "x", caps) == (None, None)


def test_minhash_near_dedup_of_cjk_text(tmp_path):
    """datatrove's MinHash stages with the multilingual tokenizer find near-duplicate Chinese sentences."""
    from ayakit.data import pipeline as P

    zh = ["今天天气很好，我们一起去公园散步吧，然后去吃午饭。", "这本书非常有意思，我已经读了三遍了，每次都有新的收获。",
          "我们明天早上八点在学校门口见面，不要迟到。"]
    rows = [{"inputs": "请复述", "targets": t, "language": "zho"} for t in zh]
    rows += [{"inputs": "请复述", "targets": t[:-1] + "！", "language": "zho"} for t in zh]  # near duplicates
    rng = random.Random(0)  # unrelated sentences: 25 random CJK characters each
    rows += [{"inputs": "请复述", "targets": "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(25)),
              "language": "zho"} for _ in range(20)]
    (tmp_path / "src").mkdir()
    with open(tmp_path / "src" / "x.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    recipe = recipe_from_dict({"name": "mh", "data": {"budget": 50, "tasks": 1, "workers": 1,
                                                      "filters": {"dedup": "minhash", "langid": False},
                                                      "sources": [{"name": "s", "type": "files",
                                                                   "path": str(tmp_path / "src")}]}})
    P.build(recipe, tmp_path / "run")
    stats = P.load_stats(tmp_path / "run")
    assert stats["filters"]["minhash_dedup"] == {"removed": 3, "by_language": {"zho-Hans": 3}}
    assert stats["available"]["s"]["s"] == 23


def test_langid_survives_control_characters_and_surrogates():
    from ayakit.data.langid import detect_cld2

    assert detect_cld2("Bonjour tout le monde, comment allez-vous\x85 aujourd'hui \x01 ?").code == "fra"
    assert detect_cld2("hello \ud800 world, this is a sentence written in plain English").code == "eng"


def test_langid_checks_tags_and_spares_languages_the_detectors_do_not_know():
    latin = "Dobar dan, kako ste danas? Nadam se da ste dobro i da je sve u redu."
    cyrillic = "Добар дан, како сте данас? Надам се да сте добро и да је све у реду."
    assert langid.verdict(latin, "srp-Latn") == langid.MATCH
    assert langid.verdict(latin, "srp-Cyrl") == langid.MISMATCH  # the tag's script is checked
    assert langid.verdict(cyrillic, "srp-Cyrl") == langid.MATCH
    kabyle = "Azul fell-awen, amek tettilim? Nekkni nella d lxir, tanemmirt ɣef wayen akk txeddmem ass-a."
    assert "kab" not in langid.cld2_languages()
    assert langid.verdict(kabyle, "kab-Latn") == langid.UNKNOWN  # pycld2 has no label: not dropped on its word
    assert langid.verdict("Это совсем другой текст на русском языке, не кабильский.", "kab-Latn") == langid.MISMATCH
