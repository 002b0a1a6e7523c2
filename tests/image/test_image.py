"""The Docker image, built from this checkout with podman and exercised as a user would.

Opt-in (``ENRICH_TEST_IMAGE=1``, see README "Docker"): it needs podman and the build tool
(``../shared/tools/build-image``, or ``ENRICH_BUILD_IMAGE``), and takes about five minutes. Every
container runs on loopback only (``--network none``) or on an internal network of its own, and is
removed at the end. Stops go through ``podman stop -t 5``: a container that does not stop within
5 s is SIGKILLed, which shows as exit 137.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.serve import SERVING_HEADLINE
from service.testing.mock_process import READY
from tests.helpers import wait_until

# Each test's own waits (a Prefect server start in a container: up to 240 s) bound it, not the
# suite's default timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD_TOOL = Path(os.environ.get("ENRICH_BUILD_IMAGE", REPOSITORY.parent / "shared/tools/build-image"))
TAG = "enrich:image-test"
KILLED = 137  # what a container that ignored `podman stop` until its timeout exits with
SPEC = (
    '[api]\nurl = "http://127.0.0.1:9/v1/lookup/{ip}"\n[input]\nkey = "ip"\n'
    '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
)
SERVE = ["enrich", "serve", "--spec", "/data/spec.toml", "--inbox", "/data/inbox", "--outbox", "/data/outbox"]


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)


def container_stderr(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The container's stderr lines, without podman's own log lines (here it says on every run
    that it has no systemd to time healthchecks)."""
    return [line for line in run.stderr.splitlines() if not line.startswith('time="')]


