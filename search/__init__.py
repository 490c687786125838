"""Trove's search side: models, catalog, vector store, queries and the engine."""

# The one place Trove's version is written (pyproject.toml reads it): a file that failed is
# tried again when it changes, since a newer Trove may read what an older one could not.
__version__ = "0.1.0"
