"""The ``valhalla-status`` command line: a thin layer over the library.

Each command parses its options, calls one library function and prints: data on stdout,
messages on stderr. Text from outside (names, notes, history values, file names, what a server
sent) is printed for people through :func:`valhalla_status.rules.text.for_terminal`; ``--json``
output is exact JSON, with the same characters escaped as JSON escapes
(:func:`valhalla_status.rules.text.for_json`).

Start-up is kept light: at the top this module imports only click and what every command needs
(the error family, the terminal escaping, the pack statuses). Each command imports the library
modules it uses inside its own function (``from .service import set_pack``), so ``--help`` and
``check --file`` load neither pydantic, YAML and Jinja2 nor the manifest's, the site's or the
workspace's code.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .errors import ManifestError, NotFoundError, UnavailableError, ValhallaError
from .rules.formats import SIGNING_ROLES, STATUSES, clip, human_time, pack_key, quoted
from .rules.text import for_terminal, json_text

if TYPE_CHECKING:
    from .ci import Workflow
    from .models import Manifest, SystemMetadata
    from .service import Outcome
    from .site import BuildResult
    from .storage.recent import Recent
    from .storage.transaction import SiteOptions
    from .workspace import Location

STATUS_CHOICE = click.Choice(STATUSES, case_sensitive=False)
CI_PROVIDERS = ("github", "gitlab")  # the hosts valhalla_status.ci writes a workflow for


class Settings:
    """Global options, shared by every command through the click context.

    ``--manifest`` and ``--site`` may be given before the command or after it (the one after
    wins). Either one not given is resolved when first used: the manifest is looked for from
    the current folder up (see :mod:`valhalla_status.workspace`).
    """

    def __init__(self, manifest: str | None, site: str | None) -> None:
        self.manifest_option = manifest
        self.site_option = site
        self._location: Location | None = None
        self._telling_waits = False

    def site_options(self, no_build: bool) -> SiteOptions | None:
        """Where a change rebuilds the site (None: ``--no-build``)."""
        from .storage.transaction import SiteOptions

        return None if no_build else SiteOptions(self.site)

    def override(self, name: str, value: str) -> None:
        setattr(self, f"{name}_option", value)
        self._location = None

    @property
    def location(self) -> Location:
        if self._location is None:
            from .workspace import locate

            self._location = locate(self.manifest_option, self.site_option)
        return self._location

    @property
    def manifest(self) -> str:
        self._tell_lock_waits()
        return self.location.manifest

    def _tell_lock_waits(self) -> None:
        """From the first use of the manifest to the end of the command, a wait for a lock
        over a second is said on stderr, once (whom it waits for), and the locks this command
        takes name it for whoever waits. Not set up before: the light commands never load the
        lock's code."""
        context = click.get_current_context(silent=True)
        if self._telling_waits or context is None:
            return
        from .storage.locking import tell_lock_waits

        self._telling_waits = True
        arguments = [
            str(context.params[param.name])
            for param in context.command.params
            if isinstance(param, click.Argument)
            and param.name
            and context.params.get(param.name) not in (None, ())
        ]
        command = " ".join([context.command_path, *arguments])  # "valhalla-status pack set K"
        context.find_root().with_resource(tell_lock_waits(_say_wait, command))

    @property
    def site(self) -> str:
        return self.location.site

    def load(self) -> Manifest:
        from .manifest import load_manifest

        return load_manifest(self.manifest)

    def recent(self) -> Recent:
        """The manifest as the read commands show it (see :mod:`valhalla_status.storage.recent`)."""
        from .storage.recent import read_recent

        return read_recent(self.manifest)


def _say_wait(line: str) -> None:
    click.echo(for_terminal(line), err=True)


MANIFEST_HELP = (
    "The manifest file (env VALHALLA_MANIFEST; default: manifest/valhalla.yaml in this folder "
    "or the nearest parent)."
)
SITE_HELP = "The site folder (env VALHALLA_SITE; default: site beside that manifest folder)."


