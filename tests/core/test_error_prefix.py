"""An error named with the file and field it concerns keeps what it is: its type (so its exit code)
and its fields (an HTTP status), whatever its constructor takes."""

from __future__ import annotations

from esap_executors.errors import BadInput
from esap_executors.esap.http import Refused, ServerError
from esap_executors.staging.remote import TransferFailed


def test_a_prefixed_error_keeps_its_type_exit_code_and_fields() -> None:
    refused = Refused("the service wants a token", 403).with_prefix("job.jdl: InputSandbox: ")
    assert type(refused) is Refused and refused.status == 403 and refused.exit_code == 3
    assert str(refused) == "job.jdl: InputSandbox: the service wants a token"
    server = ServerError("HTTP 502", 502).with_prefix("inputs.yml: data: ")
    assert (type(server), server.status, str(server)) == (ServerError, 502, "inputs.yml: data: HTTP 502")
    failed = TransferFailed("checksum differs").with_prefix("a.jdl: OutputSandboxDestURI: ")
    assert (type(failed), failed.exit_code) == (TransferFailed, 1)


def test_a_prefixed_bad_input_keeps_where_it_was_found_and_exit_code_2() -> None:
    bad = BadInput("not a URL", source="inputs.yml", line=4, field="data").with_prefix("run 7: ")
    assert str(bad) == "run 7: inputs.yml:4: data: not a URL"
    assert (bad.source, bad.line, bad.field, bad.exit_code) == ("inputs.yml", 4, "data", 2)
