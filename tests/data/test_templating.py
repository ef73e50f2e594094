"""Templates as data: loading, rendering, per-language literals."""

from __future__ import annotations

import pytest

from ayakit.data.sources.embedded import families
from ayakit.data.templating import TemplateError, Template, literals, load_templates, render
from ayakit.errors import DataError
from ayakit.languages import languages


def test_every_family_has_templates_and_heldout_ones_have_five_prompts():
    for name, fam in families().items():
        temps = load_templates(name)
        assert temps and all(t.family == name for t in temps)
        assert any(t.written_in("eng") for t in temps)
        if fam.heldout:
            assert len(temps) >= 5
    with pytest.raises(DataError, match="no templates for family 'nope'"):
        load_templates("nope")
    ids = [t.id for t in load_templates()]
    assert len(ids) == len(set(ids))


def test_native_templates_exist_for_main_families():
    for fam in ("month_name", "weekday_name", "country_name"):
        native = {lang for t in load_templates(fam) for lang in t.languages if lang != "eng"}
        assert len(native) >= 12, (fam, native)


def test_literals_table_covers_every_language():
    for lang in languages():
        lit = literals(lang.code)
        assert lit["question_mark"] and lit["colon"] and "list_sep" in lit
        assert lit["spaces"] == (lang.code not in {"zho", "jpn", "tha", "khm", "lao", "mya"})
    assert literals("ar")["question_mark"] == "؟" and literals("ja")["colon"] == "："
    assert literals("es")["question_open"] == "¿" and literals("fr")["yes"] == "oui"


def test_render_uses_target_language_literals():
    tpl = next(t for t in load_templates("is_month") if t.id == "is_month.en.yesno")
    inputs, targets, choices = render(tpl, {"word": "Machi", "english": "March", "is_month": True}, "swa")
    assert "ndiyo" in inputs and "hapana" in inputs and targets == "ndiyo" and choices is None
    _i, targets, _c = render(tpl, {"word": "Jumatatu", "english": "Monday", "is_month": False}, "sw")
    assert targets == "hapana"
    # a language without yes/no in the table cannot render it: an error, not another language's word
    with pytest.raises(TemplateError, match="gla"):
        render(tpl, {"word": "x", "english": "y", "is_month": True}, "gla")


def test_render_answer_choices_and_list_separator():
    tpl = next(t for t in load_templates("weekday_pick") if t.id == "weekday_pick.en.which")
    rec = {"choices": ["一月", "星期一", "三月", "五月"], "gold": 1}
    inputs, target, choices = render(tpl, rec, "zho")
    assert choices == rec["choices"] and target == "星期一"
    assert "一月、星期一、三月、五月" in inputs and "：" in inputs
    inputs, _t, _c = render(tpl, {"choices": ["a", "b", "c", "d"], "gold": 0}, "eng")
    assert "a, b, c, d" in inputs


def test_missing_record_field_is_a_template_error():
    tpl = Template(id="x", family="f", languages=("eng",), inputs="{{ nothing }}", targets="t")
    with pytest.raises(TemplateError, match="'x'"):
        render(tpl, {}, "eng")