@pytest.fixture(scope="module")
def image() -> str:
    """The image built from this checkout (about 1.5 min the first time, then cached layers)."""
    os.environ.setdefault("CONTAINERS_CONF", "/var/tmp/enrich-image/containers.conf")
    built = subprocess.run(
        [str(BUILD_TOOL), str(REPOSITORY), TAG], capture_output=True, text=True, timeout=900, check=False
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return TAG


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names for this test's containers; all of them removed at the end, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "--force", "--time", "0", name)


def start(names: list[str], *args: str, network: str = "none") -> str:
    """``podman run -d ARGS`` (image and command among them), named for this test; its name."""
    name = f"enrich-test-{uuid.uuid4().hex[:8]}"
    names.append(name)
    started = podman("run", "-d", "--name", name, "--network", network, *args)
    assert started.returncode == 0, started.stderr
    return name


def stop(name: str) -> int:
    """``podman stop -t 5``: its exit status."""
    stopped = podman("stop", "-t", "5", name, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    return exit_status(name)


def exit_status(name: str) -> int:
    return int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())


def logs(name: str) -> str:
    shown = podman("logs", name)
    return shown.stdout + shown.stderr


def healthy(name: str) -> bool:
    """One run of the image's healthcheck in ``name`` (podman here has no timer to run it)."""
    return podman("healthcheck", "run", name, timeout=30).returncode == 0


def spec_folder(tmp_path: Path) -> Path:
    """A host folder for /data holding a spec, owned by uid 12345 (not the image's user)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "spec.toml").write_text(SPEC)
    for path in (data, data / "spec.toml"):
        os.chown(path, 12345, 12345)
    data.chmod(0o755)
    return data


def test_the_demo_runs_as_a_non_root_user(image: str) -> None:
    run = podman("run", "--rm", "--network", "none", image, "sh", "-c", "id -u && enrich demo --rows 2000")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == "10001"
    assert "rows        2,000 (" in run.stdout


def test_object_storage_is_reached_from_the_image(image: str) -> None:
    """The image holds the object-storage client (the site-packages trimming spared it): a job on
    a bucket whose endpoint does not answer is one line naming the object, exit 1. (The round trip
    itself is tested against moto outside the image: moto is a dev dependency.)"""
    variables = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "k",
                 "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}  # fmt: skip
    store = [flag for name, value in variables.items() for flag in ("-e", f"{name}={value}")]
    job = "enrich run --no-flow s3://bucket/in.parquet --spec /tmp/spec.toml --output /tmp/o.parquet"
    script = f"printf '{SPEC}' > /tmp/spec.toml && {job}"
    run = podman("run", "--rm", "--network", "none", *store, image, "sh", "-c", script)
    assert run.returncode == 1, run.stdout + run.stderr
    last = container_stderr(run)[-1]
    assert last.startswith("enrich: error: s3://bucket/in.parquet: object storage: "), last
    assert "Traceback" not in run.stderr


def test_a_folder_the_user_cannot_write_is_one_line_and_user_fixes_it(image: str, tmp_path: Path) -> None:
    """The README's volume command: a host folder owned by someone else is refused in one line
    naming the fix; with that fix (--user of the folder's owner) the job writes there."""
    data = spec_folder(tmp_path)
    volume = f"{data}:/data"
    refused = podman("run", "--rm", "--network", "none", "-v", volume, image, "enrich", "demo")
    assert refused.returncode == 1
    assert container_stderr(refused) == [
        "enrich: error: /data is not writable by uid 10001, the user this container runs as: run it "
        'as the folder\'s owner (--user "$(id -u):$(id -g)") or give the folder to uid 10001 '
        "(chown -R 10001 DIR)"
    ]
    command = ["run", "--rm", "--network", "none", "-v", volume, "--user", "12345:12345", image]
    done = podman(*command, "enrich", "demo", "--rows", "50", "--dir", "/data/demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (data / "demo" / "output.parquet").stat().st_uid == 12345


def test_a_stop_during_start_up_is_honoured(image: str, containers: list[str], tmp_path: Path) -> None:
    """`podman stop` while serve starts its Prefect server: it stops within the timeout (143),
    where a PID 1 without a handler ignored SIGTERM until SIGKILL (137)."""
    volume = f"{spec_folder(tmp_path)}:/data"
    name = start(containers, "-v", volume, "--user", "12345:12345", image)
    wait_until(lambda: "starting a local Prefect server" in logs(name), "serve's start-up", 120)
    assert stop(name) == 143, logs(name)
    assert "enrich: error: stopped by SIGTERM while starting" in logs(name)


def test_serve_is_healthy_keeps_its_state_under_data_and_stops_cleanly(
    image: str, containers: list[str], tmp_path: Path
) -> None:
    """Healthy once serving; the runner's control endpoint (an unauthenticated POST /shutdown) is
    unreachable from another container; Prefect's database is in the volume; stop exits 0."""
    data = spec_folder(tmp_path)
    network = f"enrich-test-{uuid.uuid4().hex[:8]}"
    assert podman("network", "create", "--internal", network).returncode == 0
    try:
        name = start(containers, "-v", f"{data}:/data", "--user", "12345:12345", image, network=network)
        wait_until(lambda: serving(name), "serve's healthcheck", 240)
        address = podman(
            "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
        ).stdout.strip()
        probe = (
            "import urllib.request as u\n"
            f"request = u.Request('http://{address}:8080/shutdown', method='POST')\n"
            "try:\n    print(u.urlopen(request, timeout=10).status)\n"
            "except OSError as exc:\n    print('refused', exc)\n"
        )
        prober = podman("run", "--rm", "--network", network, image, "python", "-c", probe)
        assert prober.stdout.startswith("refused"), prober.stdout + prober.stderr
        assert healthy(name)
        assert (data / ".prefect" / "prefect.db").exists()
        assert stop(name) == 0, logs(name)
    finally:
        podman("rm", "--force", "--time", "0", *containers)
        podman("network", "rm", network)


def test_serve_exits_non_zero_when_its_prefect_server_dies(image: str, containers: list[str]) -> None:
    # The image's own /data (no volume), a spec written into it, then serve as the image runs it.
    name = start(containers, image, "sh", "-c", _write_spec_then("exec " + " ".join(SERVE)))
    wait_until(lambda: serving(name), "serve's healthcheck", 240)
    kill_server = (
        "import os, signal\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    with open(f'/proc/{pid}/cmdline', 'rb') as f:\n"
        "        if b'server\\x00start' in f.read():\n"
        "            os.kill(int(pid), signal.SIGKILL)\n"
    )
    assert podman("exec", name, "python", "-c", kill_server).returncode == 0
    waited = podman("wait", name, timeout=90)
    assert waited.stdout.strip() == "1", logs(name)
    assert "enrich: error: the local Prefect server stopped" in logs(name)


def test_a_one_shot_command_is_not_unhealthy_and_stops_cleanly(image: str, containers: list[str]) -> None:
    name = start(containers, image, "enrich", "mock-api", "--port", "8000")
    wait_until(lambda: READY in logs(name), "the mock API", 60)
    assert healthy(name)
    assert stop(name) == 0, logs(name)


def _write_spec_then(command: str) -> str:
    return f"printf '%s' '{SPEC}' > /data/spec.toml && {command}"


def serving(name: str) -> bool:
    """serve in ``name`` has started serving and its healthcheck passes."""
    return SERVING_HEADLINE in logs(name) and healthy(name)


API_SPEC = SPEC.replace("127.0.0.1:9/", "127.0.0.1:9000/")
ASK = (
    "import json, urllib.request; "
    "request = urllib.request.Request('http://127.0.0.1:8000/v1/enrich/ip', "
    "data=json.dumps({'rows': [{'ip': '1.2.3.4'}]}).encode(), headers={'Content-Type': 'application/json'}); "
    "print(json.load(urllib.request.urlopen(request, timeout=20))['rows'][0]['_enrich_status'])"
)


def test_the_online_endpoint_answers_is_healthy_and_stops_cleanly(image: str, containers: list[str]) -> None:
    """enrich api in the image, against the mock API in the same container: a POST gets its row
    enriched, the healthcheck probes /healthz on --port, and a stop drains and exits 0."""
    command = (
        f"printf '%s' '{API_SPEC}' > /data/spec.toml && (enrich mock-api --port 9000 &) && "
        "exec enrich api --spec ip=/data/spec.toml --port 8000 --no-cache"
    )
    name = start(containers, image, "sh", "-c", command)
    wait_until(lambda: healthy(name), "enrich api's healthcheck", 120)
    asked = podman("exec", name, "python", "-c", ASK, timeout=60)
    assert asked.stdout.strip() == "ok", asked.stdout + asked.stderr + logs(name)
    assert stop(name) == 0, logs(name)
