"""What Trove keeps on disk: the SQLite catalog (the truth), FAISS indexes (its caches) and
the word index."""
