"""Idle work: how much CPU `carebot run` workers use when there is nothing to answer.

    python -m bench.idle                         # 10 accounts polled every second, 1 and 4 workers, PostgreSQL
    python -m bench.idle --workers 1 --db sqlite --seconds 60

Each worker polls every account every poll interval, reading or (when another worker holds the account's
lease) only sending, so what an empty cycle costs is paid accounts x workers times per interval, and it
takes CPU from the work that matters when the workers share a machine (see bench/scaleout.py). Here
mastodon-mock (a subprocess) holds the brand accounts and no mention is ever posted; W workers start with
the real CLI, get a few seconds to settle (first cycles, leases), and their CPU seconds (from /proc) are
read over `--seconds` of wall time. It prints each worker's share of one core, their sum, and the mock's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crash_peers import Daemon  # noqa: E402
from bench.scaleout import brands, cpu_seconds, seed_config, write_config  # noqa: E402
from bot.storage import Storage  # noqa: E402
from tests.peers import mastodon as mastodon_peer  # noqa: E402
from tests.peers.database import POSTGRES_URL, scratch_schema  # noqa: E402

SETTLE = 8.0  # seconds before measuring: start-up, the first cycles and the leases are not idle work


def measure(
    options: argparse.Namespace, workers: int, mock: mastodon_peer.RunningMock, workdir: Path
) -> tuple[list[float], float]:
    """Each worker's CPU share of one core over the measured seconds, and the mock's."""
    with ExitStack() as stack:
        if options.db == "postgresql":
            db_url = stack.enter_context(scratch_schema(options.postgres_url, "carebot_idle"))
        else:
            db_url = f"sqlite:///{workdir / f'idle-{workers}.db'}"
        config = write_config(
            workdir / f"carebot-{workers}.yaml", [mock.base_url], db_url, options.accounts, options.poll
        )
        Storage.open(db_url).close()
        env = {f"{name.upper()}_TOKEN": f"{name}_token" for name in brands(options.accounts)}
        daemons = [Daemon(config, env, workdir / f"worker-{workers}-{n}.log") for n in range(workers)]
        for daemon in daemons:
            daemon.start()
            stack.callback(daemon.close)
        time.sleep(SETTLE)
        before = [cpu_seconds(d.pid) if d.pid else 0.0 for d in daemons]
        mock_before, started = cpu_seconds(mock.pid), time.monotonic()
        time.sleep(options.seconds)
        elapsed = time.monotonic() - started
        after = [cpu_seconds(d.pid) if d.pid else 0.0 for d in daemons]
        mock_share = (cpu_seconds(mock.pid) - mock_before) / elapsed
        for daemon in daemons:
            if not daemon.alive():
                raise RuntimeError(f"a worker exited on its own:\n{daemon.log_text()[-3000:]}")
            daemon.terminate(10.0)
    return [(b - a) / elapsed for a, b in zip(before, after, strict=True)], mock_share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--poll", type=float, default=1.0, help="poll interval in seconds (default 1)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to measure (default 30)")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    options = parser.parse_args(argv)
    print(
        f"idle: {options.accounts} accounts polled every {options.poll:g} s, nothing to answer, {options.db}; "
        f"CPU over {options.seconds:g} s, as a share of one core"
    )
    print("workers  per worker                         all workers  per account and poll  mock")
    with tempfile.TemporaryDirectory(prefix="carebot-idle-") as scratch:
        workdir = Path(scratch)
        with mastodon_peer.mastodon_subprocess(workdir / "mastodon", seed=seed_config(options.accounts)) as mock:
            for workers in options.workers:
                shares, mock_share = measure(options, workers, mock, workdir)
                total = sum(shares)
                # CPU milliseconds one empty cycle costs: each worker runs every account once per poll
                per_cycle = 1000 * total * options.poll / (options.accounts * workers)
                listed = " ".join(f"{share:5.1%}" for share in shares)
                print(f"{workers:>7}  {listed:<33}  {total:>11.1%}  {per_cycle:>15.1f} ms  {mock_share:>5.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
