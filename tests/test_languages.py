import pytest

from ayakit import languages as L

ALIASES = {
    "sw": "swa", "swa": "swa", "swh": "swa", "swh_Latn": "swa", "zsm_Latn": "msa", "npi_Deva": "nep",
    "arb_Arab": "ara", "zh-Hant": "zho", "pt-BR": "por", "fr": "fra", "fra": "fra", "fra_Latn": "fra",
    "arb": "ara", "arz": "ara", "ary": "ara", "zsm": "msa", "npi": "nep", "pbt": "pus", "uzn": "uzb",
    "khk": "mon", "ydd": "yid", "tgl": "fil", "nob": "nor", "nno": "nor", "cmn": "zho", "yue": "zho",
    "lvs": "lav", "azj": "aze", "azb": "aze", "kmr": "kur", "ckb": "kur", "plt": "mlg", "als": "sqi",
    "prs": "pes", "fas": "pes", "he": "heb", "iw": "heb", "zh-Hans-CN": "zho", "yue_Hant": "zho",
    "kmr_Latn": "kur", "Swahili": "swa", "en-US": "eng",
}


@pytest.mark.parametrize("code,expected", sorted(ALIASES.items()))
def test_normalize_aliases(code: str, expected: str) -> None:
    assert L.normalize(code) == expected


def test_tiers_match_paper() -> None:
    counts = {t: len(L.languages(t)) for t in L.TIERS}
    assert counts == {"high": 24, "mid": 26, "low": 51, "unlisted": 0}
    assert len(L.languages()) == 101
    assert {x.code for x in L.languages("high")} == set(
        "ara cat ces deu eng eus fin fra hin hun ita jpn kor nld pes pol por rus spa srp swe tur vie zho".split())


def test_every_language_has_scripts_and_native_names() -> None:
    for lang in L.languages():
        assert lang.scripts, lang.code
        assert lang.native_name
    assert L.get("ara").native_name == "العربية"
    # every FLORES code except fry and lat (absent from FLORES-200)
    assert sum(1 for x in L.languages() if x.flores) == 99


def test_unknown_code_names_closest() -> None:
    with pytest.raises(L.UnknownLanguageError, match="closest known: swa"):
        L.normalize("swahil")
    with pytest.raises(L.UnknownLanguageError, match="unknown language code 'qqq'"):
        L.normalize("qqq")
    with pytest.raises(L.UnknownLanguageError):
        L.normalize("")


def test_unknown_tier() -> None:
    with pytest.raises(ValueError, match="unknown tier"):
        L.languages("top")


# ---- tags: every ISO 639-3 language, varieties kept distinct ---------------------------------------------

TAGS = {
    "swa": "swh-Latn", "sw": "swh-Latn", "Swahili": "swh-Latn", "kin": "kin-Latn", "rw": "kin-Latn",
    "Kinyarwanda": "kin-Latn", "yue": "yue-Hant", "zho": "zho-Hans", "cmn": "zho-Hans", "zh-Hant": "zho-Hant",
    "zho-Hant": "zho-Hant", "zho_Hans": "zho-Hans", "zh-CN": "zho-Hans-CN", "zh-TW": "zho-Hant-TW",
    "zh-Hant-TW": "zho-Hant-TW", "srp": "srp-Cyrl", "srp_Latn": "srp-Latn", "sr-Latn": "srp-Latn",
    "srp-Cyrl": "srp-Cyrl", "ckb": "ckb-Arab", "kmr": "kmr-Latn", "kur": "kmr-Latn", "prs": "prs-Arab",
    "pes": "pes-Arab", "fas": "pes-Arab", "fa": "pes-Arab", "nno": "nno-Latn", "nob": "nob-Latn", "no": "nob-Latn",
    "en-GB": "eng-Latn-GB", "eng-IN": "eng-Latn-IN", "en-US": "eng-Latn-US", "eng": "eng-Latn",
    "fr-CA": "fra-Latn-CA", "fra": "fra-Latn", "pt-BR": "por-Latn-BR", "es-MX": "spa-Latn-MX",
    "arb_Arab": "arb-Arab", "ar": "arb-Arab", "he": "heb-Hebr", "iw": "heb-Hebr", "fre": "fra-Latn",
    "wol": "wol-Latn", "azb": "azb-Arab", "ace_Arab": "ace-Arab", "jpn": "jpn-Jpan",
}


