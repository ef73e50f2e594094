"""Checks of one translated field: unknown tokens, emptiness, the length ratio normalised by the target script's
density, and the language-ID verdict; each returns its reasons to drop and the values it measured."""

from __future__ import annotations

from typing import Any

from ayakit.data.sentences import rules, script_of


def length_ratio(source: str, translation: str, target_language: str) -> float:
    """Characters of the translation per character of the source, normalised by the target script's density."""
    table = rules()["length_ratio"]["script_density"]
    density = table.get(script_of(target_language), table["default"])
    return (len(translation.strip()) / max(1, len(source.strip()))) / density


def check_translation(source: str, translation: str, target: str, has_unk: bool, langid: bool = True,
                      strict_langid: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Reasons to drop one translated field (empty: keep) and the checks' values."""
    from ayakit.data import langid as lid

    reasons: list[str] = []
    lr = rules()["length_ratio"]
    checks: dict[str, Any] = {"unk": has_unk}
    if has_unk or "<unk>" in translation:
        checks["unk"] = True
        reasons.append("unk")
    if source.strip() and not translation.strip():
        reasons.append("empty")
    ratio = length_ratio(source, translation, target) if source.strip() else 1.0
    checks["length_ratio"] = round(ratio, 4)
    if source.strip() and not lr["min_ratio"] <= ratio <= lr["max_ratio"]:
        reasons.append("length_ratio")
    if langid and translation.strip():
        v = lid.verdict(translation, target)
        checks["langid"] = v
        if v == lid.MISMATCH:
            reasons.append("langid")
        elif strict_langid and v in (lid.UNKNOWN, lid.SHORT):
            reasons.append(f"langid_{v}")
    return reasons, checks
