"""What changed between two manifests, in words a reviewer reads (``diff``).

Each side is a file or a git revision (the manifest at that revision, read with ``git
cat-file``). Field changes come from :func:`changes.compute_changes`, the same differ that
writes the history, and are told in the words of :mod:`valhalla_status.rules.changes`, so ``diff``
and the history never disagree about what changed or how it is said.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError, ValhallaError
from ..manifest import (
    MAX_FILE_SIZE,
    decode_manifest_bytes,
    load_manifest,
    parse_manifest,
    read_manifest_text,
)
from ..models import HistoryEntry, Manifest
from ..rules.changes import PackItem, Words, compute_changes, items, quoted, when
from ..rules.formats import format_timestamp
from ..rules.formats import quoted as quoted_argument
from ..rules.history import compare_histories, entry_id
from ..rules.text import json_text
from ..storage.files import MAX_MANIFEST_BYTES
from ..storage.landing import Landings, git_environment, landings, removed_names
from ..storage.layout import EMPTY as EMPTY_HISTORY
from ..storage.layout import (
    MAX_ENTRY_BYTES,
    History,
    classify,
    entry_place,
    history_dir,
    history_shown,
    recorded_places,
)
from ..storage.snapshot import Kept


@dataclass(frozen=True)
class Side:
    label: str
    manifest: Manifest


# --- reading a side ------------------------------------------------------------------------


def _one_line(error: ManifestError) -> ValhallaError:
    more = len(error.problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return ValhallaError(f"invalid manifest: {error.problems[0]}{suffix}")


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=60, env=git_environment()
        )
    except FileNotFoundError:
        raise ValhallaError("git is not installed; give two manifest files to compare") from None
    except subprocess.TimeoutExpired:
        raise ValhallaError(f"git {args[0]} took over 60 s") from None


def repository_path(manifest_path: str | os.PathLike[str]) -> tuple[Path, str]:
    """The git work tree holding the manifest, and the manifest's path inside it."""
    target = Path(os.path.abspath(manifest_path))
    folder = target.parent
    while not folder.is_dir():
        folder = folder.parent
    result = _git(["rev-parse", "--show-toplevel"], folder)
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        if "not a git repository" not in said[0]:
            raise ValhallaError(f"git cannot read the repository at {folder}: {said[0]}")
        raise ValhallaError(
            f"{folder} is not inside a git repository; give two manifest files to compare"
        )
    top = Path(os.fsdecode(result.stdout.strip())).resolve()
    try:
        inside = target.parent.resolve() / target.name
        return top, inside.relative_to(top).as_posix()
    except ValueError:
        raise ValhallaError(f"{manifest_path} is outside the git repository {top}") from None


def manifest_at_revision(revision: str, manifest_path: str | os.PathLike[str]) -> Manifest:
    """The manifest at ``manifest_path`` as it was at a git revision."""
    top, relative = repository_path(manifest_path)
    unknown = ValhallaError(
        f"unknown revision {quoted_argument(revision)} (not a commit in {top}, and not a file)"
    )
    if revision.startswith("-"):
        raise unknown
    commit = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top)
    if commit.returncode != 0:
        raise unknown
    blob_name = f"{commit.stdout.decode().strip()}:{relative}"
    size = _git(["cat-file", "-s", blob_name], top)
    if size.returncode != 0:
        raise ValhallaError(f"{relative} does not exist at revision {revision}")
    shown = f"{revision}:{relative}"
    listed = _git(["ls-tree", "-z", commit.stdout.decode().strip(), "--", relative], top)
    mode, kind, *_ = [*listed.stdout.split(b"\t")[0].split(b" "), b"", b""]
    if mode == b"120000" or kind != b"blob":
        what = {b"120000": "a symbolic link", b"160000": "a submodule"}.get(mode, "no file")
        raise ValhallaError(f"{shown} is {what} at that revision, not a manifest file")
    if int(size.stdout) > MAX_MANIFEST_BYTES:
        raise ValhallaError(f"{shown}: file is over the {MAX_FILE_SIZE} limit (not parsed)")
    blob = _git(["cat-file", "blob", blob_name], top)
    history = _history_at_revision(top, commit.stdout.decode().strip(), relative, blob.stdout)
    try:
        text = decode_manifest_bytes(blob.stdout, shown)
        folder = top / history_shown(relative)
        return parse_manifest(
            text,
            shown,
            history,
            landed=lambda: landings(folder, commit.stdout.decode().strip()),
            explained=False,
        )
    except ManifestError as exc:
        raise _one_line(exc) from None


