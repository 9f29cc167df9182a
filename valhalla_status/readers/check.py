"""Readiness evaluation for ``check``: is the published status what a deploy needs?

Built on :mod:`valhalla_status.client`; like it, this imports nothing heavy (no pydantic, YAML
or Jinja2), so a gate in a deploy script starts fast. Its records are named tuples: immutable
like frozen dataclasses, and a fraction of their cost to define at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..client import PackStatus, Status, StatusClient, StatusUnavailable
from ..errors import UnavailableError, ValhallaError
from ..rules.formats import clip, format_timestamp, human_time, pack_key, semver_key
from ..rules.text import for_terminal


class Requirements(NamedTuple):
    """What ``ready`` means. With nothing asked for, it means the backend is complete.

    ``min_version`` is checked to be SemVer by :func:`run_check`, before anything is read.
    """

    complete: bool = False
    min_version: str | None = None
    installed: tuple[str, ...] = ()
    all_installed: bool = False

    @property
    def effective(self) -> Requirements:
        if self.complete or self.min_version or self.installed or self.all_installed:
            return self
        return Requirements(complete=True)


class Condition(NamedTuple):
    name: str
    met: bool
    detail: str


class CheckResult(NamedTuple):
    source: str
    status: Status
    conditions: tuple[Condition, ...]
    verified: Any = None
    """The metadata that vouched for the status (``version``, ``expires``), when verified."""

    @property
    def ready(self) -> bool:
        return all(c.met for c in self.conditions)

    @property
    def unmet(self) -> list[str]:
        return [c.detail for c in self.conditions if not c.met]

    def document(self) -> dict[str, Any]:
        """The ``check --json`` result."""
        status = self.status
        return {
            "ready": self.ready,
            "source": self.source,
            "name": status.name,
            "version": status.version,
            "backend_complete": status.backend_complete,
            "updated_at": format_timestamp(status.updated_at),
            "completed_at": _iso(status),
            "verified": None
            if self.verified is None
            else {
                "metadata_version": self.verified.version,
                "expires": format_timestamp(self.verified.expires),
            },
            "conditions": [
                {"condition": c.name, "met": c.met, "detail": c.detail} for c in self.conditions
            ],
            "unmet": self.unmet,
        }


def _iso(status: Status) -> str | None:
    if status.completed_at is None:
        return None
    return format_timestamp(status.completed_at)


def pack_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Ids from repeated and comma-separated options, as the manifest holds them (see
    :func:`formats.pack_key`), duplicates dropped."""
    keys = (pack_key(part) for value in values for part in value.split(","))
    return tuple(dict.fromkeys(key for key in keys if key))


def evaluate(status: Status, requirements: Requirements, source: str = "") -> CheckResult:
    """Every condition asked for, met or not, with a line saying why."""
    wanted = requirements.effective
    conditions: list[Condition] = []
    if wanted.complete:
        if status.backend_complete:
            moment = status.completed_at
            since = f" since {human_time(moment)}" if moment else ""
            conditions.append(Condition("complete", True, "backend complete" + since))
        else:
            conditions.append(Condition("complete", False, "backend is in development"))
    if wanted.min_version is not None:
        met = status.version_at_least(wanted.min_version)
        relation = "≥" if met else "is lower than"
        detail = f"version {clip(status.version)} {relation} {clip(wanted.min_version)}"
        conditions.append(Condition("min_version", met, detail))
    for pack_id in wanted.installed:
        pack = status.pack(pack_id)
        if pack is None:
            detail = f"no pack {for_terminal(clip(pack_id))}"
            conditions.append(Condition(f"installed:{pack_id}", False, detail))
        else:
            state = "installed" if pack.installed else f"{pack.status}, not installed"
            detail = f"pack {_pack(pack)}: {state}"
            conditions.append(Condition(f"installed:{pack.id}", pack.installed, detail))
    if wanted.all_installed:
        others = [p for p in status.packs if not p.installed]
        for p in others:
            detail = f"pack {_pack(p)}: {p.status}, not installed"
            conditions.append(Condition(f"installed:{p.id}", False, detail))
        if not others:
            detail = f"all {len(status.packs)} packs installed"
            conditions.append(Condition("all_installed", True, detail))
    return CheckResult(source, status, tuple(conditions))


def _pack(pack: PackStatus) -> str:
    """A pack as a condition names it: its id and name, as read, each cut short when long."""
    return f"{clip(pack.id)} {clip(pack.name)}"


def shown(status: Status) -> str:
    """The status's name and version as a message names them, each cut short when long."""
    return f"{clip(status.name)} {clip(status.version)}"


def run_check(
    source: str | os.PathLike[str],
    requirements: Requirements,
    *,
    timeout: float,
    trusted_root: str | None = None,
) -> CheckResult:
    """Fetch the status and evaluate it; UnavailableError (exit 3) if it cannot be read, or
    (with ``trusted_root``) does not verify.

    A ``min_version`` that is not SemVer is a ValhallaError (exit 1), raised before reading.
    """
    if requirements.min_version is not None:
        try:
            semver_key(requirements.min_version)
        except ValueError as exc:
            raise ValhallaError(f"--min-version: {exc}") from None
    try:
        client = StatusClient(source, timeout=timeout, trusted_root=trusted_root)
        status = client.fetch()
    except StatusUnavailable as exc:
        raise UnavailableError(str(exc)) from None
    except ValueError as exc:
        raise ValhallaError(str(exc)) from None
    return evaluate(status, requirements, client.source)._replace(verified=client.verified)
