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
    assert counts == {"high": 24, "mid": 26, "low": 51}
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
