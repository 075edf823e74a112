"""A site's `policy:` (who may use it, billed to what) and `credentials:` (what its scheduler accepts).

    policy:
      require_token: true            # a valid platform token is needed even without group rules
      issuer: https://iam-escape.cloud.cnaf.infn.it/   # trusted issuer (default: the login's)
      audience: urn:ci:api           # the token must carry this `aud` (optional)
      groups:                        # allowed groups, first match bills the job
        /escape/cta: {account: cta, accounting_group: group_cta, max_cores: 4, max_walltime: 1h}
        /escape/lofar: {account: lofar}
      subjects:                      # platform identity (`sub`) -> centre account
        alice: {account: alice-cta}

    credentials:
      slurm_jwt: {env: VAR} | {file: PATH} | {scontrol: true, lifespan: SECONDS}
      slurm_user: NAME
      htcondor_idtoken: PATH
      htcondor_auth: [IDTOKENS, FS]
      scitoken: {env: VAR} | {file: PATH}          # reserved for SciTokens sites
      rosetta_session: {env: VAR} | {file: PATH}   # reserved for Rosetta session credentials
      rosetta_login: {username: NAME, password: {file: PATH} | {env: VAR}} | {authtoken: {file: PATH}}
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput
from ..limits import SiteLimits, parse_limits
from ..yamlsource import LocatedDict, no_unknown_keys

POLICY_KEYS = {"require_token", "issuer", "audience", "groups", "subjects"}
BILLING_KEYS = {"account", "accounting_group", "qos", "partition"}
GROUP_LIMIT_KEYS = {"max_cores", "max_memory", "max_walltime", "max_gpus"}
CREDENTIAL_KEYS = {
    "slurm_jwt", "slurm_user", "htcondor_idtoken", "htcondor_auth", "scitoken", "rosetta_session",
    "rosetta_login",
}

@dataclass(frozen=True)
class Billing:
    """What a job is charged to at the centre: SLURM account/qos/partition, HTCondor group."""

    account: str | None = None
    accounting_group: str | None = None
    qos: str | None = None
    partition: str | None = None

    def changes(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class GroupRule:
    group: str  # normalised: leading "/", e.g. /escape/cta
    billing: Billing
    limits: SiteLimits
    line: int


@dataclass(frozen=True)
class SitePolicy:
    require_token: bool = False
    issuer: str | None = None
    audience: str | None = None
    groups: tuple[GroupRule, ...] = ()
    subjects: Mapping[str, Billing] = field(default_factory=dict)
    source: str = ""
    line: int = 0

    @property
    def needs_token(self) -> bool:
        return self.require_token or bool(self.groups) or bool(self.subjects)

    def where(self, line: int | None = None) -> str:
        return f"{self.source}:{line or self.line}"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret is read from at use time (never copied into the catalogue or the store)."""

    env: str | None = None
    file: str | None = None

    def read(self) -> str | None:
        if self.env:
            return os.environ.get(self.env) or None
        if self.file:
            try:
                with open(os.path.expanduser(self.file)) as handle:
                    return handle.read().strip() or None
            except OSError:
                return None
        return None


@dataclass(frozen=True)
class SiteCredentials:
    slurm_jwt_env: str | None = None
    slurm_jwt_file: str | None = None
    slurm_jwt_scontrol: bool = False
    slurm_jwt_lifespan: int = 3600
    slurm_user: str | None = None
    htcondor_idtoken: str | None = None
    htcondor_auth: tuple[str, ...] = ()
    scitoken: SecretSource | None = None
    rosetta_session: SecretSource | None = None
    rosetta_username: str | None = None
    rosetta_password: SecretSource | None = None  # with rosetta_username
    rosetta_authtoken: SecretSource | None = None  # or the profile's auth token alone


def normalise_group(name: str) -> str:
    """IAM's `groups` has `escape/cta`, `wlcg.groups` has `/escape/cta`: compare with the slash."""
    name = name.strip()
    return name if name.startswith("/") else "/" + name


