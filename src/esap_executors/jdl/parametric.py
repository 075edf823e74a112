"""Parametric jobs: the values of `_PARAM_`, in gLite WMS or DIRAC style."""

from __future__ import annotations

import math
from typing import Any

from .document import JdlDocument

PLACEHOLDER = "_PARAM_"
MAX_JOBS = 10000
MAX_PARAMETER = 2.0**53  # integers a float holds exactly


def is_wms_parametric(doc: JdlDocument) -> bool:
    kinds = [doc.value("Type"), doc.value("JobType")]
    flat: list[Any] = []
    for kind in kinds:
        flat.extend(kind if isinstance(kind, list) else [kind])
    return any(isinstance(k, str) and k.lower() == "parametric" for k in flat)


def parameter_values(doc: JdlDocument) -> list[str] | None:
    """None for an ordinary job; otherwise the `_PARAM_` value of each job, in order.

    WMS (Type or JobType "Parametric"): a number in Parameters is the excluded upper bound,
    values run ParameterStart, +ParameterStep, ... DIRAC (Parameters alone): a number is the
    job count, each value is the previous one times ParameterFactor plus ParameterStep.
    A list in Parameters gives the values themselves in both.
    """
    wms = is_wms_parametric(doc)
    given = doc.value("Parameters")
    if given is None:
        for name in ("ParameterStart", "ParameterStep", "ParameterFactor"):
            if name in doc:
                raise doc.bad(name, f"{name} needs Parameters (the number of jobs or their values)")
        if wms:
            raise doc.bad("JobType" if "JobType" in doc else "Type",
                          "a parametric job needs Parameters (a number or a list of values)")
        return None
    if isinstance(given, list):
        for name in ("ParameterStart", "ParameterStep", "ParameterFactor"):
            if name in doc:
                raise doc.bad(name, f"{name} applies only when Parameters is a number")
        values = []
        for item in given:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise doc.bad("Parameters", "list items must be strings or numbers")
            values.append(_text(item))
    elif isinstance(given, int | float) and not isinstance(given, bool):
        values = _numeric(doc, given, wms)
    else:
        raise doc.bad("Parameters", "expected a number or a list of values")
    if not values:
        raise doc.bad("Parameters", "gives no job at all")
    if len(values) > MAX_JOBS:
        raise doc.bad("Parameters", f"{len(values)} jobs: at most {MAX_JOBS} in one parametric job")
    return values


def _number(doc: JdlDocument, name: str, default: float) -> float:
    value = doc.value(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.bad(name, "expected a number")
    return value


def _numeric(doc: JdlDocument, given: float, wms: bool) -> list[str]:
    start = _number(doc, "ParameterStart", 0)
    step = _number(doc, "ParameterStep", 1)
    values: list[float] = []
    if wms:
        if "ParameterFactor" in doc:
            raise doc.bad("ParameterFactor", "is DIRAC's; with Type/JobType \"Parametric\" (gLite WMS) "
                                             "use ParameterStart and ParameterStep")
        if step <= 0:
            raise doc.bad("ParameterStep", "must be positive")
        value = start
        while value < given and len(values) <= MAX_JOBS:
            values.append(value)
            value += step
    else:
        factor = _number(doc, "ParameterFactor", 1)
        for name, number in (("ParameterStart", start), ("ParameterStep", step), ("ParameterFactor", factor)):
            if not math.isfinite(number) or abs(number) > MAX_PARAMETER:
                raise doc.bad(name, f"{number!r} is out of range (at most {MAX_PARAMETER:.0e})")
        if not float(given).is_integer() or given < 1:
            raise doc.bad("Parameters", "the number of jobs must be a whole number >= 1")
        value = start
        for _ in range(min(int(given), MAX_JOBS + 1)):
            values.append(value)
            value = value * factor + step
            if abs(value) > MAX_PARAMETER:  # stop before the numbers grow without bound
                values.append(value)
                break
    _check_values(doc, values)
    return [_text(v) for v in values]


def _check_values(doc: JdlDocument, values: list[float]) -> None:
    """Values that grow past what a float holds exactly (Parameters = 10000; ParameterFactor = 10)."""
    for value in values:
        if not math.isfinite(value) or abs(value) > MAX_PARAMETER:
            raise doc.bad("ParameterFactor" if "ParameterFactor" in doc else "ParameterStep",
                          f"the parameter values grow beyond {MAX_PARAMETER:.0e}; use fewer jobs or a "
                          "smaller factor")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def substitute(value: Any, parameter: str | None) -> Any:
    """`_PARAM_` replaced in a string or in the strings of a list."""
    if parameter is None:
        return value
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, parameter)
    if isinstance(value, list):
        return [substitute(item, parameter) for item in value]
    return value
