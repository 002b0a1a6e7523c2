"""The benchmark harness end to end on its smallest plan (figures are not checked: no timing here)."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


# Over 200 s beside the rest of the suite on a slow day here (260 s alone, its own Prefect
# servers): its bound leaves room for a slower machine, since it judges no timing.
@pytest.mark.timeout(600)
def test_smoke_plan_writes_results_table_and_plots(tmp_path: Path, prefect_server: str) -> None:
    """Its flow runs report to the session's Prefect server: each would otherwise start one."""
    command = [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(
        [*command, "--prefect-api-url", prefect_server],
        capture_output=True, text=True, timeout=580, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    scenarios = {figure["scenario"] for figure in results["figures"]}
    assert scenarios == {
        "sweep", "faults", "pacing", "rate", "auto", "duplicates", "bulk", "senders", "baselines", "jobs",
        "memory", "answer-log", "online", "online-dedup",
    }  # fmt: skip
    names = {figure["name"] for figure in results["figures"]}
    assert {
        "bare aiohttp",
        "bare httpx",
        "enrich engine",
        "naive Prefect (task per row)",
        "auto (max 256)",
    } <= names
    assert {"enrich run (flow)", "enrich run --no-flow", "job, answer log", "job, no answer log"} <= names
    assert {"peak RSS", "peak RSS, flow", "peak RSS, hostile answers"} <= names
    # Each memory job's peak with the part of it mapped from files (Linux /proc), a part of it.
    memory = [f for f in results["figures"] if f["scenario"] == "memory"]
    for peak in (f for f in memory if f["name"] in {"peak RSS", "peak RSS, flow"}):
        mapped = next(
            f
            for f in memory
            if f["name"] == f"{peak['name']}, mapped from files" and f["rows"] == peak["rows"]
        )
        assert 0 < mapped["max"] < peak["max"]
    # The clients in the lock, and the engine on both fast senders, each with its own peak memory.
    senders = {"bare aiohttp", "bare pyreqwest", "engine, aiohttp sender", "engine, pyreqwest sender"}
    assert senders | {f"{name}, peak RSS" for name in senders} <= {
        f["name"] for f in results["figures"] if f["scenario"] == "senders"
    }
    assert results["machine"]["versions"]["prefect"]
    # Counted by the mock API: ten copies of each key cost one request per distinct key.
    tenfold = next(
        f for f in results["figures"] if f["scenario"] == "duplicates" and f["params"]["dup"] == 10
    )
    assert tenfold["requests"] == tenfold["rows"] // 10
    # enrich api: callers asking the same keys cost one request per key with its cache.
    cached = next(f for f in results["figures"] if f["name"] == "with its cache")
    assert cached["requests"] == cached["params"]["distinct_keys"]
    assert {"through enrich api", "direct to the API", "GET /healthz"} <= {
        f["name"] for f in results["figures"] if f["scenario"] == "online"
    }
    table = (tmp_path / "results.md").read_text().splitlines()
    # The machine and the day, then the targets, then every figure.
    assert table[2].startswith(f"Machine: {results['date']}; ")
    assert "Python 3.11" in table[2]
    assert table[4] == "| target | measured | met |"
    assert len(results["targets"]) >= 9
    for plot in ("throughput.png", "contenders.png", "senders.png", "memory.png", "flow-overhead.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(120)
def test_engine_profile_names_the_engine_functions_and_writes_html(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile", "--keys", "300", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rows/s (under the profiler)" in done.stdout
    # The shares printed are the engine's own functions and the sender around aiohttp.
    assert "AiohttpSender.send" in done.stdout
    assert "Attempts.attempt  service/calling/attempts.py" in done.stdout
    assert "<html" in (tmp_path / "engine-profile.html").read_text()[:2000].lower()


@pytest.mark.timeout(120)
def test_costs_lists_each_piece_of_the_hot_path() -> None:
    """benchmarks.costs prints one positive cost per piece (the figures themselves are not checked)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.costs", "--repeat", "1"],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    pieces = {line.split(" us  ", 1)[1]: float(line.split(" us  ", 1)[0]) for line in lines}
    assert {
        "httpx.Request(...) built",
        "enrich: RequestBuilder.build",
        "enrich: answer_of (a 2xx answer)",
    } <= set(pieces)
    assert all(cost > 0 for cost in pieces.values())


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("mode", "baseline"),
    [([], "the bare aiohttp loop"), (["--without-http"], "the bare loop without HTTP")],
)
def test_overhead_compares_the_engines_with_the_bare_loop_round_by_round(
    tmp_path: Path, mode: list[str], baseline: str
) -> None:
    """benchmarks.overhead runs the bare loop and the engines (this one, and another checkout's in
    a process of its own) and prints the paired medians of each engine: against the mock API, or
    (--without-http) around a sender that answers at once, every key enriched (an engine's round
    fails when rows are left unenriched)."""
    checkout = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.overhead", *mode, "--keys", "1200", "--rounds", "2",
         "--checkout", str(checkout)],
        capture_output=True, text=True, timeout=100, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(checkout)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["engine", f"engine of {checkout}"]
    assert all(f"us per request over {baseline}," in line for line in lines)
    assert all("medians of 2 paired rounds" in line for line in lines)


@pytest.mark.timeout(120)
def test_overhead_names_a_checkout_it_cannot_measure_in_one_line(tmp_path: Path) -> None:
    """A --checkout that is no checkout is a usage error before anything runs; one whose engine
    fails ends the run with the engine's last word, not a CalledProcessError's traceback."""
    checkout = Path(__file__).resolve().parents[2]
    broken = tmp_path / "broken"
    (broken / "benchmarks").mkdir(parents=True)
    (broken / "benchmarks" / "__init__.py").write_text("")
    (broken / "benchmarks" / "contenders.py").write_text("raise RuntimeError('this engine is broken')\n")

    def overhead(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.overhead", "--keys", "1000", "--rounds", "1", *args],
            capture_output=True, text=True, timeout=100, check=False, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(checkout)},
        )  # fmt: skip

    not_one = overhead("--checkout", str(tmp_path / "nowhere"))
    assert not_one.returncode == 2, not_one.stderr
    assert "--checkout " + str(tmp_path / "nowhere") + ": not a checkout of Enrich" in not_one.stderr
    failing = overhead("--checkout", str(broken))
    assert failing.returncode == 1, failing.stderr
    assert failing.stderr == (
        f"python -m benchmarks.overhead: error: the engine of {broken} failed: "
        "RuntimeError: this engine is broken\n"
    )


def test_overhead_pairs_each_round_with_its_own_bare_loop() -> None:
    """A slow round slows both sides: compared round by round, its drift cancels (the medians of
    each side alone would read 40 us, the paired ones read the engine's own 10)."""
    from benchmarks.overhead import summary

    line = summary("engine", [100.0, 200.0, 100.0], [110.0, 210.0, 140.0])
    assert line.startswith("engine: +10.0 us per request over the bare aiohttp loop, 0.909x its speed")
    assert "(medians of 3 paired rounds; bare 100 us, engine 140 us per request)" in line


def test_a_flow_job_faster_than_prefects_start_up_is_no_result() -> None:
    """Flow overhead below zero (the job beat the start-up measured alone) is reported as
    inconsistent, never as a target met; a sane one is judged against 1.1x."""
    from benchmarks.figures import Figure
    from benchmarks.report import evaluate
    from service import DEFAULT_BATCH_SIZE

    def jobs(flow_s: float) -> list[Figure]:
        batch = {"rows": 100_000, "per_request": 100, "batch_rows": DEFAULT_BATCH_SIZE}
        return [
            Figure("jobs", "start-up, flow", {"rows": 10}, 10, [8.3], 0, unit="s"),
            Figure("jobs", "start-up, no flow", {"rows": 10}, 10, [0.4], 0, unit="s"),
            Figure("jobs", "enrich run (flow)", batch, 100_000, [flow_s], 0, unit="s"),
            Figure("jobs", "enrich run --no-flow", batch, 100_000, [1.4], 0, unit="s"),
        ]

    def overhead(flow_s: float) -> tuple[str, bool | None]:
        target = next(t for t in evaluate(jobs(flow_s)) if t.goal.startswith("flow overhead"))
        return target.measured, target.met

    measured, met = overhead(6.4)
    assert met is None
    assert "inconsistent" in measured
    assert overhead(9.4) == ("1.07x (Prefect start-up 7.9 s apart)", True)
    assert overhead(10.0)[1] is False


def test_the_steady_rate_leaves_out_the_start_and_the_tail() -> None:
    """A burst at the start and a slow tail at the end do not move the pace in between; a job too
    short to have a steady state has none (NaN), and the rate target then reads not measured."""
    from benchmarks.figures import Figure
    from benchmarks.report import evaluate, steady_rate

    paced = [i / 500 for i in range(2_500)]  # 500/s for 5 s
    burst = [0.0] * 25
    tail = [5 + i / 10 for i in range(10)]  # the last keys, one every 100 ms
    assert steady_rate(paced + burst + tail) == pytest.approx(500, rel=0.01)
    assert math.isnan(steady_rate([0.0, 0.5, 1.0]))
    assert math.isnan(steady_rate([]))

    def rate_targets(steady: float, most: float) -> list[tuple[str, bool | None]]:
        params = {"rate": "500/s", "burst": 25, "in_flight": 64}
        figures = [
            Figure("rate", "whole job", params, 2_500, [478.5], 2_500),
            Figure("rate", "steady state", params, 2_500, [steady], 2_500, unit="requests/s"),
            Figure("rate", "most in any second", params, 2_500, [most], 2_500, unit="requests"),
        ]
        return [(t.measured, t.met) for t in evaluate(figures) if t.goal.startswith("rate 500/s")]

    assert rate_targets(491.0, 525) == [
        ("0.982; whole job 0.957, its start included", True),
        ("525 at most", True),
    ]
    assert rate_targets(480.0, 526) == [
        ("0.960; whole job 0.957, its start included", False),
        ("526 at most", False),
    ]
    assert rate_targets(math.nan, 300)[0] == ("not measured: too short a job", None)


def test_memory_targets_judge_each_mode_and_every_growth_step() -> None:
    """--no-flow against 300 MB and flow against 350 MB at their largest input; growth judged at
    each step (a flat first step does not hide a steep second one)."""
    from benchmarks.figures import Figure
    from benchmarks.report import evaluate

    def memory_targets(no_flow: list[float], flow: list[float]) -> list[tuple[str, str, bool | None]]:
        figures = []
        for rows, alone, flowed in zip((100_000, 1_000_000, 10_000_000), no_flow, flow, strict=True):
            params = {"rows": rows, "distinct_keys": 20_000}
            figures.append(Figure("memory", "peak RSS", params, rows, [alone], 0, unit="MB"))
            figures.append(Figure("memory", "peak RSS, flow", params, rows, [flowed], 0, unit="MB"))
        return [(t.goal, t.measured, t.met) for t in evaluate(figures) if "memory" in t.goal]

    rows = "100,000, 1,000,000, 10,000,000 rows"
    assert memory_targets([250, 270, 280], [300, 320, 340]) == [
        (f"peak memory, --no-flow, {rows}: <= 300 MB", "280 MB", True),
        (f"peak memory, flow, {rows} (its Prefect server apart): <= 350 MB", "340 MB", True),
        (
            "memory growth 100,000 -> 1,000,000 -> 10,000,000 rows, --no-flow: <= 1.15x a step",
            "1.08x, 1.04x",
            True,
        ),
    ]
    # The part mapped from files is named beside the peak it is part of, the target on the peak.
    figures = [
        Figure("memory", "peak RSS", {"rows": 10}, 10, [290], 0, unit="MB"),
        Figure("memory", "peak RSS", {"rows": 20}, 20, [310], 0, unit="MB"),
        Figure("memory", "peak RSS, mapped from files", {"rows": 10}, 10, [90], 0, unit="MB"),
        Figure("memory", "peak RSS, mapped from files", {"rows": 20}, 20, [120], 0, unit="MB"),
    ]
    judged = [(t.measured, t.met) for t in evaluate(figures) if t.goal.startswith("peak memory, --no-flow")]
    assert judged == [("310 MB (120 MB of it mapped from files)", False)]
    steep = memory_targets([250, 255, 299], [300, 320, 351])
    assert [met for _, _, met in steep] == [True, False, False]
    assert steep[2][1] == "1.02x, 1.17x"


def test_only_the_whole_default_plan_writes_the_committed_results_folder() -> None:
    from benchmarks.run import SCENARIOS, results_folder

    every = list(SCENARIOS)
    assert results_folder("default", every) == Path("benchmarks/results")
    # The folders README quotes for single scenarios of the default plan.
    assert results_folder("default", ["memory"]) == Path("benchmarks/results-memory")
    assert results_folder("default", ["online"]) == Path("benchmarks/results-online")
    assert results_folder("quick", every) == Path("benchmarks/results-quick")
    assert results_folder("quick", ["sweep", "faults"]) == Path("benchmarks/results-quick-sweep-faults")


def test_plots_show_only_what_the_run_measured(tmp_path: Path) -> None:
    """A run of the memory scenario alone draws memory.png and no empty plot of what it did not
    measure; a plot an earlier run left in the folder goes, so every plot there is this run's."""
    from benchmarks.figures import Figure
    from benchmarks.plots import plot_all

    (tmp_path / "throughput.png").write_bytes(b"an earlier run's plot")
    figures = [Figure("memory", "peak RSS", {"rows": 10}, 10, [250], 0, unit="MB")]
    written = plot_all(figures, tmp_path, "a machine, a day")
    assert written == [tmp_path / "memory.png"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["memory.png"]
    assert (tmp_path / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_senders_contender_collects_garbage_as_enrich_run_does() -> None:
    """The senders scenario's bare loops and engines run with the collector ``enrich run`` sets
    (set there without importing the command line): a bare aiohttp loop on the defaults read 28%
    slower, and the engines looked faster than the loop a user would write."""
    from benchmarks.senders import collect_garbage_as_jobs_do
    from enrich.cli.process import collect_garbage_less_often

    defaults = gc.get_threshold()
    try:
        collect_garbage_less_often()
        as_enrich_run = gc.get_threshold()
        gc.set_threshold(*defaults)
        collect_garbage_as_jobs_do()
        as_senders = gc.get_threshold()
    finally:
        gc.set_threshold(*defaults)
        gc.unfreeze()
    assert as_senders == as_enrich_run != defaults


@pytest.mark.timeout(120)
def test_store_costs_measures_each_checkout_and_names_a_broken_one_in_one_line(tmp_path: Path) -> None:
    """benchmarks.store_costs measures the answer log and the cache of this checkout and of each
    --checkout in a process of its own; a checkout whose stores fail ends the run with their last
    word."""
    checkout = Path(__file__).resolve().parents[2]
    broken = tmp_path / "broken"
    (broken / "service" / "caches").mkdir(parents=True)
    (broken / "service" / "__init__.py").write_text("raise RuntimeError('these stores are broken')\n")
    (broken / "service" / "caches" / "answer_log.py").write_text("")

    def store_costs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.store_costs", "--keys", "2000", *args],
            capture_output=True, text=True, timeout=100, check=False, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(checkout)},
        )  # fmt: skip

    done = store_costs("--checkout", str(checkout))
    assert done.returncode == 0, done.stderr
    rows = [line.rsplit(maxsplit=3) for line in done.stdout.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == ["this checkout", str(checkout)]
    assert all(float(figure) > 0 for row in rows for figure in row[1:])
    failing = store_costs("--checkout", str(broken))
    assert failing.returncode == 1, failing.stderr
    assert failing.stderr == (
        f"python -m benchmarks.store_costs: error: the stores of {broken} failed: "
        "RuntimeError: these stores are broken\n"
    )


@pytest.mark.timeout(120)
def test_answer_log_threads_prints_each_round_and_the_paired_split(tmp_path: Path) -> None:
    """benchmarks.answer_log_threads runs both jobs each round against the mock API (a job that
    leaves rows unenriched fails the run) and prints wall, event-loop and other-thread figures."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.answer_log_threads", "--keys", "400", "--rounds", "2"],
        capture_output=True, text=True, timeout=100, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = [line.split(" wall ")[0].strip() for line in done.stdout.splitlines()]
    assert names == [
        "round 1, with the log", "round 1, without", "round 2, with the log", "round 2, without",
        "median, with the log", "median, without", "the log's cost (paired)",
    ]  # fmt: skip
    walls = [float(line.split(" wall ")[1].split()[0]) for line in done.stdout.splitlines()[:6]]
    assert all(wall > 0 for wall in walls)


def test_paired_figures_compare_each_round_with_its_own_other_side() -> None:
    """A slow round slows both sides: compared round by round, its drift cancels (each side's own
    medians differ by 40, 25 and 15 here; the paired ones read 10, 5 and 5)."""
    from benchmarks.answer_log_threads import RowCosts
    from benchmarks.paired import difference, medians, paired_differences

    with_log = [RowCosts(110, 100, 10), RowCosts(210, 190, 20), RowCosts(140, 120, 20)]
    without = [RowCosts(100, 95, 5), RowCosts(200, 185, 15), RowCosts(100, 95, 5)]
    assert paired_differences(with_log, without) == RowCosts(10, 5, 5)
    assert difference(medians(with_log), medians(without)) == RowCosts(40, 25, 15)


def test_flow_cpu_counts_what_the_processes_under_a_job_spend() -> None:
    """A job's Prefect server is its child, and may have children of its own: what every process
    under the job spends is read from /proc, the job's own not."""
    from benchmarks.flow_cpu import cpu_seconds_below

    burner = "import sys, time\nwhile time.process_time() < 0.3: pass\n"
    burner += "print('burnt', flush=True)\nsys.stdin.read()"
    # Runs its first argument as a program, with the rest as that program's arguments.
    runner = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', *sys.argv[1:]], check=True)"
    job = subprocess.Popen(  # the job, under it a runner, under that the burner
        [sys.executable, "-c", runner, runner, burner],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert job.stdin is not None
    assert job.stdout is not None
    try:
        assert job.stdout.readline() == "burnt\n"
        below = cpu_seconds_below(job.pid)
    finally:
        job.stdin.close()  # the burner's stdin: it ends, then the runner, then the job
        job.wait(timeout=60)
        job.stdout.close()
    assert len(below) == 2  # the runner and the burner
    assert job.pid not in below
    assert max(below.values()) >= 0.25


@pytest.mark.timeout(180)
def test_flow_cpu_prints_each_run_and_the_flows_own_cost(tmp_path: Path, prefect_server: str) -> None:
    """benchmarks.flow_cpu runs the four jobs (10 rows and --rows, with and without the flow) and
    prints each and the paired difference; its flow runs report to the session's Prefect server."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.flow_cpu", "--rows", "300", "--rounds", "1"],
        capture_output=True, text=True, timeout=170, check=False, cwd=tmp_path,
        env={**os.environ, "ENRICH_BENCH_PREFECT_API_URL": prefect_server},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = [line.split(" wall ")[0].strip() for line in done.stdout.splitlines()]
    assert names == [
        "10 rows, no flow", "10 rows, flow", "300 rows, no flow", "300 rows, flow", "the flow's own (paired)",
    ]  # fmt: skip
