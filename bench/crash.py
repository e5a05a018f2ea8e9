"""The crash test: customers post a burst of mentions while the daemon is SIGKILLed at random moments.

    python bench/crash.py --kills 30 --mentions 60 --db sqlite|postgresql [--platform mastodon|x] [--seed N]

The daemon (`carebot run`, a real child process) is killed with SIGKILL after a random uptime and started
again, `--kills` times, while a customer thread posts `--mentions` mentions of every situation and a team
thread works the cases: a person's reply in each case waiting on us, then resolving it, so that the
daemon sends team replies and (a second later) check-backs while it is being killed. Then one last life
settles the backlog and is stopped with SIGTERM. At the end every mention must have exactly one reply on
the server or be deliberately unanswered by the database's own decision, every team reply and check-back
must be on the server once, and every reply the database calls sent must be that very post on the server
(and the reverse). Exit status 0 only then.

With `--faults` (Mastodon only) the storm brings bad posts, late posts, broken lookups, parked replies a
person retries, and database trouble too: see bench/crash_faults.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from bench.crash_check import Posted, Verdict, check  # noqa: E402
from bench.crash_faults import DatabaseFaults, FaultPlan, PostFaults, marker  # noqa: E402
from bench.crash_peers import PLATFORMS, Daemon, Peer, wait_until  # noqa: E402
from bot.clock import now  # noqa: E402
from bot.config import Config, load_config  # noqa: E402
from bot.decide.playbooks import Playbooks, load_playbooks  # noqa: E402
from bot.models import CaseState, ReplyState  # noqa: E402
from bot.run.cases import resolve_case, team_reply  # noqa: E402
from bot.run.incidents import resolve_incident  # noqa: E402
from bot.storage import Conflict, Storage  # noqa: E402
from tests.peers.database import scratch_schema  # noqa: E402
from tests.peers.tcp_switch import TcpSwitch  # noqa: E402
from tests.scenarios import POSTS, Scenario  # noqa: E402

ACCOUNT = "crash"
SCENARIOS: tuple[Scenario, ...] = (
    *POSTS,
    Scenario("alice", "@{brand} just wanted to say thank you, the new update is lovely!", "other", "en"),
    Scenario("boris", "@{brand} вы все клоуны, худшая компания, ха-ха", "trolling", "ru"),
)
START_TIMEOUT = 60.0  # first life: migrate, verify, set the cursor
STARTUP_WINDOW = (0.1, 1.5)  # seconds into a first start when it is killed: imports, migrations, verify


@dataclass(frozen=True)
class Options:
    kills: int = 30
    mentions: int = 60
    db: str = "sqlite"
    platform: str = "mastodon"
    seed: int | None = None
    uptime: tuple[float, float] = (0.5, 4.0)  # seconds a life lasts before its SIGKILL
    delay: float = 0.1  # seconds each answer is held back on the way to the daemon
    settle_timeout: float = 120.0  # the last life's time to finish everything
    startup_kills: int = 5  # kills of the very first start, on a fresh database
    faults: FaultPlan | None = None  # bad posts, late posts, broken lookups, database trouble
    own_cases: bool = False  # every post a case of its own (answered by the playbooks, not as a follow-up)


@dataclass
class Result:
    options: Options
    seed: int
    kills: int = 0
    startup_kills: int = 0
    kills_mid_send: int = 0  # kills that left a reply claimed but not recorded
    taken_over: int = 0  # claims of a dead process resolved without waiting for the lease
    found_existing: int = 0  # replies found already posted by an earlier life
    settled: bool = False
    unsettled: str = ""  # what the last life still owed when the wait ran out
    stop_status: int | None = None  # the last life's exit status after SIGTERM
    secret_in_log: bool = False
    seconds: float = 0.0
    team_replies: int = 0  # written by the team thread
    resolved: int = 0  # cases the team thread resolved (each owes one check-back)
    incidents_resolved: int = 0  # incidents the team thread resolved (each member owes one notification)
    retried: int = 0  # parked replies the team thread retried (queue retry)
    faulty_posts: dict[str, int] = field(default_factory=dict)  # --faults: posts by what was done to them
    bad_lookups: int = 0  # --faults: lookups answered with a body of the wrong shape
    db_windows: int = 0  # --faults: database outages (PostgreSQL) or full disks (SQLite)
    terminated: int = 0  # --faults: PostgreSQL backends terminated
    own_exits: int = 0  # lives that stopped on their own during database trouble (restarted, as a supervisor would)
    verdict: Verdict = field(default_factory=Verdict)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.settled and self.stop_status == 0 and not self.secret_in_log


def write_config(path: Path, peer: Peer, db_url: str, poll_interval: float, own_cases: bool = False) -> Path:
    path.write_text(
        f"""brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
