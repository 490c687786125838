"""Readers for every kind of file, run in isolated workers with time and memory caps.

They turn files into pixels, samples, frames and text; they know no models and no storage.
"""
