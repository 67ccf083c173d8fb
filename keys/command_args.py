"""Argument parsing shared by the key management commands: durations and look-ups by name."""

import re
from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from keys import selectors
from keys.models import ApiKey, Team

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    """'90s', '30m', '24h', '7d' → timedelta (an argparse `type`)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


duration.__name__ = "duration (like 30m, 24h, 7d)"


def moment(text: str) -> datetime:
    """An ISO date-time; a naive one is in the server's time zone."""
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(text)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


moment.__name__ = "ISO date-time"


def team(identifier: str) -> Team:
    found = selectors.team_by_id_or_name(identifier=identifier)
    if found is None:
        raise CommandError(f"No team '{identifier}'.")
    return found


def app_of(team: Team, identifier: str):
    found = team.apps.filter(pk=identifier).first() or team.apps.filter(name=identifier).first()
    if found is None:
        raise CommandError(f"No app '{identifier}' in team '{team.name}'.")
    return found


def key(identifier: str) -> ApiKey:
    found = selectors.key_by_id_or_prefix(identifier=identifier)
    if found is None:
        raise CommandError(f"No API key '{identifier}' (give its id or prefix, as list_api_keys shows).")
    return found


def describe(key: ApiKey) -> str:
    scope = f"app '{key.app.name}' ({key.app_id})" if key.app_id else "global"
    return f"key {key.pk} '{key.name}' [{scope}] of team '{key.team.name}'"
