"""The `carebot` command as a person meets it: help, where the config is, which secrets each command needs,
what the first run says, history, and errors that say what to do."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer

from bot.cli import build_parser, main
from bot.clock import now
from bot.config import Config, load_config
from bot.models import Action, Decision, ReplyKind, ReplyState
from bot.storage import Storage
from bot.storage.records import Classified
from connectors.base import Author, Mention
from tests import configs
from tests.peers.mastodon import free_port, post_as

ROOT = Path(__file__).resolve().parents[1]


def carebot(*argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def config_with_secrets(tmp_path: Path, base_url: str = "http://127.0.0.1:9", extra: str = "") -> Path:
    sections = (
        "web:\n  admin_token: ${DESK_TOKEN}\n  secret_key: ${DESK_SECRET}\n"
        "notify:\n  webhook_url: ${HOOK_URL}\n" + extra
    )
    return configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'cli.db'}",
        accounts=configs.mastodon_account(base_url, mode="approve"),
        sections=sections,
    )


def test_help_says_what_carebot_is_with_examples_lookup_order_and_exit_codes() -> None:
    done = carebot("--help")
    assert done.returncode == 0
    text = done.stdout
    assert text.startswith("usage: carebot")
    assert "answers a brand's Mastodon and X mentions" in text
    assert "examples:" in text and "carebot run --once" in text
    assert "$CAREBOT_CONFIG, else ./carebot.yaml" in text
    assert "exit status:" in text and "2  bad usage or a bad config" in text
    assert "only `main`" not in text


@pytest.mark.parametrize("before", [True, False])
def test_config_goes_before_or_after_the_command(tmp_path: Path, before: bool) -> None:
    path = str(config_with_secrets(tmp_path))
    argv = ["--config", path, "status"] if before else ["status", "--config", path]
    done = carebot(*argv)
    assert done.returncode == 0, done.stderr
    assert "acme-mastodon (mastodon, approve)" in done.stdout
    args = build_parser().parse_args(["--config", "a.yaml", "queue", "list", "--config", "b.yaml"])
    assert args.config == "b.yaml"  # the later one wins
    assert build_parser().parse_args(["--config", "a.yaml", "queue", "list"]).config == "a.yaml"


def test_each_command_needs_only_the_secrets_it_uses(tmp_path: Path) -> None:
    path = str(config_with_secrets(tmp_path))
    for argv in (["queue", "list"], ["status"], ["history"], ["status", "--json"]):
        done = carebot(*argv, "--config", path)
        assert done.returncode == 0, (argv, done.stderr)
    check = carebot("check-config", "--offline", "--config", path)
    assert check.returncode == 2
    for name in ("BRAND_TOKEN", "DESK_TOKEN", "DESK_SECRET", "HOOK_URL"):
        assert f"environment variable {name} is not set" in check.stderr
    web = carebot("web", "--config", path)
    assert web.returncode == 2
    assert "DESK_TOKEN" in web.stderr and "BRAND_TOKEN" not in web.stderr and "HOOK_URL" not in web.stderr
    run = carebot("run", "--once", "--config", path, env={"DESK_TOKEN": "x" * 8})
    assert run.returncode == 2
    assert "BRAND_TOKEN" in run.stderr and "HOOK_URL" in run.stderr and "DESK" not in run.stderr


def test_a_missing_config_says_how_to_make_one_and_init_makes_it(tmp_path: Path) -> None:
    done = carebot("status", cwd=tmp_path)
    assert done.returncode == 2
    assert "carebot.yaml: no config file there" in done.stderr and "carebot init" in done.stderr
    made = carebot("init", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "carebot.yaml").read_text() == (ROOT / "config.example.yaml").read_text()
    assert carebot("init", cwd=tmp_path).returncode == 2  # never overwrites
    checked = carebot("check-config", "--offline", cwd=tmp_path, env={"MASTODON_TOKEN": "t0ken-1234"})
    assert checked.returncode == 0, checked.stderr


def test_yaml_errors_are_in_plain_words(tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path)
    path.write_text(path.read_text().replace("  name: Acme\n", "  name: Acme: the best\n"))
    done = carebot("status", "--config", str(path))
    assert done.returncode == 2
    assert f"{path}:2: not valid YAML: a ':' where it cannot be" in done.stderr
    assert "mapping values" not in done.stderr


def test_an_inline_secret_is_used_with_a_warning(tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path)
    path.write_text(path.read_text().replace("${BRAND_TOKEN}", "inline-token-123"))
    done = carebot("status", "--config", str(path))
    assert done.returncode == 0
    assert "warning:" in done.stderr and "accounts[0].access_token: a secret written in the config file" in done.stderr
    assert "inline-token-123" not in done.stderr + done.stdout


def test_check_config_says_what_to_do_when_the_server_cannot_be_reached(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    path = config_with_secrets(tmp_path, f"http://127.0.0.1:{port}")
    env = {
        "BRAND_TOKEN": "t0ken-1234",
        "DESK_TOKEN": "x" * 8,
        "DESK_SECRET": "y" * 8,
        "HOOK_URL": "https://h.example/x",
    }
    done = carebot("check-config", "--config", str(path), env=env)
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert line == (
        f"acme-mastodon: could not reach http://127.0.0.1:{port}: connection refused. "
        "Is base_url right, and is the server up?"
    ), done.stderr
    assert "HTTPConnectionPool" not in done.stderr and "Unavailable" not in done.stderr
    once = carebot("run", "--once", "--config", str(path), env=env)
    assert once.returncode == 1  # the account could not do its cycle
    assert f"(failed (unreachable): could not reach http://127.0.0.1:{port}: connection refused. Is" in once.stdout


def test_check_config_says_base_url_is_wrong_on_a_404(tmp_path: Path, mastodon_server: MockServer) -> None:
    base = f"{mastodon_server.base_url}/some/path"
    path = config_with_secrets(tmp_path, base)
    env = {
        "BRAND_TOKEN": "brand_token",
        "DESK_TOKEN": "x" * 8,
        "DESK_SECRET": "y" * 8,
        "HOOK_URL": "https://h.example/x",
    }
    done = carebot("check-config", "--config", str(path), env=env)
    assert done.returncode == 1
    assert f"acme-mastodon: {base} has no such API (404): base_url is the server's address" in done.stderr


def test_the_first_run_says_earlier_mentions_are_not_answered(tmp_path: Path, mastodon_server: MockServer) -> None:
    post_as(mastodon_server.base_url, "alice", "@brand my order never came, where is it?")
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'first.db'}",
        accounts=configs.mastodon_account(mastodon_server.base_url, mode="approve"),
    )
    done = carebot("--config", str(path), "run", "--once", env={"BRAND_TOKEN": "brand_token"})
    assert done.returncode == 0, done.stderr
    assert "first run: mentions posted before now are not answered" in done.stdout
    assert "backfill: 24h" in done.stdout
    again = carebot("--config", str(path), "run", "--once", env={"BRAND_TOKEN": "brand_token"})
    assert "first run" not in again.stdout
    status = carebot("--config", str(path), "status")
    assert "cursor: read up to " in status.stdout and "last good cycle" in status.stdout


def test_history_lists_what_was_sent_and_rejected_and_by_whom(tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path)
    config = load_config(path, {}, needs=frozenset())
    storage = Storage.open(config.storage.url)
    try:
        sent = _store(storage, "@brand where is my parcel? mail me at bo@example.org", "@bo Sorry! Please email us.")
        rejected = _store(storage, "@brand you are clowns", "@bo Thanks for writing.")
        storage.replies.approve(sent, "alice", text="@bo So sorry, please email help@acme.example")
        assert storage.replies.claim(storage.replies.get(sent), timedelta(minutes=1))
        storage.replies.mark_sent(sent, "p-1")
        storage.replies.reject(rejected, "bob", "a troll")
    finally:
        storage.close()
    done = carebot("history", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert f"#{sent} sent" in done.stdout and "sent after approval by alice, text by alice" in done.stdout
    assert f"#{rejected} rejected" in done.stdout and "rejected by bob: a troll" in done.stdout
    assert "bo@example.org" not in done.stdout
    only = json.loads(carebot("history", "--show", "rejected", "--json", "--config", str(path)).stdout)
    assert [row["id"] for row in only] == [rejected]


def test_history_pages_back_through_the_same_listing_and_refuses_what_would_list_nothing(tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path)
    config = load_config(path, {}, needs=frozenset())
    storage = Storage.open(config.storage.url)
    try:
        rejected = [_store(storage, f"@brand you are clowns {n}", "@bo Thanks for writing.") for n in range(3)]
        for reply_id in rejected:
            storage.replies.reject(reply_id, "bob", "a troll")
    finally:
        storage.close()
    listing = ["history", "--show", "rejected", "--account", "acme-mastodon", "--limit", "2", "--config", str(path)]
    first = carebot(*listing)
    hint = first.stdout.strip().splitlines()[-1]
    assert hint.startswith("Older: carebot history ")
    older = carebot(*shlex.split(hint.removeprefix("Older: carebot "))).stdout  # as the person pastes it
    assert f"#{rejected[0]} rejected" in older and f"#{rejected[2]} rejected" not in older
    assert "Nothing" not in older

    for limit in ("0", "-1", "1001"):
        refused = carebot("history", "--limit", limit, "--config", str(path))
        assert refused.returncode == 2 and "not a number from 1 to 1000" in refused.stderr
    misspelt = carebot("history", "--account", "acme-mastodn", "--config", str(path))
    assert (
        misspelt.returncode == 1 and "no account acme-mastodn in the config (it has: acme-mastodon)" in misspelt.stderr
    )
    assert (
        "no account acme-mastodn" in carebot("cases", "list", "--account", "acme-mastodn", "--config", str(path)).stderr
    )


def _store(storage: Storage, text: str, reply: str) -> int:
    number = len(storage.mentions.all()) + 1
    mention = Mention("mastodon", f"h{number}", str(number), Author("u1", "bo", "Bo"), text, now())
    decision = Decision("complaint", Action.REPLY, "test", reply_text=reply)
    classified = Classified("en", "complaint", 0.9, {"complaint": 0.9}, [], False, False)
    mention_id = storage.mentions.record("acme-mastodon", mention, classified, decision, ReplyState.PENDING)
    assert mention_id is not None
    return next(r.id for r in storage.replies.for_mention(mention_id) if r.kind is ReplyKind.PUBLIC)


def test_queue_ids_out_of_range_are_usage_errors_and_approvals_can_be_taken_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config_with_secrets(tmp_path))
    with pytest.raises(SystemExit) as caught:
        main(["queue", "approve", "99999999999999999999", "--config", path])
    assert caught.value.code == 2 and "not a reply id" in capsys.readouterr().err
    huge = "99999999999999999999"  # past what the database keeps: a usage error, not an overflow's traceback
    for command, what in (
        (["cases", "show", huge], "a case"),
        (["cases", "note", huge, "--text", "x"], "a case"),
        (["incidents", "show", huge], "an incident"),
        (["incidents", "split", "1", huge], "a case"),
    ):
        with pytest.raises(SystemExit) as caught:
            main([*command, "--config", path])
        assert caught.value.code == 2 and f"not {what} id: '{huge}'" in capsys.readouterr().err
    config = load_config(Path(path), {}, needs=frozenset())
    storage = Storage.open(config.storage.url)
    try:
        reply_id = _store(storage, "@brand the app crashes", "@bo Sorry about that!")
    finally:
        storage.close()
    assert main(["queue", "approve", str(reply_id), "--config", path]) == 0
    assert main(["queue", "unapprove", str(reply_id), "--config", path]) == 0
    assert "no longer approved" in capsys.readouterr().out
    assert main(["queue", "unapprove", str(reply_id), "--config", path]) == 1


def test_queue_approve_approves_only_the_draft_it_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`queue approve` checks the draft's cost (a link on X costs 13 times a plain post), then approves it. A
    colleague re-routing the post in the desk between the two used to get their new draft approved, checked
    by nobody: now the approval is refused, and the new draft waits for a person."""
    path = str(config_with_secrets(tmp_path))
    config = load_config(Path(path), {}, needs=frozenset())
    storage = Storage.open(config.storage.url)
    checked = "@bo Sorry about that! Please email us."
    rerouted = "@bo Everything is at acme.example/help"
    try:
        reply_id = _store(storage, "@brand the app crashes", checked)
        from bot.run import context

        cost_warning = context.cost_warning

        def checked_then_rerouted(config: Config, account: str, text: str) -> str | None:
            warning = cost_warning(config, account, text)
            decision = Decision("simple_question", Action.REPLY, "re-routed by sam", reply_text=rerouted)
            storage.replies.redraft(reply_id, checked, decision, "sam")
            return warning

        monkeypatch.setattr(context, "cost_warning", checked_then_rerouted)
        capsys.readouterr()
        assert main(["queue", "approve", str(reply_id), "--config", path]) == 1
        assert "draft changed meanwhile" in capsys.readouterr().err
        reply = storage.replies.get(reply_id)
        assert reply.state is ReplyState.PENDING and reply.text == rerouted and reply.approved_by is None
    finally:
        storage.close()


