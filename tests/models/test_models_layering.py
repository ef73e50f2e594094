"""DESIGN.md's layering: a stage imports only ayakit itself, ayakit.models and stages before it; no string imports."""

from __future__ import annotations

import ast
from pathlib import Path

import ayakit

SRC = Path(ayakit.__file__).parent
FLOW = ["data", "train", "safety", "eval", "report"]  # the order data flows in; a stage may import earlier ones
STAGES = [*FLOW, "serve", "annotate"]  # serve and annotate stand beside the flow: they import none of it
ALLOWED = {**{s: set(FLOW[:i]) for i, s in enumerate(FLOW)}, "serve": set(), "annotate": set(), "models": set()}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_no_stage_imports_a_later_stage_and_models_imports_no_stage():
    bad = []
    for package, allowed in ALLOWED.items():
        for path in sorted((SRC / package).rglob("*.py")):
            for line, module in _imports(path):
                parts = module.split(".")
                if parts[0] == "ayakit" and len(parts) > 1 and parts[1] in STAGES and parts[1] != package \
                        and parts[1] not in allowed:
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_no_stage_imports_through_a_string():
    bad = []
    for package in [*STAGES, "models"]:
        for path in sorted((SRC / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for needle in ("import_module(", "__import__("):
                if needle in text:
                    bad.append(f"{path.relative_to(SRC)} calls {needle}")
    assert not bad, "\n".join(bad)
