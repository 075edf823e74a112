"""Fronts and the core ask a site's backend what it can do; none of them tests a backend's name."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from esap_executors import backends
from esap_executors.backends import BACKEND_MODULES, capabilities_of
from esap_executors.sites import Catalogue
from tests.support import esap

SRC = Path(__file__).resolve().parents[2] / "src"
BACKENDS_DIR = SRC / "esap_executors" / "backends"
REGISTRY = SRC / "esap_executors" / "backend_registry.py"
# "local" is also the name of the built-in site: only comparisons with `.backend` count for it
NAMES_ONLY_BACKENDS_USE = set(BACKEND_MODULES) - {"local"}


def backend_name_comparisons(source: str) -> list[int]:
    """Lines that compare a backend's name or list backend names (the decisions capabilities make)."""

    def is_backend(node: ast.expr) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "backend"
                or isinstance(node, ast.Name) and node.id == "backend")

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            registry = any(isinstance(o, ast.Name) and o.id == "BACKEND_MODULES" for o in operands)
            by_value = any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops)
            if by_value and any(is_backend(o) for o in operands) and not registry:
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value in NAMES_ONLY_BACKENDS_USE:
            lines.append(node.lineno)
    return sorted(set(lines))


def test_no_front_or_core_module_compares_a_backend_name() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if BACKENDS_DIR in path.parents or path == REGISTRY:  # where the names are known
            continue
        for line in backend_name_comparisons(path.read_text()):
            found.append(f"{path.relative_to(SRC)}:{line}")
    assert found == [], "decide by capabilities_of(site), not by the backend's name"


@pytest.mark.parametrize("snippet", [
    'if site.backend == "slurm":\n    pass\n',
    'if "local" != site.backend:\n    pass\n',
    'LINKING = frozenset({"htcondor"})\n',
    'def f(backend):\n    return backend in LINKING\n',
])
def test_the_check_finds_decisions_by_name(snippet: str) -> None:
    assert backend_name_comparisons(snippet) != []


def test_the_check_lets_site_names_and_the_registry_be(tmp_path: Path) -> None:
    snippet = ('site = catalogue.get(name or "local")\n'
               'if backend not in BACKEND_MODULES:\n    pass\n'
               'if backend is None:\n    pass\n')
    assert backend_name_comparisons(snippet) == []


SITES = """\
transfer:
  backend: htcondor
  shared_filesystem: false
  options: {collector: "127.0.0.1:1", containers: true, owner: nobody}
  container: {runtime: podman}
shared:
  backend: htcondor
  options: {collector: "127.0.0.1:1"}
  container: {runtime: apptainer}
hpc:
  backend: slurm
  options: {access: rest, url: "http://127.0.0.1:1"}
  container: {runtime: apptainer}
"""


def test_capabilities_follow_the_sites_configuration_without_contacting_a_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esap_executors.backends.htcondor import connection

    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("a scheduler connection was opened")

    monkeypatch.setattr(connection.Connection, "__init__", no_connection)
    path = tmp_path / "sites.yaml"
    path.write_text(SITES)
    catalogue = Catalogue.load(path)

    transfer = capabilities_of(catalogue.get("transfer"))
    assert transfer.transfers_files and not transfer.shared_filesystem
    assert not transfer.links_inputs
    assert transfer.container_runtimes == {"podman"}  # options.containers: true
    assert transfer.runs_as == ("nobody" if os.geteuid() == 0 else None)  # owner mapping only as root

    shared = capabilities_of(catalogue.get("shared"))
    assert not shared.transfers_files and shared.shared_filesystem
    assert shared.container_runtimes == frozenset()  # the pool runs no containers unless the options say so
    assert "accounting_group" in shared.billing_fields and "account" not in shared.billing_fields

    hpc = capabilities_of(catalogue.get("hpc"))
    assert hpc.links_inputs and not hpc.transfers_files
    assert hpc.container_runtimes == {"apptainer"}
    assert {"account", "partition", "qos"} <= hpc.billing_fields
    assert hpc.multi_node_tasks

    local = capabilities_of(catalogue.get("local"))
    assert local.links_inputs and local.billing_fields == frozenset()


def test_a_new_backend_only_declares_its_capabilities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(backends.BACKEND_MODULES, "transferring", "tests.core.counting_backend:TransferringBackend")
    path = tmp_path / "sites.yaml"
    path.write_text("elsewhere:\n  backend: transferring\n  shared_filesystem: false\n"
                    "  credentials: {htcondor_auth: [PASSWORD]}\n")
    site = Catalogue.load(path).get("elsewhere")
    assert capabilities_of(site).transfers_files
    assert site.credentials is not None and site.credentials.htcondor_auth == ("PASSWORD",)


def test_a_site_without_shared_filesystem_needs_a_backend_that_transfers_files(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("hpc:\n  backend: slurm\n  shared_filesystem: false\n")
    result = esap("sites", sites=path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"{path}:3: hpc.shared_filesystem: false needs a backend that transfers the jobs' files; slurm does not")


def test_an_authentication_method_the_backend_cannot_use_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("pool:\n  backend: htcondor\n  credentials:\n    htcondor_idtoken: /nowhere\n"
                    "    htcondor_auth: [IDTOKENS, KERBEROS]\n")
    result = esap("sites", sites=path)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"esap: error: {path}:5: pool.credentials.htcondor_auth: method 'KERBEROS' is not one")
    assert "IDTOKENS" in line and "MUNGE" not in line

    path.write_text("hpc:\n  backend: slurm\n  credentials: {htcondor_auth: [FS]}\n")
    result = esap("sites", sites=path)
    assert result.returncode == 2
    assert f"{path}:3: hpc.credentials.htcondor_auth: method 'FS' is not one backend slurm accepts" in result.stderr


def test_a_container_job_is_refused_where_the_sites_backend_runs_no_containers(tmp_path: Path) -> None:
    from esap_executors.containers import check_container
    from esap_executors.errors import BadInput
    from esap_executors.job import Container, JobSpec

    path = tmp_path / "sites.yaml"
    path.write_text(SITES.replace("{runtime: apptainer}", "{runtime: apptainer, images: {b: /b.sif}}"))
    catalogue = Catalogue.load(path)
    spec = JobSpec(argv=("true",), container=Container("b"))
    with pytest.raises(BadInput, match="site shared cannot run containers: the site's options do not let its jobs"):
        check_container(catalogue.get("shared"), spec)
    check_container(catalogue.get("hpc"), spec)  # SLURM runs the site's apptainer
