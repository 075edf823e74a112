"""The Rosetta HTTP client against the real web app: session login, CSRF on form posts,
Rosetta's HTTP-200 error pages turned into errors with its text, credentials kept out of
messages, the catalogue read from its pages, the file manager."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient, RosettaError, tunnel_failure
from esap_executors.errors import AuthError, BadInput, Unreachable

from .conftest import ROSETTA_URL, ROSETTA_USER

pytestmark = pytest.mark.rosetta


def test_login_and_catalogue(client: RosettaClient) -> None:
    computings = client.computings()
    assert {"slurm-ssh", "standalone-ssh"} <= set(computings)
    assert all(len(u) == 36 for u in computings.values())
    assert ("esap-runner", "ci") in client.software()
    storages = {e.name for e in client.list_folder("/") if e.is_folder}
    assert {"slurm-ssh:data", "standalone-ssh:data"} <= storages


def test_session_survives_another_rosetta_start(client: RosettaClient) -> None:
    """rosetta.sh start again (an operator, another test) leaves the account's password as it
    is, so a logged-in session (a running test's, a running executor's) stays valid."""
    assert client.computings()  # logged in
    script = Path(__file__).resolve().parents[2] / "scripts" / "services" / "rosetta.sh"
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=900)
    assert started.returncode == 0 and "ROSETTA READY" in started.stdout, started.stderr[-2000:]
    assert "slurm-ssh" in client.computings()  # the same session, no new login


def test_wrong_password_is_an_auth_error_without_the_password(rosetta: None) -> None:
    secret = f"not-the-password-{uuid.uuid4().hex}"
    bad = RosettaClient(ROSETTA_URL, username=ROSETTA_USER, password=secret)
    with pytest.raises(AuthError) as caught:
        bad.computings()
    assert "Wrong username/password" in str(caught.value)
    assert secret not in str(caught.value)


def test_error_page_with_http_200_becomes_rosettas_text(client: RosettaClient) -> None:
    with pytest.raises(RosettaError, match="Task matching query does not exist"):
        client.stop_task(str(uuid.uuid4()))


def test_form_post_without_csrf_is_refused_by_rosetta(client: RosettaClient) -> None:
    client.login()
    response = client.session.post(f"{ROSETTA_URL}/tasks/", data={"filter_text": "x"})
    assert response.status_code == 403  # what the client's own posts avoid
    client.tasks("x")  # the client sends the token and the Referer


def test_task_name_longer_than_36_is_refused_before_sending(client: RosettaClient) -> None:
    before = client.requests_made
    with pytest.raises(BadInput, match="36"):
        client.start_task(name="x" * 37, container=str(uuid.uuid4()), computing=str(uuid.uuid4()), password="p")
    assert client.requests_made == before


def test_file_manager_round_trip(client: RosettaClient) -> None:
    folder = f"t{uuid.uuid4().hex[:10]}"
    root = "/slurm-ssh:data/"
    client.add_folder(root, folder)
    try:
        client.upload(f"{root}{folder}/", "hello.txt", b"hello rosetta\n")
        assert client.download(f"{root}{folder}/hello.txt") == b"hello rosetta\n"
        names = {e.name: e for e in client.list_folder(f"{root}{folder}/")}
        assert names["hello.txt"].size == len(b"hello rosetta\n")
        with pytest.raises(RosettaError, match="File exists"):
            client.add_folder(root, folder)
    finally:
        client.delete(f"{root}{folder}/")


def test_rosetta_down_is_unreachable() -> None:
    down = RosettaClient("http://127.0.0.1:9", username="u", password="p", timeout=3)
    with pytest.raises(Unreachable):
        down.login()


@pytest.mark.parametrize("said", [
    # upstream today: the unbound port variable, masked by its error page
    "something went wrong (cannot access local variable 'tcp_tunnel_port' where it is not associated with a value)",
    "something went wrong (local variable 'tcp_tunnel_port' referenced before assignment)",  # Python < 3.11
    "Cannot find a free port for the tunnel to the task",  # what upstream means to say
])
def test_no_free_tunnel_port_named_in_any_of_rosettas_words(said: str) -> None:
    assert tunnel_failure("6e9b6c4b", said) == (
        "Rosetta answered with an error while setting up the tunnel to task 6e9b6c4b: no free tunnel port "
        f"(running tasks hold all of Rosetta's tunnel ports; Rosetta said: \"{said}\")")


def test_other_tunnel_error_is_rosettas_text_alone() -> None:
    assert tunnel_failure("6e9b6c4b", "Task matching query does not exist.") == (
        "Rosetta answered with an error while setting up the tunnel to task 6e9b6c4b: "
        "\"Task matching query does not exist.\"")
