"""A status repository runs itself: ``init --ci`` writes a workflow that installs this version of
the tool, reviews pull requests and publishes the site; the composite Action does the same steps.

The fast tests run ``init --ci`` through click's CliRunner and read what it wrote. The slow ones
build a wheel of this checkout once per session and run the generated workflows' steps in
order, with bash as the hosts do, in a fresh repository that holds only a manifest: the one
substitution is the workflow's own ``VALHALLA_STATUS_SPEC`` variable, set to the wheel's path
instead of the git URL (the network is PyPI's only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import snapshot
from status_server import serve
from test_workflow import (
    GIT_ENV,
    MARKER,
    WORKFLOW,
    command_lines,
    commit,
    fake_github_script,
    kept_landings,
    landings_cache,
    parse,
    sh,
)

import valhalla_status
from valhalla_status import ci
from valhalla_status.cli import main

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
GITHUB = ".github/workflows/valhalla-status.yml"
SOURCE = "https://github.com/valhalla-platform/valhalla-status"
M = "manifest/valhalla.yaml"
BUCKET = "s3://status-bucket/valhalla"
IGNORED = ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository, the current folder, with the tool at release 1.2.0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1758326400")
    for name in ("VALHALLA_MANIFEST", "VALHALLA_SITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(valhalla_status, "__version__", "1.2.0", raising=False)
    subprocess.run(["git", "init", "-q", "-b", "main"], check=True)
    return tmp_path


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="valhalla-status")


def test_init_ci_github_writes_the_manifest_and_a_workflow_pinned_to_this_release(
    repo: Path,
) -> None:
    result = run("init", "--ci", "github", "--no-build", "--by", "alice")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        f"Created {M} with 16 packs\n{IGNORED}Wrote {GITHUB} (installs git+{SOURCE}@v1.2.0)\n"
    )
    assert (repo / M).is_file()
    text = (repo / GITHUB).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    assert workflow["env"] == {
        "VALHALLA_STATUS_SPEC": f"git+{SOURCE}@v1.2.0",
        "VALHALLA_MANIFEST": M,
        "VALHALLA_SITE": "site",
    }
    assert workflow[True] == {  # YAML 1.1 reads `on` as true
        "pull_request": None,
        "push": None,
        "schedule": [{"cron": "17 */6 * * *"}],
    }
    for job in ("review", "publish"):
        checkout = workflow["jobs"][job]["steps"][0]
        assert checkout == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}
    assert "(valhalla-status 1.2.0)" in text.splitlines()[1]
    assert workflow["jobs"]["publish"]["if"] == (
        "(github.event_name == 'push' && github.ref_name == github.event.repository.default_branch)"
        " || github.event_name == 'schedule'"
    )
    assert [s.get("uses", s.get("name")) for s in workflow["jobs"]["publish"]["steps"]][-4:] == [
        "actions/configure-pages@v5",
        "actions/upload-pages-artifact@v3",
        "actions/deploy-pages@v4",
        "The published status is readable",
    ]


def test_init_ci_on_an_existing_manifest_adds_only_the_workflow(repo: Path) -> None:
    assert run("init", "--no-build", "--by", "alice").exit_code == 0
    before = snapshot(repo)
    result = run("init", "--ci", "github", "--no-build", "--by", "bob")
    assert (result.exit_code, result.stderr) == (
        0,
        f"No change: {M} already exists\nWrote {GITHUB} (installs git+{SOURCE}@v1.2.0)\n",
    )
    after = snapshot(repo)
    assert set(after) - set(before) == {GITHUB}
    assert {k: v for k, v in after.items() if k != GITHUB} == before


def test_init_ci_refuses_an_existing_workflow_and_writes_nothing(repo: Path) -> None:
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / GITHUB).write_text("mine\n", encoding="utf-8")
    before = snapshot(repo)
    result = run("init", "--ci", "github", "--no-build")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {GITHUB} exists; give --force to replace it\n",
    )
    assert snapshot(repo) == before  # no manifest, no .gitignore either


def test_init_ci_force_replaces_the_workflow_and_keeps_the_manifest(repo: Path) -> None:
    assert run("init", "--no-build", "--by", "alice").exit_code == 0
    assert run("pack", "set", "K", "--status", "pending", "--no-build").exit_code == 0
    (repo / ".gitlab-ci.yml").write_text("mine\n", encoding="utf-8")
    before = snapshot(repo)
    result = run("init", "--ci", "gitlab", "--force", "--no-build")
    assert (result.exit_code, result.stderr) == (
        0,
        f"No change: {M} already exists\nWrote .gitlab-ci.yml (installs git+{SOURCE}@v1.2.0)\n",
    )
    after = snapshot(repo)
    assert {k: v for k, v in after.items() if k != ".gitlab-ci.yml"} == {
        k: v for k, v in before.items() if k != ".gitlab-ci.yml"
    }
    pipeline = yaml.safe_load(after[".gitlab-ci.yml"])
    assert pipeline["variables"] == {
        "VALHALLA_STATUS_SPEC": f"git+{SOURCE}@v1.2.0",
        "VALHALLA_MANIFEST": M,
        "GIT_DEPTH": "0",
    }
    assert pipeline["pages"]["artifacts"] == {"paths": ["public"]}
    assert pipeline["pages"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert "publish" not in pipeline


def test_init_ci_github_publish_writes_a_workflow_that_uploads_to_the_bucket_not_to_pages(
    repo: Path,
) -> None:
    result = run("init", "--ci", "github", "--publish", f"{BUCKET}/", "--no-build")
    assert result.exit_code == 0, result.stderr
    workflow = load(repo / GITHUB)
    assert workflow["env"]["VALHALLA_STATUS_BUCKET"] == "s3://status-bucket/valhalla"
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"contents": "read"}
    assert "environment" not in publish
    steps = publish["steps"]
    assert [s.get("uses", s.get("name")) for s in steps] == [
        "actions/checkout@v4",
        "actions/cache@v4",
        "actions/setup-python@v5",
        "Install valhalla-status",
        "Validate the manifest",
        "Build the site",
        "Publish the site to the bucket",
    ]
    assert 'extras="s3"\n' in steps[3]["run"]
    assert steps[-1]["env"] == {
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
        "S3_ENDPOINT_URL": "${{ vars.S3_ENDPOINT_URL }}",
    }
    assert command_lines(steps[-1]["run"]) == [
        ["publish", "$VALHALLA_STATUS_BUCKET", "--endpoint-url", "$S3_ENDPOINT_URL"],
        ["publish", "$VALHALLA_STATUS_BUCKET"],
    ]
    # The review job is the one a Pages workflow has.
    assert workflow["jobs"]["review"] == generated("github")["jobs"]["review"]


def test_init_ci_gitlab_publish_writes_a_publish_job_in_place_of_pages(repo: Path) -> None:
    result = run("init", "--ci", "gitlab", "--publish", "s3://status-bucket", "--no-build")
    assert result.exit_code == 0, result.stderr
    pipeline = load(repo / ".gitlab-ci.yml")
    assert pipeline["variables"] == {
        "VALHALLA_STATUS_SPEC": f"git+{SOURCE}@v1.2.0",
        "VALHALLA_MANIFEST": M,
        "VALHALLA_SITE": "site",
        "VALHALLA_STATUS_BUCKET": "s3://status-bucket",
        "GIT_DEPTH": "0",
    }
    assert "pages" not in pipeline
    assert pipeline["publish"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert pipeline["publish"]["variables"] == {"VALHALLA_STATUS_EXTRAS": "s3"}
    assert [args for line in pipeline["publish"]["script"] for args in command_lines(line)] == [
        ["validate"],
        ["build"],
        ["publish", "$VALHALLA_STATUS_BUCKET", "--endpoint-url", "$S3_ENDPOINT_URL"],
        ["publish", "$VALHALLA_STATUS_BUCKET"],
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--ci", "github", "--publish", "status-bucket"],
            1,
            "error: --publish: 'status-bucket' is not an S3 location: give s3://BUCKET or "
            "s3://BUCKET/PREFIX\n",
        ),
        (
            ["--ci", "gitlab", "--publish", "s3://status-bucket/$HOME"],
            1,
            "error: --publish: 's3://status-bucket/$HOME': name the bucket and prefix with "
            "letters, digits and . _ - / only, for the workflow to name them\n",
        ),
        (
            ["--publish", "s3://status-bucket"],
            2,
            "Usage: valhalla-status init [OPTIONS]\nTry 'valhalla-status init --help' for help."
            "\n\nError: --publish needs --ci (where the written workflow publishes)\n",
        ),
    ],
)
def test_init_ci_publish_refuses_what_a_workflow_cannot_name_and_writes_nothing(
    repo: Path, args: list[str], code: int, message: str
) -> None:
    result = run("init", *args, "--no-build")
    assert (result.exit_code, result.stderr) == (code, message)
    assert sorted(os.listdir(repo)) == [".git"]


def test_init_ci_from_a_subfolder_writes_at_the_top_and_names_the_manifest(repo: Path) -> None:
    (repo / "ops").mkdir()
    os.chdir(repo / "ops")
    result = run("--manifest", "status/valhalla.yaml", "init", "--ci", "github", "--no-build")
    assert result.exit_code == 0, result.stderr
    assert f"Wrote ../{GITHUB} " in result.stderr
    workflow = load(repo / GITHUB)
    assert (workflow["env"]["VALHALLA_MANIFEST"], workflow["env"]["VALHALLA_SITE"]) == (
        "ops/status/valhalla.yaml",
        "ops/site",
    )


def test_init_ci_refuses_a_site_outside_the_repository(repo: Path) -> None:
    result = run("--site", "../elsewhere", "init", "--ci", "github", "--no-build")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: ../elsewhere: the site folder must be inside the repository (.) and named "
        "with letters, digits and . _ - / only, for the workflow to name it\n"
    )
    assert sorted(os.listdir(repo)) == [".git"]


@pytest.mark.parametrize(
    ("version", "spec", "warning"),
    [
        ("1.2.0", f"git+{SOURCE}@v1.2.0", None),
        ("1.2.1.dev3+g1a2b3c4d5", f"git+{SOURCE}@1a2b3c4d5", None),
        ("1.2.1.dev3+g1a2b3c4.d20250920", f"git+{SOURCE}@1a2b3c4", None),
        (
            "0.0.0",
            f"git+{SOURCE}",
            f"warning: valhalla-status 0.0.0 is no release: the workflow installs the newest "
            f"commit of {SOURCE}; pin a release's tag in VALHALLA_STATUS_SPEC",
        ),
    ],
)
def test_the_workflow_pins_a_release_by_its_tag_and_a_development_build_by_its_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch, version: str, spec: str, warning: str | None
) -> None:
    monkeypatch.setattr(valhalla_status, "__version__", version)
    result = run("init", "--ci", "github", "--no-build")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[2:] == [
        f"Wrote {GITHUB} (installs {spec})",
        *([warning] if warning else []),
    ]
    assert load(repo / GITHUB)["env"]["VALHALLA_STATUS_SPEC"] == spec


def test_the_source_url_is_the_package_metadata_s() -> None:
    assert ci.source_url() == SOURCE


# --- the workflows, the Action and the example agree --------------------------------------------


def generated(provider: str, bucket: str | None = None) -> dict[str, Any]:
    plan = ci.plan_workflow(
        valhalla_status.workspace.Location(M, "site", None),
        provider,
        "1.2.0",
        force=True,
        bucket=bucket,
    )
    data: dict[str, Any] = yaml.safe_load(plan.text)
    return data


def action_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load(ACTION)["runs"]["steps"]
    return steps


def gitlab_lines(pipeline: dict[str, Any], job: str) -> list[str]:
    lines: list[str] = pipeline["default"]["before_script"] + pipeline[job]["script"]
    return lines


def every_command_line() -> list[list[str]]:
    scripts = [step.get("run", "") for step in action_steps()]
    for github in (generated("github"), generated("github", BUCKET)):
        scripts += [s.get("run", "") for job in github["jobs"].values() for s in job["steps"]]
    gitlab = generated("gitlab")
    scripts += gitlab_lines(gitlab, "review") + gitlab_lines(gitlab, "pages")
    scripts += gitlab_lines(generated("gitlab", BUCKET), "publish")
    return [args for script in scripts for args in command_lines(script)]


@pytest.mark.parametrize("args", every_command_line(), ids=lambda args: " ".join(args))
def test_every_command_line_of_the_action_and_the_generated_workflows_parses(
    args: list[str],
) -> None:
    command, ctx = parse(args)
    assert ctx.command is command


def test_the_action_and_the_workflows_run_the_same_review() -> None:
    review = ["validate", "fmt --check", "validate --base", "diff"]

    def kinds(scripts: list[str]) -> list[str]:
        found = [
            " ".join(a[:2]) if a[1:2] in (["--check"], ["--base"]) else a[0]
            for s in scripts
            for a in command_lines(s)
        ]
        return [k for k in found if k in review]

    action = [
        s["run"] for s in action_steps() if s.get("if", "").find("'build'") < 0 and "run" in s
    ]
    example = [s.get("run", "") for s in load(WORKFLOW)["jobs"]["review"]["steps"]]
    github = [s.get("run", "") for s in generated("github")["jobs"]["review"]["steps"]]
    gitlab = gitlab_lines(generated("gitlab"), "review")
    assert kinds(action) == kinds(example) == kinds(github) == kinds(gitlab) == review
    # One comment script: the Action's, the example's and the generated workflow's.
    scripts = [
        next(s["with"]["script"] for s in steps if "github-script" in s.get("uses", ""))
        for steps in (
            action_steps(),
            load(WORKFLOW)["jobs"]["review"]["steps"],
            generated("github")["jobs"]["review"]["steps"],
        )
    ]
    assert scripts == [ci.COMMENT_SCRIPT] * 3


def fake_python(folder: Path) -> Path:
    """A ``python3`` whose ``-m venv DIR`` makes DIR/bin/python that records what pip is
    asked to install (in pip.log, with SETUPTOOLS_SCM_PRETEND_VERSION) and a valhalla-status."""
    folder.mkdir()
    venv_python = (
        '#!/bin/bash\necho "$* ${SETUPTOOLS_SCM_PRETEND_VERSION:-}" >> "$(dirname "$0")/pip.log"\n'
    )
    (folder / "python3").write_text(
        "#!/bin/bash\n"
        'set -e\n[ "$1 $2" = "-m venv" ]\nmkdir -p "$3/bin"\n'
        f"cat > \"$3/bin/python\" <<'EOF'\n{venv_python}EOF\n"
        'printf "#!/bin/bash\\necho valhalla-status 9.9.9\\n" > "$3/bin/valhalla-status"\n'
        'chmod +x "$3/bin/python" "$3/bin/valhalla-status"\n',
        encoding="utf-8",
    )
    (folder / "python3").chmod(0o755)
    return folder


@pytest.mark.parametrize(
    ("version", "ref", "installed"),
    [
        ("", "v1.2.0", "/actions/valhalla-status/v1.2.0 1.2.0"),
        ("", "main", "/actions/valhalla-status/main "),
        ("v1.3.0", "v1.2.0", "git+https://github.com/acme/valhalla-status@v1.3.0 "),
        ("==1.3.0", "v1.2.0", "valhalla-status==1.3.0 "),
        (">=1.2,<2", "v1.2.0", "valhalla-status>=1.2,<2 "),
        (
            "./dist/valhalla_status-1.3.0-py3-none-any.whl",
            "v1",
            "./dist/valhalla_status-1.3.0-py3-none-any.whl ",
        ),
    ],
)
def test_the_action_installs_its_own_ref_or_the_version_asked_for(
    tmp_path: Path, version: str, ref: str, installed: str
) -> None:
    assert action_install(tmp_path, version=version, ref=ref) == (
        f"-m pip install --quiet {installed}\n"
    )
    assert (tmp_path / "path").read_text() == f"{tmp_path}/valhalla-status/bin\n"


def action_install(
    tmp_path: Path, *, version: str = "", ref: str = "v1.2.0", command: str = "review", **env: str
) -> str:
    """The Action's install step run with a stand-in python3 (``env``: the caller's step env);
    what pip was asked to install."""
    (step,) = [s for s in action_steps() if s.get("name") == "Install valhalla-status"]
    inputs = {
        "${{ inputs.command }}": command,
        "${{ inputs.version }}": version,
        "${{ github.action_path }}": f"/actions/valhalla-status/{ref}",
        "${{ github.action_ref }}": ref,
        "${{ github.action_repository }}": "acme/valhalla-status",
    }
    environment = {
        "PATH": f"{fake_python(tmp_path / 'bin')}{os.pathsep}/usr/bin:/bin",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_PATH": str(tmp_path / "path"),
        "GITHUB_SERVER_URL": "https://github.com",
        **{name: inputs[value] for name, value in step["env"].items()},
        **env,
    }
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "valhalla-status 9.9.9\n"), done.stderr
    return (tmp_path / "valhalla-status" / "bin" / "pip.log").read_text(encoding="utf-8")


KEY = {"VALHALLA_STATUS_TIMESTAMP_KEY": "-----BEGIN PRIVATE KEY-----"}


@pytest.mark.parametrize(
    ("command", "env", "extras"),
    [
        ("review", {}, ""),
        ("review", KEY, ""),
        ("build", {}, ""),
        ("pages", KEY, " valhalla-status[tuf]"),
        ("build", {"VALHALLA_STATUS_KEYS": "/keys"}, " valhalla-status[tuf]"),
        ("publish", {}, " valhalla-status[s3]"),
        ("publish", KEY, " valhalla-status[s3,tuf]"),
    ],
)
def test_the_action_installs_the_extras_its_command_needs(
    tmp_path: Path, command: str, env: dict[str, str], extras: str
) -> None:
    log = action_install(tmp_path, version="v1.3.0", command=command, **env)
    assert log == (
        f"-m pip install --quiet git+https://github.com/acme/valhalla-status@v1.3.0{extras} \n"
    )


@pytest.mark.parametrize(
    ("bucket", "job", "env", "extras"),
    [
        (None, "review", {}, ""),
        (None, "pages", KEY, " valhalla-status[tuf]"),
        (BUCKET, "publish", {}, " valhalla-status[s3]"),
        (BUCKET, "publish", KEY, " valhalla-status[s3,tuf]"),
    ],
)
def test_the_gitlab_jobs_install_the_extras_they_need(
    tmp_path: Path, bucket: str | None, job: str, env: dict[str, str], extras: str
) -> None:
    pipeline = generated("gitlab", bucket)
    python = fake_python(tmp_path / "bin")
    (python / "python").symlink_to(python / "python3")
    variables = {**pipeline["variables"], **pipeline[job].get("variables", {}), **env}
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", "\n".join(pipeline["default"]["before_script"])],
        env={"PATH": f"{python}{os.pathsep}/usr/bin:/bin", "TMPDIR": str(tmp_path), **variables},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "valhalla-status" / "bin" / "pip.log").read_text(encoding="utf-8")
    assert log == f"-m pip install --quiet git+{SOURCE}@v1.2.0{extras} \n"


def action_step(name: str) -> dict[str, Any]:
    (step,) = [s for s in action_steps() if s.get("name") == name]
    return step


@pytest.mark.parametrize(
    ("endpoint", "args"),
    [
        ("", "publish s3://status-bucket/valhalla"),
        (
            "http://minio:9000",
            "publish s3://status-bucket/valhalla --endpoint-url http://minio:9000",
        ),
    ],
)
def test_the_action_s_publish_command_uploads_the_built_site_to_the_bucket_given(
    tmp_path: Path, endpoint: str, args: str
) -> None:
    build, publish = action_step("Build the site"), action_step("Publish the site to the bucket")
    assert "inputs.command == 'publish'" in build["if"]
    assert publish["if"] == "inputs.command == 'publish'"
    steps = action_steps()
    assert steps.index(build) + 1 == steps.index(publish)
    tool = tmp_path / "valhalla-status"
    tool.write_text('#!/bin/bash\necho "$*" >> "$0.log"\n', encoding="utf-8")
    tool.chmod(0o755)
    inputs = {"${{ inputs.bucket }}": BUCKET, "${{ inputs.endpoint-url }}": endpoint}
    env = {
        "PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin",
        **{name: inputs[value] for name, value in publish["env"].items()},
    }
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", publish["run"]], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "valhalla-status.log").read_text(encoding="utf-8") == f"{args}\n"


def test_the_action_refuses_publish_without_a_bucket_and_an_unknown_command() -> None:
    inputs = load(ACTION)["inputs"]
    assert (inputs["bucket"]["default"], inputs["endpoint-url"]["default"]) == ("", "")
    refusal = action_step("No bucket to publish to")
    assert refusal["if"] == "inputs.command == 'publish' && inputs.bucket == ''"
    unknown = action_step("An unknown command")
    assert "inputs.command != 'publish'" in unknown["if"]
    steps = action_steps()
    assert steps.index(refusal) < steps.index(action_step("Install valhalla-status"))


def cache_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The actions/cache steps of a job, and that they come before any valhalla-status command."""
    found = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    first_command = next(i for i, s in enumerate(steps) if command_lines(s.get("run", "")))
    assert all(steps.index(s) < first_command for s in found)
    return found


