"""A case's timers read as figures: per account and situation, open cases, first response and resolution
in business hours (median and p90), targets missed. Apart from the decisions, so `carebot status` loads none."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.clock import now
from bot.config import Config
from bot.config.settings import Target
from bot.hours import BusinessHours
from bot.storage.records import StoredCase


@dataclass(frozen=True)
class CaseFigures:
    account: str
    situation: str
    open: int
    first_response_median: float | None  # seconds of business time to `first_response`
    first_response_p90: float | None
    resolution_median: float | None
    resolution_p90: float | None
    targets_missed: int


def case_figures(config: Config, cases: Iterable[StoredCase], at: datetime | None = None) -> list[CaseFigures]:
    """Per account and situation: open cases, first human response and resolution times, targets missed."""
    at = at or now()
    hours = config.cases.business_hours
    groups: dict[tuple[str, str], list[StoredCase]] = {}
    for case in cases:
        groups.setdefault((case.account, case.situation), []).append(case)
    figures = []
    for (account, situation), group in sorted(groups.items()):
        target = config.cases.targets.get(situation) or Target()
        first = [_spent(hours, c.opened_at, answered) for c in group if (answered := first_response(c))]
        resolved = [_spent(hours, c.opened_at, c.resolved_at) for c in group if c.resolved_at]
        missed = 0
        for case in group:
            for goal, done in (
                (target.first_response, case.first_human_response_at),
                (target.resolution, case.resolved_at),
            ):
                # A case closed without it stopped waiting when it closed, not now.
                missed += goal is not None and _spent(hours, case.opened_at, done or case.closed_at or at) > goal
        figures.append(
            CaseFigures(
                account=account,
                situation=situation,
                open=sum(1 for c in group if c.is_open),
                first_response_median=_median(first),
                first_response_p90=_p90(first),
                resolution_median=_median(resolved),
                resolution_p90=_p90(resolved),
                targets_missed=missed,
            )
        )
    return figures


def first_response(case: StoredCase) -> datetime | None:
    """When the case was first answered: by a person for a complaint (docs/GUIDE.md, principle 1: a person
    closes every complaint), by the bot or a person for anything else (its ready answer is the answer)."""
    if case.situation == "complaint":
        return case.first_human_response_at
    answers = [t for t in (case.first_auto_response_at, case.first_human_response_at) if t is not None]
    return min(answers) if answers else None


def _spent(hours: BusinessHours, start: datetime, end: datetime) -> float:
    return hours.elapsed(start, end).total_seconds()


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
