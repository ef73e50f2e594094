"""The local classifier scorer on a tiny random sequence classifier built here."""

from __future__ import annotations

import pytest

from ayakit.errors import DataError
from ayakit.safety.scorers import ClassifierScorer, describe, load_scorer
from safety_tiny import build_classifier


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return build_classifier(tmp_path_factory.mktemp("clf") / "clf", languages=["en", "fr"])


def test_scores_are_probabilities(classifier_dir) -> None:
    scorer = ClassifierScorer(classifier_dir)
    scores = scorer.score(["you are kind", "我不能帮助你", ""], "eng")
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert scorer.score(["you are kind"], "eng") == scores[:1]  # deterministic, batch independent
    assert scorer.covers("fra") and not scorer.covers("zho")
    assert describe(scorer)["coverage"] == "declared"


def test_coverage_unverified_without_a_list(tmp_path) -> None:
    scorer = ClassifierScorer(build_classifier(tmp_path / "c2"))
    assert scorer.covers("zul") and scorer.coverage == "unverified"


def test_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ClassifierScorer(tmp_path)
    with pytest.raises(DataError):
        load_scorer("classifier")
    with pytest.raises(DataError):
        load_scorer("nope")
