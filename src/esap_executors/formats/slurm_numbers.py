"""slurmrestd's integers: plain numbers (v0.0.38) or {set, infinite, number} structs (v0.0.40+)."""

from __future__ import annotations

from typing import Any


def rest_number(value: Any) -> int | None:
    """The number, or None when it is unset, infinite or not a number."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def rest_number_struct(value: int | None, *, infinite: bool = False) -> dict[str, Any]:
    """The v0.0.40+ struct for a number; None is "not set"."""
    return {"set": value is not None or infinite, "infinite": infinite, "number": value or 0}
