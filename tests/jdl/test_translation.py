"""Every attribute of the reference table: what it becomes, or the message refusing it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.jdl import JdlDescription, translate
from esap_executors.jdl.attributes import REJECTED
from esap_executors.jdl.document import parse_text
from esap_executors.jdl.placement import choose_site, fit_to_site
from esap_executors.jdl.sandbox import COLLECT_DIR
from esap_executors.sites import Catalogue

from .helpers import overlay_catalogue

BASE = 'Executable = "/bin/echo";\n'


def jdl(tmp_path: Path, text: str) -> JdlDescription:
    return translate(parse_text(text, str(tmp_path / "job.jdl"), tmp_path))


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(BadInput) as caught:
        jdl(tmp_path, text)
    return str(caught.value)


def only_spec(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    description = jdl(tmp_path, text)
    assert len(description.jobs) == 1
    return description.jobs[0].spec


# --- syntax -------------------------------------------------------------------------------
def test_bracketed_and_bare_bodies_case_insensitive_names_and_comments(tmp_path: Path) -> None:
    bare = only_spec(tmp_path, '# a comment\nEXECUTABLE = "/bin/echo"; // another\narguments = "a b";\n'
                               '/* block\n comment */ stdoutput = "o.txt"')
    bracketed = only_spec(tmp_path, '[\n  Executable = "/bin/echo";\n  Arguments = "a b";\n'
                                    '  StdOutput = "o.txt";\n]\n')
    assert bare.argv == bracketed.argv == ("/bin/echo", "a", "b")
    assert bare.stdout == bracketed.stdout == "o.txt"


def test_hash_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, 'Executable = "/bin/echo"; Arguments = "\'#1\' x";')
    assert spec.script is not None and "'#1' x" in spec.script  # the worker's shell reads it


def test_attribute_referring_to_another(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, BASE + 'StdOutput = "both.txt"; StdError = StdOutput;')
    assert spec.stdout == spec.stderr == "both.txt"


# --- Type and JobType ---------------------------------------------------------------------
def test_type_and_job_type_normal(tmp_path: Path) -> None:
    assert only_spec(tmp_path, 'Type = "job"; JobType = "NORMAL";' + BASE).argv == ("/bin/echo",)


@pytest.mark.parametrize("kind", ["DAG", "Collection"])
def test_dag_and_collection_refused(tmp_path: Path, kind: str) -> None:
    message = refused(tmp_path, f'Type = "{kind}";' + BASE)
    assert f'not supported: Type = "{kind}"' in message and "job.jdl:1" in message


def test_interactive_with_an_executable_refused_naming_image(tmp_path: Path) -> None:
    message = refused(tmp_path, BASE + 'JobType = "Interactive";')
    assert 'JobType = "Interactive" opens the software named by Image' in message
    assert "takes no Executable" in message and "job.jdl:2" in message


def test_interactive_opens_its_image_and_batch_image_is_the_container(tmp_path: Path) -> None:
    session = only_spec(tmp_path, 'JobType = "Interactive";\nImage = "esap-httpd";\nCpuNumber = 2;\n')
    assert session.interactive and session.container is not None and session.container.image == "esap-httpd"
    assert session.argv == () and session.cores == 2
    batch = only_spec(tmp_path, BASE + 'Image = "esap-test";\n')
    assert not batch.interactive and batch.container is not None and batch.container.image == "esap-test"


@pytest.mark.parametrize("kind", ["MPICH", "Checkpointable", "Partitionable"])
def test_other_job_types_refused(tmp_path: Path, kind: str) -> None:
    assert f'not supported: JobType = "{kind}"' in refused(tmp_path, BASE + f'JobType = {{"{kind}"}};')


def test_job_name(tmp_path: Path) -> None:
    assert jdl(tmp_path, BASE + 'JobName = "stars";').jobs[0].name == "stars"
    assert jdl(tmp_path, BASE).jobs[0].name == "job"  # the file's stem


# --- Executable and Arguments -------------------------------------------------------------
def test_executable_is_mandatory(tmp_path: Path) -> None:
    assert "Executable is mandatory" in refused(tmp_path, 'Arguments = "x";')


def test_arguments_split_like_the_worker_shell(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, BASE + r'''Arguments = "plain 'two words' \"double quoted\" back\\ slash";''')
    assert spec.argv == ("/bin/echo", "plain", "two words", "double quoted", "back slash")


def test_arguments_with_shell_syntax_run_through_the_shell(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, BASE + 'Arguments = "$HOME > out.txt";')
    assert spec.argv == () and spec.script is not None
    assert "exec /bin/echo $HOME > out.txt" in spec.script


def test_unbalanced_quotes_in_arguments(tmp_path: Path) -> None:
    assert "cannot split" in refused(tmp_path, BASE + "Arguments = \"'open\";")


def test_executable_from_the_input_sandbox_is_made_executable(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo hi\n")
    spec = only_spec(tmp_path, 'Executable = "run.sh"; Arguments = "a"; InputSandbox = {"run.sh"};')
    assert spec.argv[:2] == ("/bin/sh", "-c") and "chmod u+x" in spec.argv[2]
    assert spec.argv[3:] == ("./run.sh", "a")


def test_executable_neither_absolute_nor_shipped(tmp_path: Path) -> None:
    assert "neither an absolute path" in refused(tmp_path, 'Executable = "bin/tool";')


def test_executable_on_the_workers_path(tmp_path: Path) -> None:
    assert only_spec(tmp_path, 'Executable = "hostname";').argv == ("hostname",)


# --- streams, environment, resources ------------------------------------------------------
def test_std_streams(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, BASE + 'StdInput = "in.txt"; StdOutput = "o.txt"; StdError = "e.txt";')
    assert (spec.stdin, spec.stdout, spec.stderr) == ("in.txt", "o.txt", "e.txt")


@pytest.mark.parametrize("name", ["StdInput", "StdOutput", "StdError"])
def test_std_streams_stay_in_the_working_directory(tmp_path: Path, name: str) -> None:
    assert "contains '..'" in refused(tmp_path, BASE + f'{name} = "../x";')


def test_environment(tmp_path: Path) -> None:
    spec = only_spec(tmp_path, BASE + 'Environment = {"A=1", "B=two words", "C="};')
    assert dict(spec.env) == {"A": "1", "B": "two words", "C": ""}
    assert 'is not "NAME=value"' in refused(tmp_path, BASE + 'Environment = {"novalue"};')


def test_retries_deep_and_shallow(tmp_path: Path) -> None:
    assert only_spec(tmp_path, BASE + "RetryCount = 2; ShallowRetryCount = 1;").retries == 3
    assert "at least 0" in refused(tmp_path, BASE + "RetryCount = -1;")


def test_cpu_number_smp_granularity_host_number_whole_nodes(tmp_path: Path) -> None:
    assert only_spec(tmp_path, BASE + "CpuNumber = 2;").cores == 2
    assert only_spec(tmp_path, BASE + "SMPGranularity = 2;").cores == 2
    one_whole_node = "CpuNumber = 2; SMPGranularity = 2; HostNumber = 1; WholeNodes = true;"
    assert only_spec(tmp_path, BASE + one_whole_node).cores == 2
    whole = only_spec(tmp_path, BASE + "SMPGranularity = 4; WholeNodes = true;")
    assert whole.cores == 4 and whole.labels["whole_nodes"] == "true"
    assert "HostNumber should not exceed CpuNumber" in refused(tmp_path, BASE + "CpuNumber = 1; HostNumber = 2;")
    assert "not supported: HostNumber = 2" in refused(tmp_path, BASE + "CpuNumber = 4; HostNumber = 2;")
    assert "unless WholeNodes = true" in refused(tmp_path, BASE + "SMPGranularity = 2; HostNumber = 1;")
    assert "span 2 nodes" in refused(tmp_path, BASE + "CpuNumber = 4; SMPGranularity = 2;")
    assert "needs SMPGranularity" in refused(tmp_path, BASE + "WholeNodes = true;")
    assert "expected a whole number" in refused(tmp_path, BASE + 'CpuNumber = "two";')


def test_virtual_organisation_is_the_group_label(tmp_path: Path) -> None:
    assert only_spec(tmp_path, BASE + 'VirtualOrganisation = "escape";').labels["vo"] == "escape"


def test_cpu_time_limits_the_job(tmp_path: Path) -> None:
    assert only_spec(tmp_path, BASE + "CPUTime = 600;").walltime_s == 600


def test_expiry_time(tmp_path: Path) -> None:
    future = int(time.time()) + 3600
    assert jdl(tmp_path, BASE + f"ExpiryTime = {future};").expiry == future
    assert "has passed" in refused(tmp_path, BASE + "ExpiryTime = 1000;")


def test_prologue_and_epilogue(tmp_path: Path) -> None:
    (tmp_path / "pre.sh").write_text("echo pre\n")
    spec = only_spec(tmp_path, BASE + 'Arguments = "main"; Prologue = "pre.sh"; PrologueArguments = "p1";'
                                      'Epilogue = "/bin/echo"; EpilogueArguments = "post"; InputSandbox = {"pre.sh"};')
    script = spec.script or ""
    assert "./pre.sh p1 || exit $?" in script
    assert script.index("pre.sh p1") < script.index("/bin/echo main") < script.index("/bin/echo post")
    assert script.rstrip().endswith("exit $status")
    assert "needs Prologue" in refused(tmp_path, BASE + 'PrologueArguments = "x";')


# --- matchmaking attributes ---------------------------------------------------------------
def test_requirements_rank_and_platform(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'Requirements = other.GlueCEInfoTotalCPUs >= 2;\n'
                                       "Rank = other.GlueCEStateFreeCPUs;\nPlatform = \"x86_64\";")
    assert description.requirements == ('(other.GlueCEInfoTotalCPUs >= 2) && '
                                        '(other.GlueHostArchitecturePlatformType == "x86_64")')
    assert description.rank == "other.GlueCEStateFreeCPUs"
    assert "always false" in refused(tmp_path, BASE + "Requirements = false;")


def test_rank_chooses_the_best_site(tmp_path: Path) -> None:
    sites = overlay_catalogue(tmp_path, {"local": {"Speed": 1}, "htcondor-local": {"Speed": 5}})
    catalogue = Catalogue.load(sites)
    description = jdl(tmp_path, BASE + "Requirements = other.Speed > 0; Rank = other.Speed;")
    assert choose_site(catalogue, description, None).name == "htcondor-local"
    description = jdl(tmp_path, BASE + "Requirements = other.Speed > 0; Rank = -other.Speed;")
    assert choose_site(catalogue, description, None).name == "local"


def test_site_and_banned_sites(tmp_path: Path) -> None:
    catalogue = Catalogue.load(overlay_catalogue(tmp_path, {"local": {}, "htcondor-local": {}}))
    chosen = choose_site(catalogue, jdl(tmp_path, BASE + 'Site = "htcondor-local";'), None)
    assert chosen.name == "htcondor-local"
    banned = choose_site(catalogue, jdl(tmp_path, BASE + 'BannedSites = {"local"};'), None)
    assert banned.name == "htcondor-local"
    with pytest.raises(BadInput, match="unknown site"):
        choose_site(catalogue, jdl(tmp_path, BASE + 'Site = "nowhere";'), None)
    with pytest.raises(BadInput, match="no site of the catalogue is left"):
        choose_site(catalogue, jdl(tmp_path, BASE + 'BannedSites = {"local", "htcondor-local"};'), None)


def test_perusal(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + "PerusalFileEnable = true; PerusalTimeInterval = 2;")
    assert description.perusal_interval == 2
    assert jdl(tmp_path, BASE + "PerusalFileEnable = true;").perusal_interval == 5
    assert jdl(tmp_path, BASE + "PerusalFileEnable = false;").perusal_interval is None
    transfer = Catalogue.load(overlay_catalogue(tmp_path, {"htcondor-transfer": {}})).get("htcondor-transfer")
    with pytest.raises(BadInput, match="not supported on this site: htcondor-transfer has no shared filesystem"):
        fit_to_site(description, transfer)


def test_outputs_come_back_by_file_transfer_without_a_shared_filesystem(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'StdOutput = "o"; OutputSandbox = {"o", "data/result.txt"};')
    transfer = Catalogue.load(overlay_catalogue(tmp_path, {"htcondor-transfer": {}})).get("htcondor-transfer")
    [job] = fit_to_site(description, transfer)
    # the job gathers the declared files that exist in one folder, which the transfer brings back
    assert [(o.source, o.dest) for o in job.spec.stage_out] == [(COLLECT_DIR, COLLECT_DIR)]
    assert job.spec.script is not None and "for f in data/result.txt; do" in job.spec.script
    assert "(\n/bin/echo\n)\nstatus=$?" in job.spec.script


# --- sandboxes ----------------------------------------------------------------------------
def test_input_sandbox_local_url_and_base_uri(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / "c.txt").write_text("c")
    spec = only_spec(tmp_path, BASE + 'InputSandbox = {"sub/a.txt", "https://example.org/x/b.dat", '
                                      f'"file://{tmp_path}/c.txt"}};')
    assert [(s.source, s.dest) for s in spec.stage_in] == [
        (str(tmp_path / "sub" / "a.txt"), "a.txt"), ("https://example.org/x/b.dat", "b.dat"),
        (str(tmp_path / "c.txt"), "c.txt")]
    assert "arrive as 'a.txt'" in refused(tmp_path, BASE + f'InputSandbox = {{"sub/a.txt", "file://{tmp_path}/sub/a.txt"}};')
    based = only_spec(tmp_path, BASE + 'InputSandboxBaseURI = "https://example.org/data";'
                                       'InputSandbox = {"c.txt", "/etc/hostname"};')
    assert [s.source for s in based.stage_in] == ["https://example.org/data/c.txt", "/etc/hostname"]


def test_missing_local_input(tmp_path: Path) -> None:
    message = refused(tmp_path, BASE + 'InputSandbox = {"nope.txt"};')
    assert "'nope.txt' does not exist" in message and "job.jdl:2" in message


@pytest.mark.parametrize("scheme", ["gsiftp", "srm", "root", "lfn"])
def test_unsupported_input_protocols(tmp_path: Path, scheme: str) -> None:
    message = refused(tmp_path, BASE + f'InputSandbox = {{"{scheme}://example.it:5678/tmp/my_analysis.py"}};')
    assert f"protocol {scheme}:// not supported" in message


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b"])
def test_output_names_leaving_the_working_directory(tmp_path: Path, name: str) -> None:
    message = refused(tmp_path, BASE + f'OutputSandbox = {{"ok.txt", "{name}"}};')
    assert f"'{name}' refused" in message and "OutputSandbox" in message


def test_output_destinations(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'OutputSandbox = {"a", "b"};'
                                       f'OutputSandboxDestURI = {{"file://{tmp_path}/x/a", "https://h/dav/b"}};')
    assert [o.dest for o in description.jobs[0].outputs] == [f"file://{tmp_path}/x/a", "https://h/dav/b"]
    based = jdl(tmp_path, BASE + 'OutputSandbox = {"a"}; OutputSandboxBaseDestURI = "https://h/dav/";')
    assert [o.dest for o in based.jobs[0].outputs] == ["https://h/dav/a"]
    assert "one per file" in refused(tmp_path, BASE + 'OutputSandbox = {"a", "b"}; OutputSandboxDestURI = {"file:///t/a"};')
    assert "protocol gsiftp:// not supported" in refused(
        tmp_path, BASE + 'OutputSandbox = {"a"}; OutputSandboxDestURI = {"gsiftp://se.example/a"};')
    assert "protocol srm:// not supported" in refused(
        tmp_path, BASE + 'OutputSandbox = {"a"}; OutputSandboxBaseDestURI = "srm://se.example/";')


# --- parametric ----------------------------------------------------------------------------
def test_parametric_wms_number(tmp_path: Path) -> None:
    description = jdl(tmp_path, 'JobType = "Parametric"; Parameters = 10; ParameterStart = 2; ParameterStep = 3;'
                                'Executable = "/bin/echo"; Arguments = "_PARAM_"; StdOutput = "o_PARAM_";'
                                'OutputSandbox = {"o_PARAM_"}; Environment = {"P=_PARAM_"};')
    assert [j.parameter for j in description.jobs] == ["2", "5", "8"]
    second = description.jobs[1]
    assert second.spec.argv == ("/bin/echo", "5") and second.spec.stdout == "o5"
    assert second.outputs[0].name == "o5" and second.spec.env["P"] == "5"
    assert [j.key for j in description.jobs] == ["param-0", "param-1", "param-2"]


def test_parametric_dirac_number_with_factor(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'Arguments = "_PARAM_"; Parameters = 4; ParameterStart = 1;'
                                       "ParameterStep = 0; ParameterFactor = 2;")
    assert [j.parameter for j in description.jobs] == ["1", "2", "4", "8"]


def test_parametric_list(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'Arguments = "_PARAM_"; Parameters = {"alpha", "beta", 3};')
    assert [j.spec.argv[1] for j in description.jobs] == ["alpha", "beta", "3"]


def test_parametric_mistakes(tmp_path: Path) -> None:
    assert "needs Parameters" in refused(tmp_path, BASE + "ParameterStep = 2;")
    assert "needs Parameters" in refused(tmp_path, 'JobType = "Parametric";' + BASE)
    assert "is DIRAC's" in refused(tmp_path, 'JobType = "Parametric"; Parameters = 3; ParameterFactor = 2;' + BASE)
    assert "gives no job" in refused(tmp_path, 'Type = "Parametric"; Parameters = 3; ParameterStart = 5;' + BASE)


# --- refused and unknown attributes --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REJECTED))
def test_refused_attributes_say_not_supported(tmp_path: Path, name: str) -> None:
    message = refused(tmp_path, BASE + f'{name.lower()} = "x";')
    assert f"not supported: {name} (" in message and "job.jdl:2" in message


def test_unknown_attribute_is_a_warning(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'MyOwnHint = "fast";')
    assert description.warnings == (f"{tmp_path / 'job.jdl'}:2: unknown attribute MyOwnHint ignored",)


def test_forced_site_that_fails_requirements_is_used_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = Catalogue.load(overlay_catalogue(tmp_path, {"local": {}}))
    description = jdl(tmp_path, BASE + 'Requirements = other.GlueCEInfoLRMSType == "PBS";')
    assert choose_site(catalogue, description, "local").name == "local"
    assert 'warning: --site local does not satisfy Requirements (fails other.GlueCEInfoLRMSType == "PBS" ' \
           '(GlueCEInfoLRMSType = "local"))' in capsys.readouterr().err


def test_site_attributes_without_other_get_a_warning(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'Requirements = GlueCEInfoLRMSType == "PBS" && other.GlueCEInfoTotalCPUs > 1;')
    assert description.warnings == (
        f"{tmp_path / 'job.jdl'}:2: Requirements uses GlueCEInfoLRMSType, which is the job's own attribute; "
        "the site's is other.GlueCEInfoLRMSType",)


def test_platform_is_quoted(tmp_path: Path) -> None:
    description = jdl(tmp_path, BASE + 'Platform = "x\\" || true || \\"";')
    assert description.requirements == 'other.GlueHostArchitecturePlatformType == "x\\" || true || \\""'