storage:
  url: "{db_url}"
accounts:
  - name: {ACCOUNT}
    platform: {peer.platform}
    base_url: {peer.base_url}
{peer.account_yaml}    mode: auto
    poll_interval: {poll_interval}s
    timeout: 5s
daemon:
  max_replies_per_author_hour: 1000
  retry_backoff: 1s
cases:
  check_back_after: 1s
{"  join_window: 1ms" + chr(10) if own_cases else ""}incidents:
  min_reports: 2
  notify_per_hour: 36000
""",
        encoding="utf-8",
    )
    return path


def run(options: Options, db_url: str, workdir: Path) -> Result:
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 2**31)
    options = dataclasses.replace(options, db=db_url.split(":", 1)[0].split("+", 1)[0])
    result = Result(options, seed)
    rng = random.Random(seed)
    started = time.monotonic()
    with ExitStack() as stack:
        posts: list[PostFaults] = []

        def front(upstream: str) -> str:
            assert options.faults is not None
            posts.append(PostFaults(upstream, options.faults, random.Random(rng.random())))
            stack.callback(posts[0].close)
            return posts[0].base_url

        peer = stack.enter_context(
            PLATFORMS[options.platform](workdir, options.delay, front if options.faults else None)
        )
        daemon_url, pg = _database_faults(options, db_url, stack)
        config = write_config(workdir / "carebot.yaml", peer, daemon_url, peer.poll_interval, options.own_cases)
        daemon = Daemon(config, peer.env, workdir / "daemon.log")
        try:
            _kill_first_starts(options, result, daemon, rng)
            daemon.start()
            # Opened while the daemon may be migrating too: the two must take turns, not collide.
            storage = Storage.open(db_url)
            try:
                team_config = load_config(config, peer.env)
                db_faults = (
                    DatabaseFaults(options.faults, random.Random(rng.random()), lambda: daemon.pid, pg)
                    if options.faults
                    else None
                )
                faults = _Faults(posts[0] if posts else None, db_faults)
                posted = _crash_many_times(options, result, peer, daemon, storage, team_config, rng, faults)
                result.verdict = check(posted, peer.brand_posts(), storage, ACCOUNT)
                if posts:
                    result.bad_lookups, result.lost_answers = posts[0].bad_lookups, posts[0].lost_answers
                if db_faults is not None:
                    result.db_windows, result.terminated = db_faults.windows, db_faults.terminated
            finally:
                storage.close()
            log = daemon.log_text()
        finally:
            daemon.close()
        result.taken_over = log.count("was being sent by a process that died")
        result.found_existing = log.count("was already posted as")
        result.secret_in_log = any(secret in log for secret in peer.env.values())
    result.seconds = time.monotonic() - started
    return result


@dataclass
class _Faults:
    posts: PostFaults | None
    database: DatabaseFaults | None


def _database_faults(options: Options, db_url: str, stack: ExitStack) -> tuple[str, tuple[str, str, TcpSwitch] | None]:
    """The URL the daemon uses, and for PostgreSQL with --faults: (admin URL, the daemon's application
    name, the switch in front of the server)."""
    if options.faults is None or not db_url.startswith("postgresql"):
        return db_url, None
    address = db_url.split("@", 1)[1].split("/", 1)[0]
    host, port = address.split(":")
    switch = TcpSwitch(host, int(port))
    stack.callback(switch.close)
    name = f"carebot-crash-{random.SystemRandom().randrange(1, 2**31)}"
    daemon_url = f"{db_url.replace(address, f'127.0.0.1:{switch.port}')}&application_name={name}"
    admin = db_url.split("?", 1)[0]
    return daemon_url, (admin, name, switch)


def _kill_first_starts(options: Options, result: Result, daemon: Daemon, rng: random.Random) -> None:
    """SIGKILL the very first start on a fresh database a few times: mid-import, mid-migration, mid-verify."""
    for _ in range(options.startup_kills):
        daemon.start()
        time.sleep(rng.uniform(*STARTUP_WINDOW))
        daemon.kill()
        result.startup_kills += 1


def _crash_many_times(
    options: Options,
    result: Result,
    peer: Peer,
    daemon: Daemon,
    storage: Storage,
    config: Config,
    rng: random.Random,
    faults: _Faults,
) -> list[Posted]:
    """Kill and restart the daemon while the customer posts; then let one last life finish and stop it."""
    if not wait_until(lambda: _cursor_set(storage), START_TIMEOUT, daemon):
        raise RuntimeError(f"the daemon did not start reading:\n{daemon.log_text()[-3000:]}")

    posted: list[Posted] = []
    phase = options.kills * sum(options.uptime) / 2
    customer = threading.Thread(
        target=_customer,
        args=(peer, options.mentions, phase * 0.7, random.Random(rng.random()), posted, faults.posts),
    )
    customer.start()
    working = threading.Event()
    team = threading.Thread(target=_team, args=(config, storage, working, random.Random(rng.random()), result))
    team.start()
    if faults.database is not None:
        faults.database.start(phase)
    try:
        for _ in range(options.kills):
            life_began = now()
            time.sleep(rng.uniform(*options.uptime))
            if not daemon.alive():
                # During database trouble a life may stop on its own (status 1): restart it, as a supervisor does.
                if faults.database is None or daemon.exit_status != 1:
                    raise RuntimeError(f"the daemon exited on its own:\n{daemon.log_text()[-3000:]}")
                result.own_exits += 1
            else:
                daemon.kill()
                result.kills += 1
                result.kills_mid_send += _claimed_since(storage, life_began)
            daemon.start()
    finally:
        customer.join()
        if faults.database is not None:
            faults.database.stop()

    # The last life must really run (not just be judged on what earlier lives left) before SIGTERM. The team
    # works on meanwhile: it retries what gets parked, and fixes (so the daemon announces) an incident the
    # last mentions open.
    def settled(parked_owed: bool = False) -> bool:
        return daemon.running() and _unsettled(storage, posted, parked_owed) is None

    try:
        # While the team works, a parked reply is owed too: it retries it. Otherwise a reply parked just
        # before this check (five broken lookups in a row) was left parked, though on the server.
        result.settled = wait_until(lambda: settled(parked_owed=True), options.settle_timeout, daemon)
    finally:
        working.set()
        team.join()
    # What the team did in its last round is settled too.
    result.settled = result.settled and wait_until(settled, options.settle_timeout, daemon)
    result.unsettled = _unsettled(storage, posted) or ""
    result.stop_status = daemon.terminate(grace=10.0)
    for item in posted:
        if item.fault:
            result.faulty_posts[item.fault] = result.faulty_posts.get(item.fault, 0) + 1
    return posted


def _customer(
    peer: Peer, count: int, span: float, rng: random.Random, posted: list[Posted], faults: PostFaults | None
) -> None:
    """Post `count` mentions over about `span` seconds, in random order and at random gaps."""
    for i in range(count):
        time.sleep(rng.uniform(0, 2 * span / max(count, 1)))
        scenario = rng.choice(SCENARIOS)
        who = peer.customers(i, scenario.customer)
        body = scenario.for_brand(peer.brand_handle)
        fault = faults.choose() if faults is not None else None
        if fault is not None:
            body = f"{body} {marker(fault)}"
        post_id = peer.post(who, body)
        if faults is not None:
            faults.posted(fault, post_id)
        posted.append(Posted(post_id, who, body, fault))


def _team(config: Config, storage: Storage, done: threading.Event, rng: random.Random, result: Result) -> None:
    """A person at the desk: in each case waiting on us, a reply, then the case resolved (a check-back follows);
    each incident resolved a few seconds after it opened (its members are told while the daemon is killed)."""
    handled: set[int] = set()
    playbooks = load_playbooks(config.playbooks)
    while not done.wait(rng.uniform(0.3, 1.5)):
        _resolve_incidents(config, storage, playbooks, result, older_than=3.0)
        for case in storage.cases.listed(states=[CaseState.OPEN.value, CaseState.WAITING_ON_US.value]):
            if case.id in handled or case.account != ACCOUNT or case.incident_id is not None:
                continue  # an incident's members hear from the incident
            handled.add(case.id)
            words = f"Team here: we checked case {case.id} and fixed it."
            team_reply(config, storage, case.id, words, "bench-team", private=False, request_key=f"bench-{case.id}")
            result.team_replies += 1
            try:
                resolve_case(config, storage, case.id, "bench-team", "fixed during the crash test")
                result.resolved += 1
            except Conflict:
                pass  # the customer wrote and the case moved on meanwhile
        for item in storage.replies.queue(states=[ReplyState.FAILED]):  # parked: a person retries it
            try:
                storage.replies.retry(item.reply.id, "bench-team")
                result.retried += 1
            except Conflict:
                pass


def _resolve_incidents(
    config: Config, storage: Storage, playbooks: Playbooks, result: Result, older_than: float
) -> None:
    for incident in storage.incidents.listed(states=["open"]):
        if (now() - incident.opened_at).total_seconds() >= older_than:
            resolve_incident(config, storage, playbooks, incident.id, "bench-team", "fixed during the crash test")
            result.incidents_resolved += 1


def _cursor_set(storage: Storage) -> bool:
    state = storage.accounts.get(ACCOUNT)
    return state is not None and state.cursor is not None


def _claimed_since(storage: Storage, moment: datetime) -> bool:
    """A reply was being sent (claimed, outcome unknown) by the life that began at `moment`."""
    return any(
        reply.state is ReplyState.SENDING and reply.updated_at >= moment
        for mention in storage.mentions.all(ACCOUNT)
        for reply in storage.replies.for_mention(mention.id)
    )


def _unsettled(storage: Storage, posted: list[Posted], parked_owed: bool = False) -> str | None:
    """What the daemon still owes (None: every mention stored, or set aside for a post that cannot be, and no
    reply waiting to be sent or half-sent; nor parked, if `parked_owed`: the team is there to retry it)."""
    stored = {m.mention.post_id for m in storage.mentions.all(ACCOUNT)}
    missing = [
        item
        for item in posted
        if item.post_id not in stored and not (item.poison and storage.quarantine.has(ACCOUNT, item.post_id))
    ]
    if missing:
        return f"{len(missing)} mentions not stored"
    by_state = storage.figures.activity(ACCOUNT).replies_by_state
    if owed := by_state.get(ReplyState.APPROVED.value, 0) + by_state.get(ReplyState.SENDING.value, 0):
        return f"{owed} replies approved or being sent"
    if parked_owed and (parked := by_state.get(ReplyState.FAILED.value, 0)):
        return f"{parked} replies parked, for the team to retry"
    # A resolved case owes its check-back: settled once the daemon has queued (and so sent) it; an incident
    # resolved in the storm's last second is resolved by now too.
    if storage.incidents.listed(states=["open"]):
        return "an incident still open"
    owing = [c.id for c in storage.cases.listed(states=[CaseState.RESOLVED.value]) if c.check_back_due_at]
    return f"cases {owing} still owe their check-back" if owing else None


@contextmanager
def database(kind: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """A fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'carebot.db'}"
        return
    with scratch_schema(postgres_url, "carebot_crash") as url:
        yield url