def _tree_entries(listing: bytes, folder: str) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """``ls-tree -r -z -l`` output of ``folder`` as place in it -> (kind, object id), and the
    blobs over the limit of a history entry (never read: the size alone refuses them)."""
    objects: dict[str, tuple[str, str]] = {}
    too_big: set[str] = set()
    for record in listing.split(b"\0"):
        if not record:
            continue
        info, _, path = record.partition(b"\t")
        mode, kind, oid, listed = info.decode().split()
        if mode == "120000":
            kind = "link"  # a symbolic link is no history file, as in the working tree
        objects[os.fsdecode(path).removeprefix(f"{folder}/")] = (kind, oid)
        if kind == "blob" and int(listed) > MAX_ENTRY_BYTES:
            too_big.add(oid)
    return objects, too_big


def _history_at_revision(top: Path, commit: str, relative: str, main: bytes) -> History:
    """The history folder beside the manifest at a commit (empty when there is none)."""
    folder = history_shown(relative)
    listing = _git(["ls-tree", "-r", "-z", "-l", "--full-tree", commit, "--", f"{folder}/"], top)
    if listing.returncode != 0:
        return EMPTY_HISTORY
    objects, too_big = _tree_entries(listing.stdout, folder)
    blobs = [oid for kind, oid in objects.values() if kind == "blob" and oid not in too_big]
    contents: dict[str, bytes] = {}
    if blobs:
        try:
            batch = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=top,
                input="".join(f"{oid}\n" for oid in blobs).encode(),
                capture_output=True,
                timeout=60,
                env=git_environment(),
            )
        except subprocess.TimeoutExpired:
            raise ValhallaError("git cat-file took over 60 s") from None
        out, at = batch.stdout, 0
        for oid in blobs:
            end = out.index(b"\n", at)
            size = int(out[at:end].split()[2])
            contents[oid] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1

    def read(place: str) -> bytes | None:
        kind, oid = objects[place]
        if oid in too_big:
            return bytes(MAX_ENTRY_BYTES + 1)  # stands for the first bytes past the limit
        return contents[oid] if kind == "blob" else None

    return classify(tuple(sorted(objects)), read, main)


def load_side(spec: str | None, manifest_path: str, label: str | None = None) -> Side:
    """A file (if ``spec`` names one), else a git revision; None: the working manifest."""
    try:
        if spec is None:
            return Side(manifest_path, load_manifest(manifest_path, explained=False))
        if os.path.isfile(spec):
            return Side(spec, _load_file(spec))
    except ManifestError as exc:
        raise _one_line(exc) from None
    return Side(label or spec, manifest_at_revision(spec, manifest_path))


def _load_file(path: str) -> Manifest:
    """A manifest file to compare; one without its history folder (a copy of the main file,
    say from ``git show REV:manifest/valhalla.yaml``) is compared by what it holds."""
    if history_dir(path).exists():
        return load_manifest(path, explained=False)
    return parse_manifest(read_manifest_text(path), path, explained=False, require_history=False)


# --- git's revision ranges -----------------------------------------------------------------


@dataclass(frozen=True)
class Sides:
    """What ``diff``'s arguments name: the old and new side (None: the working manifest)."""

    old: str
    new: str | None
    old_label: str | None = None


