"""The site catalogue: YAML mapping site name -> settings, with a built-in `local` site."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .auth.settings import SiteCredentials, SitePolicy, parse_credentials, parse_policy
from .backend_registry import BACKEND_MODULES, backend_class
from .errors import BadInput
from .formats.bounds import MAX_COUNT
from .formats.expressions import parse_classad_expression
from .formats.printable import escaped, shortened, shown
from .limits import SiteLimits, parse_limits
from .paths import config_dir, default_work_root
from .retry_policy import RetryPolicy, parse_block
from .staging.site_settings import StagingSettings, parse_staging
from .yamlsource import LocatedDict, load_yaml, no_unknown_keys

__all__ = ["Catalogue", "ContainerSettings", "PollSettings", "Site", "SiteLimits", "parse_limits", "parse_site"]

SITE_KEYS = {
    "backend", "description", "shared_filesystem", "work_root", "options", "container",
    "defaults", "poll", "attributes", "limits", "execute", "modules", "policy", "credentials",
    "retry", "staging",
}
DEFAULT_KEYS = {"account", "partition", "qos", "accounting_group"}
POLL_KEYS = {"start", "floor", "ceiling"}
CONTAINER_KEYS = {"runtime", "images"}
EXECUTE_KEYS = {"python", "snakemake", "image"}  # image: where python and snakemake are (step_images sites)
CONTAINER_RUNTIMES = {"podman", "apptainer"}
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# numeric backend options that may be 0 (never release a held job, no GPU); the others count
# something that must be there (cores, workers, seconds)
ZERO_ALLOWED_OPTIONS = {"release_holds", "max_gpus"}
MAX_POLL_S = 86400.0


@dataclass(frozen=True)
class PollSettings:
    start: float = 5.0
    floor: float = 1.0
    ceiling: float = 120.0
    given: frozenset[str] = frozenset()  # the keys the catalogue sets; the others a backend may shorten


@dataclass(frozen=True)
class ContainerSettings:
    runtime: str | None = None  # podman | apptainer
    images: Mapping[str, str] = field(default_factory=dict)  # image name -> local file/dir/tag


@dataclass(frozen=True)
class Site:
    name: str
    backend: str
    shared_filesystem: bool = True
    work_root: str = ""
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    container: ContainerSettings = field(default_factory=ContainerSettings)
    defaults: Mapping[str, str] = field(default_factory=dict)
    poll: PollSettings = field(default_factory=PollSettings)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    limits: SiteLimits = field(default_factory=SiteLimits)
    execute: Mapping[str, str] = field(default_factory=dict)  # execute-side python, snakemake
    modules: Mapping[str, str] = field(default_factory=dict)  # software name -> module
    policy: SitePolicy | None = None
    credentials: SiteCredentials | None = None
    retry: RetryPolicy | None = None  # the retry policy of jobs that bring none (retry_policy.py)
    staging: StagingSettings = field(default_factory=StagingSettings)  # where URL inputs are fetched
    source: str = "<built-in>"
    line: int = 0

    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def builtin_local() -> Site:
    return Site(
        name="local",
        backend="local",
        description="this machine (built-in)",
        work_root=str(default_work_root()),
        options={"max_cores": os.cpu_count() or 1},
    )


class Catalogue:
    def __init__(self, sites: Mapping[str, Site], source: str | None = None) -> None:
        self.sites: dict[str, Site] = dict(sites)
        self.source = source

    def get(self, name: str) -> Site:
        site = self.sites.get(name)
        if site is None:
            known = ", ".join(sorted(self.sites))
            where = f" in {self.source}" if self.source else ""
            raise BadInput(f"unknown site {name!r}{where} (known: {known})", field="site")
        return site

    def names(self) -> list[str]:
        return sorted(self.sites)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalogue:
        chosen = catalogue_path(path)
        sites: dict[str, Site] = {"local": builtin_local()}
        if chosen is None:
            return cls(sites)
        data = load_yaml(chosen)
        source = str(chosen)
        if data is None:
            return cls(sites, source)
        if not isinstance(data, LocatedDict):
            raise BadInput("the catalogue must be a mapping of site name -> settings", source=source, line=1)
        for name, settings in data.items():
            if not SITE_NAME.fullmatch(name):
                raise BadInput(f"site name {shown(name, 40)} is not a name (letters, digits, '.', '_', '-'; "
                               "at most 64, starting with a letter or digit)", source=source,
                               line=data.line_of(name), field=escaped(name)[:64] or "site name")
            sites[name] = parse_site(name, settings, source, data.line_of(name))
        return cls(sites, source)


def catalogue_path(explicit: str | Path | None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise BadInput("no such sites file", source=str(path), field="--sites")
        return path  # anything but a regular file is refused by name when it is read
    env = os.environ.get("ESAP_SITES")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise BadInput("no such sites file", source=str(path), field="ESAP_SITES")
        return path
    user = config_dir() / "sites.yaml"
    return user if user.is_file() else None


def parse_site(name: str, settings: Any, source: str, line: int) -> Site:
    if not isinstance(settings, LocatedDict):
        raise BadInput("site settings must be a mapping", source=source, line=line, field=name)
    no_unknown_keys(settings, SITE_KEYS, source, name)

    def bad(key: str, message: str, block: LocatedDict = settings, prefix: str = name) -> BadInput:
        return BadInput(message, source=source, line=block.line_of(key), field=f"{prefix}.{key}")

    backend = settings.get("backend")
    if not isinstance(backend, str):
        raise BadInput("missing or not a name", source=source, line=settings.line, field=f"{name}.backend")
    if backend not in BACKEND_MODULES:
        known = ", ".join(sorted(BACKEND_MODULES))
        raise bad("backend", f"unknown backend {backend!r} (known: {known})")
    options = _block(settings, "options", source, name)
    backend_type = backend_class(backend)
    capabilities, option_types = backend_type.capabilities, backend_type.option_types
    for key, value in options.items():
        expected = option_types.get(key)
        if expected is None:
            known = ", ".join(sorted(option_types)) or "none"
            raise bad(key, f"unknown option for backend {backend} (known: {known})", options, f"{name}.options")
        if not isinstance(value, expected) or isinstance(value, bool) and expected is int:
            raise bad(key, f"expected {_type_name(expected)}, got {shortened(repr(value), 40)}", options,
                      f"{name}.options")
        if isinstance(value, int | float) and not isinstance(value, bool):
            least = 0 if key in ZERO_ALLOWED_OPTIONS else 1
            if not math.isfinite(value) or not least <= value <= MAX_COUNT:
                raise bad(key, f"{shortened(repr(value), 40)} is out of range ({least} to {MAX_COUNT})", options,
                          f"{name}.options")
    shared = settings.get("shared_filesystem", True)
    if not isinstance(shared, bool):
        raise bad("shared_filesystem", "expected true or false")
    if not shared and not capabilities.file_transfer:
        raise bad("shared_filesystem", f"false needs a backend that transfers the jobs' files; {backend} does not")
    work_root = settings.get("work_root") or str(default_work_root())
    if not isinstance(work_root, str):
        raise bad("work_root", "expected a directory path")
    if not os.path.isabs(os.path.expanduser(work_root)):
        raise bad("work_root", f"{shown(work_root)} is not an absolute path")
    if os.path.exists(os.path.expanduser(work_root)) and not os.path.isdir(os.path.expanduser(work_root)):
        raise bad("work_root", f"{shown(work_root)} is not a directory")
    defaults = _block(settings, "defaults", source, name)
    no_unknown_keys(defaults, DEFAULT_KEYS, source, f"{name}.defaults")
    poll_block = _block(settings, "poll", source, name)
    no_unknown_keys(poll_block, POLL_KEYS, source, f"{name}.poll")
    poll_values = {}
    for key, value in poll_block.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not 0 < value <= MAX_POLL_S:
            raise bad(key, f"expected a positive number of seconds (at most {MAX_POLL_S})", poll_block,
                      f"{name}.poll")
        poll_values[key] = float(value)
    poll = PollSettings(**poll_values, given=frozenset(poll_values))
    if poll.floor > poll.ceiling:
        raise bad("poll", "floor is above ceiling")
    container_block = _block(settings, "container", source, name)
    no_unknown_keys(container_block, CONTAINER_KEYS, source, f"{name}.container")
    runtime = container_block.get("runtime")
    if runtime is not None and runtime not in CONTAINER_RUNTIMES:
        raise bad("runtime", f"unknown runtime {runtime!r} (known: apptainer, podman)", container_block,
                  f"{name}.container")
    images = container_block.get("images") or {}
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise bad("images", "expected a mapping image name -> local file, directory or tag",
                  container_block, f"{name}.container")
    attributes = _block(settings, "attributes", source, name)
    for key, value in attributes.items():
        if isinstance(value, str) and value.startswith("="):  # an expression, as matchmaking reads it
            try:
                parse_classad_expression(value[1:], field=f"{name}.attributes.{key}")
            except BadInput as exc:
                raise BadInput(exc.detail, source=source, line=attributes.line_of(key), field=exc.field) from None
    execute = _block(settings, "execute", source, name)
    no_unknown_keys(execute, EXECUTE_KEYS, source, f"{name}.execute")
    modules = _block(settings, "modules", source, name)
    limits = parse_limits(_block(settings, "limits", source, name), source, f"{name}.limits", submission=True)
    retry = None
    if "retry" in settings:
        retry_block = _block(settings, "retry", source, name)
        retry = parse_block(retry_block, source=source, prefix=f"{name}.retry", line_of=retry_block.line_of)
    staging = parse_staging(_block(settings, "staging", source, name), source, f"{name}.staging",
                            shared_filesystem=shared, execute={k: str(v) for k, v in execute.items()})
    policy = credentials = None
    if "policy" in settings:
        policy = parse_policy(settings["policy"], source, settings.line_of("policy"), f"{name}.policy")
    if "credentials" in settings:
        credentials = parse_credentials(settings["credentials"], source, settings.line_of("credentials"),
                                        f"{name}.credentials", auth_methods=capabilities.auth_methods,
                                        backend=backend)
    return Site(
        name=name,
        backend=backend,
        shared_filesystem=shared,
        work_root=os.path.expanduser(work_root),
        description=str(settings.get("description", "")),
        options=dict(options),
        container=ContainerSettings(runtime=runtime, images={str(k): v for k, v in images.items()}),
        defaults={k: str(v) for k, v in defaults.items()},
        poll=poll,
        attributes=dict(attributes),
        limits=limits,
        execute={k: str(v) for k, v in execute.items()},
        modules={str(k): str(v) for k, v in modules.items()},
        policy=policy,
        credentials=credentials,
        retry=retry,
        staging=staging,
        source=source,
        line=line,
    )


def _block(settings: LocatedDict, key: str, source: str, prefix: str) -> LocatedDict:
    value = settings.get(key)
    if value is None:
        empty = LocatedDict()
        empty.source, empty.line, empty.key_lines = source, settings.line_of(key), {}
        return empty
    if not isinstance(value, LocatedDict):
        raise BadInput("expected a mapping", source=source, line=settings.line_of(key), field=f"{prefix}.{key}")
    return value


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__
