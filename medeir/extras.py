"""The error for a feature whose optional dependencies (a pip extra of ``medeir``) are not installed."""


class MissingExtraError(ImportError):
    """An optional extra is missing; the message names the packages and the ``pip install`` that brings them."""
