"""Alembic migrations of the annotation database (run by ayakit.annotate.db.upgrade)."""
