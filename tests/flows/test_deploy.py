"""``enrich deploy`` against a real ``prefect server`` (on PostgreSQL): a deployment on a process work
pool, made twice (the same one), its cron schedule read back from the API, and a job submitted to
it run to completion by a ``prefect worker start`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest

from tests.helpers import (
    prefect_api,
    release_held_keys,
    run_cli,
    running_mock_api,
    server_stats,
    stop_serving,
    wait_until,
    write_lookup_job,
)
from tests.prefect_servers import prefect_server_for_tests

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def prefect(*args: str, api_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def prefect_server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PREFECT_HOME of the module's Prefect server."""
    return tmp_path_factory.mktemp("deploy-server")


@pytest.fixture(scope="module")
def prefect_server(prefect_server_home: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A ``prefect server`` of this module's own (tests/prefect_servers.py): its triggers,
    automations and worker polls do not wait behind what the session's server is doing."""
    with prefect_server_for_tests(
        prefect_server_home, lambda: request.getfixturevalue("migrated_prefect_database")
    ) as url:
        yield url


@pytest.fixture(scope="module")
def pool(prefect_server: str) -> str:
    """A process work pool on the module's Prefect server."""
    done = prefect("work-pool", "create", "enrich-test-pool", "--type", "process", api_url=prefect_server)
    assert done.returncode == 0, done.stdout + done.stderr
    return "enrich-test-pool"


@pytest.fixture(scope="module")
def worker(prefect_server: str, pool: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``prefect worker start`` for ``pool``, one for the module's tests; its log's path."""
    tmp_path = tmp_path_factory.mktemp("worker")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "prefect")}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"  # it asks for runs every second, not every ten
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield log_path
    finally:
        stop_serving(process)


def test_deploying_twice_makes_one_deployment_with_its_cron_schedule(
    tmp_path: Path, server: str, prefect_server: str, pool: str
) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["n1"])
    args = ["deploy", "--spec", str(spec), "--pool", pool, "--name", "nightly", "--api-url", prefect_server]
    args += ["--cron", "0 3 * * *", "--timezone", "Europe/Paris"]
    args += ["--param", f"input={source}", "--param", f"output={tmp_path / 'nightly.parquet'}"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created deployment enrich-file/nightly (")
    assert "  schedule      cron '0 3 * * *' in Europe/Paris\n" in first.stdout
    assert f"prefect worker start --pool {pool}" in first.stdout
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("updated deployment enrich-file/nightly (")
    deployment_id = first.stdout.split("(")[1].split(")")[0]
    assert again.stdout.split("(")[1].split(")")[0] == deployment_id
    read = prefect_api("GET", f"{prefect_server}/deployments/name/enrich-file/nightly").json()
    assert read["id"] == deployment_id
    assert read["work_pool_name"] == pool
    assert read["entrypoint"] == "flows.enrich_file.enrich_file"
    (schedule,) = read["schedules"]
    assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"]) == ("0 3 * * *", "Europe/Paris")
    assert read["parameters"] == {
        "spec": str(spec.resolve()),
        "input": str(source.resolve()),
        "output": str((tmp_path / "nightly.parquet").resolve()),
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pool", "no-such-pool"], "no work pool 'no-such-pool' at "),
        (["--pool", "p", "--cron", "0 3 * *"], "a schedule needs the file it enriches"),
        (["--pool", "p", "--timezone", "Europe/Paris"], "--timezone needs --cron or --interval"),
        (["--pool", "p", "--param", "spec=x"], "--param 'spec=x': expected input=PATH or output=PATH"),
        (["--pool", "p", "--inbox", "in"], "--inbox and --outbox go together"),
        (["--pool", "p", "--notify-block", "ops"], "--notify-block 'ops': expected TYPE/NAME"),
        (["--pool", "p", "--job-variable", "image"], "--job-variable 'image': expected NAME=VALUE"),
        (["--pool", "p", "--image", "a", "--job-variable", "image=b"], "--image and --job-variable image="),
        (
            ["--pool", "p", "--notify-block", "custom-webhook/gone"],
            "no custom-webhook block named 'gone' at ",
        ),
    ],
)
def test_what_cannot_be_deployed_is_one_line(
    tmp_path: Path, server: str, prefect_server: str, extra: list[str], message: str
) -> None:
    _, spec = write_lookup_job(tmp_path, server, ["n1"])
    done = run_cli("deploy", "--spec", str(spec), "--api-url", prefect_server, *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"enrich: error: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_docker_pool_gets_the_image_and_job_variables_a_process_pool_refuses(
    tmp_path: Path, server: str, prefect_server: str, pool: str
) -> None:
    """--image and --job-variable land in the deployment's job variables, checked against the
    pool's job template: a variable the pool does not take is one line and nothing is made."""
    created = prefect("work-pool", "create", "enrich-docker", "--type", "docker", api_url=prefect_server)
    assert created.returncode == 0, created.stdout + created.stderr
    _, spec = write_lookup_job(tmp_path, server, ["n1"])
    deploy = ["deploy", "--spec", str(spec), "--name", "boxed", "--api-url", prefect_server]
    boxed = ["--image", "registry.example/enrich:1.4", "--job-variable", 'env={"TZ": "UTC", "N": "1"}']
    done = run_cli(*deploy, "--pool", "enrich-docker", *boxed, "--job-variable", "image_pull_policy=Never")
    assert done.returncode == 0, done.stderr
    assert "  job variables env, image, image_pull_policy\n" in done.stdout
    read = prefect_api("GET", f"{prefect_server}/deployments/name/enrich-file/boxed").json()
    assert read["work_pool_name"] == "enrich-docker"
    assert read["job_variables"] == {
        "image": "registry.example/enrich:1.4",
        "env": {"TZ": "UTC", "N": "1"},
        "image_pull_policy": "Never",
    }
    refused = run_cli(*deploy, "--pool", pool, "--name", "not-boxed", *boxed)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        f"enrich: error: work pool {pool!r} (process) takes no job variable 'image'; it takes: command, env,"
    ), refused.stderr
    assert prefect_api("GET", f"{prefect_server}/deployments/name/enrich-file/not-boxed").status_code == 404


def test_a_bad_cron_or_time_zone_is_one_line_before_anything_is_made(
    tmp_path: Path, server: str, prefect_server: str, pool: str
) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["n1"])
    paths = ["--param", f"input={source}", "--param", f"output={tmp_path / 'o.parquet'}"]
    for schedule in (["--cron", "61 3 * * *"], ["--cron", "0 3 * * *", "--timezone", "Mars/Olympus"]):
        done = run_cli("deploy", "--spec", str(spec), "--pool", pool, "--name", "bad", "--api-url",
                       prefect_server, *schedule, *paths)  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("enrich: error: the schedule: "), done.stderr
        assert len(done.stderr.splitlines()) == 1
    assert prefect_api("GET", f"{prefect_server}/deployments/name/enrich-file/bad").status_code == 404