LANDINGS_CACHE = {
    "key": "valhalla-status-${{ github.ref_name }}-${{ github.sha }}",
    "restore-keys": "valhalla-status-${{ github.ref_name }}-\nvalhalla-status-\n",
}


def test_every_job_keeps_what_the_tool_read_from_git_between_runs(tmp_path: Path) -> None:
    jobs = [
        *load(WORKFLOW)["jobs"].values(),
        *generated("github")["jobs"].values(),
        *generated("github", BUCKET)["jobs"].values(),
    ]
    for job in jobs:
        (step,) = cache_steps(job["steps"])
        assert step == {
            "uses": "actions/cache@v4",
            "with": {"path": ".git/valhalla-status", **LANDINGS_CACHE},
        }
    (step,) = cache_steps(action_steps())
    assert step["with"] == {"path": "${{ steps.where.outputs.landings }}", **LANDINGS_CACHE}
    assert step["if"] == "steps.where.outputs.landings != ''"
    # The Action's cache path is the git folder's, found where the job runs.
    where = action_step("Where the manifest and the site are")
    sh(tmp_path, "git", "init", "-q", "-b", "main")
    output = tmp_path / "github-output"
    env = {**runner_env(tmp_path), "GITHUB_OUTPUT": str(output), "GITHUB_ENV": os.devnull}
    env |= {name: "" for name in where["env"]}
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", where["run"]], cwd=tmp_path, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert output.read_text() == f"site=site\nlandings={tmp_path}/.git/valhalla-status\n"
    for pipeline in (generated("gitlab"), generated("gitlab", BUCKET)):
        assert pipeline["default"]["cache"] == {
            "key": "valhalla-status-$CI_COMMIT_REF_SLUG",
            "fallback_keys": ["valhalla-status-$CI_DEFAULT_BRANCH"],
            "paths": [".git/valhalla-status"],
        }


