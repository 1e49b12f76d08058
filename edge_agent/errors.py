"""Errors that carry enough context for one clear message to the user."""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base class: the message is meant to be shown to a person as it is."""


class ConfigError(EdgeAgentError):
    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class ModelError(EdgeAgentError):
    pass


class ImageError(EdgeAgentError):
    """An image that cannot be decoded; names the file."""


class HotlistError(EdgeAgentError):
    """A hotlist file that is unusable as a whole; the list in force stays."""