def _set_location(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    settings = ctx.find_object(Settings)
    if value is not None and settings is not None and param.name is not None:
        settings.override(param.name, value)


def location_options(command: click.Command) -> click.Command:
    """Accept ``--manifest`` and ``--site`` after the command too (``build --site out``)."""
    names = {name for param in command.params for name in param.opts}
    for flag, metavar, text in (
        ("--manifest", "PATH", "The manifest file (as before the command; this one wins)."),
        ("--site", "DIR", "The site folder (as before the command; this one wins)."),
    ):
        if flag not in names:
            command.params.append(
                click.Option(
                    [flag],
                    metavar=metavar,
                    help=text,
                    expose_value=False,
                    callback=_set_location,
                )
            )
    return command


class ValhallaGroup(click.Group):
    """Turns any stray OS or internal error into one clear line instead of a traceback.

    Every command added to it (and its sub-groups, of the same class) takes the global
    ``--manifest`` and ``--site`` options after the command name too.
    """

    group_class = type  # sub-groups are ValhallaGroups

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(location_options(cmd), name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:
            if os.environ.get("VALHALLA_DEBUG"):
                raise
            from .storage.files import os_reason
            from .workspace import current_folder_gone

            gone = current_folder_gone()
            if gone and not (exc.filename and os.path.isabs(exc.filename)):
                raise ValhallaError(gone) from None
            name = exc.filename
            name = os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name)
            where = f" ({for_terminal(name)})" if exc.filename else ""
            raise ValhallaError(f"{os_reason(exc)}{where}") from None
        except Exception as exc:
            if os.environ.get("VALHALLA_DEBUG"):
                raise
            raise ValhallaError(
                f"internal error: {type(exc).__name__}: {exc} "
                "(set VALHALLA_DEBUG=1 to see the traceback, and please report it)"
            ) from None


pass_settings = click.make_pass_decorator(Settings)


@click.group(cls=ValhallaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manifest", envvar="VALHALLA_MANIFEST", metavar="PATH", help=MANIFEST_HELP)
@click.option("--site", envvar="VALHALLA_SITE", metavar="DIR", help=SITE_HELP)
@click.version_option(package_name="valhalla-status", prog_name="valhalla-status")
@click.pass_context
def main(ctx: click.Context, manifest: str | None, site: str | None) -> None:
    """The Valhalla platform's status: version, packs and backend readiness.

    The manifest (a YAML file in git) is the source of truth; mutating commands validate,
    stamp, record who and why, write it atomically and rebuild the static site.
    """
    ctx.obj = Settings(manifest, site)
    # A full read keeps every history entry alive, and CPython's default thresholds scan them
    # all again about ten times while 100,000 entries load: a third of `validate`. Collect
    # reference cycles less often, as mypy does for the same reason.
    if platform.python_implementation() == "CPython":
        gc.set_threshold(200_000, 30, 30)


cli = main


# --- shared helpers ----------------------------------------------------------------------


def mutation(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options every mutating command takes: ``--by`` and ``--no-build``."""
    func = click.option(
        "--no-build", is_flag=True, help="Do not rebuild the site after the change."
    )(func)
    func = click.option(
        "--by", metavar="NAME", help="Who makes the change (default: git user.name, else login)."
    )(func)
    return func


def report(settings: Settings, outcome: Outcome) -> None:
    """Print a mutation's one-line result on stderr, with what became of the site.

    A change rebuilds the site under its lock. A change that changed nothing builds it too,
    which leaves a site already holding what the build writes untouched; when the build did
    change it (missing, or built from another state: a rebuild that failed, a change made with
    ``--no-build``, other templates), it says "(site rebuilt)". The change is
    written before the rebuild runs: if the rebuild fails, both are said (the change is
    recorded, the site is not rebuilt and why) and the command exits 1.
    """
    message = outcome.message
    if outcome.site_error is not None:
        click.echo(for_terminal(message, multiline=True), err=True)
        if outcome.changed:
            said = f"the change is recorded in {settings.manifest}, but the site "
            said += f"({settings.site}) was not rebuilt"
        else:
            said = f"the site ({settings.site}) does not show {settings.manifest} and was "
            said += "not rebuilt"
        raise ValhallaError(
            f"{said}: {_build_failure(outcome.site_error)}; run `valhalla-status build` to finish"
        )
    if outcome.build is not None:
        _said_leftovers(outcome.build)
        if not outcome.changed and outcome.build.changed:
            message += " (site rebuilt)"
    click.echo(for_terminal(message, multiline=True), err=True)


def _build_failure(exc: Exception) -> str:
    """Why a rebuild failed, in one line (with VALHALLA_DEBUG, an internal error is raised)."""
    if isinstance(exc, ValhallaError):
        return "; ".join(exc.message.splitlines())
    if isinstance(exc, OSError):
        from .storage.files import os_reason

        return os_reason(exc, naming_file=True)
    if os.environ.get("VALHALLA_DEBUG"):
        raise exc
    return f"internal error: {type(exc).__name__}: {exc}"


def _said_leftovers(result: BuildResult) -> BuildResult:
    """Say, one line each, the scratch folders the build could not remove."""
    for line in result.leftovers:
        click.echo(for_terminal(f"warning: {line}"), err=True)
    return result


def rebuild_site(settings: Settings, **options: Any) -> BuildResult:
    """Build the site from the manifest as it is now (see :func:`publish.publish_site`)."""
    from .publishing.publish import publish_site

    return _said_leftovers(publish_site(settings.manifest, settings.site, **options))


def emit_json(document: Any) -> None:
    """A published document, as the site publishes it."""
    from .publishing.documents import to_json

    click.echo(to_json(document), nl=False)


def emit_result(document: Any) -> None:
    """A result that is no published document (``check --json``), in the same JSON text."""
    click.echo(json_text(document), nl=False)


def counts_line(counts: dict[str, int]) -> str:
    total = counts["total_packs"]
    each = ", ".join(f"{counts[f'{status}_packs']} {status}" for status in STATUSES)
    return f"{total} pack{'' if total == 1 else 's'}: {each}"


def headline(system: SystemMetadata) -> str:
    if system.backend_complete and system.completed_at:
        readiness = f"backend complete since {human_time(system.completed_at)}"
    else:
        readiness = "backend in development"
    return for_terminal(f"{system.name} {system.version}: {readiness}")


def packs_table(packs: list[dict[str, Any]]) -> str:
    if not packs:
        return ""
    rows: list[tuple[str, ...]] = [("ID", "NAME", "GROUP", "STATUS")]
    rows += [
        tuple(for_terminal(str(p[key])) for key in ("id", "name", "group", "status")) for p in packs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    )


# --- commands ------------------------------------------------------------------------------


@main.command()
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing manifest (history included); with --ci, the workflow file only.",
)
@click.option(
    "--ci",
    type=click.Choice(CI_PROVIDERS),
    help="Also write the CI workflow that reviews changes and publishes the site (an existing "
    "manifest is kept).",
)
@click.option(
    "--publish",
    "bucket",
    metavar="s3://BUCKET/PREFIX",
    help="With --ci: the workflow publishes the site to this S3-compatible bucket instead of "
    "the host's Pages.",
)
@mutation
@pass_settings
def init(
    settings: Settings,
    force: bool,
    ci: str | None,
    bucket: str | None,
    by: str | None,
    no_build: bool,
) -> None:
    """Write the default manifest (16 packs) if there is none, and set up the repository.

    The site folder, the lock files and the build's scratch files are added to the
    .gitignore at the top of the git repository (outside git: beside the manifest folder),
    once: only the patterns it does not have yet (a `!/site/` line keeps the site committed).

    With --ci github (or gitlab), it also writes .github/workflows/valhalla-status.yml (or
    .gitlab-ci.yml) at the top of the repository: installs this version of valhalla-status,
    reviews pull requests and publishes the site to Pages from the default branch (with
    --publish s3://BUCKET/PREFIX, to that bucket). An existing workflow file is refused unless
    --force.
    """
    from .service import ensure_system_metadata
    from .workspace import plan_ignore

    if os.path.basename(settings.manifest) in ("", ".", ".."):  # as every other command reads it
        raise ValhallaError(
            f"{for_terminal(settings.manifest)}: names a folder, not a manifest file; give the "
            "file's path (like manifest/valhalla.yaml)"
        )
    if bucket is not None and not ci:
        raise click.UsageError("--publish needs --ci (where the written workflow publishes)")
    workflow = plan_ci(settings, ci, force, bucket) if ci else None
    plan_ignore(settings.location)  # a .gitignore it cannot change refuses before any write
    site = settings.site_options(no_build)
    report(
        settings,
        ensure_system_metadata(settings.manifest, force=force and not ci, by=by, site=site),
    )
    ignore_outputs(settings)
    if workflow is not None:
        from .ci import write_workflow

        write_workflow(workflow)
        click.echo(f"Wrote {for_terminal(workflow.path)} (installs {workflow.spec})", err=True)
        if workflow.warning:
            click.echo(for_terminal(workflow.warning), err=True)


def plan_ci(settings: Settings, provider: str, force: bool, bucket: str | None) -> Workflow:
    """The workflow ``init --ci`` writes, refused before anything is written."""
    from . import __version__
    from .ci import plan_workflow

    return plan_workflow(settings.location, provider, __version__, force=force, bucket=bucket)


def ignore_outputs(settings: Settings) -> None:
    """Add what the tool writes beside the manifest to the repository's .gitignore, once (see
    :func:`workspace.ignore_outputs`), and say so when a pattern was added."""
    from .workspace import ignore_outputs as add_patterns

    ignored = add_patterns(settings.location)
    if ignored.added:
        count = len(ignored.added)
        where = for_terminal(str(ignored.path))
        click.echo(
            f"{where}: added the site folder, lock files and scratch files "
            f"({count} pattern{'' if count == 1 else 's'})",
            err=True,
        )


@main.command()
@click.option("--by", metavar="NAME", help="Who migrates (default: git user.name, else login).")
@pass_settings
def migrate(settings: Settings, by: str | None) -> None:
    """Move the manifest to the current layout (schema_version 2), losing nothing.

    The history moves to one file per change beside the manifest, so parallel changes on two
    branches merge with plain git. On a schema_version 2 manifest whose entry files an earlier
    version wrote directly in the history folder, it moves them into their subfolders. Running
    it again changes nothing. As `init` does, it adds
    the site folder, the lock files and the scratch files to the .gitignore, once.
    """
    from .service import migrate_manifest
    from .workspace import plan_ignore

    plan_ignore(settings.location)  # a .gitignore it cannot change refuses before any write
    _, message = migrate_manifest(settings.manifest, by=by)
    click.echo(for_terminal(message), err=True)
    ignore_outputs(settings)


@main.command()
@click.option(
    "--base",
    metavar="REV",
    help="Also check that no change recorded at git revision REV was removed or edited.",
)
@pass_settings
def validate(settings: Settings, base: str | None) -> None:
    """Check the manifest; exit 1 with located errors."""
    from .manifest import hand_comments
    from .readers.diff import load_validated

    for warning in hand_comments(settings.manifest):
        click.echo(for_terminal(warning), err=True)
    manifest, problems = load_validated(settings.manifest, base)
    if problems:
        raise ValhallaError("\n".join(for_terminal(problem) for problem in problems))
    count = len(manifest.packs)
    shown = for_terminal(settings.manifest)
    click.echo(f"{shown}: valid ({count} pack{'' if count == 1 else 's'})", err=True)


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 if the file is not in canonical form.")
@pass_settings
def fmt(settings: Settings, check: bool) -> None:
    """Rewrite the manifest in canonical form (or only check it)."""
    from .manifest import format_manifest_file, hand_comments

    comments = hand_comments(settings.manifest)
    changed = format_manifest_file(settings.manifest, check=check)
    for warning in comments:
        click.echo(for_terminal(warning), err=True)
    shown = for_terminal(settings.manifest)
    if check and changed:
        raise ManifestError(
            [
                f"error: {file} is not in canonical form; run `valhalla-status fmt`"
                for file in changed
            ]
        )
    if check:
        click.echo(f"{shown}: canonical", err=True)
    else:
        state = "reformatted" if changed else "already canonical"
        click.echo(f"{shown}: {state}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print status.json.")
@pass_settings
def show(settings: Settings, as_json: bool) -> None:
    """Show the full status."""
    from .service import get_system_status

    recent = settings.recent()
    status = get_system_status(recent)
    if as_json:
        emit_json(status)
        return
    lines = [
        headline(recent.manifest.system),
        for_terminal(status["description"]),
        f"updated {for_terminal(human_time(status['updated_at']))}",
    ]
    if status["notes"]:
        notes = for_terminal(status["notes"], multiline=True)
        lines.append("notes: " + notes.replace("\n", "\n       "))
    lines += [counts_line(status["summary"]), "", packs_table(status["packs"])]
    click.echo("\n".join(lines))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print summary.json.")
@pass_settings
def summary(settings: Settings, as_json: bool) -> None:
    """Show the pack counts per status."""
    from .service import get_system_metadata, get_system_summary

    recent = settings.recent()
    document = get_system_summary(recent)
    if as_json:
        emit_json(document)
        return
    click.echo(headline(get_system_metadata(recent)))
    click.echo(counts_line(document))


@main.group()
def pack() -> None:
    """List, show and change packs."""


@pack.command("list")
@click.option("--status", type=STATUS_CHOICE, help="Only packs with this status.")
@click.option("--group", help="Only packs in this group (any case).")
@click.option("--json", "as_json", is_flag=True, help="Print packs.json (filtered).")
@pass_settings
def pack_list(settings: Settings, status: str | None, group: str | None, as_json: bool) -> None:
    """List packs, with counts."""
    from .publishing.documents import pack_document, packs_document
    from .service import get_packs

    recent = settings.recent()
    if group is not None:
        groups = list(dict.fromkeys(p.group for p in get_packs(recent)))
        if not any(g.casefold() == group.casefold() for g in groups):
            known = ", ".join(map(for_terminal, groups)) if groups else "none (there are no packs)"
            raise NotFoundError(f'no group "{for_terminal(clip(group))}"; the groups are: {known}')
    packs = [pack_document(p, recent.since.get(p.id)) for p in get_packs(recent, status, group)]
    document = packs_document(packs)
    if as_json:
        emit_json(document)
        return
    if packs:
        click.echo(packs_table(packs))
    click.echo(counts_line(document["summary"]))


@pack.command("show")
@click.argument("pack_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print packs/<ID>.json.")
@pass_settings
def pack_show(settings: Settings, pack_id: str, as_json: bool) -> None:
    """Show one pack (ID in any case)."""
    from .publishing.documents import pack_document, pack_file_document
    from .service import get_pack_by_id, no_pack

    recent = settings.recent()
    pack = get_pack_by_id(recent, pack_id)
    if pack is None:
        raise NotFoundError(for_terminal(no_pack(pack_key(pack_id))))
    found = pack_document(pack, recent.since.get(pack.id))
    if as_json:
        emit_json(pack_file_document(found))
        return
    for key, value in found.items():
        if value is None:
            value = "(none)" if key == "notes" else "(unknown)"
        click.echo(for_terminal(f"{key}: {value}", multiline=True).replace("\n", "\n  "))


@pack.command("add")
@click.argument("pack_id", metavar="ID")
@click.option("--name", required=True, help="Display name.")
@click.option("--group", required=True, help="Group to list it under.")
@click.option(
    "--status",
    type=STATUS_CHOICE,
    default="pending",
    show_default=True,
    help="Its status (pending is refused while the backend is complete).",
)
@click.option("--notes", metavar="TEXT", help="Why: kept as the pack's note and in the history.")
@mutation
@pass_settings
def pack_add(
    settings: Settings,
    pack_id: str,
    name: str,
    group: str,
    status: str,
    notes: str | None,
    by: str | None,
    no_build: bool,
) -> None:
    """Add a pack."""
    from .service import add_pack

    outcome = add_pack(
        settings.manifest,
        pack_id,
        name,
        group,
        status,
        notes=notes,
        by=by,
        site=settings.site_options(no_build),
    )
    report(settings, outcome)


@pack.command("set")
@click.argument("pack_id", metavar="ID")
@click.option(
    "--status",
    type=STATUS_CHOICE,
    help="New status (pending is refused while the backend is complete).",
)
@click.option("--name", help="New display name.")
@click.option("--group", help="New group.")
@click.option("--notes", metavar="TEXT", help="Why: the pack's new note, kept in the history.")
@click.option("--clear-notes", is_flag=True, help="Remove the pack's note.")
@click.option(
    "--keep-notes",
    is_flag=True,
    help="Keep the pack's note through a status change (which clears it otherwise).",
)
@mutation
@pass_settings
def pack_set(
    settings: Settings,
    pack_id: str,
    status: str | None,
    name: str | None,
    group: str | None,
    notes: str | None,
    clear_notes: bool,
    keep_notes: bool,
    by: str | None,
    no_build: bool,
) -> None:
    """Change a pack's status, name, group or note.

    A status change without --notes clears the pack's old note, unless --keep-notes.
    """
    from .service import set_pack

    if clear_notes and notes is not None:
        raise click.UsageError("give --notes or --clear-notes, not both")
    if keep_notes and (clear_notes or notes is not None):
        other = "--clear-notes" if clear_notes else "--notes"
        raise click.UsageError(f"give --keep-notes or {other}, not both")
    given: dict[str, Any] = {"notes": None} if clear_notes else _given(notes)
    outcome = set_pack(
        settings.manifest,
        pack_id,
        status=status,
        name=name,
        group=group,
        keep_notes=keep_notes,
        by=by,
        site=settings.site_options(no_build),
        **given,
    )
    report(settings, outcome)


@pack.command("remove")
@click.argument("pack_id", metavar="ID")
@click.option("--notes", metavar="TEXT", help="Why: recorded in the history.")
@mutation
@pass_settings
def pack_remove(
    settings: Settings, pack_id: str, notes: str | None, by: str | None, no_build: bool
) -> None:
    """Remove a pack."""
    from .service import remove_pack

    report(
        settings,
        remove_pack(
            settings.manifest, pack_id, notes=notes, by=by, site=settings.site_options(no_build)
        ),
    )


def notes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--notes", metavar="TEXT", help="Set the system notes and record them in the history."
    )(func)


def _given(notes: str | None) -> dict[str, Any]:
    return {} if notes is None else {"notes": notes}


@main.command()
@notes_option
@click.option(
    "--force",
    is_flag=True,
    help="Accepted for existing scripts; overrides nothing: a pending pack always refuses.",
)
@mutation
@pass_settings
def complete(
    settings: Settings, notes: str | None, force: bool, by: str | None, no_build: bool
) -> None:
    """Mark the backend complete (refused while any pack is pending, --force or not)."""
    from .service import set_backend_complete

    outcome = set_backend_complete(
        settings.manifest, True, by=by, site=settings.site_options(no_build), **_given(notes)
    )
    report(settings, outcome)


@main.command()
@notes_option
@mutation
@pass_settings
def incomplete(settings: Settings, notes: str | None, by: str | None, no_build: bool) -> None:
    """Mark the backend in development."""
    from .service import set_backend_complete

    outcome = set_backend_complete(
        settings.manifest, False, by=by, site=settings.site_options(no_build), **_given(notes)
    )
    report(settings, outcome)


@main.command("set-version")
@click.argument("version")
@notes_option
@click.option("--force", is_flag=True, help="Allow a lower version.")
@mutation
@pass_settings
def set_version(
    settings: Settings,
    version: str,
    notes: str | None,
    force: bool,
    by: str | None,
    no_build: bool,
) -> None:
    """Set the system's SemVer version (a lower one needs --force)."""
    from .service import update_version

    outcome = update_version(
        settings.manifest,
        version,
        force=force,
        by=by,
        site=settings.site_options(no_build),
        **_given(notes),
    )
    report(settings, outcome)


@main.command("set-notes")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Remove the notes.")
@mutation
@pass_settings
def set_notes_command(
    settings: Settings, text: str | None, clear: bool, by: str | None, no_build: bool
) -> None:
    """Set the system notes to TEXT (or --clear them)."""
    from .service import set_notes

    if clear == (text is not None):
        raise click.UsageError("give the notes TEXT or --clear, not both or neither")
    report(
        settings,
        set_notes(
            settings.manifest, None if clear else text, by=by, site=settings.site_options(no_build)
        ),
    )


@main.command()
@click.argument("entry")
@click.option("--notes", metavar="TEXT", help="Why: recorded in the history.")
@mutation
@pass_settings
def revert(
    settings: Settings, entry: str, notes: str | None, by: str | None, no_build: bool
) -> None:
    """Undo the change ENTRY (an id `history` shows) as a new change."""
    from .service import revert_entry

    report(
        settings,
        revert_entry(
            settings.manifest, entry, notes=notes, by=by, site=settings.site_options(no_build)
        ),
    )


@main.command()
@click.option("--notes", metavar="WHY", required=True, help="Why the files were edited.")
@mutation
@pass_settings
def record(settings: Settings, notes: str, by: str | None, no_build: bool) -> None:
    """Record what the history does not explain (a hand edit) as a change."""
    from .service import record_edit

    report(
        settings,
        record_edit(settings.manifest, notes=notes, by=by, site=settings.site_options(no_build)),
    )


@main.command()
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print history.json's shape.")
@pass_settings
def history(settings: Settings, limit: int, as_json: bool) -> None:
    """Show recent changes, newest first."""
    from .rules.changes import items, sentence
    from .service import get_history

    document = get_history(settings.manifest, limit)
    if as_json:
        emit_json(document)
        return
    for entry in document["history"]:
        changes = sentence(items(entry["changes"]))
        landed = entry.get("landed_at", entry["at"])
        line = f"{human_time(landed)}  {entry.get('id', '')}  {entry['by']}  {entry['action']}"
        if changes:
            line += f"  {changes}"
        if entry["notes"]:
            line += f"  ({entry['notes']})".replace("\n", " ")
        if landed != entry["at"]:
            line += f"  [made {human_time(entry['at'])}]"
        click.echo(for_terminal(line))


# --- the site ------------------------------------------------------------------------------


def site_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--templates`` and ``--base-url``, shared by ``build`` and ``serve``."""
    func = click.option(
        "--base-url", metavar="URL", help="Absolute https URL of the site (overrides the manifest)."
    )(func)
    return click.option(
        "--templates",
        "templates_dir",
        metavar="DIR",
        help="Folder of templates replacing the built-in ones of the same name.",
    )(func)


KEYS_HELP = (
    "Folder of the private keys (<role>.pem), outside the repository (env VALHALLA_STATUS_KEYS;"
    " each key may instead be in VALHALLA_STATUS_<ROLE>_KEY)."
)


def signing_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--keys`` and ``--expires``, shared by ``build`` and ``refresh``."""
    func = click.option(
        "--expires",
        metavar="DURATION",
        default="1d",
        show_default=True,
        help="How long the signed timestamp is valid (30m, 12h, 1d, …).",
    )(func)
    return click.option("--keys", "keys_dir", metavar="DIR", help=KEYS_HELP)(func)


def _signing(settings: Settings, keys_dir: str | None, expires: str, required: bool) -> Any:
    """What signing needs, from the options and the environment (None: no keys, unsigned)."""
    from .publishing.signing import key_source, parse_duration, signing

    lifetime = parse_duration(expires)  # refused even when there is nothing to sign
    source = key_source(keys_dir, os.environ)
    if not source.given:
        if required:
            raise ValhallaError(f"no keys: give --keys DIR or set the key variables ({KEYS_HELP})")
        return None
    return signing(settings.manifest, source, lifetime, site_dir=settings.site)


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 and list the differing files if stale.")
@site_options
@signing_options
@pass_settings
def build(
    settings: Settings,
    check: bool,
    templates_dir: str | None,
    base_url: str | None,
    keys_dir: str | None,
    expires: str,
) -> None:
    """Write the static site (or only --check that it is current); signed when keys are given."""
    options: dict[str, Any] = {"templates_dir": templates_dir, "base_url": base_url}
    shown = for_terminal(settings.site)
    made = None if check else _signing(settings, keys_dir, expires, required=False)
    if made is not None:
        import functools

        from .publishing.signing import sign_site

        options["sign"] = functools.partial(sign_site, made)
    if check:
        from .site import check_site

        stale = check_site(settings.load(), settings.site, **options)
        if stale:
            listing = "".join(f"\n  {state}: {path}" for path, state in stale.items())
            raise ValhallaError(
                f"{shown} is stale ({len(stale)} "
                f"{'file differs' if len(stale) == 1 else 'files differ'}); "
                f"run `valhalla-status build`{listing}"
            )
        click.echo(f"{shown}: up to date", err=True)
        return
    result = rebuild_site(settings, **options)
    from .storage.landing import landing_note
    from .storage.layout import history_dir

    note = landing_note(history_dir(settings.manifest))
    if note:
        click.echo(f"note: {note}", err=True)
    state = "built" if result.changed else "already up to date"
    signed = ", signed" if made is not None else ""
    click.echo(f"{shown}: {state} ({result.files} files{signed})", err=True)


@main.command()
@signing_options
@pass_settings
def refresh(settings: Settings, keys_dir: str | None, expires: str) -> None:
    """Re-sign the timestamp (and the snapshot when due) of the signed site, not rebuilding it."""
    from .publishing.signing import refresh_site

    made = _signing(settings, keys_dir, expires, required=True)
    click.echo(for_terminal(refresh_site(made, settings.site).message), err=True)


@main.group()
def keys() -> None:
    """The signing keys of the published status (TUF roles: root, targets, snapshot,
    timestamp)."""


def keys_folder_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--keys DIR`` (or ``VALHALLA_STATUS_KEYS``): the folder of the private keys."""
    return click.option(
        "--keys",
        "keys_dir",
        metavar="DIR",
        envvar="VALHALLA_STATUS_KEYS",
        required=True,
        help=help_text,
    )


@keys.command("init")
@keys_folder_option("Where to write the private keys: a folder outside the repository.")
@pass_settings
def keys_init(settings: Settings, keys_dir: str) -> None:
    """Create a key per role; write the root beside the manifest, the private keys to DIR."""
    from .publishing.signing import init_keys

    result = init_keys(settings.manifest, keys_dir, settings.site)
    for path in result.root_files:
        click.echo(for_terminal(f"wrote {path} (commit it)"), err=True)
    for path in result.key_files:
        click.echo(for_terminal(f"wrote {path} (private: keep it out of the repository)"), err=True)


@keys.command("rotate")
@click.argument("role", type=click.Choice(SIGNING_ROLES))
@keys_folder_option("The folder of the private keys (the root key signs the new root).")
@pass_settings
def keys_rotate(settings: Settings, role: str, keys_dir: str) -> None:
    """Replace ROLE's key: a new root version, signed by the old root key."""
    from .publishing.signing import rotate_key

    result = rotate_key(settings.manifest, keys_dir, role, settings.site)
    for path in result.root_files:
        click.echo(
            for_terminal(f"wrote {path} (root version {result.version}: commit it)"), err=True
        )
    click.echo(for_terminal(f"wrote {result.key_files[0]} (the new {role} key)"), err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@site_options
@pass_settings
def serve(
    settings: Settings, host: str, port: int, templates_dir: str | None, base_url: str | None
) -> None:
    """Build and serve the site read-only; rebuild when the manifest or templates change."""
    from .readers.serve import serve_site

    serve_site(
        settings.manifest,
        settings.site,
        host=host,
        port=port,
        templates_dir=templates_dir,
        base_url=base_url,
        log=lambda line: click.echo(for_terminal(line, multiline=True), err=True),
    )


@main.command()
@click.argument("location", metavar="s3://BUCKET/PREFIX")
@click.option("--endpoint-url", metavar="URL", help="The S3 API's URL (MinIO, R2 and the like).")
@click.option("--dry-run", is_flag=True, help="List what would change; change nothing.")
@pass_settings
def publish(settings: Settings, location: str, endpoint_url: str | None, dry_run: bool) -> None:
    """Upload the built site to an S3-compatible bucket, in an order readers never see half-done."""
    from .publishing.s3 import publish_site

    site = settings.site_option if settings.site_option is not None else settings.site
    result = publish_site(site, location, endpoint_url=endpoint_url, dry_run=dry_run)
    for step in result.steps:
        click.echo(for_terminal(f"{'would ' if dry_run else ''}{step.action} {step.url}"))
    if result.kept:
        click.echo(
            f"note: left {len(result.kept)} other object(s) under {for_terminal(result.target)} "
            "alone (not published there by valhalla-status)",
            err=True,
        )
    uploads = sum(step.action == "upload" for step in result.steps)
    deletes = len(result.steps) - uploads
    done = (
        f"{uploads} to upload, {deletes} to delete, {result.unchanged} unchanged "
        "(dry run: nothing changed)"
        if dry_run
        else f"{uploads} uploaded, {deletes} deleted, {result.unchanged} unchanged"
    )
    click.echo(f"{for_terminal(result.target)}: {done}", err=True)


# --- review and readiness --------------------------------------------------------------------


class Seconds(click.FloatRange):
    """A wait in seconds: a finite number above 0, at most a day (``inf``, ``nan``, ``1e12``
    and negative numbers are usage errors)."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from .client import MAX_TIMEOUT

        seconds: float = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{seconds} is not a finite number of seconds.", param, ctx)
        if seconds > MAX_TIMEOUT:
            self.fail(f"{seconds:g} is over the limit of {MAX_TIMEOUT:g} seconds.", param, ctx)
        return seconds


@main.command("diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for people, markdown for a pull-request comment or job summary, json for tools.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences.")
@pass_settings
def diff_command(
    settings: Settings, old: str | None, new: str | None, output_format: str, exit_code: bool
) -> None:
    """What changed between two manifests: OLD and NEW are git revisions or files.

    With none, HEAD against the working manifest; with one, that against the working manifest.
    Revisions read the manifest's path (--manifest) at that commit. git's ranges work too:
    A..B (A against B), A...B (from where B left A), REV^! (what the commit REV changed).
    """
    from .readers.diff import diff

    result = diff(old, new, settings.manifest)
    text = result.render(output_format)
    shown = text if output_format == "json" else for_terminal(text, multiline=True)
    click.echo(shown, nl=False)
    if exit_code and result.changed:
        sys.exit(1)


def _check_source(settings: Settings, url: str | None, path: str | None, as_json: bool) -> str:
    """What ``check`` reads; a site folder that cannot be placed makes the status unavailable."""
    try:
        return url if url is not None else path or os.path.join(settings.site, "status.json")
    except OSError as exc:  # the site's place is relative to a current folder that is gone
        from .storage.files import os_reason
        from .workspace import current_folder_gone

        reason = current_folder_gone() or f"cannot find the site: {os_reason(exc)}"
    except ValhallaError as exc:  # the manifest found is another user's
        reason = exc.message
    if as_json:
        emit_result({"ready": False, "source": None, "error": reason})
    raise UnavailableError(reason) from None


def _check_usage(
    url: str | None,
    path: str | None,
    installed: tuple[str, ...],
    all_installed: bool,
    more_ids: tuple[str, ...],
) -> None:
    if url is not None and path is not None:
        raise click.UsageError("give --url or --file, not both")
    if installed and all_installed:
        raise click.UsageError("give --require-installed or --all-installed, not both")
    if more_ids and not installed:
        raise click.UsageError(
            f"unexpected argument {quoted(more_ids[0])} (pack ids follow --require-installed)"
        )


@main.command()
@click.option("--url", metavar="URL", help="URL of status.json (a URL ending in / gets it added).")
@click.option("--file", "path", metavar="PATH", help="A status.json file.")
@click.option("--require-complete", is_flag=True, help="The backend must be complete.")
@click.option("--min-version", metavar="V", help="The version must be at least V (SemVer).")
@click.option(
    "--require-installed",
    "installed",
    multiple=True,
    metavar="ID[,ID…]",
    help="These packs must be installed (repeatable, comma-separated, any case).",
)
@click.option("--all-installed", is_flag=True, help="Every pack must be installed.")
@click.option(
    "--timeout",
    type=Seconds(),
    default=10.0,
    show_default=True,
    help="Seconds to wait in all, retries included.",
)
@click.option(
    "--trusted-root",
    metavar="PATH",
    help="Verify the signed site (--url) from this root.json: fresh, signed, not rolled back.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.argument("more_ids", metavar="[ID]...", nargs=-1)
@pass_settings
def check(
    settings: Settings,
    url: str | None,
    path: str | None,
    require_complete: bool,
    min_version: str | None,
    installed: tuple[str, ...],
    all_installed: bool,
    timeout: float,
    trusted_root: str | None,
    as_json: bool,
    more_ids: tuple[str, ...],
) -> None:
    """Is Valhalla ready? Exit 0 ready, 1 not ready, 3 status unavailable or invalid.

    Reads --url, --file or SITE/status.json. With no requirement, ready means the backend is
    complete; with requirements, exactly those. IDs after the options are more ids for
    --require-installed (`--require-installed K L`).
    """
    from .readers.check import Requirements, pack_ids, run_check, shown

    _check_usage(url, path, installed, all_installed, more_ids)
    if trusted_root is not None and url is None:
        raise click.UsageError("--trusted-root verifies a site read with --url")
    source = _check_source(settings, url, path, as_json)
    ids = pack_ids(installed + more_ids)
    if installed and not ids:
        raise click.UsageError("--require-installed needs at least one pack id")
    wanted = Requirements(require_complete, min_version, ids, all_installed)
    try:
        result = run_check(source, wanted, timeout=timeout, trusted_root=trusted_root)
    except UnavailableError as exc:
        if as_json:
            emit_result({"ready": False, "source": source, "error": exc.message})
        raise
    if as_json:
        emit_result(result.document())
    status = result.status
    if result.ready:
        met = "; ".join(c.detail for c in result.conditions)
        if result.verified is not None:
            met += f" (verified; signed until {human_time(result.verified.expires)})"
        click.echo(for_terminal(f"ready: {shown(status)}: {met}"), err=True)
        return
    heading = f"not ready: {shown(status)} ({result.source})"
    click.echo(for_terminal(heading), err=True)
    for line in result.unmet:
        click.echo(f"  - {for_terminal(line)}", err=True)
    sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
