"""Trove's search side: models, catalog, vector store, queries and the engine."""