SIGNING_SECRETS = {
    f"VALHALLA_STATUS_{role}_KEY": f"${{{{ secrets.VALHALLA_STATUS_{role}_KEY }}}}"
    for role in ("TARGETS", "SNAPSHOT", "TIMESTAMP")
}


def test_the_signed_build_and_its_schedule_agree_in_the_example_the_workflows_and_the_docs() -> (
    None
):
    example = load(WORKFLOW)
    # The Action runs no trigger of its own: the workflow docs/CI.md shows for it has the
    # example's schedule.
    (documented,) = [
        yaml.safe_load(block)
        for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "CI.md").read_text(), re.S)
        if "valhalla-platform/valhalla-status@" in block
    ]
    schedule = example[True]["schedule"]
    assert schedule == [{"cron": "17 */6 * * *"}]
    for workflow in (documented, generated("github"), generated("github", BUCKET)):
        assert workflow[True]["schedule"] == schedule
        assert "github.event_name == 'schedule'" in workflow["jobs"]["publish"]["if"]
    for workflow in (example, generated("github"), generated("github", BUCKET)):
        steps = {s.get("name"): s for s in workflow["jobs"]["publish"]["steps"]}
        assert steps["Build the site"]["env"] == SIGNING_SECRETS
        install = steps.get("Install", steps.get("Install valhalla-status"))
        assert install["env"] == {"SIGNED": "${{ secrets.VALHALLA_STATUS_TIMESTAMP_KEY != '' }}"}
        assert (
            'if [ "$SIGNED" = true ]; then extras="${extras:+$extras,}tuf"; fi' in (install["run"])
        )
    # The review jobs never sign, so never install the [tuf] extra.
    for workflow in (example, generated("github")):
        assert "tuf" not in json.dumps(workflow["jobs"]["review"])
    documented_publish = documented["jobs"]["publish"]["steps"][-1]
    assert set(SIGNING_SECRETS) <= set(documented_publish["env"])


