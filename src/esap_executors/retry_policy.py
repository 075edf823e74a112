"""Retries by cause: which failures are retried, and what changes in the next attempt's request.

A policy comes from a site's `retry:` block (sites.yaml), `esap run --retry CAUSE[:CHANGE,...]`
and `--max-retries N`, the CWL hint `esap:Retry` or a Snakemake resource. It travels in the job's
JobSpec (merged with its site's defaults when the job is prepared), so whoever follows the job
after a crash retries it the same way.

    retry: {max: 3, OUT_OF_MEMORY: {memory: x2, up_to: 64G}, TIMEOUT: {walltime: x1.5, up_to: 24h},
            NODE_FAIL: {avoid_node: true}}
    --retry OUT_OF_MEMORY:memory=x2,up_to=64G --retry NODE_FAIL:avoid_node

A change multiplies (x2, ×1.5, *2) or adds (+512M, +30m); `up_to` caps the changed resource. The
site's limits cap it as well; a retry that can grow no further is refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .causes import Cause, parse_cause
from .errors import BadInput
from .formats.durations import parse_walltime_seconds
from .formats.memory import parse_memory_mib

DEFAULT_MAX_RETRIES = 3
RESOURCES = ("memory", "walltime")
RULE_KEYS = {*RESOURCES, "up_to", "memory_up_to", "walltime_up_to", "avoid_node"}


@dataclass(frozen=True)
class Scale:
    """new = old * factor + add, never above up_to (MiB for memory, seconds for walltime)."""

    factor: float = 1.0
    add: int = 0
    up_to: int | None = None

    def describe(self, unit: str) -> str:
        text = f"x{self.factor:g}" if self.factor != 1.0 else ""
        if self.add:
            text += f"+{self.add} {unit}"
        return text or "unchanged"


@dataclass(frozen=True)
class CauseRule:
    cause: str  # a causes.Cause value
    memory: Scale | None = None
    walltime: Scale | None = None
    avoid_node: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CauseRule:
        return cls(
            cause=str(data["cause"]),
            memory=Scale(**data["memory"]) if data.get("memory") else None,
            walltime=Scale(**data["walltime"]) if data.get("walltime") else None,
            avoid_node=bool(data.get("avoid_node")),
        )


@dataclass(frozen=True)
class RetryPolicy:
    rules: tuple[CauseRule, ...] = ()
    max_retries: int | None = None  # None: DEFAULT_MAX_RETRIES

    @property
    def limit(self) -> int:
        return DEFAULT_MAX_RETRIES if self.max_retries is None else self.max_retries

    def rule_for(self, cause: str | None) -> CauseRule | None:
        return next((r for r in self.rules if r.cause == cause), None)

    def under(self, defaults: RetryPolicy | None) -> RetryPolicy:
        """This policy, with the rules and maximum of `defaults` (a site's) where it has none."""
        if defaults is None:
            return self
        own = {r.cause for r in self.rules}
        return RetryPolicy(
            rules=self.rules + tuple(r for r in defaults.rules if r.cause not in own),
            max_retries=self.max_retries if self.max_retries is not None else defaults.max_retries,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        return cls(rules=tuple(CauseRule.from_dict(r) for r in data.get("rules") or ()),
                   max_retries=data.get("max_retries"))


# --- parsing -------------------------------------------------------------------------------------
def parse_cli(values: Sequence[str], max_retries: int | None) -> RetryPolicy | None:
    """`--retry CAUSE[:CHANGE,...]` (repeatable) and `--max-retries N`."""
    if not values and max_retries is None:
        return None
    if max_retries is not None and max_retries < 0:
        raise BadInput(f"{max_retries}: cannot be negative", field="--max-retries")
    rules = []
    for value in values:
        cause_text, _, changes_text = value.partition(":")
        cause = parse_cause(cause_text, field="--retry")
        changes: dict[str, Any] = {}
        for change in filter(None, (c.strip() for c in changes_text.split(","))):
            key, has_value, amount = change.partition("=")
            changes[key.strip()] = amount.strip() if has_value else True
        rules.append(_rule(cause, changes, field="--retry"))
    _no_cause_twice(rules, "--retry")
    return RetryPolicy(rules=tuple(rules), max_retries=max_retries)


def parse_block(block: Mapping[str, Any], *, source: str | None = None, prefix: str = "retry",
                line_of: Any = None) -> RetryPolicy:
    """A `retry:` mapping (sites.yaml, a CWL hint): `max` and one entry per cause."""
    rules = []
    max_retries = None
    for key, value in block.items():
        line = line_of(key) if line_of else None
        try:
            if key == "max":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise BadInput("expected a whole number", field=f"{prefix}.max")
                max_retries = value
                continue
            cause = parse_cause(str(key), field=f"{prefix}.{key}")
            if value is None or value is True:
                value = {}
            if not isinstance(value, Mapping):
                raise BadInput("expected a mapping of changes (memory, walltime, up_to, avoid_node)",
                               field=f"{prefix}.{key}")
            rules.append(_rule(cause, dict(value), field=f"{prefix}.{key}"))
        except BadInput as exc:
            raise BadInput(exc.detail, source=source, line=line, field=exc.field) from None
    _no_cause_twice(rules, prefix)
    return RetryPolicy(rules=tuple(rules), max_retries=max_retries)


def _no_cause_twice(rules: Iterable[CauseRule], field: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.cause in seen:
            raise BadInput(f"{rule.cause} is given twice", field=field)
        seen.add(rule.cause)


def _rule(cause: Cause, changes: dict[str, Any], *, field: str) -> CauseRule:
    for key in changes:
        if key not in RULE_KEYS:
            raise BadInput(f"unknown change {key!r} (known: {', '.join(sorted(RULE_KEYS))})", field=field)
    scales: dict[str, Scale] = {}
    for resource in RESOURCES:
        if resource in changes:
            scales[resource] = _scale(str(changes[resource]), resource, field=f"{field}.{resource}")
    shared_cap = changes.get("up_to")
    if shared_cap is not None and len(scales) != 1:
        raise BadInput("up_to needs exactly one of memory and walltime (else memory_up_to, walltime_up_to)",
                       field=f"{field}.up_to")
    for resource in RESOURCES:
        cap = changes.get(f"{resource}_up_to")
        if cap is None and shared_cap is not None and resource in scales:
            cap = shared_cap
        if cap is not None:
            if resource not in scales:
                raise BadInput(f"a cap for {resource}, which this rule does not change", field=field)
            scales[resource] = replace(scales[resource], up_to=_amount(str(cap), resource, f"{field}.up_to"))
    avoid = changes.get("avoid_node", False)
    if isinstance(avoid, str):
        if avoid.lower() not in ("true", "false", "yes", "no"):
            raise BadInput(f"{avoid!r}: expected true or false", field=f"{field}.avoid_node")
        avoid = avoid.lower() in ("true", "yes")
    return CauseRule(cause=cause.value, memory=scales.get("memory"), walltime=scales.get("walltime"),
                     avoid_node=bool(avoid))


def _scale(text: str, resource: str, *, field: str) -> Scale:
    text = text.strip()
    if text[:1] in ("x", "×", "*") or text[-1:] in ("x", "×"):
        number = text.strip("x×*").strip()
        try:
            factor = float(number)
        except ValueError:
            raise BadInput(f"{text!r}: expected a factor like x2 or ×1.5", field=field) from None
        if not math.isfinite(factor) or factor < 1.0:
            raise BadInput(f"{text!r}: a retry's factor is at least 1", field=field)
        return Scale(factor=factor)
    if text.startswith("+"):
        return Scale(add=_amount(text[1:], resource, field))
    raise BadInput(f"{text!r}: expected a factor (x2, ×1.5) or an increase (+512M, +30m)", field=field)


def _amount(text: str, resource: str, field: str) -> int:
    if resource == "memory":
        return parse_memory_mib(text, field=field)
    return parse_walltime_seconds(text, field=field)
