"""The data rights and value ledger: share the value of data, never the data."""

__all__ = ["__version__"]

__version__ = "0.1.0"
