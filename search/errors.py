"""Errors a user can act on. The CLI and UI print their message as one clear paragraph."""

from __future__ import annotations


class TroveError(Exception):
    """Base class: the message says what happened and what to do about it."""


class UnknownModelError(TroveError):
    pass


class WeightsNotFoundError(TroveError):
    pass


class ModelMismatchError(TroveError):
    """The library was built with a different model than the one asked for."""


class AlreadyIndexingError(TroveError):
    pass


class QueryError(TroveError):
    pass


class LibraryRootError(TroveError):
    pass


class NoLibraryError(TroveError):
    """The data folder holds no catalog yet."""


class BadFileError(TroveError):
    """A file that cannot be indexed; recorded in the catalog with this message, then skipped."""
