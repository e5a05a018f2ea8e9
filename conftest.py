"""Root conftest: registers the fixture modules for the real peers the tests run against."""

pytest_plugins = [
    "tests.peers.database",
    "tests.peers.mastodon",
    "tests.peers.x",
]