def test_a_model_file_that_is_missing_or_no_model_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"text": "@brand hi", "label": "other"}) + "\n", encoding="utf-8")
    (tmp_path / "notes.bin").write_text("not a model", encoding="utf-8")
    for model, said in (("nosuch.bin", "nosuch.bin: no such model file"), ("notes.bin", "not a carebot model file")):
        for command in (["classify", "hi"], ["eval", str(posts)], ["calibrate", str(posts)]):
            capsys.readouterr()
            assert main([*command, "--model", str(tmp_path / model)]) == 2, command
            assert said in capsys.readouterr().err, command


def test_a_listing_whose_reader_went_away_ends_quietly(tmp_path: Path) -> None:
    """`carebot history | head -1`: once `head` has its line it leaves, and the rest of the listing has
    nowhere to go. That printed a BrokenPipeError traceback; now the command ends as `cat` would."""
    path = config_with_secrets(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "history", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader leaves before the first line
    error = process.stderr.read().decode()
    assert process.wait(timeout=30) == 141  # 128 + SIGPIPE, like any command whose reader left
    assert "Traceback" not in error and "BrokenPipeError" not in error, error


def test_train_takes_output() -> None:
    args = build_parser().parse_args(["train", "--output", "my-model.json"])
    assert args.out == Path("my-model.json")


def test_a_second_worker_on_a_taken_metrics_port_names_the_port_and_its_key(tmp_path: Path) -> None:
    """Several workers on one machine with one config meet each other's metrics port: the message said only
    "[Errno 98] Address already in use"."""
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        path = config_with_secrets(tmp_path, extra=f"metrics:\n  port: {port}\n")
        env = {"BRAND_TOKEN": "t0ken-1234", "DESK_TOKEN": "d", "DESK_SECRET": "s", "HOOK_URL": "https://h.example/x"}
        done = carebot("run", "--config", str(path), env=env)
    finally:
        taken.close()
    assert done.returncode == 2, done.stderr
    assert f"cannot start serving /metrics and /health on 127.0.0.1:{port} (metrics.port)" in done.stderr


def test_classifier_model_names_the_model_the_bot_uses(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.bin").write_bytes(b"not a model at all")
    path = config_with_secrets(tmp_path, extra="classifier:\n  model: elsewhere.bin\n")
    env = {"BRAND_TOKEN": "t0ken-1234", "HOOK_URL": "https://h.example/x"}
    done = carebot("run", "--once", "--config", str(path), env=env)
    assert done.returncode == 2
    assert f"carebot: {tmp_path / 'elsewhere.bin'}: not a carebot model file" in done.stderr


def test_check_config_warns_about_an_old_cost_password_hash(tmp_path: Path) -> None:
    from bot.web.passwords import hash_password

    old, new = hash_password("pw-old-1", n=2**14), hash_password("pw-new-1")
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'cli.db'}",
        accounts=configs.mastodon_account("http://127.0.0.1:9"),
        sections=f'web:\n  users:\n    carol: "{old}"\n    dave: "{new}"\n',
    )
    done = carebot("check-config", "--offline", "--config", str(path), env={"BRAND_TOKEN": "t0ken-1234"})
    assert done.returncode == 0, done.stderr
    assert "warning: web.users.carol: the hash has an old, lower cost" in done.stderr
    assert "dave" not in done.stderr
