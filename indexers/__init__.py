"""Trove's indexing side: turning library folders into catalog rows and vectors."""
