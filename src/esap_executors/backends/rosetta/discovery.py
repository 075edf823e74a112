"""What a Rosetta site offers: validation of steps against it, its computing, runner and step
software resolved by name, the software list and the computing's attributes for matchmaking."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import BadInput
from ...formats.urls import scheme_of
from ..base import SoftwareImage, Submission
from .client import MAX_TASK_NAME
from .session import RosettaSession
from .steps import task_name, token_of

log = logging.getLogger(__name__)


class RosettaDiscovery(RosettaSession):
    """Validation, software resolution and the site's description."""

    def validate(self, jobs: Sequence[Submission]) -> None:
        site = self.site
        if not self.computing_name:
            raise BadInput("a Rosetta site needs options.computing", source=site.source, line=site.line,
                           field=f"{site.name}.options.computing")
        self._resolve()
        for job in jobs:
            spec = job.spec
            if len(task_name(token_of(job.job_id))) > MAX_TASK_NAME:
                raise BadInput(f"job id {job.job_id} is too long for a Rosetta task name", field="job_id")
            if spec.interactive and spec.container is not None:
                self._interactive_software(spec.container.image)
            elif spec.container is not None:
                self._step_software(spec.container.image)
            for entry in spec.stage_in:
                source = Path(entry.source)
                if scheme_of(entry.source) is not None or not (source.is_file() or source.is_dir()):
                    raise BadInput(f"{job.name}: input {entry.source!r}: Rosetta sites take local files and "
                                   "folders (uploaded through Rosetta's file manager)", field="stage_in")
            for out in spec.stage_out:
                if scheme_of(out.dest) is not None:
                    raise BadInput(f"{job.name}: output destination {out.dest!r}: Rosetta sites bring "
                                   "outputs back to local paths", field="stage_out")
            if spec.stdin:
                raise BadInput(f"{job.name}: stdin is not supported on the Rosetta site {site.name}",
                               field="stdin")
            if spec.gpus:
                raise BadInput(f"{job.name}: Rosetta tasks cannot ask for GPUs", field="gpus")

    def _resolve(self) -> None:
        """Computing, runner software and storage by name (three requests, once per backend)."""
        if self._computing_uuid and self._software_uuid:
            return
        site, client = self.site, self.client
        computings = client.computings()
        uuid = computings.get(self.computing_name)
        if uuid is None:
            known = ", ".join(sorted(computings)) or "none"
            raise BadInput(f"Rosetta at {self.url} has no computing {self.computing_name!r} for this account "
                           f"(known: {known})", source=site.source, line=site.line,
                           field=f"{site.name}.options.computing")
        self._containers = client.containers()
        software = {(c.name, c.image_tag): c.uuid for c in self._containers}
        self._registered = dict(software)
        tags = {tag: u for (name, tag), u in software.items() if name == self.software_name}
        if not tags:
            known = ", ".join(sorted({n for n, _ in software})) or "none"
            raise BadInput(f"Rosetta at {self.url} has no software {self.software_name!r} (known: {known})",
                           source=site.source, line=site.line, field=f"{site.name}.options.software")
        if self.software_tag is not None:
            chosen = tags.get(str(self.software_tag))
            if chosen is None:
                raise BadInput(f"Rosetta software {self.software_name!r} has no tag {self.software_tag!r} "
                               f"(known: {', '.join(sorted(tags))})", source=site.source, line=site.line,
                               field=f"{site.name}.options.software_tag")
        elif len(tags) == 1:
            chosen = next(iter(tags.values()))
        else:
            raise BadInput(f"Rosetta software {self.software_name!r} has tags {', '.join(sorted(tags))}: "
                           "choose one with options.software_tag", source=site.source, line=site.line,
                           field=f"{site.name}.options.software_tag")
        storages = {e.name for e in client.list_folder("/") if e.is_folder}
        storage_id = f"{self.computing_name}:{self.storage_name}"
        if storage_id not in storages:
            raise BadInput(f"Rosetta computing {self.computing_name!r} has no storage {self.storage_name!r} "
                           f"(known: {', '.join(sorted(storages)) or 'none'})", source=site.source,
                           line=site.line, field=f"{site.name}.options.storage")
        self._computing_uuid, self._software_uuid = uuid, chosen

    def _step_software(self, image: str) -> str:
        """The Rosetta software (container uuid) a step with its own image runs as: the image
        with the runner added, built, pushed and registered the first time (images.py)."""
        known = self._step_containers.get(image)
        if known is not None:
            return known
        site = self.site
        if not self.registry:
            raise BadInput(f"a step with its own image ({image}) needs the site's options.registry: the registry "
                           "Rosetta pulls from, where esap pushes the image with its runner", source=site.source,
                           line=site.line, field=f"{site.name}.options.registry")
        self._resolve()
        source = site.container.images.get(image, image).removeprefix("docker://")
        step = self.images.step_image(source)
        uuid = self._registered.get((self.step_software_name, step.tag))
        if uuid is None:
            log.info("site %s: adding the esap runner to %s (%s:%s)", site.name, source, step.image_name, step.tag)
            self.images.build_and_push(step, self.registry)
            self._act()
            uuid = self.client.add_software(
                name=self.step_software_name, registry=self.registry, image_name=step.image_name,
                image_tag=step.tag, group_id=self._group_id(),
                description=f"esap step image: {source} with the esap runner")
            self._registered[(self.step_software_name, step.tag)] = uuid
        self._step_containers[image] = uuid
        return uuid

    def _group_id(self) -> str:
        site = self.site
        groups = self.client.software_groups()
        wanted = self.site.options.get("group")
        if wanted is not None:
            if str(wanted) not in groups:
                raise BadInput(f"the Rosetta account is in no group {wanted!r} (its groups: "
                               f"{', '.join(sorted(groups)) or 'none'})", source=site.source, line=site.line,
                               field=f"{site.name}.options.group")
            return groups[str(wanted)]
        if len(groups) != 1:
            raise BadInput(f"Rosetta registers a step's image for one of the account's groups: choose it with "
                           f"options.group (its groups: {', '.join(sorted(groups)) or 'none'})",
                           source=site.source, line=site.line, field=f"{site.name}.options.group")
        return next(iter(groups.values()))

    def _interactive_software(self, image: str) -> str:
        """The software an interactive job opens: a software's name, `name:tag`, or the
        `registry/image:tag` it runs (as `esap sites --discover` lists them)."""
        self._resolve()
        by_name = [c for c in self._containers if c.name == image]
        found = (by_name if len({c.image_tag for c in by_name}) == 1 else []) or \
            [c for c in self._containers if f"{c.name}:{c.image_tag}" == image or c.reference == image]
        if not found:
            known = ", ".join(sorted({c.name for c in self._containers})) or "none"
            hint = " (a software has several tags: name one as NAME:TAG)" if by_name else ""
            raise BadInput(f"Rosetta at {self.url} has no software {image!r} to open{hint} (known: {known})",
                           field="image")
        return found[0].uuid

    def software_images(self) -> list[SoftwareImage]:
        """Every software the account may run, as `registry/image_name:image_tag` (one page read)."""
        self.query_count += 1
        return [SoftwareImage(name=c.name, tag=c.image_tag, image=c.reference) for c in self.client.containers()]

    def describe(self) -> dict[str, Any]:
        """The computing's attributes for matchmaking (two page reads): its type (cluster or
        standalone), arch and container engines, and what else the account can use."""
        self.query_count += 2
        computings = self.client.computing_info()
        software = sorted({name for name, _ in self.client.software()})
        mine = computings.get(self.computing_name, {})
        values: dict[str, Any] = {
            "GlueCEInfoLRMSType": "Rosetta",
            "RosettaComputing": self.computing_name,
            "RosettaComputings": ",".join(sorted(computings)),
            "RosettaSoftware": ",".join(software),
        }
        if mine:
            values["RosettaComputingType"] = mine["type"]
            values["IsCluster"] = mine["type"] == "cluster"
            values["GlueHostArchitecturePlatformType"] = mine["arch"]
            values["ContainerEngines"] = mine["engines"]
        partition = self.site.defaults.get("partition")
        if partition:
            values["RosettaPartition"] = partition
        return values