def report(result: Result) -> str:
    o, v = result.options, result.verdict
    unanswered = ", ".join(f"{why}: {n}" for why, n in sorted(v.unanswered.items())) or "none"
    lines = [
        f"crash test: {o.platform} on {o.db}, seed {result.seed}",
        f"kills: {result.startup_kills + result.kills} (SIGKILL; {result.startup_kills} during the first start on "
        f"a fresh database, {result.kills} while running, {result.kills_mid_send} of which left a reply claimed "
        "but not recorded)",
        f"mentions: {v.posted} posted, {v.stored} stored",
        f"replies on the server: {v.public_on_server} public, {v.direct_on_server} direct",
        f"answered once: {v.answered}; deliberately unanswered: {sum(v.unanswered.values())} ({unanswered})",
        f"cases: {result.team_replies} team replies written, {result.resolved} resolved; on the server once each: "
        f"{v.team_sent} team replies, {v.check_backs_sent} check-backs",
        f"incidents: {result.incidents_resolved} resolved during the storm; fixed-notifications on the server once "
        f"each: {v.incident_sent}",
        *(_fault_lines(result) if o.faults else []),
        f"duplicates: {len(v.duplicates)}",
        f"losses: {len(v.losses)}",
        f"database agrees with the server: {'yes' if not v.disagreements else f'no ({len(v.disagreements)})'}",
        f"resolved after a kill: {result.taken_over} claims of a dead process taken over, "
        f"{result.found_existing} replies found already posted",
        f"last life settled: {'yes' if result.settled else f'no ({result.unsettled})'}; "
        f"SIGTERM exit status: {result.stop_status}",
        f"secret in the daemon's log: {'YES' if result.secret_in_log else 'no'}",
        f"time: {result.seconds:.1f} s",
    ]
    for problem in (*v.duplicates, *v.losses, *v.disagreements):
        lines.append(f"  ! {problem}")
    lines.append("PASS" if result.ok else "FAIL")
    return "\n".join(lines)