def _commit(revision: str, whole: str, top: Path) -> str:
    """The commit id of ``revision``, one end of the range ``whole``."""
    found = None
    if not revision.startswith("-"):
        found = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top)
    if found is None or found.returncode != 0:
        raise ValhallaError(
            f"unknown revision {quoted_argument(revision)} in {quoted_argument(whole)} (not a "
            f"commit in {top}, and {quoted_argument(whole)} is not a file)"
        )
    return found.stdout.decode().strip()


def parse_sides(old: str | None, new: str | None, manifest_path: str) -> Sides:
    """``diff``'s arguments: ``[OLD [NEW]]`` (files or revisions), or one of git's ranges.

    ``A..B`` is A against B, ``A...B`` the commit where B left A (their merge base) against B,
    ``REV^!`` (or ``REV^-``) REV's first parent against REV. An empty end of ``..`` or ``...``
    means HEAD, as in git. A file of that name is read as a file, never as a range.
    """
    if old is None:
        return Sides("HEAD", new)
    form = _range_form(old)
    if form is None or os.path.isfile(old):
        return Sides(old, new)
    if new is not None:
        raise ValhallaError(f"{old!r} is a revision range: give a range, or OLD and NEW, not both")
    top, _relative = repository_path(manifest_path)
    if form in ("^!", "^-"):
        revision = old[: -len(form)]
        commit = _commit(revision, old, top)
        if _git(["rev-parse", "--verify", "--quiet", f"{commit}^1"], top).returncode != 0:
            raise ValhallaError(f"{revision} has no parent commit to compare it with ({old!r})")
        return Sides(f"{commit}^1", revision, f"{revision}^")
    first, second = (part or "HEAD" for part in old.split(form, 1))
    ends = [_commit(first, old, top), _commit(second, old, top)]
    if form == "..":
        return Sides(first, second)
    base = _git(["merge-base", *ends], top)
    if base.returncode != 0:
        raise ValhallaError(f"{first} and {second} have no common commit ({old!r})")
    return Sides(base.stdout.decode().strip(), second, f"{first}...{second} (merge base)")


def _range_form(spec: str) -> str | None:
    """Which of git's range notations ``spec`` is written in, if any."""
    if spec.endswith(("^!", "^-")) and len(spec) > 2:
        return spec[-2:]
    form = "..." if "..." in spec else ".." if ".." in spec else None
    if form is None or any(part.startswith("/") for part in spec.split(form)):
        return None  # a path such as ../old.yaml (no revision starts with '/')
    return form


