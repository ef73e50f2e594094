"""Moved to ayakit.models.encoding; re-exported so code written against the old path keeps working for one release."""

from ayakit.models.encoding import Encoded, encode, encode_source, encode_target  # noqa: F401
