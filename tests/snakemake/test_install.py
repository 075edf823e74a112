"""A fresh, non-editable install: Snakemake finds `--executor esap` with no configuration, and
`snakemake --profile esap-hpc` works after `esap profiles install`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ..support import EXAMPLE_SITES, ROOT, require_service
from .helpers import explain, latest_run_records, write_workflow

PROFILES = ("esap-hpc", "esap-htc", "esap-local")

TINY = """
rule all:
    input: "hello.txt"

rule hello:
    output: "hello.txt"
    shell: "echo hello from $(hostname) > {output}"
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the project installed from a wheel; Snakemake comes from the test venv."""
    base = tmp_path_factory.mktemp("fresh-install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    wheels = base / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                            str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # dependencies from the test venv; its editable install is not seen (nested .pth files are not read)
    (site_packages / "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    [wheel] = wheels.glob("esap_executors-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                              "install", "-q", "--no-deps", str(wheel)],
                             capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr
    return venv


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SNAKEMAKE_"))}
    env.update(HOME=str(home), ESAP_SITES=str(EXAMPLE_SITES))
    return env


def test_plugin_found_without_configuration(fresh_venv: Path, tmp_path: Path) -> None:
    python = str(fresh_venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import esap_executors, snakemake_executor_plugin_esap as p; "
                       "print(esap_executors.__file__); print(p.__file__)"],
        capture_output=True, text=True, check=True, env=_clean_env(tmp_path),
    ).stdout.split()
    assert all(path.startswith(str(fresh_venv)) for path in where), where
    helped = subprocess.run([python, "-m", "snakemake", "--help"], capture_output=True, text=True,
                            check=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=120)
    choices = helped.stdout.split("--executor {", 1)[1].split("}", 1)[0].split(",")
    assert "esap" in choices
    assert "--esap-site SITE" in helped.stdout


def test_profiles_shipped_match_the_repository() -> None:
    bundled = ROOT / "src" / "esap_executors" / "data" / "snakemake_profiles"
    for name in PROFILES:
        assert (bundled / name / "config.yaml").read_text() == (
            ROOT / "snakemake_profiles" / name / "config.yaml").read_text()


@pytest.mark.slurm
def test_profile_esap_hpc_after_profiles_install(fresh_venv: Path, tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(home)
    installed = subprocess.run([str(fresh_venv / "bin" / "esap"), "profiles", "install"],
                               capture_output=True, text=True, env=env, check=False, timeout=60)
    assert installed.returncode == 0, installed.stderr
    for name in PROFILES:
        assert (home / ".config" / "snakemake" / name / "config.yaml").is_file()
    listed = subprocess.run([str(fresh_venv / "bin" / "esap"), "profiles", "list"],
                            capture_output=True, text=True, env=env, check=True, timeout=60)
    assert "esap-hpc" in listed.stdout and "installed" in listed.stdout
    workdir = write_workflow(tmp_path / "profiled", TINY)
    result = subprocess.run([str(fresh_venv / "bin" / "python"), "-m", "snakemake", "--profile", "esap-hpc"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, explain(result)
    assert (workdir / "hello.txt").read_text().startswith("hello from")
    [record] = latest_run_records()
    assert record.site == "slurm-local" and record.name == "hello"