# --- comparing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestDiff:
    old: Side
    new: Side
    changes: dict[str, list[Any]]
    """Field changes in the history's format (plus ``updated_at``)."""
    packs_reordered: bool
    history_added: tuple[HistoryEntry, ...]
    history_removed: tuple[HistoryEntry, ...]
    history_edited: tuple[HistoryEntry, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(
            self.changes
            or self.packs_reordered
            or self.history_added
            or self.history_removed
            or self.history_edited
        )

    def history_sections(self) -> list[tuple[str, tuple[HistoryEntry, ...]]]:
        """The entries added, removed and edited, each under its heading (removed and edited
        entries are problems: a recorded change is never removed or edited)."""
        return [
            (verb, entries)
            for verb, entries in (
                ("added", self.history_added),
                (
                    "removed (a recorded change is never removed: undo it with `revert`)",
                    self.history_removed,
                ),
                (
                    "edited (a recorded change is never edited: make a new change)",
                    self.history_edited,
                ),
            )
            if entries
        ]

    def words(self) -> Words:
        """How a reviewer is told a change: values quoted, each pack with its name."""
        return Words(review=True, names={p.id: p.name for p in self.new.manifest.packs})

    def system_lines(self) -> list[str]:
        words = self.words()
        return [item.line(words) for item in items(self.changes) if not item.pack]

    def pack_changes(self) -> list[PackItem]:
        """Per pack, in the new manifest's order, then removed packs in the old one's."""
        order = {p.id: index for index, p in enumerate(self.new.manifest.packs)}
        for pack in self.old.manifest.packs:
            order.setdefault(pack.id, len(order))
        told = [item for item in items(self.changes) if isinstance(item, PackItem)]
        return sorted(told, key=lambda item: order[item.pack])

    def lines(self) -> list[str]:
        """The text report."""
        title = f"{self.old.label} → {self.new.label}"
        if not self.changed:
            return [f"No status changes: {title}"]
        lines = [f"Status changes: {title}"]
        words = self.words()
        lines += [f"  {line}" for line in self.system_lines()]
        lines += [f"  {item.line(words)}" for item in self.pack_changes()]
        if self.packs_reordered:
            lines.append("  Packs reordered")
        for verb, entries in self.history_sections():
            lines.append(f"History: {_count(len(entries), 'entry', 'entries')} {verb}")
            lines += [f"  {_entry_line(entry)}" for entry in entries]
        return lines

    def markdown(self) -> str:
        """A report for a pull-request comment or a CI job summary."""
        title = f"{_md(self.old.label)} → {_md(self.new.label)}"
        if not self.changed:
            return f"### Valhalla status: no changes\n\n{title}\n"
        out = [f"### Valhalla status changes\n\n{title}\n"]
        system = self.system_lines()
        if system:
            out.append("\n".join(f"- {_md(line)}" for line in system) + "\n")
        packs, words = self.pack_changes(), self.words()
        if packs:
            rows = [
                f"| {_md(p.pack)} | {_md(p.name(words))} | {_md(p.change(words))} |" for p in packs
            ]
            out.append("\n".join(["| Pack | Name | Change |", "| --- | --- | --- |", *rows]) + "\n")
        if self.packs_reordered:
            out.append("Packs reordered.\n")
        for verb, entries in self.history_sections():
            rows = [
                f"| {_md(entry_id(e))} | {when(format_timestamp(e.at))} | {_md(e.by)} "
                f"| {e.action} | {_md(_one(e.notes or ''))} |"
                for e in entries
            ]
            header = f"**History**: {_count(len(entries), 'entry', 'entries')} {_md(verb)}\n\n"
            table = [
                "| Entry | Made | By | Action | Notes |",
                "| --- | --- | --- | --- | --- |",
                *rows,
            ]
            out.append(header + "\n".join(table) + "\n")
        return "\n".join(out)

    def document(self) -> dict[str, Any]:
        """The ``diff --format json`` document."""
        return {
            "old": self.old.label,
            "new": self.new.label,
            "changed": self.changed,
            "changes": self.changes,
            "packs_reordered": self.packs_reordered,
            "history_added": [e.model_dump(mode="json") for e in self.history_added],
            "history_removed": [e.model_dump(mode="json") for e in self.history_removed],
            "history_edited": [e.model_dump(mode="json") for e in self.history_edited],
            "summary": self.lines()[1:] if self.changed else [],
        }

    def render(self, output_format: str) -> str:
        if output_format == "json":
            return json_text(self.document())
        if output_format == "markdown":
            return self.markdown()
        return "\n".join(self.lines()) + "\n"


def diff_manifests(old: Side, new: Side) -> ManifestDiff:
    """Compare two manifests."""
    a, b = old.manifest, new.manifest
    changes = compute_changes(a, b)
    if a.history and b.history and a.system.updated_at != b.system.updated_at:
        changes["updated_at"] = [
            format_timestamp(a.system.updated_at),
            format_timestamp(b.system.updated_at),
        ]
    old_set, new_set = {p.id for p in a.packs}, {p.id for p in b.packs}
    old_ids = [p.id for p in a.packs if p.id in new_set]
    new_ids = [p.id for p in b.packs if p.id in old_set]
    added, removed, edited = compare_histories(a.history, b.history)
    return ManifestDiff(
        old, new, changes, old_ids != new_ids, tuple(added), tuple(removed), tuple(edited)
    )


def diff(old: str | None, new: str | None, manifest_path: str) -> ManifestDiff:
    """``diff [OLD [NEW]]`` or ``diff RANGE``: defaults HEAD and the working manifest.

    See :func:`parse_sides` for the range forms.
    """
    sides = parse_sides(old, new, manifest_path)
    return diff_manifests(
        load_side(sides.old, manifest_path, sides.old_label), load_side(sides.new, manifest_path)
    )


# --- words ---------------------------------------------------------------------------------


def _one(text: str) -> str:
    return " ".join(text.split())


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _entry_line(entry: HistoryEntry) -> str:
    line = f"{entry_id(entry)}  {when(format_timestamp(entry.at))}  {entry.by}  {entry.action}"
    return f"{line}  {quoted(entry.notes)}" if entry.notes else line


_MD_ESCAPES = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]|~#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)


