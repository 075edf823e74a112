"""ClassAd matchmaking of a job's Requirements and Rank against the sites' ads (gLite WMS style).

Expressions are parsed and evaluated by classad2; `other.` (= TARGET.) is the site.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import classad2

from .errors import BadInput
from .formats.expressions import parse_classad_expression
from .job import JobSpec
from .sites import Catalogue, Site

log = logging.getLogger(__name__)

_DISCOVERED: dict[str, dict[str, Any]] = {}
_OTHER_REF = re.compile(r"\b(?:other|target)\.([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


@dataclass
class MatchResult:
    requirements: str
    matched: list[tuple[Site, float]] = field(default_factory=list)  # best rank first
    rejected: dict[str, list[str]] = field(default_factory=dict)  # site -> failing terms explained


def discovered_attributes(site: Site) -> dict[str, Any]:
    """What the site's backend reports about itself, once per process; {} when unreachable."""
    if site.name not in _DISCOVERED:
        from .site_backends import open_backend

        try:
            backend = open_backend(site)
            try:
                _DISCOVERED[site.name] = dict(backend.describe())
            finally:
                backend.close()
        except Exception as exc:  # an unreachable site still has its YAML attributes
            log.debug("discovery of site %s failed: %s", site.name, exc)
            _DISCOVERED[site.name] = {}
    return _DISCOVERED[site.name]


def site_ad(site: Site, *, discover: bool = True) -> classad2.ClassAd:
    """The site's ClassAd: discovered values, overridden or extended by the YAML attributes."""
    values: dict[str, Any] = {"Name": site.name, "EsapBackend": site.backend}
    if discover:
        values.update(discovered_attributes(site))
    values.update(site.attributes)
    ad = classad2.ClassAd()
    for name, value in values.items():
        ad[name] = _classad_value(value)
    return ad


def _classad_value(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("="):
        return classad2.ExprTree(value[1:])  # `=expr` in YAML: an expression, not a string
    return value


def parse_expression(text: str, what: str) -> classad2.ExprTree:
    tree = parse_classad_expression(text, field=what)
    assert isinstance(tree, classad2.ExprTree)
    return tree


def split_conjuncts(expression: str) -> list[str]:
    """Top-level `&&` terms, respecting parentheses, brackets and string literals."""
    terms: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    i = 0
    text = expression
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith("&&", i):
            terms.append(text[start:i].strip())
            start = i + 2
            i += 2
            continue
        i += 1
    terms.append(text[start:].strip())
    stripped = [t for t in terms if t]
    if len(stripped) == 1 and stripped[0].startswith("(") and stripped[0].endswith(")"):
        inner = stripped[0][1:-1]
        if split_conjuncts(inner) != [inner.strip()]:
            return split_conjuncts(inner)
    return stripped


def evaluate(expression: str, job: classad2.ClassAd, site: classad2.ClassAd) -> Any:
    return classad2.ExprTree(expression).eval(job, site)


def explain_failure(term: str, job: classad2.ClassAd, ad: classad2.ClassAd) -> str:
    names = sorted({m.group(1) for m in _OTHER_REF.finditer(term)}, key=str.lower)
    shown = []
    for name in names:
        value = ad.get(name)
        shown.append(f"{name} = {'undefined' if value is None else _show(value)}")
    suffix = f" ({', '.join(shown)})" if shown else ""
    return f"{term}{suffix}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def job_ad(spec: JobSpec, extra: Mapping[str, Any] | None = None) -> classad2.ClassAd:
    ad = classad2.ClassAd()
    ad["CpuNumber"] = spec.cores
    ad["RequestCpus"] = spec.cores
    ad["RequestGPUs"] = spec.gpus
    ad["RequestMemory"] = spec.memory_mib or 0
    ad["WallTime"] = spec.walltime_s or 0
    for name, value in (extra or {}).items():
        ad[name] = value
    return ad


def match(
    catalogue: Catalogue,
    requirements: str | None,
    rank: str | None = None,
    *,
    spec: JobSpec | None = None,
    sites: list[str] | None = None,
) -> MatchResult:
    requirements = requirements or "true"
    parse_expression(requirements, "Requirements")
    if rank:
        parse_expression(rank, "Rank")
    job = job_ad(spec or JobSpec(argv=("true",)))
    job["Requirements"] = classad2.ExprTree(requirements)
    result = MatchResult(requirements=requirements)
    for name in sites or catalogue.names():
        site = catalogue.get(name)
        ad = site_ad(site)
        if evaluate(requirements, job, ad) is True:
            value = evaluate(rank, job, ad) if rank else 0
            result.matched.append((site, float(value) if isinstance(value, int | float) else 0.0))
            continue
        failing = [
            explain_failure(term, job, ad)
            for term in split_conjuncts(requirements)
            if evaluate(term, job, ad) is not True
        ]
        result.rejected[name] = failing or [requirements]
    result.matched.sort(key=lambda pair: (-pair[1], pair[0].name != "local", pair[0].name))
    return result


def no_match_message(result: MatchResult) -> str:
    lines = [f"no site satisfies Requirements = {result.requirements}"]
    for name, terms in sorted(result.rejected.items()):
        lines.append(f"  {name}: fails {'; '.join(terms)}")
    return "\n".join(lines)


def choose_site(catalogue: Catalogue, spec: JobSpec) -> Site:
    result = match(catalogue, spec.requirements, spec.rank, spec=spec)
    if not result.matched:
        raise BadInput(no_match_message(result), field="Requirements")
    return result.matched[0][0]
