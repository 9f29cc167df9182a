"""The GitHub workflow and the pre-commit hooks: every valhalla-status command line in them parses,
and the pull-request diff step works in a real clone."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from status_server import serve

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
    """Each ``valhalla-status …`` command in a shell script, as its argument list (a line
    ending in a backslash continues on the next)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
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
        ["validate", "--base", "origin/$BASE_REF"],
        ["diff", "origin/$BASE_REF...HEAD", "--format", "markdown"],
        ["build"],
        ["validate"],
        ["build"],
        ["check", "--url", "$PAGE_URL", "--min-version", "0.0.0", "--timeout", "60"],
    ]
    review, publish = workflow_steps()["review"], workflow_steps()["publish"]
    assert review[0]["with"]["fetch-depth"] == 0
    uses = [step["uses"].split("@")[0] for step in review if "uses" in step]
    assert uses == [
        "actions/checkout",
        "actions/cache",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/github-script",
    ]
    assert {"uses": "actions/upload-pages-artifact@v3", "with": {"path": "site"}} in publish
    assert [s["uses"].split("@")[0] for s in publish if "uses" in s][-3:] == [
        "actions/configure-pages",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
    ]
    jobs = load(WORKFLOW)["jobs"]
    assert jobs["review"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["publish"]["permissions"]["pages"] == "write"
    triggers = load(WORKFLOW)[True]  # YAML 1.1 reads the key `on` as true
    assert triggers == {
        "pull_request": None,
        "push": {"branches": ["main"]},
        "schedule": [{"cron": "17 */6 * * *"}],  # re-signs a signed site well within a day
    }
    assert "schedule" in jobs["publish"]["if"]
    assert "build --check" not in WORKFLOW.read_text(encoding="utf-8")  # nothing committed


def test_the_hooks_offer_validate_fmt_check_and_build_check() -> None:
    expected = [["validate"], ["fmt", "--check"], ["build", "--check"]]
    assert hook_commands(HOOKS) == expected
    # This repository does not commit its site, so it runs all but build --check.
    assert hook_commands(CONFIG) == expected[:2]
    ids = [hook["id"] for hook in load(HOOKS)]
    repos = load(CONFIG)["repos"]
    assert [hook["id"] for hook in repos[-1]["hooks"]] == ids[:2]
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


# --- the workflow's steps, run in order in real git repositories ---------------------------------

# The `${{ … }}` expressions the workflow may use, as GitHub would fill them in; an expression
# not listed here fails the test (the test is then out of date, not the workflow).
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NEEDS_THE_NETWORK = {"Install"}  # the package is installed in this test's environment already
MARKER = "<!-- valhalla-status diff -->"

# github-script's `github` and `context`, with the pull request's comments in a JSON file.
FAKE_GITHUB_SCRIPT = r"""
const fs = require("fs");
const [stateFile, scriptFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, "utf8"));
state.calls = [];
const github = {
  paginate: async (method, params) => method(params),
  rest: { issues: {
    listComments: async (p) => {
      state.calls.push(["list", p.issue_number]);
      return state.comments.map((c) => ({ ...c }));
    },
    createComment: async (p) => {
      state.calls.push(["create", p.issue_number]);
      state.comments.push({ id: state.next++, user: { type: "Bot" }, body: p.body });
    },
    updateComment: async (p) => {
      state.calls.push(["update", p.comment_id]);
      state.comments.find((c) => c.id === p.comment_id).body = p.body;
    },
  } },
};
const context = { repo: { owner: "acme", repo: "status" }, issue: { number: 7 } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("github", "context", "require", fs.readFileSync(scriptFile, "utf8"))(
  github, context, require,
).then(
  () => fs.writeFileSync(stateFile, JSON.stringify(state)),
  (error) => { console.error(error); process.exit(1); },
);
"""


class Job:
    """Runs one job's steps in order: `run:` steps with bash as GitHub does, `uses:` steps by
    the stand-in given for each action (an action without one fails the test)."""

    def __init__(self, tmp: Path, cwd: Path, expressions: dict[str, str]) -> None:
        self.tmp, self.cwd, self.expressions = tmp, cwd, expressions
        self.temp = tmp / "runner-temp"
        self.temp.mkdir(exist_ok=True)
        self.summary = tmp / "step-summary.md"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VALHALLA_")},
            **GIT_ENV,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "RUNNER_TEMP": str(self.temp),
        }
        self.expressions.setdefault("runner.temp", str(self.temp))

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            assert match.group(1) in self.expressions, f"unknown expression {match.group(0)}"
            return self.expressions[match.group(1)]

        return EXPRESSION.sub(value, text)

    def run(self, name: str, actions: dict[str, Any]) -> list[str]:
        """Run the job; the names of the steps run, in order."""
        done = []
        for step in workflow_steps()[name]:
            env = {**self.env, **{k: self.expand(v) for k, v in step.get("env", {}).items()}}
            if "uses" in step:
                action = step["uses"].split("@")[0]
                assert action in actions, f"no stand-in for {action}"
                actions[action](step, env)
                done.append(action)
            elif step.get("name") not in NEEDS_THE_NETWORK:
                script = self.expand(step["run"])
                shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
                result = subprocess.run(
                    shell, cwd=self.cwd, env=env, capture_output=True, text=True
                )
                assert result.returncode == 0, f"{step['name']}: {result.stderr}"
                done.append(step["name"])
        return done


GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "SOURCE_DATE_EPOCH": "1758326400",
}


def sh(cwd: Path, *args: str, epoch: int = 1758326400) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VALHALLA_")},
        **GIT_ENV,
        "SOURCE_DATE_EPOCH": str(epoch),
    }
    if args[0] == "valhalla-status":
        args = (sys.executable, "-m", "valhalla_status", *args[1:])
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def commit(cwd: Path, message: str, epoch: int) -> None:
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "commit", "-q", "-m", message, epoch=epoch)


def site_artifact(seen: list[Path], cwd: Path) -> Any:
    """Stand-in for the upload actions: the folder is a whole built site; it is kept."""

    def upload(step: dict[str, Any], env: dict[str, str]) -> None:
        folder = cwd / step["with"]["path"]
        for name in ("index.html", "status.json", "404.html", "_headers", "feed.xml"):
            assert (folder / name).is_file(), f"{name} is not in the uploaded {folder}"
        seen.append(folder)

    return upload


def fake_github_script(state_file: Path, tmp: Path) -> Any:
    """Stand-in for actions/github-script: the step's script, run by node against a fake API."""

    def script(step: dict[str, Any], env: dict[str, str]) -> None:
        harness, source = tmp / "harness.js", tmp / "script.js"
        harness.write_text(FAKE_GITHUB_SCRIPT, encoding="utf-8")
        source.write_text(step["with"]["script"], encoding="utf-8")
        done = subprocess.run(
            ["node", str(harness), str(state_file), str(source)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr

    return script


def nothing(step: dict[str, Any], env: dict[str, str]) -> None:
    """Stand-in for checkout and setup-python: the repository and Python are here already."""


def landings_cache(cwd: Path, seen: list[Path]) -> Any:
    """Stand-in for actions/cache: what it keeps is the folder where the tool keeps what it
    read from git (checked after the job to hold the tool's file)."""

    def cache(step: dict[str, Any], env: dict[str, str]) -> None:
        git_dir = Path(sh(cwd, "git", "rev-parse", "--absolute-git-dir").strip())
        assert cwd / step["with"]["path"] == git_dir / "valhalla-status"
        seen.append(git_dir / "valhalla-status")

    return cache


def kept_landings(folder: Path) -> list[str]:
    """What a cache of ``folder`` would keep: the files the tool keeps in the git folder."""
    return [re.sub(r"-[0-9a-f]{16}\.", "-KEY.", p.name) for p in sorted(folder.iterdir())]


def change(cwd: Path, epoch: int, *args: str) -> None:
    """One status change, committed (``valhalla-status ARGS --no-build`` at ``epoch``)."""
    sh(cwd, "valhalla-status", *args, "--no-build", epoch=epoch)
    commit(cwd, " ".join(args), epoch)


@pytest.mark.slow
def test_the_review_job_in_order_keeps_one_comment_up_to_date(tmp_path: Path) -> None:
    """A pull request (K pending) on a base that moves on (version 1.1.0, then more): every
    step runs; the comment says what the pull request changes and nothing of the base's own
    changes; a second push edits the same comment; a run with nothing new leaves it alone.

    GitHub checks out the pull request merged into its base; the job's range (`base...HEAD`,
    from where the two parted) reads the same from that merge commit as from the pull request's
    head, which is what is checked out here."""
    epoch = 1758326400
    upstream, clone = tmp_path / "upstream", tmp_path / "clone"
    upstream.mkdir()
    sh(upstream, "git", "init", "-q", "-b", "main")
    change(upstream, epoch, "init", "--by", "alice")
    sh(tmp_path, "git", "clone", "-q", str(upstream), str(clone))
    sh(clone, "git", "checkout", "-q", "-b", "pr")
    change(clone, epoch + 60, "pack", "set", "K", "--status", "pending", "--by", "bob")
    change(upstream, epoch + 120, "set-version", "1.1.0", "--by", "carol")

    state = tmp_path / "comments.json"
    human = {"id": 1, "user": {"type": "User"}, "body": f"a human quoting {MARKER}"}
    other_bot = {"id": 2, "user": {"type": "Bot"}, "body": "coverage: 100%"}
    state.write_text(json.dumps({"comments": [human, other_bot], "next": 100}), encoding="utf-8")

    cached: list[Path] = []

    def push(at: int) -> tuple[Job, list[str], list[Path]]:
        sh(clone, "git", "checkout", "-q", "--detach", "pr")
        # The base moves on again before the job fetches it.
        change(upstream, at, "pack", "set", "N", "--status", "experimental")
        change(upstream, at + 1, "pack", "set", "N", "--status", "installed")
        job = Job(tmp_path, clone, {"github.base_ref": "main"})
        uploaded: list[Path] = []
        steps = job.run(
            "review",
            {
                "actions/checkout": nothing,
                "actions/cache": landings_cache(clone, cached),
                "actions/setup-python": nothing,
                "actions/upload-artifact": site_artifact(uploaded, clone),
                "actions/github-script": fake_github_script(state, tmp_path),
            },
        )
        return job, steps, uploaded

    job, steps, uploaded = push(epoch + 300)
    assert steps == [
        "actions/checkout",
        "actions/cache",
        "actions/setup-python",
        "Validate the manifest",
        "The manifest is in canonical form",
        "The history only grows",
        "What this pull request changes",
        "Build the site",
        "actions/upload-artifact",
        "actions/github-script",
    ]
    report = (job.temp / "status-diff.md").read_text(encoding="utf-8")
    assert report.startswith(f"{MARKER}\n\n### Valhalla status changes\n")
    assert "| K | Executor Pro | installed → pending |\n" in report
    for base_only in ("1.1.0", "| N |", "carol"):  # the base's own changes are not the PR's
        assert base_only not in report
    assert job.summary.read_text(encoding="utf-8") == report
    comments = json.loads(state.read_text(encoding="utf-8"))
    assert comments["comments"][:2] == [human, other_bot]
    assert comments["comments"][2] == {"id": 100, "user": {"type": "Bot"}, "body": report}
    assert comments["calls"] == [["list", 7], ["create", 7]]
    status = json.loads((uploaded[0] / "status.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in status["packs"] if p["id"] == "K"] == ["pending"]
    assert sh(clone, "git", "status", "--porcelain", "-uall") == "", "nothing new to commit"
    assert kept_landings(cached[0]) == ["entries-KEY.json", "landings-KEY.json", "recent-KEY.json"]

    # A second push to the pull request: the same comment, edited.
    sh(clone, "git", "checkout", "-q", "pr")
    change(clone, epoch + 400, "pack", "set", "L", "--status", "experimental")
    job.summary.unlink()
    job, _, _ = push(epoch + 500)
    report = (job.temp / "status-diff.md").read_text(encoding="utf-8")
    assert "| K | Executor Pro | installed → pending |\n" in report
    assert "| L | Verifier Suite | installed → experimental |\n" in report
    comments = json.loads(state.read_text(encoding="utf-8"))
    assert [c["id"] for c in comments["comments"]] == [1, 2, 100]
    assert comments["comments"][2]["body"] == report
    assert comments["calls"] == [["list", 7], ["update", 100]]

    # The job again with nothing new on the pull request: the comment is left as it is.
    job.summary.unlink()
    job, _, _ = push(epoch + 600)
    assert (job.temp / "status-diff.md").read_text(encoding="utf-8") == report
    comments = json.loads(state.read_text(encoding="utf-8"))
    assert comments["calls"] == [["list", 7]]
    assert [c["id"] for c in comments["comments"]] == [1, 2, 100]
    assert comments["comments"][:2] == [human, other_bot]


@pytest.mark.slow
def test_the_publish_job_in_order_builds_publishes_and_reads_back_the_site(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "status"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "valhalla-status", "init", "--by", "alice", "--no-build")
    sh(repo, "valhalla-status", "set-version", "1.2.0", "--no-build", epoch=1758326460)
    commit(repo, "status", 1758326460)
    assert not (repo / "site").exists(), "nothing built before the job"
    # The signing secrets unset (GitHub gives an empty value): the site is built unsigned.
    secrets = {
        f"secrets.VALHALLA_STATUS_{role}_KEY": "" for role in ("TARGETS", "SNAPSHOT", "TIMESTAMP")
    }
    secrets["secrets.VALHALLA_STATUS_TIMESTAMP_KEY != ''"] = "false"
    cached: list[Path] = []
    job = Job(tmp_path, repo, secrets)
    uploaded: list[Path] = []
    with contextlib.ExitStack() as stack:

        def deploy(step: dict[str, Any], env: dict[str, str]) -> None:
            assert step["id"] == "deployment"
            published = tmp_path / "pages"
            shutil.copytree(uploaded[-1], published)
            server = stack.enter_context(serve(published))
            job.expressions["steps.deployment.outputs.page_url"] = server.url + "/"

        steps = job.run(
            "publish",
            {
                "actions/checkout": nothing,
                "actions/cache": landings_cache(repo, cached),
                "actions/setup-python": nothing,
                "actions/configure-pages": nothing,
                "actions/upload-pages-artifact": site_artifact(uploaded, repo),
                "actions/deploy-pages": deploy,
            },
        )
    assert steps == [
        "actions/checkout",
        "actions/cache",
        "actions/setup-python",
        "Validate the manifest",
        "Build the site",
        "actions/configure-pages",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
        "The published status is readable",
    ]
    status = json.loads((tmp_path / "pages" / "status.json").read_text(encoding="utf-8"))
    assert status["version"] == "1.2.0"
    assert sh(repo, "git", "status", "--porcelain", "-uall") == ""
    assert kept_landings(cached[0]) == ["entries-KEY.json", "landings-KEY.json", "recent-KEY.json"]


@pytest.mark.slow
def test_a_failing_step_stops_the_job(tmp_path: Path) -> None:
    """The stand-in runner is not lenient: a manifest that is not canonical fails its step."""
    repo = tmp_path / "status"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "valhalla-status", "init", "--no-build")
    manifest = repo / "manifest" / "valhalla.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    job = Job(tmp_path, repo, {})
    with pytest.raises(AssertionError, match="The manifest is in canonical form: error: "):
        job.run(
            "review",
            {
                "actions/checkout": nothing,
                "actions/cache": nothing,
                "actions/setup-python": nothing,
            },
        )