def test_the_example_s_commented_bucket_step_is_the_one_init_ci_publish_writes() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    block = re.search(r"\n((?: {6}# .*\n| {6}#\n)*?) {6}- uses: actions/configure-pages", text)
    assert block is not None
    lines = [line.removeprefix("      #").removeprefix(" ") for line in block.group(1).splitlines()]
    start = lines.index("- name: Publish the site to the bucket")
    (step,) = yaml.safe_load("\n".join(lines[start:]) + "\n")
    s3_steps = generated("github", BUCKET)["jobs"]["publish"]["steps"]
    assert step == s3_steps[-1] == yaml.safe_load(ci.S3_STEP)[0]


# --- the generated workflows, run in order in a fresh repository ---------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built once per session."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("valhalla_status-*.whl")
    return built


def runner_env(tmp: Path) -> dict[str, str]:
    """A runner's environment: the system's tools, none of this test's virtualenv."""
    here = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != here)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VALHALLA_", "VIRTUAL_ENV"))},
        **GIT_ENV,
        "PATH": path,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VALHALLA_CACHE_DIR": str(tmp / "cache"),
    }


def setup_python(tmp: Path) -> Callable[[dict[str, Any], dict[str, str]], str]:
    """Stand-in for actions/setup-python: this interpreter as ``python`` on the PATH."""

    def setup(step: dict[str, Any], env: dict[str, str]) -> str:
        folder = tmp / "python"
        folder.mkdir(exist_ok=True)
        target = folder / "python"
        if not target.exists():
            target.symlink_to(sys.executable)
        return str(folder)

    return setup