def test_a_worker_runs_a_job_submitted_to_the_deployment(
    tmp_path: Path, server: str, prefect_server: str, pool: str, worker: Path
) -> None:
    keys = [f"w{i}" for i in range(30)]
    source, spec = write_lookup_job(tmp_path, server, keys)
    deployed = run_cli(
        "deploy", "--spec", str(spec), "--pool", pool, "--name", "adhoc", "--api-url", prefect_server
    )
    assert deployed.returncode == 0, deployed.stderr
    output = tmp_path / "out.parquet"
    done = run_cli(
        "submit", str(source), "--spec", str(spec), "--output", str(output),
        "--deployment", "enrich-file/adhoc", "--api-url", prefect_server, "--timeout", "180",
        timeout_s=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + worker.read_text()[-3000:]
    assert pl.read_parquet(output)["ip"].to_list() == keys
    assert "rows        30 (30 ok, 0 failed)" in done.stdout


EMIT = """
import json, sys
from prefect.events import emit_event
for payload in json.loads(sys.argv[1]):
    resource = {"prefect.resource.id": "enrich.file.test"}
    emit_event(event="enrich.file.arrived", resource=resource, payload=payload)
"""
SAVE_WEBHOOK_BLOCK = """
import sys
from prefect.blocks.notifications import CustomWebhookNotificationBlock
CustomWebhookNotificationBlock(
    name="enrich-test", url=sys.argv[1], json_data={"subject": "{{subject}}", "body": "{{body}}"},
    allow_private_urls=True,
).save("enrich-alerts", overwrite=True)
"""


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook(prefect_server: str) -> Iterator[list[str]]:
    """A webhook receiver on loopback, and a custom-webhook/enrich-alerts block pointing at it;
    the bodies it received."""
    _Hook.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        saved = subprocess.run(
            [sys.executable, "-c", SAVE_WEBHOOK_BLOCK, url],
            env={**os.environ, "PREFECT_API_URL": prefect_server},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert saved.returncode == 0, saved.stderr
        yield _Hook.received
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=30)


def test_an_arrived_file_event_starts_a_job_on_that_file_and_a_duplicate_none(
    tmp_path: Path, prefect_server: str, pool: str, worker: Path, webhook: list[str]
) -> None:
    """Two enrich.file.arrived events for the same input and output, emitted together by a Prefect
    client: one job enriches the file; the duplicate's run stops at the output's lock, asking
    nothing (the mock API counts each key once), and its failure is sent to the webhook block
    --notify-block names."""
    keys = ["held-0", *(f"e{i}" for i in range(20))]
    output = tmp_path / "arrived.parquet"
    # The job that takes the output's lock waits on held-0 until the duplicate's run has stopped:
    # however late the worker starts that second run, it meets the lock, not a finished output.
    with running_mock_api() as api:
        limits = "[limits]\nconcurrency = 2\n[cache]\nenabled = false\n"
        source, spec = write_lookup_job(tmp_path, api, keys, limits, api_options="timeout_s = 600")
        _deploy_and_emit_twice(source, spec, output, prefect_server, pool)
        wait_until(lambda: _states_of(prefect_server) == ["FAILED", "RUNNING"], "the duplicate to stop", 150)
        release_held_keys(api)
        wait_until(lambda: _states_of(prefect_server) == ["COMPLETED", "FAILED"], "the job to end", 150)
        per_key = server_stats(api)["per_key"]
    assert all(per_key[key] == 1 for key in keys)  # one job asked for them: the other stopped first
    assert pl.read_parquet(output)["ip"].to_list() == keys
    runs = _runs_of(prefect_server, "enrich-file/arrivals")
    assert sorted(state for state, _, _ in runs) == ["COMPLETED", "FAILED"], runs
    assert all(parameters["output"] == str(output.resolve()) for _, parameters, _ in runs)
    (stopped,) = [message for state, _, message in runs if state == "FAILED"]
    assert "another enrich job (pid " in stopped, stopped
    assert " is writing" in stopped, stopped
    wait_until(lambda: bool(webhook), "the failed job's notification", 90)
    (notification,) = webhook
    assert f"enrich job failed: {output.resolve()}" in notification, notification
    assert "another enrich job (pid " in notification, notification


def _deploy_and_emit_twice(source: Path, spec: Path, output: Path, prefect_server: str, pool: str) -> None:
    """Deploy with --on-event and emit the same arrival twice."""
    deployed = run_cli(
        "deploy", "--spec", str(spec), "--pool", pool, "--name", "arrivals", "--on-event",
        "--notify-block", "custom-webhook/enrich-alerts", "--api-url", prefect_server,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    assert "  on event      enrich.file.arrived" in deployed.stdout
    assert "  on failure    a message through custom-webhook/enrich-alerts" in deployed.stdout
    payload = {"input": str(source.resolve()), "output": str(output.resolve())}
    emitted = subprocess.run(
        [sys.executable, "-c", EMIT, json.dumps([payload, payload])],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert emitted.returncode == 0, emitted.stderr


def _states_of(prefect_server: str) -> list[str]:
    """The state types of enrich-file/arrivals' runs, sorted."""
    return sorted(state for state, _, _ in _runs_of(prefect_server, "enrich-file/arrivals"))


def _runs_of(prefect_server: str, deployment: str) -> list[tuple[str, dict[str, Any], str]]:
    """The deployment's runs: each one's state type, parameters and state message."""
    found = prefect_api("GET", f"{prefect_server}/deployments/name/{deployment}").json()
    query = {"deployments": {"id": {"any_": [found["id"]]}}}
    runs = prefect_api("POST", f"{prefect_server}/flow_runs/filter", json=query).json()
    return [(run["state_type"], run["parameters"], run["state"]["message"] or "") for run in runs]


def test_an_inbox_deployment_on_the_pool_sweeps_its_folder(
    tmp_path: Path, server: str, prefect_server: str, pool: str, worker: Path
) -> None:
    """--inbox and --outbox add enrich-inbox/<name>, every --sweep-every seconds, one sweep at a
    time: a file dropped in the inbox is enriched into the outbox by the pool's worker."""
    _, spec = write_lookup_job(tmp_path, server, ["x"])
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    deployed = run_cli(
        "deploy", "--spec", str(spec), "--pool", pool, "--name", "sweeper", "--inbox", str(inbox),
        "--outbox", str(outbox), "--sweep-every", "2", "--api-url", prefect_server,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    assert f"  inbox         enrich-inbox/sweeper every 2 s: each new file of {inbox}/ into {outbox}/" in (
        deployed.stdout
    )
    read = prefect_api("GET", f"{prefect_server}/deployments/name/enrich-inbox/sweeper").json()
    try:
        assert read["work_pool_name"] == pool
        assert read["schedules"][0]["schedule"]["interval"] == 2.0
        assert read["global_concurrency_limit"]["limit"] == 1
        assert read["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        pl.DataFrame({"ip": ["i1", "i2"]}).write_csv(inbox / ".drop.csv")
        (inbox / ".drop.csv").rename(inbox / "drop.csv")  # whole, under its name: a sweep never reads half
        wait_until(lambda: (inbox / "done" / "drop.csv").exists(), "a sweep by the pool's worker", 150)
    finally:
        # The module's server would otherwise schedule a sweep every 2 s for every later test.
        prefect_api("DELETE", f"{prefect_server}/deployments/{read['id']}").raise_for_status()
    assert pl.read_parquet(outbox / "drop.csv.enriched.parquet")["ip"].to_list() == ["i1", "i2"]


def test_a_deployments_bucket_locations_stay_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--param input=s3://...` and `--inbox s3://...`: a URL travels as given (a path is resolved
    for the worker; made into one, a URL became `<cwd>/s3:/bucket/...`)."""
    from enrich.cli.deploy import _path_parameters

    monkeypatch.chdir(tmp_path)
    given = ["input=s3://bucket/in/", "output=out.parquet"]
    expected = {"input": "s3://bucket/in/", "output": str(tmp_path.resolve() / "out.parquet")}
    assert _path_parameters(given) == expected
