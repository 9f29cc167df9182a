"""Pydantic models of the manifest: every rule a manifest keeps, and how a broken one reads.

Constraints are declared on the fields (patterns, lengths, literals) so pydantic-core checks
them fast and the published JSON Schemas carry them; the few rules that span fields are checked
by :func:`cross_field_problems`. Each model's ``messages`` says, in the user's words, what a
broken rule of one of its fields means; :mod:`valhalla_status.storage.validation` falls back to
generic wording for the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .rules.formats import (
    MAX_NUMBER_DIGITS,
    MAX_VERSION_LENGTH,
    PACK_ID_RULE,
    change_key_problem,
    completion_problem,
    duplicate_ids,
    is_pack_id,
    not_pack_id,
    not_semver,
    pack_key,
    quoted,
)
from .rules.formats import PACK_ID_PATTERN as PACK_ID_PATTERN
from .rules.formats import SEMVER_PATTERN as SEMVER_PATTERN
from .rules.formats import STATUSES as STATUSES
from .rules.formats import PackStatus as PackStatus
from .rules.formats import format_timestamp as format_timestamp
from .rules.formats import parse_timestamp as parse_timestamp
from .rules.text import NONCHARACTERS, is_noncharacter

SCHEMA_VERSION = 2
MAX_PACKS = 100_000
MAX_EXTRA_BYTES = 64 * 1024
_EXTRA_LIMIT = f"{MAX_EXTRA_BYTES // 1024} KiB"  # as messages and the schema say it

Action = Literal[
    "init",
    "complete",
    "incomplete",
    "set-version",
    "set-notes",
    "pack-add",
    "pack-set",
    "pack-remove",
    "migrate",
    "revert",
    "record",
]
ACTIONS: tuple[str, ...] = get_args(Action)

# Characters no text field may hold: C0/C1 controls, bidi overrides and isolates, invisible
# zero-width marks. (Zero-width joiners stay allowed: scripts and emoji need them.)
_FORBIDDEN = (
    r"\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060"
    r"\u2028\u2029\u2066-\u2069\ufeff"  # line and paragraph separators break a line too
)
_FORBIDDEN += NONCHARACTERS
_FORBIDDEN_MULTILINE = _FORBIDDEN.replace(r"\x00-\x1f", r"\x00-\x09\x0b-\x1f")
ONE_LINE_PATTERN = rf"^[^{_FORBIDDEN}]*[^{_FORBIDDEN}\s][^{_FORBIDDEN}]*$"
MULTILINE_PATTERN = (
    rf"^[^{_FORBIDDEN_MULTILINE}]*[^{_FORBIDDEN_MULTILINE}\s][^{_FORBIDDEN_MULTILINE}]*$"
)
# Lone surrogates (U+D800-U+DFFF) are no characters at all: pydantic refuses them as text before
# any pattern runs, and messages show them escaped like the rest.
_SURROGATES = "\ud800-\udfff"
FORBIDDEN_CHAR = re.compile(f"[{_FORBIDDEN}{_SURROGATES}]")
FORBIDDEN_CHAR_MULTILINE = re.compile(f"[{_FORBIDDEN_MULTILINE}{_SURROGATES}]")

# How a broken rule of a field reads: (field, pydantic error type) -> the value given -> message.
Messages = dict[tuple[str, str], Callable[[Any], str]]


def describe(value: Any) -> str:
    """A value read from the file, as a message names it: ``'x'``, ``3 (a YAML integer)``."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a YAML boolean)"
    if isinstance(value, (int, float)):
        return f"{quoted(value)} (a YAML {type(value).__name__.replace('int', 'integer')})"
    if isinstance(value, str):
        return quoted(value)
    kind = next((name for cls, name in _KINDS if isinstance(value, cls)), None)
    return kind or f"a {type(value).__name__}"


_KINDS: tuple[tuple[type, str], ...] = ((type(None), "null"), (dict, "a mapping"), (list, "a list"))


def text_problem(value: str) -> str:
    """What is wrong with a text field's value that its pattern refused."""
    if not value.strip():
        return "must not be blank"
    bad = FORBIDDEN_CHAR_MULTILINE.search(value)
    if bad is None:
        found = FORBIDDEN_CHAR.search(value)
        assert found is not None
        if found.group() == "\n":
            return "must be one line (only notes may span lines)"
        bad = found
    return f"contains {_character_kind(bad.group())} U+{ord(bad.group()):04X}, which is not allowed"


