"""Errors that mean the user's input is wrong: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

from ayakit.languages import UnknownLanguageError
from ayakit.recipe import RecipeError


class DataError(ValueError):
    """Bad input data: the message names the file and line, or the source and column."""


# Every exception type the CLI reports as one line.
UserError = (RecipeError, UnknownLanguageError, DataError, FileNotFoundError)
