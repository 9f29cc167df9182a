"""The CI workflows ``init --ci`` writes into a repository that holds only a manifest.

A workflow installs this very version of the tool from its git repository (a release's tag,
or the commit a development build was made from), into a virtualenv of its own: the package
spec is one variable at the top of the workflow, ``VALHALLA_STATUS_SPEC``, the one line to
change to upgrade. On a pull (merge) request it validates the manifest, checks that no recorded
change was removed or edited since the target branch (``validate --base``) and says what the
request changes (``diff``); on the default branch it builds the site and publishes it to the
host's Pages. Every job checks out the whole history: the tool reads landing times from git.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from .errors import RefusedError, ValhallaError
from .files import os_reason
from .workspace import Location, repository_top, shown

PROVIDERS = ("github", "gitlab")
WORKFLOW_PATHS = {
    "github": os.path.join(".github", "workflows", "valhalla-status.yml"),
    "gitlab": ".gitlab-ci.yml",
}
SPEC_VARIABLE = "VALHALLA_STATUS_SPEC"
# Paths written into a workflow: plain ones only (no quoting, no expression syntax to escape).
PLAIN_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*\Z")
RELEASE = re.compile(r"\d+(\.\d+)*\Z")
# The version of a build from a source without git (pyproject's fallback-version): no release.
NO_VERSION = "0.0.0"
DEV_COMMIT = re.compile(r"\+g([0-9a-f]{7,40})\b")


class Workflow(NamedTuple):
    """A workflow to write: where, its text, and what it installs."""

    path: str
    """As typed from the current folder."""
    text: str
    spec: str
    warning: str | None


def source_url() -> str:
    """The tool's git repository, as its package metadata names it (``Source``)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls: list[str] = metadata("valhalla-status").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip() == "Source":
            return url.strip()
    raise ValhallaError(
        "valhalla-status is not installed (no package metadata names its repository); "
        "install it to write a workflow"
    )


def install_spec(version: str, source: str) -> tuple[str, str | None]:
    """What pip installs for ``version`` of the tool, and a warning when that is no pin.

    A release (``1.2.0``) is its tag (``v1.2.0``); a development build
    (``1.2.1.dev3+g1a2b3c4``) the commit it was built from; anything else (the fallback
    version of a build without git) the default branch's newest commit, said in a warning.
    """
    if RELEASE.match(version) and version != NO_VERSION:
        return f"git+{source}@v{version}", None
    commit = DEV_COMMIT.search(version)
    if commit:
        return f"git+{source}@{commit.group(1)}", None
    return f"git+{source}", (
        f"warning: valhalla-status {version} is no release: the workflow installs the newest "
        f"commit of {source}; pin a release's tag in {SPEC_VARIABLE}"
    )


def _relative(path: str, top: str, what: str) -> str:
    relative = os.path.relpath(os.path.abspath(path), top).replace(os.sep, "/")
    if relative.startswith("../") or relative == ".." or not PLAIN_PATH.match(relative):
        raise ValhallaError(
            f"{shown(path)}: the {what} must be inside the repository ({shown(top)}) and "
            "named with letters, digits and . _ - / only, for the workflow to name it"
        )
    return relative


def workflow_top(location: Location) -> str:
    """The folder a workflow is written in: the top of the git repository holding the
    manifest (outside git, the folder it was found in, else the current folder)."""
    parent = os.path.dirname(location.manifest) or os.curdir
    return repository_top(parent) or location.root or os.path.abspath(os.curdir)


def plan_workflow(location: Location, provider: str, version: str, *, force: bool) -> Workflow:
    """The workflow ``provider`` runs, for the manifest at ``location``; refused when the
    file exists (``force``: it is replaced). Nothing is written here."""
    top = workflow_top(location)
    path = shown(os.path.join(top, WORKFLOW_PATHS[provider]))
    if os.path.lexists(path) and not force:
        raise RefusedError(f"{path} exists; give --force to replace it")
    manifest = _relative(location.manifest, top, "manifest")
    site = _relative(location.site, top, "site folder")
    spec, warning = install_spec(version, source_url())
    text = GITHUB if provider == "github" else GITLAB
    for token, value in (("@SPEC@", spec), ("@MANIFEST@", manifest), ("@SITE@", site)):
        text = text.replace(token, value)
    return Workflow(path, text.replace("@VERSION@", version), spec, warning)


def write_workflow(workflow: Workflow) -> None:
    """Write the workflow's file (atomically), creating its folder."""
    from .atomic import atomic_write

    folder = os.path.dirname(workflow.path) or os.curdir
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValhallaError(f"cannot create {shown(folder)}: {os_reason(exc)}") from None
    atomic_write(workflow.path, workflow.text.encode("utf-8"))


# The comment on a pull request: one, found again by its hidden marker and edited on every push.
COMMENT_SCRIPT = """\
const fs = require("fs");
const marker = "<!-- valhalla-status diff -->";
const body = fs.readFileSync(process.env.REPORT, "utf8");
const { owner, repo } = context.repo;
const issue_number = context.issue.number;
const comments = await github.paginate(github.rest.issues.listComments, {
  owner, repo, issue_number, per_page: 100,
});
const mine = comments.find(
  (c) => c.user && c.user.type === "Bot" && (c.body || "").startsWith(marker),
);
if (mine === undefined) {
  await github.rest.issues.createComment({ owner, repo, issue_number, body });
} else if (mine.body !== body) {
  await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
}
"""


