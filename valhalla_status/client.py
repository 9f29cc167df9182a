"""A small typed client for the published ``status.json`` (standard library only).

For Heimdall, CI jobs and deploy scripts::

    from valhalla_status.client import StatusClient

    client = StatusClient("https://status.example.org/", timeout=5)
    status = client.fetch()          # again later: a 304 returns the cached Status
    if status.backend_complete and status.version_at_least("1.2.0"): ...

``fetch`` raises :class:`StatusUnavailable` (unreachable, timed out, HTTP error, a redirect to
another scheme, not a regular file) or its subclass :class:`InvalidStatus` (not JSON, nested too
deeply, a number too long, not a status document, unknown ``schema_version``; and its subclass
:class:`InconsistentStatus`: the backend complete while a pack is pending); a source or an
option the client cannot use raises :class:`InvalidArgument` (a ``ValueError``). Nothing else
escapes. The timeout bounds the whole fetch, retries included. Redirects are followed only to
http and https URLs (checked before connecting), at most five in a row. This module imports
nothing outside the standard library (and the HTTP stack only when a URL is read), so importing
it is cheap.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .rules.formats import (
    MAX_NUMBER_DIGITS,
    MAX_VERSION_LENGTH,
    STATUSES,
    SUMMARY_KEYS,
    clip,
    completion_problem,
    duplicate_ids,
    is_pack_id,
    is_semver,
    not_pack_id,
    pack_key,
    quoted,
    semver_key,
    summary_of,
)
from .storage.files import (
    MAX_MANIFEST_BYTES,
    NotRegularFileError,
    mib,
    os_reason,
    read_regular_file,
)

SCHEMA_VERSIONS = (1,)
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 86400.0  # a day: a longer wait is a mistake, not a deadline
MAX_BYTES = 2 * MAX_MANIFEST_BYTES
"""The largest status document read: the largest manifest's, in JSON's longer form."""
MAX_REDIRECTS = 5
# Longer numbers, and versions, are no status this tool writes; refusing them also keeps every
# comparison cheap (Python refuses to convert integers over 4,300 digits).


class StatusUnavailable(Exception):
    """The status could not be read: unreachable, timed out, or an HTTP error."""


class InvalidStatus(StatusUnavailable):
    """What was read is not a status document this client understands."""


class InconsistentStatus(InvalidStatus):
    """A status document whose fields contradict each other: the backend complete while a pack
    is pending (no valid manifest publishes it; a hand-made or stale document might)."""


class InvalidArgument(ValueError):
    """A source or an option the client cannot use (not http/https, a timeout that is not a
    positive finite number of seconds up to a day)."""


# --- the typed status ----------------------------------------------------------------------


@dataclass(frozen=True)
class PackStatus:
    """One pack of ``status.json``'s ``packs``."""

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
    """``status.json``'s ``summary``: the pack counts per status."""

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
        wanted = pack_key(pack_id)
        return next((p for p in self.packs if p.id == wanted), None)

    def version_at_least(self, minimum: str) -> bool:
        """Whether ``version`` is at least ``minimum`` by SemVer precedence (ValueError if
        ``minimum`` is not SemVer)."""
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
            raise InvalidStatus(
                f"unknown schema_version {quoted(schema)} (this client reads {known})"
            )
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
                    raise ValueError(
                        f"packs[{index}].status: {quoted(pack.status)} is not a status"
                    )
            counts = _field(document, "summary", dict)
            summary = Summary(**{k: _field(counts, k, int, "summary.") for k in SUMMARY_KEYS})
            version = _field(document, "version", str)
            if len(version) > MAX_VERSION_LENGTH:
                raise ValueError(f"version: over {MAX_VERSION_LENGTH} characters long")
            if not is_semver(version):
                raise ValueError(f"version: {quoted(version)} is not a SemVer version")
            completed_at = _field(document, "completed_at", (str, type(None)))
            status = cls(
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
            status._check_consistent()
            status._check_rules()
        except ValueError as exc:
            raise InvalidStatus(f"not a valid status document: {exc}") from None
        return status

    def _check_rules(self) -> None:
        """Raise ValueError at the first rule of the manifest the document breaks, of those its
        answers rest on: which pack an id names, whether and since when the backend is
        complete, and the counts."""
        for index, pack in enumerate(self.packs):
            if not is_pack_id(pack.id):
                raise ValueError(f"packs[{index}].id: {not_pack_id(pack.id)}")
        duplicates = duplicate_ids(pack.id for pack in self.packs)
        if duplicates:
            index, message = duplicates[0]
            raise ValueError(f"packs[{index}].id: {message}")
        completion = completion_problem(self.backend_complete, self.completed_at)
        if completion is not None:
            raise ValueError(f"completed_at: {completion}")
        if self.completed_at is not None and self.completed_at > self.updated_at:
            raise ValueError("completed_at: is after updated_at")
        counted = summary_of(pack.status for pack in self.packs)
        for key in SUMMARY_KEYS:
            said = getattr(self.summary, key)
            if said != counted[key]:
                raise ValueError(f"summary.{key}: {said}, but packs holds {counted[key]}")

    def _check_consistent(self) -> None:
        """Raise InconsistentStatus if the backend is complete while a pack is pending."""
        pending = (
            [p.id for p in self.packs if p.status == "pending"] if self.backend_complete else []
        )
        if not pending:
            return
        shown = ", ".join(pending[:_LISTED])
        if len(pending) > _LISTED:
            shown += f" and {len(pending) - _LISTED:,} more"
        packs = f"packs {shown} are" if len(pending) > 1 else f"pack {shown} is"
        raise InconsistentStatus(
            f"the backend is complete while {packs} pending: the document is inconsistent"
        )


_PACK_KEYS = ("id", "name", "group", "status")
_LISTED = 10  # pending packs named in an inconsistency; the rest are counted


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
    shown = quoted(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {shown} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name}: {shown} has no timezone")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 an hour east of UTC, year 9999 an hour west
        raise ValueError(f"{name}: {shown} is out of range in UTC") from None


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
        trusted_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if not _seconds(timeout) or timeout <= 0 or timeout > MAX_TIMEOUT:
            raise InvalidArgument(
                f"timeout must be positive, finite and at most {MAX_TIMEOUT:g} seconds "
                f"(not {quoted(timeout)})"
            )
        if type(retries) is not int or retries < 0:
            raise InvalidArgument(
                f"retries must be a whole number of at least 0, not {quoted(retries)}"
            )
        if not _seconds(backoff) or backoff < 0:
            raise InvalidArgument(
                f"backoff must be a finite number of seconds, not {quoted(backoff)}"
            )
        try:
            text = os.fspath(source)
        except TypeError:
            raise InvalidArgument(f"not a URL or a file path: {quoted(source)}") from None
        if not isinstance(text, str):
            raise InvalidArgument(f"not a URL or a file path: {quoted(source)}")
        self.is_url = _has_scheme(text)
        if self.is_url:
            _refuse_unusable_url(text)
        self.source = text + "status.json" if self.is_url and text.endswith("/") else text
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._etag: str | None = None
        self._cached: Status | None = None
        self.trusted_root = None if trusted_root is None else os.fspath(trusted_root)
        if self.trusted_root is not None and not self.is_url:
            raise InvalidArgument("a trusted root verifies a site read from a URL, not a file")
        self.verified: Any = None
        """After a verified fetch: the metadata that vouched for it (``version``,
        ``expires``)."""

    def fetch(self) -> Status:
        """The current status (raises StatusUnavailable or InvalidStatus)."""
        if self.trusted_root is not None:
            return self._fetch_verified()
        if not self.is_url:
            return self._typed(self._decode(self._read_file()))
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

    def _fetch_verified(self) -> Status:
        """Through python-tuf's ngclient, from the trusted root (see :mod:`.readers.verify`)."""
        from .readers.verify import fetch_verified, root_problem, site_base

        assert self.trusted_root is not None
        try:
            root = read_regular_file(self.trusted_root, MAX_BYTES)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise InvalidArgument(
                f"cannot read the trusted root {self.trusted_root}: {reason}"
            ) from None
        problem = root_problem(root)
        if problem is not None:
            raise InvalidArgument(
                f"the trusted root {self.trusted_root} is not usable: {problem}; give the "
                "root.json the site's publisher shared"
            )
        base = site_base(self.source)
        target = self.source[len(base) :]
        verified = fetch_verified(base, root, timeout=self.timeout, target=target)
        status = self._typed(self._decode(verified.data))
        self.verified = verified
        return status

    def _read_file(self) -> bytes:
        try:
            data = read_regular_file(self.source, MAX_BYTES)  # a FIFO is refused, not waited on
        except NotRegularFileError as exc:
            raise StatusUnavailable(f"cannot read {self.source}: it is {exc.kind}") from None
        except OSError as exc:
            raise StatusUnavailable(f"cannot read {self.source}: {os_reason(exc)}") from None
        except ValueError as exc:  # a NUL in the path
            raise StatusUnavailable(f"cannot read {self.source}: {exc}") from None
        if len(data) > MAX_BYTES:
            raise InvalidStatus(f"{self.source} is over {mib(MAX_BYTES)}")
        return data

    def _fetch_once(self, deadline: float) -> Status:
        import urllib.request  # here, not at the top: reading a file needs no HTTP stack

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StatusUnavailable(f"timed out after {self.timeout:g} s reading {self.source}")
        try:
            request = urllib.request.Request(self.source, headers=self._headers())
        except ValueError as exc:
            raise StatusUnavailable(f"cannot read {self.source}: {clip(str(exc))}") from None
        outcome = self._exchange(request, remaining)
        error = outcome.get("error")
        if error is not None:
            return self._after(error)
        body: bytes = outcome["body"]
        if len(body) > MAX_BYTES:
            raise InvalidStatus(f"{self.source} sent over {mib(MAX_BYTES)}")
        status = self._typed(self._decode(body))
        self._etag, self._cached = outcome["etag"], status
        return status

    def _typed(self, document: Any) -> Status:
        """The Status of a decoded document; one that is not valid is named after its source."""
        try:
            return Status.from_document(document)
        except InvalidStatus as exc:
            raise type(exc)(f"{self.source}: {exc}") from None

    def _exchange(self, request: Any, remaining: float) -> dict[str, Any]:
        """``{"etag", "body"}`` of one request, or ``{"error"}``: what it raised."""
        outcome: dict[str, Any] = {}
        opener = _opener()

        def attempt() -> None:
            try:
                with opener.open(request, timeout=remaining) as response:
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
        return outcome

    def _after(self, error: BaseException) -> Status:
        """The cached status after a 304; otherwise what ``error`` means, raised."""
        import urllib.error

        if isinstance(error, _RefusedRedirect):
            raise StatusUnavailable(f"{error} (from {self.source})")
        if isinstance(error, urllib.error.HTTPError):
            if error.code == 304 and self._cached is not None:
                return self._cached
            message = f"HTTP {error.code} {clip(str(error.reason))} from {self.source}"
            if error.code >= 500:
                raise _Retry(message)
            raise StatusUnavailable(message)
        if isinstance(error, urllib.error.URLError):
            raise _Retry(f"cannot reach {self.source}: {_reason(error.reason)}")
        if isinstance(error, OSError):
            raise _Retry(f"cannot reach {self.source}: {_reason(error)}")
        raise StatusUnavailable(f"cannot read {self.source}: {_reason(error)}")

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
            text = body.decode("utf-8-sig")  # a leading byte-order mark is allowed, and dropped
        except UnicodeDecodeError as exc:
            where = f"byte 0x{body[exc.start]:02x} at offset {exc.start}"
            raise InvalidStatus(f"{self.source} is not UTF-8 text ({where})") from None
        try:
            document = json.loads(
                text, parse_int=_integer, parse_constant=_not_json, object_pairs_hook=_object
            )
            # Lone surrogates (``"\ud800"``) decode, but are no text: nothing could print them.
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except _Unreadable as exc:
            raise InvalidStatus(f"{self.source} is not usable JSON: {exc}") from None
        except RecursionError:
            raise InvalidStatus(f"{self.source} is nested too deeply to read") from None
        except UnicodeEncodeError:
            raise InvalidStatus(
                f"{self.source} is not usable JSON: a string holds a lone surrogate escape"
            ) from None
        except ValueError:
            start = body[:40].decode("utf-8", "replace").strip().replace("\n", " ")
            raise InvalidStatus(f"{self.source} is not JSON (it starts {start!r})") from None
        return document


class _Unreadable(ValueError):
    """Valid-looking JSON this client refuses to read (a too-long number, NaN, Infinity)."""


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Unreadable(f"a number has {len(digits)} digits (at most {MAX_NUMBER_DIGITS})")
    return int(digits)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a key twice, readers disagree on which
    one counts (``backend_complete`` both false and true), so no reading is trusted."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Unreadable(f"the key {quoted(key)} appears twice in one object")
            seen.add(key)
    return found


def _not_json(name: str) -> Any:
    raise _Unreadable(f"{name} is not a JSON number")


_SCHEME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def _has_scheme(text: str) -> bool:
    """Whether ``text`` starts with a URL scheme and ``://``: an ASCII letter, then ASCII
    letters, digits, ``+``, ``-`` and ``.`` (a scheme holds no ``:``, so the first ``://`` ends
    it)."""
    scheme, found, _ = text.partition("://")
    first = scheme[:1]
    return bool(found) and first.isascii() and first.isalpha() and set(scheme) <= _SCHEME_CHARACTERS


def _seconds(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not a bool, not NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _RefusedRedirect(Exception):
    """A redirect the client does not follow (another scheme, or too many in a row)."""


def _check_redirect(code: int, target: str) -> None:
    import urllib.parse

    if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
        raise _RefusedRedirect(
            f"HTTP {code} redirect to {clip(target)}: only http and https redirects are followed"
        )
    if _user_information(target) is not None:
        raise _RefusedRedirect(
            f"HTTP {code} redirect to {clip(_hide_user_information(target))}: "
            "a redirect to a URL with user information is not followed"
        )


def _netloc(url: str) -> tuple[int, int]:
    """Where the authority (``user:password@host:port``) of ``url`` starts and ends: after
    ``://``, up to the first ``/``, ``?`` or ``#`` (as urllib reads it)."""
    start = url.find("://") + 3
    if start < 3:  # no authority at all
        return 0, 0
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return start, min(ends, default=len(url))


def _user_information(url: str) -> str | None:
    """The ``user:password`` part of ``url``'s authority (up to its last ``@``), or None."""
    start, end = _netloc(url)
    userinfo, at, _ = url[start:end].rpartition("@")
    return userinfo if at else None


def _hide_user_information(url: str) -> str:
    """``url`` with its password, or a user name alone (often a token), shown as ``***``."""
    userinfo = _user_information(url)
    if userinfo is None:
        return url
    start, _ = _netloc(url)
    user, colon, _ = userinfo.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return url[:start] + hidden + url[start + len(userinfo) :]


def _refuse_unusable_url(url: str) -> None:
    """Refuse, before anything connects, a URL the client cannot read: another scheme than
    http or https, or user information (the client sends no credentials, and a message must not
    show a password)."""
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidArgument(f"{url}: only http:// and https:// URLs are supported")
    if _user_information(url) is not None:
        raise InvalidArgument(
            f"{_hide_user_information(url)}: user information in the URL is not "
            "supported (the client sends no credentials); give the URL without it"
        )


def _opener() -> Any:
    """An opener for http and https only (no ftp, file or data handlers), whose redirects are
    checked before anything connects to where they point."""
    import urllib.parse
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = max_repeats = MAX_REDIRECTS + 1  # the check below comes first

        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            _check_redirect(code, newurl)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

        def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
            location = headers.get("Location") or headers.get("URI")
            if location:
                _check_redirect(code, urllib.parse.urljoin(req.full_url, location))
            if sum(getattr(req, "redirect_dict", {}).values()) >= MAX_REDIRECTS:
                raise _RefusedRedirect(f"more than {MAX_REDIRECTS} redirects in a row")
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        Redirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _is_timeout(error: BaseException | None) -> bool:
    import urllib.error

    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else None
    return isinstance(error, TimeoutError)


def _reason(error: Any) -> str:
    """What went wrong, in a message's words; what a server sent is cut short."""
    if isinstance(error, OSError) and error.strerror:
        reason = error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    else:
        reason = str(error) or type(error).__name__
    return clip(reason)


def fetch_status(
    source: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, retries: int = 2
) -> Status:
    """Read the status once from a URL or file (see :class:`StatusClient`)."""
    return StatusClient(source, timeout=timeout, retries=retries).fetch()
