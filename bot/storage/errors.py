"""What storage raises when a row is not there or not in the state an action needs."""

from __future__ import annotations


class NotFound(LookupError):
    """No row with that id."""


class Conflict(RuntimeError):
    """The row is not in a state that allows this (someone else acted first)."""
