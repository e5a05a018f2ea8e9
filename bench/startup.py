"""Start-up: how long the short commands take, how long the model takes to load, and the daemon's peak
memory with ten accounts, start-up included.

    python bench/startup.py [--runs 7] [--accounts 10]

Each command runs in a fresh interpreter (the real `python -m bot.cli`), against a SQLite database that
already exists (as on a working install: the schema is current, no migration runs), with carebot's modules
compiled to bytecode as an installed package has them (`pip install` compiles them; run from a checkout with
PYTHONDONTWRITEBYTECODE set, every start would compile ~100 modules again). The floors are `python -c pass`
and `python -c "import sqlalchemy"`, the database layer's import alone. The daemon runs against a
mastodon-mock subprocess with one brand account per carebot account; its peak RSS (VmHWM) is read from
/proc after every account has had a good cycle.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mastodon_mock.config import SeedAccount, SeedConfig  # noqa: E402

from tests import configs  # noqa: E402
from tests.peers.mastodon import SEED, mastodon_subprocess  # noqa: E402

TARGET_SHORT = 0.3  # seconds: commands that need no model
TARGET_MODEL = 0.1  # seconds: the model file, imports aside
TARGET_RSS_MB = 150.0

MODEL_LOAD = """
import time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
from bot.classifier.model import load_model
t2 = time.perf_counter()
load_model()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def brand_seed(accounts: int) -> SeedConfig:
    brands = [
        SeedAccount(username=f"brand{i}", display_name=f"Brand {i}", access_token=f"brand{i}_token", bot=True)
        for i in range(accounts)
    ]
    return SeedConfig(accounts=[*SEED.accounts, *brands])


def write_config(folder: Path, base_url: str, accounts: int, metrics_port: int) -> Path:
    entries = "".join(
        configs.mastodon_account(base_url, name=f"acme-{i}", token=f"brand{i}_token", poll_interval="2s")
        for i in range(accounts)
    )
    return configs.write_config(
        folder,
        db_url=f"sqlite:///{folder / 'carebot.db'}",
        accounts=entries,
        sections=f"metrics:\n  host: 127.0.0.1\n  port: {metrics_port}\n",
    )


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # `status` exits 1 when an account has not run yet: still a timing
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def median_of(runs: int, command: list[str], env: dict[str, str]) -> tuple[float, float]:
    times = sorted(timed(command, env) for _ in range(runs))
    return statistics.median(times), times[-1]


def peak_rss(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    found = {key: int(value) / 1024 for key, value in re.findall(r"(VmHWM|VmRSS):\s+(\d+) kB", status)}
    return found["VmHWM"], found["VmRSS"]


def daemon_memory(config: Path, env: dict[str, str], accounts: int, metrics_port: int) -> tuple[float, float]:
    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"carebot run exited with {process.returncode}")
            try:
                text = httpx.get(f"http://127.0.0.1:{metrics_port}/health", timeout=2).text
            except httpx.TransportError:
                text = ""
            if text.count("last good cycle") >= accounts:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("the accounts did not all complete a cycle within 120 s")
        time.sleep(5)  # a few more cycles each: steady state
        return peak_rss(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=10)
    args = parser.parse_args()
    from tests.peers.mastodon import free_port

    for folder in ("bot", "connectors"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    env["BRAND_TOKEN"] = "brand0_token"
    with (
        tempfile.TemporaryDirectory(prefix="carebot-startup-") as scratch,
        mastodon_subprocess(seed=brand_seed(args.accounts)) as mock,
    ):
        folder = Path(scratch)
        port = free_port()
        config = write_config(folder, mock.base_url, args.accounts, port)
        cli = [sys.executable, "-m", "bot.cli"]
        # The database exists and is current before anything is timed, as on a working install.
        subprocess.run([*cli, "run", "--once", "--config", str(config)], cwd=ROOT, env=env, capture_output=True)
        rows: list[tuple[str, float, float, float | None]] = []
        floor, floor_max = median_of(args.runs, [sys.executable, "-c", "pass"], env)
        rows.append(("python -c pass (floor)", floor, floor_max, None))
        typical, worst = median_of(args.runs, [sys.executable, "-c", "import sqlalchemy"], env)
        rows.append(("import sqlalchemy (alone)", typical, worst, None))
        short = {
            "carebot --help": ["--help"],
            "check-config --offline": ["check-config", "--offline", "--config", str(config)],
            "queue list": ["queue", "list", "--config", str(config)],
            "status": ["status", "--config", str(config)],
        }
        for name, extra in short.items():
            typical, worst = median_of(args.runs, [*cli, *extra], env)
            rows.append((name, typical, worst, TARGET_SHORT))
        typical, worst = median_of(args.runs, [*cli, "classify", "hi"], env)
        rows.append(("classify hi (loads the model)", typical, worst, None))

        loads = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", MODEL_LOAD], cwd=ROOT, env=env, capture_output=True, text=True)
            loads.append(tuple(float(x) for x in out.stdout.split()))
        numpy_s = statistics.median(x[0] for x in loads)
        model_s = statistics.median(x[2] for x in loads)
        model_max = max(x[2] for x in loads)

        peak, steady = daemon_memory(config, env, args.accounts, port)

    print(f"start-up, {args.runs} runs each (median / max, seconds; target for commands without a model)")
    print(f"{'command':34} {'median':>8} {'max':>8} {'target':>8} {'ratio':>6}")
    for name, typical, worst, target in rows:
        ratio = f"{typical / target:.2f}" if target else ""
        print(f"{name:34} {typical:8.3f} {worst:8.3f} {target or '':>8} {ratio:>6}")
    print()
    print(f"model load (file only): median {model_s:.3f} s, max {model_max:.3f} s, target {TARGET_MODEL} s, "
          f"ratio {model_s / TARGET_MODEL:.2f}; numpy import {numpy_s:.3f} s")  # fmt: skip
    print(f"daemon, {args.accounts} accounts: peak RSS {peak:.1f} MB (start-up included), now {steady:.1f} MB; "
          f"target {TARGET_RSS_MB:.0f} MB, ratio {peak / TARGET_RSS_MB:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