ROLES = ("TARGETS", "SNAPSHOT", "TIMESTAMP")


class GitHubJob:
    """Runs a job's steps in order as GitHub does: `run:` steps with bash, the workflow's and
    the step's ``env``, ``$GITHUB_PATH`` honoured; ``uses:`` steps by the stand-in given."""

    def __init__(self, workflow: dict[str, Any], tmp: Path, cwd: Path) -> None:
        self.workflow, self.tmp, self.cwd = workflow, tmp, cwd
        self.temp = tmp / "runner-temp"
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir()
        self.summary = tmp / "step-summary.md"
        self.path_file = self.temp / "github-path"
        self.expressions: dict[str, str] = {
            "runner.temp": str(self.temp),
            "github.ref_name": "main",
            "github.sha": "0" * 40,
            # Secrets and variables not set: GitHub gives an empty value.
            "secrets.VALHALLA_STATUS_TIMESTAMP_KEY != ''": "false",
            **{f"secrets.VALHALLA_STATUS_{role}_KEY": "" for role in ROLES},
            "secrets.AWS_ACCESS_KEY_ID": "",
            "secrets.AWS_SECRET_ACCESS_KEY": "",
            "vars.S3_ENDPOINT_URL": "",
        }
        self.expressions |= {f"env.{k}": v for k, v in workflow["env"].items()}
        self.env = {
            **runner_env(tmp),
            **workflow["env"],
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_PATH": str(self.path_file),
            "RUNNER_TEMP": str(self.temp),
        }

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            assert match.group(1) in self.expressions, f"unknown expression {match.group(0)}"
            return self.expressions[match.group(1)]

        return EXPRESSION.sub(value, text)

    def run(self, name: str, actions: dict[str, Any]) -> list[str]:
        done = []
        for step in self.workflow["jobs"][name]["steps"]:
            added = self.path_file.read_text().split() if self.path_file.exists() else []
            env = {**self.env, **{k: self.expand(v) for k, v in step.get("env", {}).items()}}
            env["PATH"] = os.pathsep.join([*reversed(added), env["PATH"]])
            if "uses" in step:
                action = step["uses"].split("@")[0]
                assert action in actions, f"no stand-in for {action}"
                with_ = {k: self.expand(str(v)) for k, v in step.get("with", {}).items()}
                prepend = actions[action]({**step, "with": with_}, env)
                if prepend:
                    self.env["PATH"] = os.pathsep.join([prepend, self.env["PATH"]])
                done.append(action)
                continue
            script = self.expand(step["run"])
            shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
            result = subprocess.run(shell, cwd=self.cwd, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{step['name']}: {result.stderr}"
            done.append(step["name"])
        return done

    def which(self) -> str:
        """Where the job's steps find ``valhalla-status``."""
        added = self.path_file.read_text().split()
        path = os.pathsep.join([*reversed(added), self.env["PATH"]])
        found = shutil.which("valhalla-status", path=path)
        assert found is not None
        return found


def upload(seen: list[Path], cwd: Path) -> Callable[[dict[str, Any], dict[str, str]], None]:
    def stand_in(step: dict[str, Any], env: dict[str, str]) -> None:
        folder = cwd / step["with"]["path"]
        assert (folder / "index.html").is_file() and (folder / "status.json").is_file()
        seen.append(folder)

    return stand_in


def nothing(step: dict[str, Any], env: dict[str, str]) -> None:
    """Stand-in for checkout and configure-pages: the repository is here already."""


def adopt(repo: Path, provider: str, *options: str) -> dict[str, Any]:
    """A repository that holds only a manifest, then ``init --ci PROVIDER [OPTIONS]`` in it,
    committed; the workflow as the test runs it: its install spec set to the wheel."""
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "valhalla-status", "init", "--by", "alice", "--no-build")
    commit(repo, "status", 1758326400)
    sh(repo, "valhalla-status", "init", "--ci", provider, *options, "--no-build")
    commit(repo, "ci", 1758326430)
    workflow = GITHUB if provider == "github" else ".gitlab-ci.yml"
    files = sh(repo, "git", "ls-files").split()
    assert [f for f in files if not f.startswith("manifest/")] == sorted([".gitignore", workflow])
    data: dict[str, Any] = yaml.safe_load((repo / workflow).read_text(encoding="utf-8"))
    return data


