"""The value formats every part of the tool shares: pack statuses and ids, the keys of a
history entry's changes, SemVer, timestamps.

Standard library only: the pydantic models take their patterns and types from here, and so do
the client and ``check``, which must start without pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Literal, get_args

PackStatus = Literal["installed", "pending", "deprecated", "experimental"]
STATUSES: tuple[str, ...] = get_args(PackStatus)
SUMMARY_KEYS: tuple[str, ...] = ("total_packs", *(f"{status}_packs" for status in STATUSES))
"""The keys of a published summary: the total, then the count of each status."""
SIGNING_ROLES = ("root", "targets", "snapshot", "timestamp")
"""The roles whose keys sign a published site (TUF's top-level roles)."""


def summary_of(statuses: Iterable[str]) -> dict[str, int]:
    """The summary's counts of packs with these statuses: the total, then one per status."""
    counts = dict.fromkeys(STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    return dict(zip(SUMMARY_KEYS, (sum(counts.values()), *counts.values()), strict=True))


def completion_problem(complete: bool, completed_at: object) -> str | None:
    """Why ``completed_at`` does not go with ``backend_complete`` (set exactly when it is)."""
    if complete and completed_at is None:
        return "must be set when backend_complete is true"
    if not complete and completed_at is not None:
        return "must be null when backend_complete is false"
    return None


def duplicate_ids(ids: Iterable[str]) -> list[tuple[int, str]]:
    """Each pack id that repeats an earlier one, as (its index, why)."""
    first: dict[str, int] = {}
    found = []
    for index, pack_id in enumerate(ids):
        if pack_id in first:
            found.append((index, f"duplicate id '{pack_id}' (also packs[{first[pack_id]}])"))
        else:
            first[pack_id] = index
    return found


# --- pack ids ------------------------------------------------------------------------------

PACK_ID_PATTERN = r"^[A-Z][A-Z0-9_-]{0,31}$"
"""A pack id as a manifest holds it (and as a file name of the site)."""
PACK_ID_RULE = "1–32 characters of A-Z, 0-9, _ and -, starting with a letter"
"""The pack id's pattern, as messages and the schema say it."""
_PACK_ID = re.compile(PACK_ID_PATTERN[1:-1])
_ASCII_SPACE = " \t\n\r\v\f"


def pack_key(typed: str) -> str:
    """A pack id as typed, in the form a manifest holds it: the one rule every command, the
    client, ``check`` and ``serve`` match ids by. ASCII white space around it is dropped and
    ASCII letters are upper-cased; anything else is kept as typed, so a non-ASCII letter that
    upper-cases to an ASCII one (``'ı'.upper()`` is ``'I'``, ``'ﬀ'.upper()`` is ``'FF'``) or
    looks like one (the Kelvin sign, a full-width ``Ｋ``) names no pack."""
    text = typed.strip(_ASCII_SPACE)
    return text.upper() if text.isascii() else text


def is_pack_id(text: str) -> bool:
    """Whether ``text`` is a pack id as a manifest holds it."""
    return _PACK_ID.fullmatch(text) is not None


# --- the keys of a history entry's changes ---------------------------------------------------


SYSTEM_FIELDS = (
    "version",
    "backend_complete",
    "completed_at",
    "notes",
    "name",
    "description",
    "base_url",
    "extra",
)
"""The system's fields a change records, in the order it records and tells them."""

PACK_FIELDS = ("name", "group", "status", "notes")
"""A pack's fields a change records, in the order it records them (told status first)."""

# ``updated_at`` was recorded by schema_version 1 files.
_SYSTEM_KEYS = frozenset((*SYSTEM_FIELDS, "updated_at"))


def pack_change_key(pack_id: str, field: str = "") -> str:
    """The key a history entry's changes name a pack's field by (``packs.K.status``), or the
    whole pack without a field (``packs.K``: added or removed)."""
    return f"packs.{pack_id}.{field}" if field else f"packs.{pack_id}"


def split_pack_change_key(key: str) -> tuple[str, str] | None:
    """``(pack id, field)`` of a key made by :func:`pack_change_key` (field ``""`` for the
    whole pack); None for a key about the system (``version``, ``notes``…)."""
    if not key.startswith("packs."):
        return None
    pack_id, _, field = key[len("packs.") :].partition(".")
    return pack_id, field


def change_key_problem(key: str) -> str | None:
    """Why ``key`` names nothing a history change records (None: it names a system field, a
    pack, or one of a pack's fields)."""
    about = split_pack_change_key(key)
    if about is None:
        if key in _SYSTEM_KEYS:
            return None
        fields = ", ".join(SYSTEM_FIELDS)
        return f"{quoted(key)} is no field a change records ({fields}, packs.<ID>[.<field>])"
    pack_id, field = about
    if not is_pack_id(pack_id):
        return f"{quoted(key)} names no pack: {not_pack_id(pack_id)}"
    if (field and field not in PACK_FIELDS) or key != pack_change_key(pack_id, field):
        fields = ", ".join(PACK_FIELDS)
        return f"{quoted(key)} is no field of a pack a change records ({fields})"
    return None


# --- SemVer 2.0.0 ----------------------------------------------------------------------------

# The regular expression published at semver.org.
MAX_VERSION_LENGTH = 256
"""The longest version a status document may carry (and so the manifest)."""
MAX_NUMBER_DIGITS = 100
"""The most digits a number in a status document may have (and so in the manifest's extra)."""
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SEMVER = re.compile(SEMVER_PATTERN[1:-1], re.ASCII)


def is_semver(version: str) -> bool:
    return _SEMVER.fullmatch(version) is not None


def semver_key(version: str) -> tuple[Any, ...]:
    """A sort key giving SemVer 2.0.0 precedence; ValueError if ``version`` is not SemVer."""
    match = _SEMVER.fullmatch(version)
    if not match:
        raise ValueError(not_semver(version))
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    core = (_number(major), _number(minor), _number(patch))
    if pre is None:
        return (*core, 1, ())
    # Numeric identifiers sort before alphanumeric ones, numerically; a longer list wins a tie.
    ids = tuple((0, _number(p), "") if p.isdigit() else (1, (0, ""), p) for p in pre.split("."))
    return (*core, 0, ids)


def _number(digits: str) -> tuple[int, str]:
    # SemVer numbers have no leading zeros, so (length, digits) sorts as the number does, at any
    # length (int() refuses strings over 4,300 digits).
    return (len(digits), digits)


# --- timestamps ----------------------------------------------------------------------------

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RANGE = "timestamps are from 1970-01-01 to 9999-12-31 (UTC)"
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def parse_timestamp(value: Any) -> datetime:
    """Accept an RFC 3339 string (or an aware datetime) and return it in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = _parse_rfc3339(value)
    else:
        raise ValueError(f"must be an RFC 3339 timestamp string, not {type(value).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamp has no timezone; add 'Z' for UTC")
    shown = repr(value) if isinstance(value, str) else format_timestamp(value)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00
        raise ValueError(f"{shown} is after 9999-12-31 once in UTC; {_RANGE}") from None
    if moment < EARLIEST:
        raise ValueError(f"{shown} is before 1970-01-01; {_RANGE}")
    return moment


QUOTE_LIMIT = 80


def clip(text: str, size: int | None = None) -> str:
    """``text``, or its start and its size when it is longer than an error line should quote."""
    if len(text) <= QUOTE_LIMIT:
        return text
    return f"{text[: QUOTE_LIMIT - 20]}… ({size or len(text):,} characters)"


def not_semver(value: Any) -> str:
    """Why ``value`` is refused as a version."""
    return f"{quoted(value)} is not a SemVer 2.0.0 version (like 1.2.3)"


def not_pack_id(value: Any) -> str:
    """Why ``value`` is refused as a pack id."""
    return f"{quoted(value)} is not a valid pack id: {PACK_ID_RULE}"


def quoted(value: Any) -> str:
    """``repr(value)``, cut short when long: an error line quotes the start of a value, never
    a whole file (a manifest that is a link to some other file must not print that file)."""
    return clip(repr(value), len(value) if isinstance(value, str) else None)


def _parse_rfc3339(value: str) -> datetime:
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(
            f"{quoted(value)} is not an RFC 3339 timestamp with a timezone "
            "(e.g. '2025-09-20T00:00:00Z')"
        )
    day, clock, fraction, zone = match.groups()
    micro = f".{(fraction or '')[:6]:0<6}" if fraction else ""
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{day}T{clock}{micro}{zone}")
    except ValueError as exc:
        raise ValueError(f"{quoted(value)} is not a valid date and time: {exc}") from None


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; microseconds only when present."""
    try:
        utc = moment.astimezone(timezone.utc)
    except OverflowError:  # beyond 9999 in UTC: as given (never valid)
        return moment.replace(tzinfo=None).isoformat() + "Z"
    # A four-digit year, the microseconds only when there are some, and "+00:00" as "Z".
    return utc.isoformat()[:-6] + "Z"


def human_time(moment: datetime | str) -> str:
    """A time as people read it: ``2025-09-20 12:00 UTC`` (from a datetime or RFC 3339 text)."""
    text = moment if isinstance(moment, str) else format_timestamp(moment)
    return text[:16].replace("T", " ") + " UTC"
