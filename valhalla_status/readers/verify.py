"""Verified reads of a signed site through python-tuf's ``ngclient``.

The reader starts from a root it trusts (``--trusted-root``), follows the site's root chain,
and refuses metadata that expired, is not signed by the keys the root names, or is older than
what it verified before, and a document whose hash is not the signed one. python-tuf is
imported only here, and only when a verified read is asked for.

What was verified is kept between reads (the trusted state: a rollback is caught only against
something seen before), in ``$VALHALLA_CACHE_DIR/tuf/`` (else ``$XDG_CACHE_HOME`` or
``~/.cache``, under ``valhalla-status/tuf/``), one folder per site and trusted root.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..client import StatusUnavailable
from ..rules.formats import clip, human_time

METADATA_FOLDER = "tuf"
INSTALL_HINT = "python -m pip install 'valhalla-status[tuf]'"
USER_AGENT = "valhalla-status-client"


class VerificationFailed(StatusUnavailable):
    """The signed metadata or the document did not verify (expired, bad signature, tampered,
    rolled back)."""


class MissingTuf(ValueError):
    """python-tuf is not installed."""


@dataclass(frozen=True)
class Verified:
    """A document that verified, and the metadata that vouched for it."""

    data: bytes
    version: int
    expires: datetime


def site_base(url: str) -> str:
    """The site's URL from the URL of its ``status.json`` (or of the site, ending in ``/``)."""
    return url if url.endswith("/") else url.rpartition("/")[0] + "/"


def state_folder(base: str, root: bytes) -> Path:
    """Where what was verified from this site under this root is kept."""
    top = os.environ.get("VALHALLA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "valhalla-status"
    )
    key = hashlib.sha256(base.encode() + b"\0" + root).hexdigest()[:24]
    return Path(top) / "tuf" / key


def root_problem(root: bytes) -> str | None:
    """Why ``root`` is no usable trusted root (not TUF root metadata, or not signed by the keys
    it names itself); None when it is, or when python-tuf is missing (the read says so)."""
    try:
        from tuf.api import exceptions
        from tuf.api.metadata import Metadata, Root
        from tuf.api.serialization import DeserializationError
    except ImportError:
        return None
    try:
        metadata = Metadata[Root].from_bytes(root)
        metadata.verify_delegate(Root.type, metadata)
    except DeserializationError:
        return "it is not TUF root metadata"
    except (exceptions.RepositoryError, ValueError, TypeError, KeyError) as exc:
        return clip(str(exc) or type(exc).__name__)
    return None


def fetch_verified(
    base: str, root: bytes, *, timeout: float, target: str = "status.json"
) -> Verified:
    """``target`` of the site at ``base``, verified from ``root`` (raises StatusUnavailable,
    or VerificationFailed with one line saying what was refused)."""
    try:
        import urllib3
        from tuf.api import exceptions
        from tuf.ngclient import Updater
    except ImportError:
        raise MissingTuf(f"verified reads need python-tuf; install it: {INSTALL_HINT}") from None

    fetcher = _recording_fetcher(max(1, round(timeout)))
    state = state_folder(base, root)
    state.mkdir(parents=True, exist_ok=True)
    metadata_url = base + METADATA_FOLDER + "/"
    try:
        with tempfile.TemporaryDirectory(prefix="valhalla-status-") as downloads:
            updater = Updater(
                str(state), metadata_url, downloads, base, fetcher=fetcher, bootstrap=root
            )
            info = updater.get_targetinfo(target)
            if info is None:
                raise VerificationFailed(f"{target} is not among the documents {base} signs")
            data = Path(updater.download_target(info)).read_bytes()
    except exceptions.RepositoryError as exc:
        raise VerificationFailed(_refusal(exc, fetcher.seen, base, target)) from None
    except exceptions.DownloadError as exc:
        raise StatusUnavailable(_download_failure(exc, fetcher.last, base)) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StatusUnavailable(f"cannot reach {fetcher.last}: {clip(str(reason))}") from None
    except (ValueError, TypeError) as exc:  # a trusted root python-tuf cannot load
        raise VerificationFailed(f"the trusted root is not usable: {clip(str(exc))}") from None
    stamp = _stamp(state)
    return Verified(data, stamp.version, stamp.expires)


def _stamp(state: Path) -> Any:
    from tuf.api.metadata import Metadata

    return Metadata.from_bytes((state / "timestamp.json").read_bytes()).signed


def _recording_fetcher(timeout: int) -> Any:
    """python-tuf's urllib3 fetcher, remembering what each URL sent (for the messages)."""
    from tuf.ngclient import Urllib3Fetcher

    class Recording(Urllib3Fetcher):
        def __init__(self) -> None:
            super().__init__(socket_timeout=timeout, app_user_agent=USER_AGENT)
            self.seen: dict[str, bytes] = {}
            self.last = ""

        def download_bytes(self, url: str, max_length: int) -> bytes:
            self.last = url
            data: bytes = super().download_bytes(url, max_length)
            self.seen[url.rpartition("/")[2]] = data
            return data

        def _fetch(self, url: str) -> Any:
            self.last = url
            return super()._fetch(url)

    return Recording()


def _expired_at(seen: dict[str, bytes], name: str) -> str:
    from tuf.api.metadata import Metadata

    try:
        return f" at {human_time(Metadata.from_bytes(seen[name]).signed.expires)}"
    except Exception:
        return ""


def _refusal(exc: Exception, seen: dict[str, bytes], base: str, target: str) -> str:
    """One line for each way the signed site can be refused."""
    from tuf.api import exceptions

    text = str(exc)
    if isinstance(exc, exceptions.ExpiredMetadataError):
        if "timestamp" in text:
            when = _expired_at(seen, "timestamp.json")
            return f"the published status expired{when}: the publisher has not refreshed it"
        role = next((r for r in ("root", "snapshot", "targets") if r in text.lower()), "metadata")
        return f"the published {role} metadata expired: the publisher has not re-signed it"
    if isinstance(exc, exceptions.LengthOrHashMismatchError):
        return (
            f"{target} is not the document that was signed (its hash or length differs): "
            "it was changed after signing"
        )
    if isinstance(exc, exceptions.UnsignedMetadataError):
        return (
            f"bad signature: {clip(text)}: the metadata is not signed by the keys the trusted "
            "root names"
        )
    if isinstance(exc, exceptions.BadVersionNumberError):
        return (
            f"rollback: {clip(text)}: the site serves older signed metadata than was "
            "verified before"
        )
    return f"the signed metadata of {base} does not verify: {clip(text)}"


def _download_failure(exc: Exception, url: str, base: str) -> str:
    from tuf.api import exceptions

    if isinstance(exc, exceptions.DownloadHTTPError):
        if exc.status_code == 404 and url.startswith(base + METADATA_FOLDER + "/"):
            return f"{url} not found: the site is not signed (build it with keys)"
        return f"HTTP {exc.status_code} from {url}"
    if isinstance(exc, exceptions.SlowRetrievalError):
        return f"timed out reading {url}"
    return f"cannot read {url}: {clip(str(exc) or type(exc).__name__)}"
