"""The one error a user can cause by a value they gave: :class:`ConfigError` names the field and the fix.

It lives at the bottom of the house so every floor (the layer, the memory budget,
the run description, the CLI) raises and catches the same thing.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A user-fixable problem with a run description.

    Attributes:
        field: the name of the offending field (``"in_modes"``, ``"lr"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