def _character_kind(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "the lone surrogate"
    if is_noncharacter(char):
        return "the noncharacter"
    return "the control character"


# An absolute https URL, written into every page and the feed as it is: no white space, and none
# of the characters no text field may hold (the feed must stay well-formed XML). Its authority
# is a host name or a bracketed IPv6 address, with a port from 1 to 65535 and no user or
# password; no query or fragment, since every link is the URL with a path added.
_PORT = "0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_HOST = rf"[^\s/?#@:\[\]{_FORBIDDEN}]+|\[[0-9A-Fa-f:.]+\]"
BASE_URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]://(?:{_HOST})(?::(?:{_PORT}))?(/[^\s?#{_FORBIDDEN}]*)?$"


def base_url_problem(value: str) -> str:
    """What is wrong with a site URL that :data:`BASE_URL_PATTERN` refused (the manifest's
    ``base_url`` and ``build --base-url`` alike)."""
    bad = FORBIDDEN_CHAR.search(value)
    if bad is not None:
        char = bad.group()
        return (
            f"{quoted(value)} contains {_character_kind(char)} U+{ord(char):04X}, which is "
            "not allowed in a URL"
        )
    if value[:8].lower() != "https://":
        return f"{quoted(value)} is not an absolute https URL (https://host/path)"
    rest = value[8:]
    authority = re.split("[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        return f"{quoted(value)} holds a user name or password, which every page would publish"
    if "?" in rest or "#" in rest:
        return (
            f"{quoted(value)} has a query or a fragment ('?' or '#'), which would end up in "
            "the middle of every link made from it"
        )
    port = authority.rpartition("]")[2].partition(":")[2]
    if port.isascii() and port.isdigit() and not 0 < int(port) < 65536:
        return f"{quoted(value)} has port {int(port)}; a port is 1 to 65535"
    return f"{quoted(value)} is not an absolute https URL (https://host/path)"


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    return lambda value: f"{describe(value)} is not one of {', '.join(choices)}"


def _pack_id_problem(value: Any) -> str:
    if isinstance(value, str) and value.isascii() and is_pack_id(value.upper()):
        return f"{value!r} must be upper-case in the manifest ('{value.upper()}')"
    return not_pack_id(value)


Timestamp = Annotated[
    datetime,
    PlainValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _text(max_length: int, description: str, *, multiline: bool = False) -> Any:
    return Field(
        min_length=1,
        max_length=max_length,
        pattern=MULTILINE_PATTERN if multiline else ONE_LINE_PATTERN,
        description=description,
    )


class StrictModel(BaseModel):
    """Unknown keys are errors; YAML types are taken as they are (no coercion)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    messages: ClassVar[Messages] = {}


class Pack(StrictModel):
    """One pack of the platform."""

    messages: ClassVar[Messages] = {
        ("id", "string_pattern_mismatch"): _pack_id_problem,
        ("status", "literal_error"): _one_of(STATUSES),
    }

    id: str = Field(
        pattern=PACK_ID_PATTERN,
        description=f"{PACK_ID_RULE}; upper-case; unique. Also a file name on the site.",
    )
    name: str = _text(100, "Display name, one line.")
    group: str = _text(60, "Group the pack is listed under, one line.")
    status: PackStatus = Field(description=f"One of {', '.join(STATUSES)}.")
    notes: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern=MULTILINE_PATTERN,
        description="Why the pack has its status (absent unless set); may span lines.",
    )


class SystemMetadata(StrictModel):
    """The system-wide status: name, version, readiness and notes."""

    messages: ClassVar[Messages] = {
        ("version", "string_pattern_mismatch"): not_semver,
        ("base_url", "string_pattern_mismatch"): lambda value: base_url_problem(value),
    }

    name: str = _text(100, "System name, one line.")
    description: str = _text(500, "One-line description of the system.")
    base_url: str | None = Field(
        default=None,
        pattern=BASE_URL_PATTERN,
        max_length=2000,
        description="Absolute https URL where the site is published (absent unless set).",
    )
    # No longer than a status.json reader takes: what the site publishes must be readable.
    version: str = Field(
        pattern=SEMVER_PATTERN,
        max_length=MAX_VERSION_LENGTH,
        description="SemVer 2.0.0 version string.",
    )
    backend_complete: bool = Field(
        description="Whether the backend is complete; true only while no pack is pending."
    )
    notes: str | None = _text(2000, "Free-text notes; may span lines.", multiline=True)
    updated_at: Timestamp = Field(description="When the manifest last changed (UTC).")
    completed_at: Timestamp | None = Field(
        description="When the backend became complete (UTC); set exactly when it is."
    )
    extra: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=f"Any JSON-compatible mapping, at most {_EXTRA_LIMIT} serialised.",
    )

    @field_validator("extra", mode="after")
    @classmethod
    def _extra_is_small_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode())
        except ValueError:
            raise ValueError("must be JSON-compatible (no NaN or infinity)") from None
        if size > MAX_EXTRA_BYTES:
            raise ValueError(f"is {size:,} bytes serialised; the limit is {_EXTRA_LIMIT}")
        if _has_long_integer(value):
            raise ValueError(
                f"holds a number of over {MAX_NUMBER_DIGITS} digits, more than status.json "
                "readers take"
            )
        return value


def _has_long_integer(value: Any) -> bool:
    """Whether an integer of over MAX_NUMBER_DIGITS digits is anywhere in a JSON value."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return bool(abs(value) >= 10**MAX_NUMBER_DIGITS)
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list) and any(map(_has_long_integer, value))


def _recorded_key(key: str) -> str:
    problem = change_key_problem(key)
    if problem is not None:
        raise PydanticCustomError("change_key", problem)
    return key


ChangeKey = Annotated[str, AfterValidator(_recorded_key)]
"""The key of a field in a history change: a system field, ``packs.<ID>`` or
``packs.<ID>.<field>``."""


class HistoryEntry(StrictModel):
    """One recorded change. Entries are appended in order and never rewritten."""

    messages: ClassVar[Messages] = {
        ("action", "literal_error"): _one_of(ACTIONS),
        ("changes", "too_short"): lambda value: f"must be [old, new], not a list of {len(value)}",
        ("changes", "too_long"): lambda value: f"must be [old, new], not a list of {len(value)}",
    }

    at: Timestamp = Field(description="When the change was made (UTC).")
    by: str = _text(100, "Who made the change, one line.")
    action: Action = Field(description="The command that made the change.")
    changes: dict[ChangeKey, Annotated[list[JsonValue], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict,
        description="Each changed field mapped to [old, new]; pack fields as packs.<ID>.<field>.",
    )
    notes: str | None = _text(2000, "Why the change was made.", multiline=True)

    @field_validator("changes", mode="after")
    @classmethod
    def _changes_are_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:
            raise ValueError("must be JSON-compatible (no NaN or infinity)") from None
        return value


class LandedEntry(HistoryEntry):
    """A history entry as read: with its id and the time it reached the branch.

    Neither is stored in the entry's file: the id is the file's name, which never changes, and
    the landing time comes from git: the first-parent commit that brought the change in.
    """

    id: str = Field(description="The entry's id: its file name without .yaml; it never changes.")
    landed_at: Timestamp = Field(
        description="When the change reached this branch: the time of the first-parent commit "
        "that brought it in (the change's own time when uncommitted or outside git)."
    )


class Manifest(StrictModel):
    """The whole manifest file."""

    messages: ClassVar[Messages] = {
        ("schema_version", "literal_error"): lambda value: (
            f"unsupported schema_version {describe(value)}; this tool reads 1 and 2"
        ),
        ("packs", "too_long"): lambda value: (
            f"has {len(value):,} packs; the limit is {MAX_PACKS:,}"
        ),
    }

    schema_version: Literal[1, 2] = Field(
        description="Version of the file layout: 1 keeps the history and updated_at in this "
        "file; 2 keeps one file per change in the folder beside it (<name>.history/) and "
        "derives updated_at from the newest."
    )
    system: SystemMetadata = Field(description="System-wide status.")
    packs: list[Pack] = Field(max_length=MAX_PACKS, description="The packs, in display order.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Changes, oldest first.")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _schema_version_is_an_integer(cls, value: Any) -> Any:
        # A Literal compares by equality, and True == 1.0 == 1: only the integer itself is 1.
        if type(value) is not int:
            raise PydanticCustomError(
                "literal_error", "Input should be 1 or 2", {"expected": "1 or 2"}
            )
        return value

    def pack(self, pack_id: str) -> Pack | None:
        """The pack with this id (any case), or None."""
        wanted = pack_key(pack_id)
        return next((p for p in self.packs if p.id == wanted), None)


def cross_field_problems(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules spanning fields, as (location, message) pairs.

    The backend is complete only when no pack is pending: each pending pack of a complete
    backend is a problem located on that pack's status.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    system = manifest.system
    completion = completion_problem(system.backend_complete, system.completed_at)
    if completion is not None:
        problems.append((("system", "completed_at"), completion))
    if system.completed_at is not None and system.completed_at > system.updated_at:
        problems.append(
            (
                ("system", "completed_at"),
                f"{format_timestamp(system.completed_at)} is after updated_at "
                f"{format_timestamp(system.updated_at)}",
            )
        )
    duplicates = duplicate_ids(pack.id for pack in manifest.packs)
    problems += [(("packs", index, "id"), message) for index, message in duplicates]
    return problems + pending_while_complete(manifest)


def pending_while_complete(manifest: Manifest) -> list[tuple[tuple[str | int, ...], str]]:
    """Each pending pack of a complete backend, as a problem on its status, with the way out:
    the backend is complete only while no pack is pending."""
    if not manifest.system.backend_complete:
        return []
    pending = [(index, p.id) for index, p in enumerate(manifest.packs) if p.status == "pending"]
    if len(pending) == 1:
        message = (
            "pending while the backend is complete; set the pack's status (valhalla-status "
            f"pack set {pending[0][1]} --status installed) or mark the backend in development "
            "(valhalla-status incomplete)"
        )
    else:  # one command settles them all
        message = (
            f"pending while the backend is complete ({len(pending):,} packs are pending); mark "
            "the backend in development (valhalla-status incomplete), then set their statuses"
        )
    return [(("packs", index, "status"), message) for index, _ in pending]