def parse_policy(block: Any, source: str, line: int, field: str) -> SitePolicy:
    policy = _mapping(block, source, line, field)
    no_unknown_keys(policy, POLICY_KEYS, source, field)
    require = policy.get("require_token", False)
    if not isinstance(require, bool):
        raise _bad(policy, "require_token", "expected true or false", source, field)
    issuer = _optional_text(policy, "issuer", source, field)
    if issuer is not None:
        from .config import check_issuer_url

        try:
            check_issuer_url(issuer)
        except BadInput as exc:
            raise _bad(policy, "issuer", exc.detail, source, field) from None
    audience = _optional_text(policy, "audience", source, field)
    groups_block = _mapping(policy.get("groups") or _empty(policy, "groups"), source,
                            policy.line_of("groups"), f"{field}.groups")
    rules = []
    for group, settings in groups_block.items():
        rule_field = f"{field}.groups.{group}"
        rule_line = groups_block.line_of(group)
        rule_block = _mapping(settings or _empty(groups_block, group), source, rule_line, rule_field)
        no_unknown_keys(rule_block, BILLING_KEYS | GROUP_LIMIT_KEYS, source, rule_field)
        billing = _billing(rule_block, source, rule_field)
        limit_block = _subset(rule_block, GROUP_LIMIT_KEYS)
        limits = parse_limits(limit_block, source, rule_field)
        rules.append(GroupRule(normalise_group(group), billing, limits, rule_line))
    subjects_block = _mapping(policy.get("subjects") or _empty(policy, "subjects"), source,
                              policy.line_of("subjects"), f"{field}.subjects")
    subjects = {}
    for subject, settings in subjects_block.items():
        subject_field = f"{field}.subjects.{subject}"
        subject_block = _mapping(settings, source, subjects_block.line_of(subject), subject_field)
        no_unknown_keys(subject_block, BILLING_KEYS, source, subject_field)
        subjects[str(subject)] = _billing(subject_block, source, subject_field)
    return SitePolicy(require_token=require, issuer=issuer, audience=audience, groups=tuple(rules),
                      subjects=subjects, source=source, line=line)


def parse_credentials(block: Any, source: str, line: int, field: str, *,
                      auth_methods: Collection[str] = (), backend: str = "") -> SiteCredentials:
    """The `credentials:` block of a site whose backend accepts `auth_methods` (its capabilities)."""
    creds = _mapping(block, source, line, field)
    no_unknown_keys(creds, CREDENTIAL_KEYS, source, field)
    values: dict[str, Any] = {}
    if "slurm_jwt" in creds:
        jwt_field = f"{field}.slurm_jwt"
        jwt_block = _mapping(creds["slurm_jwt"], source, creds.line_of("slurm_jwt"), jwt_field)
        no_unknown_keys(jwt_block, {"env", "file", "scontrol", "lifespan"}, source, jwt_field)
        chosen = [k for k in ("env", "file", "scontrol") if k in jwt_block]
        if len(chosen) != 1:
            raise BadInput("give exactly one of env, file, scontrol", source=source,
                           line=jwt_block.line, field=jwt_field)
        if "env" in jwt_block:
            values["slurm_jwt_env"] = _text(jwt_block, "env", source, jwt_field)
        if "file" in jwt_block:
            values["slurm_jwt_file"] = os.path.expanduser(_text(jwt_block, "file", source, jwt_field))
        if "scontrol" in jwt_block:
            if jwt_block["scontrol"] is not True:
                raise _bad(jwt_block, "scontrol", "expected true", source, jwt_field)
            values["slurm_jwt_scontrol"] = True
        if "lifespan" in jwt_block:
            lifespan = jwt_block["lifespan"]
            if isinstance(lifespan, bool) or not isinstance(lifespan, int) or lifespan < 1:
                raise _bad(jwt_block, "lifespan", "expected a positive number of seconds", source, jwt_field)
            values["slurm_jwt_lifespan"] = lifespan
    if "slurm_user" in creds:
        values["slurm_user"] = _text(creds, "slurm_user", source, field)
    if "htcondor_idtoken" in creds:
        values["htcondor_idtoken"] = os.path.expanduser(_text(creds, "htcondor_idtoken", source, field))
    if "htcondor_auth" in creds:
        methods = creds["htcondor_auth"]
        if isinstance(methods, str):
            methods = [m.strip() for m in methods.split(",") if m.strip()]
        if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
            raise _bad(creds, "htcondor_auth", "expected a list of methods, e.g. [IDTOKENS, FS]", source, field)
        unknown = [m for m in methods if m.upper() not in auth_methods]
        if unknown:
            known = ", ".join(sorted(auth_methods)) or "none: its authentication is not chosen here"
            raise _bad(creds, "htcondor_auth",
                       f"method {unknown[0]!r} is not one backend {backend} accepts (known: {known})", source, field)
        values["htcondor_auth"] = tuple(m.upper() for m in methods)
    if "rosetta_login" in creds:
        values.update(_rosetta_credentials(creds, source, field))
    for key in ("scitoken", "rosetta_session"):
        if key in creds:
            values[key] = _secret_source(creds, key, source, field)
    return SiteCredentials(**values)


