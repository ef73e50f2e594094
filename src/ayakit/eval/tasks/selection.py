"""Which language varieties to evaluate: tags asked for, every variety of a bare language, or all in the data."""

from __future__ import annotations

from dataclasses import dataclass

from ayakit import languages as L


def _parts(tag: str) -> tuple[str, str | None, str | None]:
    bits = tag.split("-")
    return bits[0], (bits[1] if len(bits) > 1 else None), (bits[2] if len(bits) > 2 else None)


@dataclass(frozen=True)
class Selection:
    """`-l` normalised: a code with a script or region (srp-Cyrl, zh-TW) matches that variety only; a bare code
    (srp, zh) matches every variety of the language, and a registry code also the varieties the paper's tables
    merge into it (zh: zho-Hans, zho-Hant, yue-Hant; sw: swh-Latn); `all` matches every variety present in the data."""

    tags: tuple[str, ...] = ()
    bare: tuple[str, ...] = ()
    every: bool = False

    def wants(self, tag: str) -> bool:
        """Whether a data variety is asked for."""
        if self.every:
            return True
        lang, script, region = _parts(tag)
        if self.bare and (lang in self.bare or L.rollup(tag) in self.bare):
            return True
        for want in self.tags:
            w_lang, w_script, w_region = _parts(want)
            if w_lang == lang and w_script == script and (w_region is None or region is None or w_region == region):
                return True
        return False

    def asked(self) -> list[str]:
        """What was asked for, for notes about varieties a task has no data for."""
        return ["all"] if self.every else [*self.tags, *self.bare]


def selection(codes: list[str] | None) -> Selection | None:
    """A Selection from `-l` values (None: the task's default, the recipe's aya-101 set); bad codes raise
    UnknownLanguageError naming the closest."""
    if not codes:
        return None
    if any(c.strip().lower() == "all" for c in codes):
        return Selection(every=True)
    tags, bare = [], []
    for code in codes:
        t = L.tag(code)
        explicit = len(code.strip().replace("_", "-").split("-")) > 1
        (tags if explicit else bare).append(t if explicit else t.split("-")[0])
    return Selection(tuple(dict.fromkeys(tags)), tuple(dict.fromkeys(bare)))


def wants(sel: Selection | None, tag: str) -> bool:
    """None selects everything a reader offers by default."""
    return sel is None or sel.wants(tag)
