"""Version of the package, kept apart so that packaging can read it without imports."""

__version__ = "0.1.0"