def _fault_lines(result: Result) -> list[str]:
    v = result.verdict
    faulty = ", ".join(f"{kind}: {n}" for kind, n in sorted(result.faulty_posts.items())) or "none"
    trouble = "outages" if result.options.db == "postgresql" else "full disks"
    return [
        f"faults: posts {faulty}; set aside (in the quarantine, not answered): {v.set_aside}",
        f"faults: {result.lost_answers} answers to posts lost, {result.bad_lookups} lookups answered with a wrong "
        f"shape; {result.retried} parked replies retried by a person",
        f"faults: {result.db_windows} database {trouble}, {result.terminated} backends terminated, "
        f"{result.own_exits} lives stopped on their own meanwhile",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--mentions", type=int, default=60)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--platform", choices=sorted(PLATFORMS), default="mastodon")
    parser.add_argument("--seed", type=int, help="for the kill times and the customer (default: random)")
    parser.add_argument(
        "--uptime",
        type=float,
        nargs=2,
        default=(0.5, 4.0),
        metavar=("MIN", "MAX"),
        help="seconds each life runs before its SIGKILL (default: 0.5 4.0)",
    )
    parser.add_argument("--delay", type=float, default=0.1, help="seconds each answer is held back (default 0.1)")
    parser.add_argument("--startup-kills", type=int, default=5, help="kills of the first start (default 5)")
    parser.add_argument("--keep", metavar="DIR", help="keep the logs and the SQLite database in DIR")
    parser.add_argument("--postgres-url", default=None, help="default: $CAREBOT_TEST_POSTGRES or the local one")
    parser.add_argument(
        "--own-cases",
        action="store_true",
        help="every post a case of its own: the customers' repeated posts are answered, not taken as follow-ups",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="Mastodon: bad and late posts, broken lookups, database trouble too (bench/crash_faults.py)",
    )
    args = parser.parse_args(argv)
    if args.platform == "x":
        uptime = tuple(args.uptime) if args.uptime != (0.5, 4.0) else (2.0, 8.0)  # X polls every 3 s at best
    else:
        uptime = tuple(args.uptime)
    options = Options(
        kills=args.kills, mentions=args.mentions, db=args.db, platform=args.platform, seed=args.seed,
        uptime=(uptime[0], uptime[1]), delay=args.delay, startup_kills=args.startup_kills,
        faults=FaultPlan() if args.faults else None, own_cases=args.own_cases,
    )  # fmt: skip
    from tests.peers.database import POSTGRES_URL

    with tempfile.TemporaryDirectory(prefix="carebot-crash-") as scratch:
        workdir = Path(args.keep) if args.keep else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        with database(args.db, workdir, args.postgres_url or POSTGRES_URL) as url:
            result = run(options, url, workdir)
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
