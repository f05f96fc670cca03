"""gensvc: remote genomics services as reproducible workflow steps."""

__version__ = "0.1.0"