def _md(text: str) -> str:
    """Plain text safe inside Markdown (and a table cell): nothing in it is markup."""
    return _one(text).translate(_MD_ESCAPES)


def load_validated(manifest_path: str, base: str | None) -> tuple[Manifest, list[str]]:
    """The manifest read and checked in full, and for schema_version 2 its
    :func:`append_only_problems`: what ``validate`` checks."""
    kept = Kept(history_dir(manifest_path))
    manifest = load_manifest(manifest_path, kept=kept)
    if manifest.schema_version != 2:
        return manifest, []
    return manifest, append_only_problems(base, manifest_path, manifest, kept.landings)


def append_only_problems(
    base: str | None,
    manifest_path: str,
    new: Manifest,
    landed: Callable[[], Landings] | None = None,
) -> list[str]:
    """One line per recorded change that the working manifest no longer holds as it was: a
    recorded change is never removed or edited.

    Compared with the manifest where the current branch left git revision ``base`` (their
    merge base); with None, with every change that landed on the current branch (its
    first-parent history) since its ``init`` (``landed``: its landings, when read already).
    ``new`` is the manifest as read from ``manifest_path``.
    """
    folder = history_shown(manifest_path)
    if base is None:
        found = landed() if landed is not None else landings(history_dir(manifest_path))
        return [
            f"{folder}/{entry_place(name)}: a recorded change was removed (it landed on this "
            "branch, and the file is gone); put the file back from git (`git log "
            f"--diff-filter=D -- {folder}/{entry_place(name)}` shows the commit that removed "
            f"it), then undo the change with `valhalla-status revert {name.removesuffix('.yaml')}`"
            for name in removed_names(found, new.history)
        ]
    if not base.strip():  # "...HEAD" would compare with HEAD itself and find nothing
        raise ValhallaError(f"--base: {base!r} names no revision; give a branch, tag or commit")
    # Where this branch left ``base``: entries ``base`` got since are not this branch's to keep.
    where = parse_sides(f"{base}...HEAD", None, manifest_path).old if ".." not in base else base
    old = load_side(where, manifest_path).manifest
    _, removed, edited = compare_histories(old.history, new.history)
    places = recorded_places(history_dir(manifest_path))

    def file(entry: HistoryEntry) -> str:
        name = f"{entry_id(entry)}.yaml"
        return f"{folder}/{places.get(name) or entry_place(name)}"

    problems = [
        f"{file(e)}: removed since {base}; a recorded change is never removed: put the file "
        f"back (`git checkout {base} -- {file(e)}`) and undo the change with "
        f"`valhalla-status revert {entry_id(e)}`"
        for e in removed
    ]
    problems += [
        f"{file(e)}: edited since {base}; a recorded change is never edited: put the file "
        f"back (`git checkout {base} -- {file(e)}`) and make the change you meant as a new one"
        for e in edited
    ]
    return problems
