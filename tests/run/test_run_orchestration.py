"""The runner's bookkeeping with stand-in stages: skip unchanged stages, --force redoes a stage and the rest,
an interrupted stage resumes, a changed recipe section redoes exactly the stages that depend on it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ayakit import runner
from ayakit.io import write_manifest
from ayakit.recipe import RecipeError, recipe_from_dict

RECIPE = {"name": "orch", "data": {"budget": 100, "sources": [{"name": "cldr", "type": "embedded"}]}}


class _Log(list):
    """(stage, resume) calls; `fail` names stages whose next call is interrupted."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: set[str] = set()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Replace each stage's work with one that writes its output manifest and records (stage, resume)."""
    log = _Log()
    fail = log.fail

    def fake(stage: runner.Stage):
        def work(ctx: runner.RunContext) -> Path:
            log.append((stage.name, ctx.resume))
            if stage.name in fail:
                fail.discard(stage.name)
                raise KeyboardInterrupt  # an interrupted run
            out = ctx.run_dir / stage.output
            write_manifest(out, stage.name, {"n": len(log)}, {})
            return out
        return work

    stages = tuple(dataclasses.replace(s, work=fake(s)) for s in runner.STAGES)
    monkeypatch.setattr(runner, "STAGES", stages)
    return log


def _run(tmp_path: Path, force: str | None = None, **changes) -> runner.RunResult:
    data = json.loads(json.dumps(RECIPE))
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    return runner.run_recipe(recipe_from_dict(data), tmp_path / "run", force=force)


def test_rerun_skips_force_redoes_and_changes_propagate(tmp_path: Path, calls: list) -> None:
    first = _run(tmp_path)
    assert [c[0] for c in calls] == [s.name for s in runner.STAGES if s.enabled(recipe_from_dict(RECIPE))]
    assert (tmp_path / "run" / "recipe.yaml").read_text().startswith("name: orch")
    calls.clear()
    again = _run(tmp_path)
    assert calls == [] and set(again.statuses.values()) == {"skipped", "disabled"}  # the safety stages are off
    assert first.statuses["data"] == "done"
    calls.clear()
    _run(tmp_path, force="train")
    assert [c[0] for c in calls] == ["train", "eval", "report"]
    assert all(resume is False for _, resume in calls)  # forced: start over, never resume
    calls.clear()
    _run(tmp_path, eval={"prompts": 2})  # eval settings: baseline and trained evals and the report redo
    assert [c[0] for c in calls] == ["baseline", "eval", "report"]
    calls.clear()
    _run(tmp_path, eval={"prompts": 2, "baseline": False})
    assert [c[0] for c in calls] == ["report"]  # the baseline is off: its absence changes the report only


def test_interrupted_training_resumes(tmp_path: Path, calls: list) -> None:
    calls.fail.add("train")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    assert calls[-1] == ("train", False)
    calls.clear()
    result = _run(tmp_path)
    assert calls[0] == ("train", True) and result.statuses["train"] == "resumed"
    assert result.statuses["data"] == "skipped"


def test_deleted_output_is_redone(tmp_path: Path, calls: list) -> None:
    _run(tmp_path)
    calls.clear()
    import shutil

    shutil.rmtree(tmp_path / "run" / "tokenizer")
    _run(tmp_path)
    assert [c[0] for c in calls][0] == "tokenizer"


def test_unknown_force_stage(tmp_path: Path, calls: list) -> None:
    with pytest.raises(RecipeError, match="no such stage"):
        _run(tmp_path, force="nope")


def test_a_stage_that_failed_midway_is_not_taken_for_finished(tmp_path: Path, calls: list) -> None:
    _run(tmp_path)
    calls.fail.add("eval")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, eval={"prompts": 2})  # eval starts rewriting eval/trained, then dies
    calls.clear()
    _run(tmp_path)  # back to the first settings: the half-rewritten evaluations must be redone
    assert [c[0] for c in calls] == ["baseline", "eval", "report"]
