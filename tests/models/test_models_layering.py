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


def _arch_literals(node: ast.AST, names: set[str]) -> bool:
    """Whether node is an architecture name as a string literal, or a tuple / list / set holding one."""
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_arch_literals(e, names) for e in node.elts)
    return False


def arch_string_compares(path: Path, names: set[str]) -> list[int]:
    """Lines of path that compare something with an architecture name (==, !=, in, match case)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare) and any(_arch_literals(n, names) for n in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and _arch_literals(node.value, names):
            lines.append(node.lineno)
    return lines


def test_only_models_compares_architecture_names():
    """Which architecture does what is ayakit.models' knowledge (ARCHS and its modules): nowhere else branches."""
    from ayakit.models import ARCHS

    names = set(ARCHS)
    bad = [f"{path.relative_to(SRC)}:{line}" for path in sorted(SRC.rglob("*.py"))
           if (SRC / "models") not in path.parents for line in arch_string_compares(path, names)]
    assert not bad, "architecture names compared outside ayakit.models:\n" + "\n".join(bad)


def test_the_arch_compare_check_finds_each_form(tmp_path: Path):
    code = ('if arch == "causal":\n    pass\nx = "seq2seq" != a\ny = a in ("seq2seq", "other")\n'
            'match a:\n    case "causal":\n        pass\nz = a == "other"\n')
    (tmp_path / "m.py").write_text(code)
    assert arch_string_compares(tmp_path / "m.py", {"seq2seq", "causal"}) == [1, 3, 4, 6]