@pytest.mark.parametrize("code,expected", sorted(TAGS.items()))
def test_tag_normalises_every_spelling(code: str, expected: str) -> None:
    assert L.tag(code) == expected


MERGES = [  # varieties the paper's 101 rows merge: distinct tags, one rollup row
    ("yue", "zho-Hans", "zho-Hant", "zho"), ("srp-Cyrl", "srp-Latn", None, "srp"), ("ckb", "kmr", None, "kur"),
    ("prs", "pes", None, "pes"), ("nno", "nob", None, "nor"), ("en-GB", "en-IN", "en-US", "eng"),
    ("fra", "fr-CA", None, "fra"), ("por", "pt-BR", None, "por"), ("spa", "es-MX", None, "spa"),
]


@pytest.mark.parametrize("a,b,c,row", MERGES)
def test_varieties_stay_distinct_and_roll_up(a: str, b: str, c: str | None, row: str) -> None:
    codes = [x for x in (a, b, c) if x]
    tags = [L.tag(x) for x in codes]
    assert len(set(tags)) == len(tags), tags
    assert {L.rollup(t) for t in tags} == {row}
    assert len({L.display_name(t) for t in tags}) == len(tags)
    for x, t in zip(codes, tags):
        assert L.matches(x, t)
        for o in tags:
            want, have = L.parse(x), L.parse(o)
            if o != t and (want.script or want.region or want.language != have.language):
                assert not L.matches(x, o), (x, o)  # `zho` never selects yue; `srp-Latn` never srp-Cyrl
    assert L.matches("eng", "eng-Latn-GB") and L.matches("zho", "zho-Hant") and not L.matches("zho", "yue-Hant")


def test_script_from_code_then_column_then_text_then_default() -> None:
    assert L.tag("srp_Latn", script="Cyrl") == "srp-Latn"  # the tag's script wins
    assert L.tag("srp", script="Latn") == "srp-Latn"
    assert L.tag("srp", text="Dobar dan, kako ste danas?") == "srp-Latn"
    assert L.tag("srp", text="Добар дан, како сте данас?") == "srp-Cyrl"
    assert L.tag("srp") == "srp-Cyrl"
    assert L.tag("zho", text="今天天氣很好") == "zho-Hans"  # Han characters alone do not say Hans or Hant
    assert L.tag("kin", text="Muraho, amakuru yawe?") == "kin-Latn"
    assert L.detect_script("Привет, мир") == "Cyrl" and L.detect_script("123 !?") is None
    with pytest.raises(L.UnknownLanguageError, match="unknown script"):
        L.tag("srp", script="Klingon")


def test_tiers_and_sets() -> None:
    assert L.tier("kin") == L.tier("kin-Latn") == "unlisted"
    assert L.tier("swh_Latn") == "low" and L.tier("yue-Hant") == "high" and L.tier("prs") == "high"
    aya = L.language_set("aya-101")
    assert len(aya) == len(set(aya)) == 101
    assert {"arb-Arab", "zho-Hans", "srp-Cyrl", "swh-Latn", "kmr-Latn", "pes-Arab", "nob-Latn"} <= set(aya)
    assert all(L.tier(t) in L.SET_TIERS and L.in_set(t) for t in aya)
    assert not L.in_set("kin") and L.in_set("yue")
    assert L.rollup("kin-Latn") == "kin" and L.rollup("wol") == "wol"
    with pytest.raises(ValueError, match="unknown language set"):
        L.language_set("aya-102")


def test_flores_varieties_are_distinct_tags() -> None:
    codes = L.flores_codes()
    tags = [L.tag(c) for c in codes]
    assert len(set(tags)) == len(codes) == 205
    assert tags == [c.replace("_", "-") for c in codes]
    assert {L.tier(t) for t in tags} == set(L.TIERS)


