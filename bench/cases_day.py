"""A replayed working day of cases: customers post, follow up in threads and in private, a person answers
and resolves, and `carebot status` prints the figures (business hours).

    python bench/cases_day.py [--customers 60] [--seed 7] [--keep DIR]

Everything real but the clock: mastodon-mock in-process, the daemon's cycle (`run --once`), SQLite, the
team's replies and resolutions through the same functions the desk and the CLI use. The clock is moved in
5-minute steps from 07:00 to 23:00 UTC on a Monday, with business hours Monday to Friday 09:00-18:00 in
Berlin (08:00-17:00 UTC), so the figures are in the time a team would see: a complaint posted at 07:10 is
not late until 09:00 plus its target. The posts are this project's own scenario texts with follow-ups
(nothing from ../shared).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mastodon_mock.config import SeedAccount, SeedConfig  # noqa: E402
from mastodon_mock.testing import MockServer  # noqa: E402

from bot.cli import main as cli  # noqa: E402
from bot.clock import use_clock  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.models import CaseState  # noqa: E402
from bot.run.app import App  # noqa: E402
from bot.run.cases import resolve_case, team_reply  # noqa: E402
from bot.run.daemon import run_once  # noqa: E402
from tests.scenarios import POSTS  # noqa: E402

START = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=5)
STEPS = 16 * 12  # 07:00 to 23:00
TEAM_HOURS = (8, 17)  # UTC: 09:00-18:00 in Berlin
TOKEN = "bench-brand-token"  # a token of the throwaway local mock server
FOLLOW_UPS = {
    "en": (
        "@brand any news on this?",
        "@brand I already emailed you twice, nobody answers!",
        "@brand thanks, it's working now",
    ),
    "ru": ("@brand есть новости?", "@brand я уже писал дважды, никто не отвечает!", "@brand спасибо, всё работает"),
    "id": (
        "@brand ada kabar min?",
        "@brand udah email berkali-kali, gak ada yang jawab!",
        "@brand makasih, sudah bisa",
    ),
    "ar": ("@brand في جديد؟", "@brand راسلتكم للمرة الثالثة ولا احد يرد!", "@brand شكرا، تم الحل"),
}
DETAILS = "@brand order 5521, email me at customer{n}@example.org"


@dataclass
class Customer:
    name: str
    post_at: int  # step of the first post
    scenario: int
    thread: list[str] = field(default_factory=list)  # our replies to them, and their posts


def config_text(base_url: str, db: Path) -> str:
    return f"""brand:
  name: Acme
  support_email: help@acme.example
storage:
  url: sqlite:///{db}
accounts:
  - name: acme
    platform: mastodon
    base_url: {base_url}
    access_token: {TOKEN}
    mode: auto
daemon:
  max_replies_per_author_hour: 100
cases:
  business_hours:
    timezone: Europe/Berlin
    week: {{mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-18:00", thu: "09:00-18:00", fri: "09:00-18:00"}}
"""


def replay(customers: int, seed: int, workdir: Path) -> str:
    rng = random.Random(seed)
    names = [f"c{n:03d}" for n in range(customers)]
    seed_config = SeedConfig(
        accounts=[SeedAccount(username="brand", display_name="Acme", bot=True, access_token=TOKEN)]
        + [SeedAccount(username=name, access_token=f"{name}-token") for name in names]
    )
    people = [Customer(name, rng.randrange(0, STEPS - 24), rng.randrange(len(POSTS))) for name in names]
    with MockServer(seed=seed_config) as server:
        path = workdir / "carebot.yaml"
        path.write_text(config_text(server.base_url, workdir / "carebot.db"), encoding="utf-8")
        config = load_config(path)
        clock = [START]
        with use_clock(lambda: clock[0]):
            app = App.build(config)
            try:
                run_once(app)  # a new account reads from now on
                for step in range(STEPS):
                    clock[0] = START + step * STEP
                    _customers_act(server, app, people, step, rng)
                    run_once(app)
                    if TEAM_HOURS[0] <= clock[0].hour < TEAM_HOURS[1]:
                        _team_acts(app, rng, step)
            finally:
                app.close()
            out = workdir / "status.txt"
            with out.open("w", encoding="utf-8") as sink:
                stdout, sys.stdout = sys.stdout, sink
                try:
                    cli(["status", "--config", str(path)])
                finally:
                    sys.stdout = stdout
    return out.read_text(encoding="utf-8")


def _customers_act(server: MockServer, app: App, people: list[Customer], step: int, rng: random.Random) -> None:
    for person in people:
        api = server.client(person.name)
        scenario = POSTS[person.scenario]
        if step == person.post_at:
            status = api.status_post(scenario.for_brand("brand"))
            person.thread.append(str(status["id"]))
        elif person.thread and scenario.situation == "complaint" and step > person.post_at:
            waited = step - person.post_at
            ours = _our_replies_to(app, person.name)
            follow = FOLLOW_UPS[scenario.lang]
            if waited == 6 and ours:  # 30 minutes in: the details by DM, or "any news?"
                private = [r for r in ours if r[1]]
                if private:
                    api.status_post(DETAILS.format(n=person.name), in_reply_to_id=private[0][0], visibility="direct")
                else:
                    api.status_post(follow[0], in_reply_to_id=ours[0][0])
            elif waited == 30 and rng.random() < 0.4 and ours:  # 2.5 h: nobody has answered?
                api.status_post(follow[1], in_reply_to_id=ours[-1][0])
            elif waited == 60 and rng.random() < 0.5 and ours:  # later: "it works now"
                api.status_post(follow[2], in_reply_to_id=ours[-1][0])


def _our_replies_to(app: App, author: str) -> list[tuple[str, bool]]:
    """(platform post id, private?) of our sent replies to this customer's posts, oldest first."""
    found = []
    for mention in app.storage.mentions.all():
        if mention.mention.author.handle != author:
            continue
        for reply in app.storage.replies.for_mention(mention.id):
            if reply.platform_post_id:
                found.append((reply.platform_post_id, reply.kind.value == "direct"))
    return found


def _team_acts(app: App, rng: random.Random, step: int) -> None:
    """One person: answers a case waiting on us now and then, resolves answered ones later."""
    storage = app.storage
    waiting = storage.cases.listed(states=[CaseState.OPEN.value, CaseState.WAITING_ON_US.value])
    if waiting and rng.random() < 0.45:
        case = waiting[0]  # the desk's order: escalated and urgent first, then the longest waiting
        words = "We're on it: I checked your order and the fix is under way. I'll update you here."
        team_reply(app.config, storage, case.id, words, "sam", private=False, request_key=f"day-{step}")
    answered = storage.cases.listed(states=[CaseState.WAITING_ON_CUSTOMER.value])
    for case in answered:
        if case.first_human_response_at and rng.random() < 0.08:
            resolve_case(app.config, storage, case.id, "sam", "fixed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", metavar="DIR", help="keep the config, database and status in DIR")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="carebot-day-") as scratch:
        workdir = Path(args.keep) if args.keep else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"A replayed day: {args.customers} customers, seed {args.seed}, business hours 09:00-18:00 Berlin")
        print(replay(args.customers, args.seed, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
