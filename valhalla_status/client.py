"""A small typed client for the published ``status.json`` (standard library only).

For Heimdall, CI jobs and deploy scripts::

    from valhalla_status.client import StatusClient

    client = StatusClient("https://status.example.org/", timeout=5)
    status = client.fetch()          # again later: a 304 returns the cached Status
    if status.backend_complete and status.version_at_least("1.2.0"): ...

``fetch`` raises :class:`StatusUnavailable` (unreachable, timed out, HTTP error) or its subclass
:class:`InvalidStatus` (not JSON, not a status document, unknown ``schema_version``). The
timeout bounds the whole fetch, retries included. This module imports nothing outside the
standard library (and the HTTP stack only when a URL is read), so importing it is cheap.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSIONS = (1,)
STATUSES = ("installed", "pending", "deprecated", "experimental")
DEFAULT_TIMEOUT = 10.0
MAX_BYTES = 64 * 1024 * 1024
# SemVer 2.0.0 (semver.org); the same rule as the manifest's (models.py cannot be imported here:
# it needs pydantic).
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)


class StatusUnavailable(Exception):
    """The status could not be read: unreachable, timed out, or an HTTP error."""


class InvalidStatus(StatusUnavailable):
    """What was read is not a status document this client understands."""


# --- the typed status ----------------------------------------------------------------------


@dataclass(frozen=True)
class PackStatus:
    id: str
    name: str
    group: str
    status: str
    notes: str | None = None
    """Why the pack has its status (None: no note, or a site older than pack notes)."""
    since: str | None = None
    """When it got its status (RFC 3339), or None when unknown."""

    @property
    def installed(self) -> bool:
        return self.status == "installed"


@dataclass(frozen=True)
class Summary:
    total_packs: int
    installed_packs: int
    pending_packs: int
    deprecated_packs: int
    experimental_packs: int


@dataclass(frozen=True)
class Status:
    """``status.json``, typed."""

    schema_version: int
    name: str
    description: str
    version: str
    backend_complete: bool
    notes: str | None
    updated_at: datetime
    completed_at: datetime | None
    packs: tuple[PackStatus, ...]
    summary: Summary
    extra: dict[str, Any] = field(default_factory=dict)

    def pack(self, pack_id: str) -> PackStatus | None:
        """The pack with this id (any case), or None."""
        wanted = pack_id.upper()
        return next((p for p in self.packs if p.id == wanted), None)

    def version_at_least(self, minimum: str) -> bool:
        """Whether ``version`` is at least ``minimum`` by SemVer precedence."""
        return semver_key(self.version) >= semver_key(minimum)

    @classmethod
    def from_document(cls, document: Any) -> Status:
        """Check a decoded ``status.json`` and type it; raise InvalidStatus if it is not one."""
        if not isinstance(document, dict):
            raise InvalidStatus(f"not a status document (it is {_describe(document)})")
        if "schema_version" not in document:
            raise InvalidStatus("not a status document (it has no schema_version)")
        schema = document["schema_version"]
        if type(schema) is not int or schema not in SCHEMA_VERSIONS:
            known = ", ".join(map(str, SCHEMA_VERSIONS))
            raise InvalidStatus(f"unknown schema_version {schema!r} (this client reads {known})")
        try:
            packs = tuple(
                PackStatus(
                    **{k: _field(p, k, str, f"packs[{i}].") for k in _PACK_KEYS},
                    **{
                        k: _field(p, k, (str, type(None)), f"packs[{i}].")
                        for k in ("notes", "since")
                        if k in p
                    },
                )
                for i, p in enumerate(_field(document, "packs", list))
            )
            for index, pack in enumerate(packs):
                if pack.status not in STATUSES:
                    raise ValueError(f"packs[{index}].status: {pack.status!r} is not a status")
            counts = _field(document, "summary", dict)
            summary = Summary(**{k: _field(counts, k, int, "summary.") for k in _SUMMARY_KEYS})
            version = _field(document, "version", str)
            if not _SEMVER.fullmatch(version):
                raise ValueError(f"version: {version!r} is not a SemVer version")
            completed_at = _field(document, "completed_at", (str, type(None)))
            return cls(
                schema_version=schema,
                name=_field(document, "name", str),
                description=_field(document, "description", str),
                version=version,
                backend_complete=_field(document, "backend_complete", bool),
                notes=_field(document, "notes", (str, type(None))),
                updated_at=_timestamp(_field(document, "updated_at", str), "updated_at"),
                completed_at=_timestamp(completed_at, "completed_at") if completed_at else None,
                packs=packs,
                summary=summary,
                extra=_field(document, "extra", dict),
            )
        except ValueError as exc:
            raise InvalidStatus(f"not a valid status document: {exc}") from None


_PACK_KEYS = ("id", "name", "group", "status")
_SUMMARY_KEYS = (
    "total_packs",
    "installed_packs",
    "pending_packs",
    "deprecated_packs",
    "experimental_packs",
)


def _field(data: Any, key: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.')}: expected an object, got {_describe(data)}")
    if key not in data:
        raise ValueError(f"{prefix}{key}: missing")
    value = data[key]
    # bool is an int in Python; a count or a version must not be a boolean.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = " or ".join(_NAMES[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{prefix}{key}: expected {expected}, got {_describe(value)}")
    return value


def _timestamp(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name}: {text!r} has no timezone")
    return moment.astimezone(timezone.utc)


_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _describe(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def semver_key(version: str) -> tuple[Any, ...]:
    """A sort key giving SemVer 2.0.0 precedence; ValueError if ``version`` is not SemVer."""
    match = _SEMVER.fullmatch(version)
    if not match:
        raise ValueError(f"{version!r} is not a SemVer 2.0.0 version (like 1.2.3)")
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    core = (int(major), int(minor), int(patch))
    if pre is None:
        return (*core, 1, ())
    # Numeric identifiers sort before alphanumeric ones, numerically; a longer list wins a tie.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


# --- fetching ------------------------------------------------------------------------------


class _Retry(Exception):
    """An attempt failed in a way worth retrying (connection error, 5xx)."""


class StatusClient:
    """Reads ``status.json`` from an http(s) URL or a file path.

    A URL ending in ``/`` gets ``status.json`` appended. Connection errors and 5xx responses
    are retried (at most ``retries`` more times, waiting ``backoff`` seconds, doubling), all
    within ``timeout`` seconds in total. The ETag of the last response is sent as
    ``If-None-Match``; a 304 returns the cached Status.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        text = os.fspath(source)
        self.is_url = bool(re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", text))
        if self.is_url and not text.lower().startswith(("http://", "https://")):
            raise ValueError(f"{text}: only http:// and https:// URLs are supported")
        self.source = text + "status.json" if self.is_url and text.endswith("/") else text
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._etag: str | None = None
        self._cached: Status | None = None

    def fetch(self) -> Status:
        """The current status (raises StatusUnavailable or InvalidStatus)."""
        if not self.is_url:
            return Status.from_document(self._decode(self._read_file()))
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                return self._fetch_once(deadline)
            except _Retry as exc:
                wait = self.backoff * 2**attempt
                attempt += 1
                if attempt > self.retries or time.monotonic() + wait >= deadline:
                    tries = f" ({attempt} attempts)" if attempt > 1 else ""
                    raise StatusUnavailable(f"{exc}{tries}") from None
                time.sleep(wait)

    def _read_file(self) -> bytes:
        try:
            with open(self.source, "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise StatusUnavailable(f"cannot read {self.source}: {exc.strerror or exc}") from None
        if len(data) > MAX_BYTES:
            raise InvalidStatus(f"{self.source} is over {MAX_BYTES // 2**20} MiB")
        return data

    def _fetch_once(self, deadline: float) -> Status:
        import urllib.error  # here, not at the top: reading a file needs no HTTP stack
        import urllib.request

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StatusUnavailable(f"timed out after {self.timeout:g} s reading {self.source}")
        request = urllib.request.Request(self.source, headers=self._headers())
        outcome: dict[str, Any] = {}

        def attempt() -> None:
            try:
                with urllib.request.urlopen(request, timeout=remaining) as response:
                    outcome["etag"] = response.headers.get("ETag")
                    outcome["body"] = response.read(MAX_BYTES + 1)
            except BaseException as exc:
                outcome["error"] = exc

        # The socket timeout bounds each read; the thread bounds the whole exchange (a server
        # trickling bytes slowly cannot hold the caller past its deadline).
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive() or _is_timeout(outcome.get("error")):
            raise StatusUnavailable(f"timed out after {self.timeout:g} s reading {self.source}")
        error = outcome.get("error")
        if isinstance(error, urllib.error.HTTPError):
            if error.code == 304 and self._cached is not None:
                return self._cached
            message = f"HTTP {error.code} {error.reason} from {self.source}"
            if error.code >= 500:
                raise _Retry(message)
            raise StatusUnavailable(message)
        if isinstance(error, urllib.error.URLError):
            raise _Retry(f"cannot reach {self.source}: {_reason(error.reason)}")
        if isinstance(error, OSError):
            raise _Retry(f"cannot reach {self.source}: {_reason(error)}")
        if error is not None:
            raise StatusUnavailable(f"cannot read {self.source}: {_reason(error)}")
        body: bytes = outcome["body"]
        if len(body) > MAX_BYTES:
            raise InvalidStatus(f"{self.source} sent over {MAX_BYTES // 2**20} MiB")
        status = Status.from_document(self._decode(body))
        self._etag, self._cached = outcome["etag"], status
        return status

    def _headers(self) -> dict[str, str]:
        # no-cache: caches on the way must revalidate (cheap with the ETag), not serve stale.
        headers = {
            "Accept": "application/json",
            "Cache-Control": "no-cache",
            "User-Agent": "valhalla-status-client",
        }
        if self._etag and self._cached is not None:
            headers["If-None-Match"] = self._etag
        return headers

    def _decode(self, body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            start = body[:40].decode("utf-8", "replace").strip().replace("\n", " ")
            raise InvalidStatus(f"{self.source} is not JSON (it starts {start!r})") from None


def _is_timeout(error: BaseException | None) -> bool:
    import urllib.error

    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else None
    return isinstance(error, TimeoutError)


def _reason(error: Any) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    return str(error) or type(error).__name__


def fetch_status(
    source: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, retries: int = 2
) -> Status:
    """Read the status once from a URL or file (see :class:`StatusClient`)."""
    return StatusClient(source, timeout=timeout, retries=retries).fetch()
