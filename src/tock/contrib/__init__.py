"""Integrations with other frameworks: each one an extra (``tock[django]``)."""
