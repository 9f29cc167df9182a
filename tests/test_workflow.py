"""The GitHub workflow and the pre-commit hooks: every valhalla-status command line in them parses,
and the pull-request diff step works in a real clone."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from valhalla_status.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "status.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
CONFIG = ROOT / ".pre-commit-config.yaml"
SHELL_OPERATORS = {">>", ">", "<", "|", "||", "&&", ";", "&"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_steps() -> dict[str, list[dict[str, Any]]]:
    return {name: job["steps"] for name, job in load(WORKFLOW)["jobs"].items()}


def command_lines(script: str) -> list[list[str]]:
    """Each ``valhalla-status …`` command in a shell script, as its argument list."""
    found = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        while "valhalla-status" in words:
            start = words.index("valhalla-status") + 1
            end = next((i for i in range(start, len(words)) if words[i] in SHELL_OPERATORS), None)
            found.append(words[start:end])
            words = words[start:]
    return found


def workflow_commands() -> list[list[str]]:
    return [
        args
        for steps in workflow_steps().values()
        for step in steps
        for args in command_lines(step.get("run", ""))
    ]


def hook_commands(path: Path) -> list[list[str]]:
    data = load(path)
    hooks = data if isinstance(data, list) else [h for r in data["repos"] for h in r["hooks"]]
    return [
        shlex.split(hook["entry"])[1:] + hook.get("args", [])
        for hook in hooks
        if hook.get("entry", "").startswith("valhalla-status")
    ]


def parse(args: list[str]) -> tuple[click.Command, click.Context]:
    """Parse a command line as the CLI would, without running it: unknown options fail."""
    group_ctx = main.make_context("valhalla-status", list(args))
    rest = [*group_ctx._protected_args, *group_ctx.args]
    name, command, sub_args = main.resolve_command(group_ctx, rest)
    assert name is not None and command is not None
    return command, command.make_context(name, sub_args, parent=group_ctx)


def test_the_workflow_runs_the_commands_the_issue_asks_for() -> None:
    assert workflow_commands() == [
        ["validate"],
        ["fmt", "--check"],
        ["build", "--check"],
        ["diff", "origin/$BASE_REF", "--format", "markdown"],
        ["build", "--check"],
        ["check", "--url", "$PAGE_URL", "--min-version", "0.0.0", "--timeout", "60"],
    ]
    review, publish = workflow_steps()["review"], workflow_steps()["publish"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in review[-1]["run"]
    assert review[0]["with"]["fetch-depth"] == 0
    assert {"uses": "actions/upload-pages-artifact@v3", "with": {"path": "site"}} in publish
    triggers = load(WORKFLOW)[True]  # YAML 1.1 reads the key `on` as true
    assert triggers == {"pull_request": None, "push": {"branches": ["main"]}}


def test_the_hooks_offer_validate_fmt_check_and_build_check() -> None:
    expected = [["validate"], ["fmt", "--check"], ["build", "--check"]]
    assert hook_commands(HOOKS) == expected
    assert hook_commands(CONFIG) == expected
    ids = [hook["id"] for hook in load(HOOKS)]
    repos = load(CONFIG)["repos"]
    assert [hook["id"] for hook in repos[-1]["hooks"]] == ids
    assert [hook["id"] for hook in repos[0]["hooks"]] == ["ruff-check", "ruff-format"]


@pytest.mark.parametrize(
    "args",
    [*workflow_commands(), *hook_commands(HOOKS)],
    ids=lambda args: " ".join(args),
)
def test_every_command_line_parses_and_its_help_lists_its_options(args: list[str]) -> None:
    command, ctx = parse(args)
    assert ctx.command is command
    help_text = CliRunner().invoke(main, [args[0], "--help"], prog_name="valhalla-status").stdout
    assert help_text.startswith(f"Usage: valhalla-status {args[0]} ")
    for word in args[1:]:
        if word.startswith("--"):
            assert f"{word} " in help_text or f"{word}\n" in help_text


def test_a_wrong_option_would_fail_to_parse() -> None:
    with pytest.raises(click.NoSuchOption):
        parse(["diff", "--formt", "markdown"])
    with pytest.raises(click.BadParameter):
        parse(["diff", "--format", "html"])


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_pull_request_diff_step_in_a_real_clone(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VALHALLA_")},
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "SOURCE_DATE_EPOCH": "1758326400",
    }
    upstream, clone = tmp_path / "upstream", tmp_path / "clone"
    upstream.mkdir()
    cli = [sys.executable, "-m", "valhalla_status"]

    def run(cwd: Path, *args: str) -> None:
        subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)

    run(upstream, "git", "init", "-q", "-b", "main")
    run(upstream, *cli, "init", "--by", "alice", "--no-build")
    run(upstream, "git", "add", "-A")
    run(upstream, "git", "commit", "-q", "-m", "init")
    run(tmp_path, "git", "clone", "-q", str(upstream), str(clone))
    run(clone, *cli, "pack", "set", "k", "--status", "pending", "--by", "bob", "--no-build")
    script = workflow_steps()["review"][-1]["run"].replace("valhalla-status", shlex.join(cli))
    summary = tmp_path / "summary.md"
    step_env = {**env, "BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=clone, env=step_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### Valhalla status changes\n\norigin/main → manifest/valhalla.yaml\n")
    assert "| K | Executor Pro | installed → pending |\n" in text
    assert "| 2025-09-20 00:00 UTC | bob | pack-set |  |\n" in text
