"""Helpers for tests that are not test doubles: reading the database the way a test checks it."""
