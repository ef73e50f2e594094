"""Judge prompts and verdicts: a judge prompt (packaged judge_prompts/<name>.yaml or a file), the messages it
renders for two answers, the verdict read from a reply (never guessed), and a pair's outcome from both orders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from ayakit import languages as L
from ayakit.errors import DataError

OUTCOMES = ("a", "b", "tie", "invalid")


@dataclass
class JudgePrompt:
    """A judge prompt: system and user templates and the labels its verdict line uses."""

    name: str
    system: str
    user: str
    keys: list[str]
    first: list[str]
    second: list[str]
    tie: list[str]


@cache
def load_judge_prompt(name_or_path: str = "default") -> JudgePrompt:
    """A packaged judge prompt (judge_prompts/<name>.yaml) or a YAML file of the same shape."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        res = resources.files("ayakit.eval").joinpath("judge_prompts", f"{name_or_path}.yaml")
        if not res.is_file():
            raise DataError(f"judge prompt {name_or_path!r}: no such packaged prompt or YAML file")
        text, where = res.read_text(encoding="utf-8"), f"judge_prompts/{name_or_path}.yaml"
    data = yaml.safe_load(text) or {}
    try:
        v = data["verdict"]
        return JudgePrompt(name=str(data.get("name", name_or_path)), system=data["system"], user=data["user"],
                           keys=list(v["key"]), first=list(v["first"]), second=list(v["second"]),
                           tie=list(v["tie"]))
    except (KeyError, TypeError) as exc:
        raise DataError(f"{where}: missing key {exc} (needs system, user, verdict.key/first/second/tie)") from None


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {name} placeholders in one pass (text inside the values is never re-expanded)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def render_judge(prompt: JudgePrompt, language: str, instruction: str, first: str, second: str) -> tuple[str, str]:
    """The (system, user) messages asking which of two answers is better."""
    values = {"language": L.display_name(language), "instruction": instruction, "first": first,
              "second": second}
    return fill(prompt.system, values), fill(prompt.user, values)


def _label_hits(value: str, labels: list[str]) -> bool:
    norm = value.strip().strip("*_`'\"“”‘’.:;,![] ").lower()
    for label in labels:
        low = label.lower()
        if len(low) == 1 and low.isalnum():  # a bare letter counts only as the whole verdict
            if norm == low:
                return True
            continue
        left = r"\b" if low[0].isalnum() else ""
        right = r"\b" if low[-1].isalnum() else ""
        if re.search(left + re.escape(low).replace(r"\ ", r"\s*") + right, norm):
            return True
    return False


def parse_verdict(text: str | None, prompt: JudgePrompt | None = None) -> str | None:
    """'A', 'B' or 'tie' from a judge reply; None when it cannot be read (never a guess)."""
    if not text or not text.strip():
        return None
    prompt = prompt or load_judge_prompt()
    keys = "|".join(re.escape(k) for k in prompt.keys)
    lines = text.splitlines()
    value = None
    for i, line in enumerate(lines):
        m = re.match(rf"^[\W_]*(?:{keys})[\W_]*?\s*[:：]\s*(.*)$", line.strip(), flags=re.IGNORECASE)
        if m:
            rest = m.group(1).strip()
            if not rest.strip("*_` "):  # the verdict is on the next non-empty line
                rest = next((ln.strip() for ln in lines[i + 1:] if ln.strip()), "")
            value = rest  # the last verdict line wins (a judge may restate it)
    if value is None:
        value = text.strip()
        if len(value) > 40:  # a bare verdict is short; a long reply without a verdict line is unreadable
            return None
    first, second = _label_hits(value, prompt.first), _label_hits(value, prompt.second)
    if first != second:
        return "A" if first else "B"
    if _label_hits(value, prompt.tie) or re.search(r"\b(" + "|".join(map(re.escape, prompt.tie)) + r")\b",
                                                   value, flags=re.IGNORECASE):
        return "tie"
    return None


def pair_outcome(verdict_ab: str | None, verdict_ba: str | None) -> str:
    """'a', 'b', 'tie' or 'invalid' from the two verdicts (model_a shown first in ab, second in ba)."""
    if verdict_ab is None or verdict_ba is None:
        return "invalid"
    first = {"A": "a", "B": "b", "tie": "tie"}[verdict_ab]
    second = {"A": "b", "B": "a", "tie": "tie"}[verdict_ba]
    return first if first == second else "tie"
