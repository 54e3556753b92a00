"""Tests of model/: the worker queue, both backends, loading errors and `punchline generate`."""