def test_display_names_tell_varieties_apart() -> None:
    assert L.display_name("srp-Latn") == "Serbian (Latin)"
    assert L.display_name("zho-Hant") == "Chinese (Traditional)"
    assert L.display_name("eng-Latn-GB") == "English (UK)"
    assert L.display_name("kin") == "Kinyarwanda"


def test_unknown_tag_names_closest() -> None:
    with pytest.raises(L.UnknownLanguageError, match="closest known: .*kin"):
        L.tag("Kinyarwnda")
    for bad in ("qqq", "und", "xx-unknown", "zzz", ""):
        with pytest.raises(L.UnknownLanguageError):
            L.tag(bad)


def test_languages_command_looks_up_codes_and_lists_sets() -> None:
    from typer.testing import CliRunner

    from ayakit.cli import app

    run = CliRunner().invoke(app, ["languages", "kin", "yue", "srp_Latn"], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    lines = run.output.splitlines()
    kin = next(ln for ln in lines if "kin-Latn" in ln)
    assert "Kinyarwanda" in kin and "unlisted" in kin and "not in the set" in kin
    yue = next(ln for ln in lines if "yue-Hant" in ln)
    assert "Cantonese" in yue and "zho" in yue
    assert "Serbian (Latin)" in run.output
    low = CliRunner().invoke(app, ["languages", "--set", "aya-101", "--tier", "low"], env={"COLUMNS": "200"})
    assert low.exit_code == 0 and "aya-101 (51, low)" in low.output and "swh-Latn" in low.output
    assert "eng-Latn" not in low.output
    bad = CliRunner().invoke(app, ["languages", "--set", "aya-102"])
    assert bad.exit_code != 0


def test_recipe_accepts_any_language_and_names_the_closest() -> None:
    from ayakit.recipe import RecipeError, recipe_from_dict

    def recipe(**data):
        return recipe_from_dict({"name": "r", "data": {"sources": [{"name": "s", "type": "files"}], **data},
                                 "eval": {"languages": ["kin", "yue", "all"]}})

    assert recipe(languages=["swa", "kin", "yue", "zho-Hant", "srp-Latn"]).data.languages[1] == "kin"
    with pytest.raises(RecipeError, match=r"data.languages: .*unknown language 'Kinyarwnda'; closest known: kin"):
        recipe(languages=["swa", "Kinyarwnda"])
    with pytest.raises(RecipeError, match="data.languages: .*empty list"):
        recipe(languages=[])
    with pytest.raises(RecipeError, match=r"eval.languages: .*'qqq'"):
        recipe_from_dict({"name": "r", "data": {"sources": [{"name": "s", "type": "files"}]},
                          "eval": {"languages": ["qqq"]}})


def test_info_and_normalize_any_for_languages_outside_the_set() -> None:
    from ayakit.annotate.auth import parse_languages

    assert L.normalize_any("swh_Latn") == "swa" and L.normalize_any("srp-Latn") == "srp"
    assert [L.normalize_any(c) for c in ("yue", "prs", "nno", "ckb", "kin")] == ["yue", "prs", "nno", "ckb", "kin"]
    kin = L.info("kin")
    assert (kin.name, kin.native_name, kin.tier, kin.scripts, kin.flores) == \
        ("Kinyarwanda", "Ikinyarwanda", "unlisted", ("Latn",), ("kin_Latn",))
    assert L.info("yue").tier == "high" and L.info("yue").name == "Cantonese"
    assert parse_languages("kin,yue,zho,sw") == ["kin", "yue", "zho", "swa"]  # annotators in any language
    with pytest.raises(L.UnknownLanguageError):
        parse_languages("qqq")


def test_unknown_code_error_names_the_closest_when_read_and_survives_pickling():
    """The closest codes are looked up when the message is read (a reader counting junk codes does not pay for
    the search); the error keeps them across processes."""
    import pickle

    with pytest.raises(L.UnknownLanguageError) as info:
        L.parse("englsh")
    assert info.value.near == "englsh" and "closest known: eng" in str(info.value)
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)
    assert L.parse("tlh").language == "tlh" and L.tier("tlh") == "unlisted"  # valid ISO 639-3: a language
