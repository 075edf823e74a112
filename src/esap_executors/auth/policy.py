"""Site policy, checked before anything is sent: who may use a site and what their jobs are billed to.

Every decision, allowed or denied, goes to the state store's audit table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import AuthError, PolicyDenied
from ..formats.durations import format_duration
from ..job import JobSpec
from ..sites import Site
from .config import load_config
from .jwt_check import Claims, unverified_issuer, verify_token
from .settings import Billing, GroupRule, SitePolicy
from .tokens import find_token


@dataclass(frozen=True)
class Identity:
    claims: Claims
    source: str  # where the token was found (never the token)


def authorize(site: Site, specs: Sequence[JobSpec], *, run_id: str, store: Any) -> list[JobSpec]:
    """The specs as the site's policy admits them (billing applied), or PolicyDenied/AuthError."""
    policy: SitePolicy | None = site.policy
    if policy is None:
        return list(specs)
    if not policy.needs_token:
        store.record_policy_decision(run_id, site.name, None, (), True,
                                     f"{policy.where()}: no platform token required")
        return list(specs)
    try:
        identity = platform_identity(policy)
    except AuthError as exc:
        store.record_policy_decision(run_id, site.name, None, (), False,
                                     f"{policy.where()}: platform token required: {exc}")
        raise
    claims = identity.claims
    try:
        claims = within_virtual_organisation(site, claims, specs)
        rule = admitting_rule(site, policy, claims)
        billing = _billing_for(policy, rule, claims.subject)
        admitted = [_apply(site, policy, rule, billing, spec) for spec in specs]
    except PolicyDenied as exc:
        store.record_policy_decision(run_id, site.name, claims.subject, claims.groups, False, str(exc))
        raise
    what = ", ".join(f"{k}={v}" for k, v in billing.changes().items()) or "no billing change"
    admitted_by = f"group {rule.group}" if rule else "a valid platform token"
    store.record_policy_decision(
        run_id, site.name, claims.subject, claims.groups, True,
        f"{policy.where(rule.line if rule else None)}: admitted by {admitted_by}; {what}",
    )
    return admitted


def platform_identity(policy: SitePolicy) -> Identity:
    """Verify the user's platform token against the issuer the policy trusts."""
    config = load_config()
    found = find_token(config)
    issuer = policy.issuer or config.issuer  # never merely the issuer the token names
    claimed = unverified_issuer(found.token)
    if claimed is not None and claimed.rstrip("/") != issuer.rstrip("/"):
        raise AuthError(f"the platform token from {found.source} was issued by {claimed}, "
                        f"but this site trusts {issuer}")
    claims = verify_token(found.token, issuer=issuer, audience=policy.audience, session=config.session())
    return Identity(claims, found.source)


def within_virtual_organisation(site: Site, claims: Claims, specs: Sequence[JobSpec]) -> Claims:
    """A job naming a VO (JDL VirtualOrganisation) acts only with the user's groups of that VO."""
    vos = {spec.labels["vo"] for spec in specs if spec.labels.get("vo")}
    if not vos:
        return claims
    if len(vos) > 1:
        raise PolicyDenied(f"site {site.name}: one submission names several VOs ({', '.join(sorted(vos))})")
    vo = "/" + vos.pop().strip("/")
    groups = tuple(g for g in claims.groups if g == vo or g.startswith(vo + "/"))
    if not groups:
        yours = ", ".join(claims.groups) or "none"
        raise PolicyDenied(f"site {site.name}: the job's VirtualOrganisation is {vo[1:]}, "
                           f"but {claims.subject} is in groups [{yours}], none of that VO")
    return replace(claims, groups=groups)


def admitting_rule(site: Site, policy: SitePolicy, claims: Claims) -> GroupRule | None:
    """The first of the policy's groups the user is in; None when the policy lists no groups."""
    if not policy.groups:
        return None
    mine = set(claims.groups)
    for rule in policy.groups:
        if rule.group in mine:
            return rule
    allowed = ", ".join(r.group for r in policy.groups)
    yours = ", ".join(claims.groups) or "none"
    raise PolicyDenied(
        f"site {site.name}: policy {policy.where()} admits only groups [{allowed}]; "
        f"{claims.subject} is in groups [{yours}]"
    )


def _billing_for(policy: SitePolicy, rule: GroupRule | None, subject: str) -> Billing:
    """The group's billing, with a per-subject mapping taking precedence field by field."""
    merged = dict(rule.billing.changes() if rule else {})
    personal = policy.subjects.get(subject)
    if personal is not None:
        merged.update(personal.changes())
    return Billing(**merged)


def _apply(site: Site, policy: SitePolicy, rule: GroupRule | None, billing: Billing, spec: JobSpec) -> JobSpec:
    changes: dict[str, Any] = billing.changes()
    if rule is not None:
        limits = rule.limits
        where = f"policy {policy.where(rule.line)} (group {rule.group})"

        def deny(what: str) -> PolicyDenied:
            return PolicyDenied(f"site {site.name}: {what} exceeds {where}")

        if limits.max_cores is not None and spec.cores > limits.max_cores:
            raise deny(f"{spec.cores} cores > max_cores {limits.max_cores}")
        if limits.max_gpus is not None and spec.gpus > limits.max_gpus:
            raise deny(f"{spec.gpus} GPUs > max_gpus {limits.max_gpus}")
        if limits.max_memory_mib is not None:
            if spec.memory_mib is None:
                changes["memory_mib"] = limits.max_memory_mib
            elif spec.memory_mib > limits.max_memory_mib:
                raise deny(f"{spec.memory_mib} MiB > max_memory {limits.max_memory_mib} MiB")
        if limits.max_walltime_s is not None:
            if spec.walltime_s is None:
                changes["walltime_s"] = limits.max_walltime_s
            elif spec.walltime_s > limits.max_walltime_s:
                raise deny(f"walltime {format_duration(spec.walltime_s)} > max_walltime "
                           f"{format_duration(limits.max_walltime_s)}")
    return spec.with_changes(**changes) if changes else spec
