"""The version of this package."""

__all__ = ["VERSION"]

VERSION = "1.8.0"
