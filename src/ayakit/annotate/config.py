"""The app's settings (limits, right-to-left scripts, compare labels) read from settings.yaml in the package."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from ayakit import languages as L


@dataclass(frozen=True)
class Limits:
    """Size limits on what annotators send."""

    max_body_bytes: int
    inputs_chars: int
    targets_chars: int
    reason_chars: int
    token_chars: int


@functools.cache
def settings() -> dict:
    """The parsed settings.yaml."""
    text = resources.files("ayakit.annotate").joinpath("settings.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def limits() -> Limits:
    """The size limits."""
    return Limits(**settings()["limits"])


def compare_choices() -> dict[str, str]:
    """Compare label value -> text shown."""
    return dict(settings()["compare_choices"])


def is_rtl(code: str) -> bool:
    """True when the language's default script is written right to left."""
    return L.info(code).script in settings()["rtl_scripts"]


def text_dir(code: str) -> str:
    """The HTML dir attribute for text in this language: rtl or ltr."""
    return "rtl" if is_rtl(code) else "ltr"
