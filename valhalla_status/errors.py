"""The one error family every user-facing failure belongs to.

Each subclass is a ``click.ClickException``, so the CLI shows it as plain lines on stderr with
its exit code and never as a traceback. The library raises these; it never prints or exits.
Messages quote outside text (names, values, file names); when shown, every line of a message
goes through :func:`valhalla_status.rules.text.for_terminal`, so none of it can drive the terminal.
"""

from __future__ import annotations

from typing import IO, Any

import click

from .rules.text import for_terminal


class ValhallaError(click.ClickException):
    """A failure the user can act on: shown as ``error: <message>``, exit code 1."""

    exit_code = 1
    # Whether the message is one line whatever it quotes (a line break in it is escaped too).
    one_line = False

    def format_message(self) -> str:
        return f"error: {self.message}"

    def show(self, file: IO[Any] | None = None) -> None:
        text = for_terminal(self.format_message(), multiline=not self.one_line)
        click.echo(text, file=file, err=file is None)


class ManifestError(ValhallaError):
    """The manifest cannot be read or is invalid: one located line per problem.

    Each problem reads ``file:line: field.path: message`` (line and field where known).
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

    def format_message(self) -> str:
        return self.message


class NotFoundError(ValhallaError):
    """A pack (or other named thing) does not exist."""


class RefusedError(ValhallaError):
    """A mutation was refused by a guard (e.g. pending packs, a lower version)."""


class LockTimeoutError(ValhallaError):
    """The manifest lock could not be had in time."""


class UnavailableError(ValhallaError):
    """The published status could not be read (``check``: exit code 3)."""

    exit_code = 3
    one_line = True