def _rosetta_credentials(creds: LocatedDict, source: str, field: str) -> dict[str, Any]:
    sub_field = f"{field}.rosetta_login"
    block = _mapping(creds["rosetta_login"], source, creds.line_of("rosetta_login"), sub_field)
    no_unknown_keys(block, {"username", "password", "authtoken"}, source, sub_field)
    values: dict[str, Any] = {}
    if "authtoken" in block:
        if "password" in block:
            raise BadInput("give a username with a password, or an authtoken, not both", source=source,
                           line=block.line, field=sub_field)
        values["rosetta_authtoken"] = _secret_source(block, "authtoken", source, sub_field)
    elif "username" in block and "password" in block:
        values["rosetta_username"] = _text(block, "username", source, sub_field)
        values["rosetta_password"] = _secret_source(block, "password", source, sub_field)
    else:
        raise BadInput("give a username with a password ({file: …} or {env: …}), or an authtoken",
                       source=source, line=block.line, field=sub_field)
    return values


def _billing(block: LocatedDict, source: str, field: str) -> Billing:
    return Billing(**{k: _text(block, k, source, field) for k in BILLING_KEYS if k in block})


def _secret_source(block: LocatedDict, key: str, source: str, field: str) -> SecretSource:
    sub_field = f"{field}.{key}"
    sub = _mapping(block[key], source, block.line_of(key), sub_field)
    no_unknown_keys(sub, {"env", "file"}, source, sub_field)
    if len(sub) != 1:
        raise BadInput("give exactly one of env, file", source=source, line=sub.line, field=sub_field)
    if "env" in sub:
        return SecretSource(env=_text(sub, "env", source, sub_field))
    return SecretSource(file=os.path.expanduser(_text(sub, "file", source, sub_field)))


def _mapping(value: Any, source: str, line: int, field: str) -> LocatedDict:
    if not isinstance(value, LocatedDict):
        raise BadInput("expected a mapping", source=source, line=line, field=field)
    return value


def _empty(parent: LocatedDict, key: str) -> LocatedDict:
    empty = LocatedDict()
    empty.source, empty.line, empty.key_lines = parent.source, parent.line_of(key), {}
    return empty


def _subset(block: LocatedDict, keys: set[str]) -> LocatedDict:
    subset = LocatedDict({k: v for k, v in block.items() if k in keys})
    subset.source, subset.line = block.source, block.line
    subset.key_lines = {k: block.line_of(k) for k in subset}
    return subset


def _text(block: LocatedDict, key: str, source: str, field: str) -> str:
    value = block.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise _bad(block, key, "expected a non-empty name", source, field)
    return str(value).strip()


def _optional_text(block: LocatedDict, key: str, source: str, field: str) -> str | None:
    return _text(block, key, source, field) if key in block else None


def _bad(block: LocatedDict, key: str, message: str, source: str, field: str) -> BadInput:
    return BadInput(message, source=source, line=block.line_of(key), field=f"{field}.{key}")
