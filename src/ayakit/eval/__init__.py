"""Evaluation: tasks in ~100 languages, model backends, metrics, results per language and resource tier."""