def pull_request(tmp: Path, upstream: Path) -> Path:
    """A clone of ``upstream`` on a pull request's branch that sets K pending; the base moves
    on meanwhile (version 1.1.0)."""
    clone = tmp / "clone"
    sh(tmp, "git", "clone", "-q", str(upstream), str(clone))
    sh(clone, "git", "checkout", "-q", "-b", "pr")
    sh(
        clone,
        "valhalla-status",
        "pack",
        "set",
        "K",
        "--status",
        "pending",
        "--no-build",
        epoch=1758326460,
    )
    commit(clone, "K pending", 1758326460)
    sh(upstream, "valhalla-status", "set-version", "1.1.0", "--no-build", epoch=1758326520)
    commit(upstream, "1.1.0", 1758326520)
    return clone


@pytest.mark.slow
def test_a_repository_that_holds_only_a_manifest_reviews_and_publishes_with_init_ci_github(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = tmp_path / "status"
    workflow = adopt(upstream, "github")
    assert workflow["env"]["VALHALLA_STATUS_SPEC"].startswith(f"git+{SOURCE}@")
    workflow["env"]["VALHALLA_STATUS_SPEC"] = str(wheel)  # the one substitution
    clone = pull_request(tmp_path, upstream)

    # The pull request's review.
    state = tmp_path / "comments.json"
    state.write_text(json.dumps({"comments": [], "next": 100}), encoding="utf-8")
    job = GitHubJob(workflow, tmp_path, clone)
    job.expressions |= {"github.base_ref": "main"}
    cached: list[Path] = []
    steps = job.run(
        "review",
        {
            "actions/checkout": nothing,
            "actions/cache": landings_cache(clone, cached),
            "actions/setup-python": setup_python(tmp_path),
            "actions/github-script": fake_github_script(state, tmp_path),
        },
    )
    assert steps == [
        "actions/checkout",
        "actions/cache",
        "actions/setup-python",
        "Install valhalla-status",
        "Validate the manifest",
        "The manifest is in canonical form",
        "The history only grows",
        "What this pull request changes",
        "actions/github-script",
    ]
    assert job.which() == str(job.temp / "valhalla-status" / "bin" / "valhalla-status")
    report = (job.temp / "status-diff.md").read_text(encoding="utf-8")
    assert report.startswith(f"{MARKER}\n\n### Valhalla status changes\n")
    assert "| K | Executor Pro | installed → pending |\n" in report
    assert "1.1.0" not in report  # the base's own change is not the pull request's
    comments = json.loads(state.read_text(encoding="utf-8"))
    assert [c["body"] for c in comments["comments"]] == [report]

    # The pull request merged: the default branch builds and publishes the site.
    sh(clone, "git", "checkout", "-q", "main")
    sh(clone, "git", "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1758326580 +0000")  # the merge: 00:03
    sh(clone, "git", "merge", "-q", "--no-ff", "--no-edit", "pr")
    assert not (clone / "site").exists()
    job = GitHubJob(workflow, tmp_path, clone)
    uploaded: list[Path] = []
    with contextlib.ExitStack() as stack:

        def deploy(step: dict[str, Any], env: dict[str, str]) -> None:
            published = tmp_path / "pages"
            shutil.copytree(uploaded[-1], published)
            server = stack.enter_context(serve(published))
            job.expressions["steps.deployment.outputs.page_url"] = server.url + "/"

        steps = job.run(
            "publish",
            {
                "actions/checkout": nothing,
                "actions/cache": landings_cache(clone, cached),
                "actions/setup-python": setup_python(tmp_path),
                "actions/configure-pages": nothing,
                "actions/upload-pages-artifact": upload(uploaded, clone),
                "actions/deploy-pages": deploy,
            },
        )
    assert steps == [
        "actions/checkout",
        "actions/cache",
        "actions/setup-python",
        "Install valhalla-status",
        "Validate the manifest",
        "Build the site",
        "actions/configure-pages",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
        "The published status is readable",
    ]
    assert uploaded == [clone / "site"]
    status = json.loads((tmp_path / "pages" / "status.json").read_text(encoding="utf-8"))
    assert status["version"] == "1.1.0"
    assert [p["status"] for p in status["packs"] if p["id"] == "K"] == ["pending"]
    # The merge landed K's change: its time is the merge's, not the branch commit's.
    assert status["updated_at"] == "2025-09-20T00:03:00Z"
    assert sh(clone, "git", "status", "--porcelain", "-uall") == ""
    assert kept_landings(cached[-1]) == ["entries-KEY.json", "landings-KEY.json", "recent-KEY.json"]


@pytest.mark.slow
def test_a_repository_that_holds_only_a_manifest_publishes_to_a_bucket_with_init_ci_publish(
    tmp_path: Path, wheel: Path
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    repo = tmp_path / "status"
    workflow = adopt(repo, "github", "--publish", "s3://status-bucket/valhalla")
    assert workflow["env"]["VALHALLA_STATUS_BUCKET"] == "s3://status-bucket/valhalla"
    workflow["env"]["VALHALLA_STATUS_SPEC"] = str(wheel)  # the one substitution
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket.create_bucket(Bucket="status-bucket")
        job = GitHubJob(workflow, tmp_path, repo)
        job.env |= {
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        job.expressions |= {
            "secrets.AWS_ACCESS_KEY_ID": "testing",
            "secrets.AWS_SECRET_ACCESS_KEY": "testing",
            "vars.S3_ENDPOINT_URL": endpoint,
        }
        cached: list[Path] = []
        steps = job.run(
            "publish",
            {
                "actions/checkout": nothing,
                "actions/cache": landings_cache(repo, cached),
                "actions/setup-python": setup_python(tmp_path),
            },
        )
        assert steps == [
            "actions/checkout",
            "actions/cache",
            "actions/setup-python",
            "Install valhalla-status",
            "Validate the manifest",
            "Build the site",
            "Publish the site to the bucket",
        ]
        status = bucket.get_object(Bucket="status-bucket", Key="valhalla/status.json")
        assert status["ContentType"] == "application/json"
        assert status["Body"].read() == (repo / "site" / "status.json").read_bytes()
        page = bucket.get_object(Bucket="status-bucket", Key="valhalla/index.html")
        assert page["ContentType"] == "text/html; charset=utf-8"
    finally:
        server.stop()
    assert kept_landings(cached[0]) == ["entries-KEY.json", "landings-KEY.json", "recent-KEY.json"]


@pytest.mark.slow
def test_a_repository_that_holds_only_a_manifest_reviews_and_publishes_with_init_ci_gitlab(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = tmp_path / "status"
    pipeline = adopt(upstream, "gitlab")
    pipeline["variables"]["VALHALLA_STATUS_SPEC"] = str(wheel)  # the one substitution
    clone = pull_request(tmp_path, upstream)

    def job(name: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
        """The job's before_script and script in order, in one bash as GitLab's runner does
        (``python`` is the image's)."""
        env = {**runner_env(tmp_path), **pipeline["variables"], **variables}
        env["PATH"] = f"{setup_python(tmp_path)({}, env)}{os.pathsep}{env['PATH']}"
        env["TMPDIR"] = str(tmp_path / f"tmp-{name}")
        os.mkdir(env["TMPDIR"])
        script = "\n".join(gitlab_lines(pipeline, name))
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done

    done = job("review", clone, CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main")
    report = (clone / "status-diff.md").read_text(encoding="utf-8")
    assert report.startswith("### Valhalla status changes\n")
    assert "| K | Executor Pro | installed → pending |\n" in report
    assert done.stdout.endswith(report)

    sh(clone, "git", "checkout", "-q", "main")
    (clone / "status-diff.md").unlink()
    sh(clone, "git", "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1758326580 +0000")  # the merge: 00:03
    sh(clone, "git", "merge", "-q", "--no-ff", "--no-edit", "pr")
    job("pages", clone)
    status = json.loads((clone / "public" / "status.json").read_text(encoding="utf-8"))
    assert (status["version"], status["updated_at"]) == ("1.1.0", "2025-09-20T00:03:00Z")
    assert (clone / "public" / "index.html").is_file()