def _indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line else line for line in text.splitlines(True))


GITHUB = (
    """\
# Valhalla status: review status changes in pull requests, build and publish the site from the
# default branch. Written by `valhalla-status init --ci github` (valhalla-status @VERSION@).
#
# On a pull request: validate the manifest (and that no recorded change was removed or edited
# since the base branch), check that it is canonical, and put what the pull request changes in
# one comment on it (edited on every push) and in the job summary. On the default branch:
# build the site and publish it to GitHub Pages (Settings → Pages → Source: GitHub Actions).
# Every job checks out the whole history (fetch-depth: 0): each change is shown at the time it
# landed on the branch.
name: valhalla-status

on:
  pull_request:
  push:

permissions:
  contents: read

env:
  # The valhalla-status this repository runs (pip's spec): to upgrade, name a newer tag.
  VALHALLA_STATUS_SPEC: "@SPEC@"
  VALHALLA_MANIFEST: @MANIFEST@
  VALHALLA_SITE: @SITE@

jobs:
  review:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
    concurrency:
      group: valhalla-status-review-${{ github.event.pull_request.number }}
      cancel-in-progress: true
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install valhalla-status
        run: |
          python -m venv "$RUNNER_TEMP/valhalla-status"
          "$RUNNER_TEMP/valhalla-status/bin/python" -m pip install --quiet "$VALHALLA_STATUS_SPEC"
          echo "$RUNNER_TEMP/valhalla-status/bin" >> "$GITHUB_PATH"
      - name: Validate the manifest
        run: valhalla-status validate
      - name: The manifest is in canonical form
        run: valhalla-status fmt --check
      - name: The history only grows
        env:
          BASE_REF: ${{ github.base_ref }}
        run: |
          git fetch --no-tags origin "$BASE_REF"
          valhalla-status validate --base "origin/$BASE_REF"
      - name: What this pull request changes
        env:
          BASE_REF: ${{ github.base_ref }}
          REPORT: ${{ runner.temp }}/status-diff.md
        run: |
          printf '%s\\n\\n' '<!-- valhalla-status diff -->' > "$REPORT"
          valhalla-status diff "origin/$BASE_REF...HEAD" --format markdown >> "$REPORT"
          cat "$REPORT" >> "$GITHUB_STEP_SUMMARY"
      # A pull request from a fork gets a read-only token: it has the job summary only.
      - name: Comment on the pull request
        if: github.event.pull_request.head.repo.full_name == github.repository
        uses: actions/github-script@v7
        env:
          REPORT: ${{ runner.temp }}/status-diff.md
        with:
          script: |
"""
    + _indented(COMMENT_SCRIPT, 12)
    + """
  publish:
    if: github.event_name == 'push' && github.ref_name == github.event.repository.default_branch
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pages: write
      id-token: write
    concurrency:
      group: pages
      cancel-in-progress: false
    environment:
      name: github-pages
      url: ${{ steps.deployment.outputs.page_url }}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install valhalla-status
        run: |
          python -m venv "$RUNNER_TEMP/valhalla-status"
          "$RUNNER_TEMP/valhalla-status/bin/python" -m pip install --quiet "$VALHALLA_STATUS_SPEC"
          echo "$RUNNER_TEMP/valhalla-status/bin" >> "$GITHUB_PATH"
      - name: Validate the manifest
        run: valhalla-status validate
      - name: Build the site
        run: valhalla-status build
      - uses: actions/configure-pages@v5
      - uses: actions/upload-pages-artifact@v3
        with:
          path: ${{ env.VALHALLA_SITE }}
      - id: deployment
        uses: actions/deploy-pages@v4
      - name: The published status is readable
        env:
          PAGE_URL: ${{ steps.deployment.outputs.page_url }}
        run: valhalla-status check --url "$PAGE_URL" --min-version 0.0.0 --timeout 60
"""
)

GITLAB = """\
# Valhalla status: review status changes in merge requests, build and publish the site from the
# default branch. Written by `valhalla-status init --ci gitlab` (valhalla-status @VERSION@).
#
# On a merge request: validate the manifest (and that no recorded change was removed or edited
# since the target branch), check that it is canonical, and say what the request changes (in
# the job's log and its artifact status-diff.md). On the default branch: build the site and
# publish it with GitLab Pages. Every job clones the whole history (GIT_DEPTH: 0): each change
# is shown at the time it landed on the branch.
variables:
  # The valhalla-status this repository runs (pip's spec): to upgrade, name a newer tag.
  VALHALLA_STATUS_SPEC: "@SPEC@"
  VALHALLA_MANIFEST: @MANIFEST@
  GIT_DEPTH: "0"

default:
  image: python:3.12
  before_script:
    - python -m venv "${TMPDIR:-/tmp}/valhalla-status"
    - '"${TMPDIR:-/tmp}/valhalla-status/bin/python" -m pip install --quiet "$VALHALLA_STATUS_SPEC"'
    - export PATH="${TMPDIR:-/tmp}/valhalla-status/bin:$PATH"

review:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  script:
    - valhalla-status validate
    - valhalla-status fmt --check
    - git fetch --no-tags origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    - base="origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    - valhalla-status validate --base "$base"
    - valhalla-status diff "$base...HEAD" --format markdown > status-diff.md
    - cat status-diff.md
  artifacts:
    paths:
      - status-diff.md
    expose_as: status changes

pages:
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  script:
    - valhalla-status validate
    - valhalla-status build --site public
  artifacts:
    paths:
      - public
"""
