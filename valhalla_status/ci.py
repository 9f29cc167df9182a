"""The CI workflows ``init --ci`` writes into a repository that holds only a manifest.

A workflow installs this very version of the tool from its git repository (a release's tag,
or the commit a development build was made from), into a virtualenv of its own: the package
spec is one variable at the top of the workflow, ``VALHALLA_STATUS_SPEC``, the one line to
change to upgrade. On a pull (merge) request it validates the manifest, checks that no recorded
change was removed or edited since the target branch (``validate --base``) and says what the
request changes (``diff``); on the default branch it builds the site (signed when the signing
secrets are set) and publishes it to the host's Pages, or with ``publish`` to an S3-compatible
bucket. Every job checks out the whole history (the tool reads landing times from git) and
keeps what the tool read from it, ``.git/valhalla-status``, in the host's cache.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from .errors import RefusedError, ValhallaError
from .rules.formats import quoted
from .storage.files import os_reason
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
# A bucket written into a workflow: plain names only, as for paths.
PLAIN_BUCKET = re.compile(r"s3://[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._/-]*)?\Z")


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


def bucket_location(text: str) -> str:
    """``s3://BUCKET/PREFIX`` as a workflow names it (no trailing ``/``); refused when it is no
    S3 location or holds a character a workflow would have to quote."""
    from .publishing.s3 import parse_target

    try:
        location = parse_target(text).url.rstrip("/")
    except ValhallaError as exc:
        raise ValhallaError(f"--publish: {exc.message}") from None
    if not PLAIN_BUCKET.match(location):
        raise ValhallaError(
            f"--publish: {quoted(text)}: name the bucket and prefix with letters, digits and "
            ". _ - / only, for the workflow to name them"
        )
    return location


def plan_workflow(
    location: Location, provider: str, version: str, *, force: bool, bucket: str | None = None
) -> Workflow:
    """The workflow ``provider`` runs, for the manifest at ``location``, publishing to Pages or
    (``bucket``, ``s3://BUCKET/PREFIX``) to an S3-compatible bucket; refused when the file
    exists (``force``: it is replaced). Nothing is written here."""
    top = workflow_top(location)
    path = shown(os.path.join(top, WORKFLOW_PATHS[provider]))
    target = bucket_location(bucket) if bucket is not None else None
    if os.path.lexists(path) and not force:
        raise RefusedError(f"{path} exists; give --force to replace it")
    manifest = _relative(location.manifest, top, "manifest")
    site = _relative(location.site, top, "site folder")
    spec, warning = install_spec(version, source_url())
    text = _template(provider, target)
    tokens = (("@SPEC@", spec), ("@MANIFEST@", manifest), ("@SITE@", site))
    for token, value in (*tokens, ("@BUCKET@", target or ""), ("@VERSION@", version)):
        text = text.replace(token, value)
    return Workflow(path, text, spec, warning)


def _template(provider: str, bucket: str | None) -> str:
    if provider == "github":
        return GITHUB_S3 if bucket else GITHUB
    return GITLAB_S3 if bucket else GITLAB


def write_workflow(workflow: Workflow) -> None:
    """Write the workflow's file (atomically), creating its folder."""
    from .storage.atomic import atomic_write

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


# The first steps of every GitHub job: the whole history, what the tool read from git kept
# between runs, and Python.
GITHUB_SETUP = """\
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      # What the tool read from git (.git/valhalla-status), kept between runs. A stale copy is
      # safe: the tool reads again from nothing when its commit is not on the branch's history.
      - uses: actions/cache@v4
        with:
          path: .git/valhalla-status
          key: valhalla-status-${{ github.ref_name }}-${{ github.sha }}
          restore-keys: |
            valhalla-status-${{ github.ref_name }}-
            valhalla-status-
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
"""

GITHUB_HEAD = """\
# Valhalla status: review status changes in pull requests, build and publish the site from the
# default branch. Written by `valhalla-status init --ci github` (valhalla-status @VERSION@).
#
# On a pull request: validate the manifest (and that no recorded change was removed or edited
# since the base branch), check that it is canonical, and put what the pull request changes in
# one comment on it (edited on every push) and in the job summary. On the default branch:
# build the site and @PUBLISHES@.
# With the signing secrets VALHALLA_STATUS_TARGETS_KEY, VALHALLA_STATUS_SNAPSHOT_KEY and
# VALHALLA_STATUS_TIMESTAMP_KEY set (`valhalla-status keys init`), the site is signed, and the
# schedule builds and publishes it again every 6 hours, well within its timestamp's one day.
# Every job checks out the whole history (fetch-depth: 0): each change is shown at the time it
# landed on the branch.
name: valhalla-status

on:
  pull_request:
  push:
  schedule:
    - cron: "17 */6 * * *"

permissions:
  contents: read

env:
  # The valhalla-status this repository runs (pip's spec): to upgrade, name a newer tag.
  VALHALLA_STATUS_SPEC: "@SPEC@"
  VALHALLA_MANIFEST: @MANIFEST@
  VALHALLA_SITE: @SITE@
"""

GITHUB_REVIEW = (
    """
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
"""
    + GITHUB_SETUP
    + """\
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
)

PUBLISH_WHEN = """
  publish:
    if: >-
      (github.event_name == 'push' && github.ref_name == github.event.repository.default_branch)
      || github.event_name == 'schedule'
    runs-on: ubuntu-latest
"""


def _github_build(extras: str) -> str:
    """The publish job's install, validate and (signed) build steps."""
    return f"""\
      # The [tuf] extra signs the site: installed when the signing secrets are set.
      - name: Install valhalla-status
        env:
          SIGNED: ${{{{ secrets.VALHALLA_STATUS_TIMESTAMP_KEY != '' }}}}
        run: |
          extras="{extras}"
          if [ "$SIGNED" = true ]; then extras="${{extras:+$extras,}}tuf"; fi
          python -m venv "$RUNNER_TEMP/valhalla-status"
          "$RUNNER_TEMP/valhalla-status/bin/python" -m pip install --quiet \\
            "$VALHALLA_STATUS_SPEC" ${{extras:+"valhalla-status[$extras]"}}
          echo "$RUNNER_TEMP/valhalla-status/bin" >> "$GITHUB_PATH"
      - name: Validate the manifest
        run: valhalla-status validate
      # Signed when the secrets are set (the documents are the same bytes; site/tuf/ is new).
      - name: Build the site
        env:
          VALHALLA_STATUS_TARGETS_KEY: ${{{{ secrets.VALHALLA_STATUS_TARGETS_KEY }}}}
          VALHALLA_STATUS_SNAPSHOT_KEY: ${{{{ secrets.VALHALLA_STATUS_SNAPSHOT_KEY }}}}
          VALHALLA_STATUS_TIMESTAMP_KEY: ${{{{ secrets.VALHALLA_STATUS_TIMESTAMP_KEY }}}}
        run: valhalla-status build
"""


# The step that publishes to a bucket: the same in the generated workflow and (commented) in
# the example workflow.
S3_STEP = """\
- name: Publish the site to the bucket
  env:
    AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
    AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
    S3_ENDPOINT_URL: ${{ vars.S3_ENDPOINT_URL }}
  run: |
    if [ -n "$S3_ENDPOINT_URL" ]; then
      valhalla-status publish "$VALHALLA_STATUS_BUCKET" --endpoint-url "$S3_ENDPOINT_URL"
    else
      valhalla-status publish "$VALHALLA_STATUS_BUCKET"
    fi
"""

GITHUB = (
    GITHUB_HEAD.replace(
        "@PUBLISHES@",
        "publish it to GitHub Pages\n# (Settings → Pages → Source: GitHub Actions)",
    )
    + GITHUB_REVIEW
    + PUBLISH_WHEN
    + """\
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
"""
    + GITHUB_SETUP
    + _github_build("")
    + """\
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

S3_PUBLISHES = (
    "upload it to the S3-compatible bucket\n# VALHALLA_STATUS_BUCKET (`valhalla-status publish`)"
)

GITHUB_S3 = (
    GITHUB_HEAD.replace(
        "@PUBLISHES@",
        S3_PUBLISHES,
    )
    + """\
  # Where `valhalla-status publish` uploads the site.
  VALHALLA_STATUS_BUCKET: @BUCKET@
"""
    + GITHUB_REVIEW
    + PUBLISH_WHEN
    + """\
    permissions:
      contents: read
    concurrency:
      group: valhalla-status-publish
      cancel-in-progress: false
    steps:
"""
    + GITHUB_SETUP
    + _github_build("s3")
    + """\
      # Credentials: the repository secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. For
      # MinIO, R2 and the like, the repository variable S3_ENDPOINT_URL names their S3 API.
"""
    + _indented(S3_STEP, 6)
)

GITLAB_HEAD = """\
# Valhalla status: review status changes in merge requests, build and publish the site from the
# default branch. Written by `valhalla-status init --ci gitlab` (valhalla-status @VERSION@).
#
# On a merge request: validate the manifest (and that no recorded change was removed or edited
# since the target branch), check that it is canonical, and say what the request changes (in
# the job's log and its artifact status-diff.md). On the default branch: build the site and
# @PUBLISHES@.
# With the signing variables VALHALLA_STATUS_TARGETS_KEY, VALHALLA_STATUS_SNAPSHOT_KEY and
# VALHALLA_STATUS_TIMESTAMP_KEY set (protected CI/CD variables, `valhalla-status keys init`),
# the site is signed: add a pipeline schedule on the default branch every 6 hours
# (17 */6 * * *) to sign and publish it again well within its timestamp's one day.
# Every job clones the whole history (GIT_DEPTH: 0): each change is shown at the time it
# landed on the branch.
variables:
  # The valhalla-status this repository runs (pip's spec): to upgrade, name a newer tag.
  VALHALLA_STATUS_SPEC: "@SPEC@"
  VALHALLA_MANIFEST: @MANIFEST@
  GIT_DEPTH: "0"
"""

GITLAB_DEFAULT = """
default:
  image: python:3.12
  # What the tool read from git (.git/valhalla-status), kept between jobs. A stale copy is safe:
  # the tool reads again from nothing when its commit is not on the branch's history.
  cache:
    key: valhalla-status-$CI_COMMIT_REF_SLUG
    fallback_keys:
      - valhalla-status-$CI_DEFAULT_BRANCH
    paths:
      - .git/valhalla-status
  # The [tuf] extra signs the site: installed when the signing variables are set.
  before_script:
    - extras="${VALHALLA_STATUS_EXTRAS:-}"
    - if [ -n "${VALHALLA_STATUS_TIMESTAMP_KEY:-}" ]; then extras="${extras:+$extras,}tuf"; fi
    - python -m venv "${TMPDIR:-/tmp}/valhalla-status"
    - >-
      "${TMPDIR:-/tmp}/valhalla-status/bin/python" -m pip install --quiet
      "$VALHALLA_STATUS_SPEC" ${extras:+"valhalla-status[$extras]"}
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
"""

GITLAB = (
    GITLAB_HEAD.replace("@PUBLISHES@", "publish it with GitLab Pages")
    + GITLAB_DEFAULT
    + """
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
)

GITLAB_S3 = (
    GITLAB_HEAD.replace(
        "@PUBLISHES@",
        S3_PUBLISHES,
    )
    + """\
  VALHALLA_SITE: @SITE@
  # Where `valhalla-status publish` uploads the site.
  VALHALLA_STATUS_BUCKET: @BUCKET@
"""
    + GITLAB_DEFAULT
    + """
# Credentials: the CI/CD variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (protected). For
# MinIO, R2 and the like, the variable S3_ENDPOINT_URL names their S3 API.
publish:
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  variables:
    VALHALLA_STATUS_EXTRAS: s3
  script:
    - valhalla-status validate
    - valhalla-status build
    - >-
      if [ -n "${S3_ENDPOINT_URL:-}" ];
      then valhalla-status publish "$VALHALLA_STATUS_BUCKET" --endpoint-url "$S3_ENDPOINT_URL";
      else valhalla-status publish "$VALHALLA_STATUS_BUCKET"; fi
  resource_group: valhalla-status-publish
"""
)
