"""A platform's failure in a few words that say what to do: for `run --once`, `check-config` and the alerts
to the team (the connector's own words are long and name a library's internals)."""

from __future__ import annotations

from connectors.base import AuthFailed, BadResponse, ConnectorError, RateLimited, Rejected, Unavailable, Unreachable


def explain(exc: ConnectorError, base_url: str) -> str:
    """A platform's failure in words that say what to do (the connector's own words follow, shortened)."""
    detail = _reason(exc)
    if isinstance(exc, AuthFailed):
        return f"{base_url} refused the credentials: check the account's token (and its scopes)"
    if isinstance(exc, RateLimited):
        return f"{base_url} asks us to slow down: try again in {exc.retry_after:.0f} s"
    if isinstance(exc, Unreachable):
        return f"could not reach {base_url}: {detail}. Is base_url right, and is the server up?"
    if isinstance(exc, Unavailable):
        return f"{base_url} answers, but with errors: {detail}. Is the platform well (its status page)?"
    if isinstance(exc, Rejected | BadResponse) and ("not found" in str(exc).lower() or "404" in str(exc)):
        return f"{base_url} has no such API (404): base_url is the server's address, like https://mastodon.social"
    if isinstance(exc, BadResponse):
        return f"{base_url} answered something that is not its API: {detail}. Is base_url right?"
    return f"{base_url} refused: {detail}"


_REASONS = (
    ("connection refused", "connection refused"),
    ("name or service not known", "no such host"),
    ("nodename nor servname", "no such host"),
    ("temporary failure in name resolution", "no such host (or no network)"),
    ("timed out", "no answer in time"),
    ("timeout", "no answer in time"),
    ("certificate", "its TLS certificate is not valid"),
    ("ssl", "a TLS problem"),
    ("connection reset", "the connection was reset"),
    ("server unavailable", "the server is unavailable"),
)


def _reason(exc: BaseException) -> str:
    """The root cause in a few plain words, from the whole chain of causes."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e).lower() for e in chain)
    for needle, words in _REASONS:
        if needle in text:
            return words
    last = str(exc).rsplit(": ", 1)[-1]
    return last[:160] or type(exc).__name__
