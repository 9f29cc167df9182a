"""Every rule of the manifest, shown with a bad manifest.

Each case writes a real file, runs ``validate`` and a mutation (``set-notes``) through the CLI,
and asserts: exit code 1, exactly the located lines ``file:line: field.path: message`` on stderr,
nothing on stdout, no traceback, and every file in the folder byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import (
    LOCK_NAME,
    MANIFEST_REL,
    Workspace,
    clean_env,
    dump,
    edit,
    small_manifest,
    snapshot,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from valhalla_status.cli import main
from valhalla_status.manifest import _Loader

# libyaml (the C parser, used when present) and PyYAML's pure parser word syntax errors
# differently; the location is the same.
LIBYAML = _Loader is not yaml.SafeLoader
M = MANIFEST_REL
BASE = dump(small_manifest())
MUTATION = ("set-notes", "hello", "--no-build", "--by", "qa")
SEMVER_HINT = "is not a SemVer 2.0.0 version (like 1.2.3)"
ID_RULE = "1–32 characters of A-Z, 0-9, _ and -, starting with a letter"
STATUS_RULE = "is not one of installed, pending, deprecated, experimental"


def assert_rejected(
    ws: Workspace,
    content: str | bytes,
    expected: list[str],
    commands: tuple[tuple[str, ...], ...] = (
        ("validate",),
        MUTATION,
        ("fmt", "--check"),
        ("show", "--json"),
    ),
) -> None:
    """Each command exits 1 with exactly ``expected`` on stderr and changes no file."""
    ws.write(content)
    before = snapshot(ws.root)
    assert before[M] == (content.encode() if isinstance(content, str) else content)
    for command in commands:
        result = ws.run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.splitlines() == expected, command
        assert result.stdout == ""
        assert "Traceback" not in result.output
        assert snapshot(ws.root) == before, command


def e(text: str, *pairs: str) -> str:
    """Apply ``(old, new)`` edits to ``text``, each old string occurring exactly once."""
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        text = edit(text, old, new)
    return text


# (case id, manifest text, expected stderr lines)
CASES: list[tuple[str, Callable[[], str | bytes], list[str]]] = [
    # --- YAML syntax ---------------------------------------------------------------------
    (
        "syntax-unclosed-flow-mapping",
        lambda: e(BASE, "  extra: {}", "  extra: {a: 1"),
        [
            f"{M}:11: YAML syntax error: while parsing a flow mapping "
            + (
                "did not find expected ',' or '}'"
                if LIBYAML
                else "expected ',' or '}', but got ':'"
            )
        ],
    ),
    (
        "syntax-bad-indentation",
        lambda: e(BASE, "  version: 1.0.0\n", "  version: 1.0.0\n bad: x\n"),
        [
            f"{M}:6: YAML syntax error: while parsing a block mapping "
            + (
                "did not find expected key"
                if LIBYAML
                else "expected <block end>, but found '<block mapping start>'"
            )
        ],
    ),
    (
        "syntax-tab-indentation",
        lambda: e(BASE, "  version: 1.0.0", "\tversion: 1.0.0"),
        [
            f"{M}:5: YAML syntax error: while scanning a plain scalar "
            "found a tab character that violates indentation"
            if LIBYAML
            else f"{M}:5: YAML syntax error: while scanning for the next token "
            "found character '\\t' that cannot start any token"
        ],
    ),
    (
        "two-documents",
        lambda: BASE + "---\nschema_version: 1\n",
        [f"{M}:30: a manifest is one YAML document"],
    ),
    ("empty-file", lambda: "", [f"{M}: the manifest is empty; run `valhalla-status init`"]),
    (
        "not-a-mapping",
        lambda: "- H\n- I\n",
        [f"{M}:1: the manifest must be a mapping, not a list"],
    ),
    # --- wrong types -----------------------------------------------------------------------
    (
        "yaml-float-version",
        lambda: e(BASE, "version: 1.0.0", "version: 1.0"),
        [f"{M}:5: system.version: must be a string, not 1.0 (a YAML float); quote it"],
    ),
    (
        "yaml-integer-version",
        lambda: e(BASE, "version: 1.0.0", "version: 2"),
        [f"{M}:5: system.version: must be a string, not 2 (a YAML integer); quote it"],
    ),
    (
        "quoted-two-part-version",
        lambda: e(BASE, "version: 1.0.0", "version: '1.0'"),
        [f"{M}:5: system.version: '1.0' {SEMVER_HINT}"],
    ),
    (
        "v-prefixed-version",
        lambda: e(BASE, "version: 1.0.0", "version: v1.0.0"),
        [f"{M}:5: system.version: 'v1.0.0' {SEMVER_HINT}"],
    ),
    (
        "string-boolean",
        lambda: e(BASE, "backend_complete: false", "backend_complete: 'false'"),
        [f"{M}:6: system.backend_complete: must be true or false, not 'false'"],
    ),
    (
        "yaml-1.1-yes-is-not-a-boolean",
        lambda: e(BASE, "backend_complete: false", "backend_complete: yes"),
        [f"{M}:6: system.backend_complete: must be true or false, not 'yes'"],
    ),
    (
        "integer-boolean",
        lambda: e(BASE, "backend_complete: false", "backend_complete: 0"),
        [f"{M}:6: system.backend_complete: must be true or false, not 0 (a YAML integer)"],
    ),
    (
        "integer-too-long-to-convert",
        lambda: e(BASE, "extra: {}", "extra: {n: " + "9" * 5000 + "}"),
        [f"{M}:10: YAML syntax error: number too long (5,000 characters)"],
    ),
    (
        "boolean-name",
        lambda: e(BASE, "name: Reporter Premium", "name: true"),
        [f"{M}:17: packs[1].name: must be a string, not true (a YAML boolean); quote it"],
    ),
    (
        "integer-id",
        lambda: e(BASE, "id: I", "id: 7"),
        [f"{M}:16: packs[1].id: must be a string, not 7 (a YAML integer); quote it"],
    ),
    (
        "status-misspelt",
        lambda: e(BASE, "status: pending", "status: instaled"),
        [f"{M}:19: packs[1].status: 'instaled' {STATUS_RULE}"],
    ),
    (
        "status-wrong-case",
        lambda: e(BASE, "status: pending", "status: Pending"),
        [f"{M}:19: packs[1].status: 'Pending' {STATUS_RULE}"],
    ),
    (
        "schema-version-3",
        lambda: e(BASE, "schema_version: 1", "schema_version: 3"),
        [
            f"{M}:1: schema_version: unsupported schema_version 3 (a YAML integer); "
            "this tool reads 1 and 2"
        ],
    ),
    (
        "packs-not-a-list",
        lambda: BASE[: BASE.index("packs:")] + "packs: H\n" + BASE[BASE.index("history:") :],
        [f"{M}:11: packs: must be a list, not 'H'"],
    ),
    (
        "system-not-a-mapping",
        lambda: "schema_version: 1\nsystem: Valhalla\npacks: []\n",
        [f"{M}:2: system: must be a mapping, not 'Valhalla'"],
    ),
    (
        "change-not-a-pair",
        lambda: e(BASE, "changes: {}", "changes: {notes: [a], version: [a, b, c]}"),
        [
            f"{M}:28: history[0].changes.notes: must be [old, new], not a list of 1",
            f"{M}:28: history[0].changes.version: must be [old, new], not a list of 3",
        ],
    ),
    (
        # A change keeps the change's wording whatever field it names: a change of 'extra'
        # is no mapping, a change of a pack's status no pack status.
        "change-named-like-a-field-not-a-pair",
        lambda: e(
            BASE, "changes: {}", "changes: {extra: [a, b, c], packs.H.status: [done], packs.H: []}"
        ),
        [
            f"{M}:28: history[0].changes.extra: must be [old, new], not a list of 3",
            f"{M}:28: history[0].changes.packs.H.status: must be [old, new], not a list of 1",
            f"{M}:28: history[0].changes.packs.H: must be [old, new], not a list of 0",
        ],
    ),
    (
        # Each key names a field a change records: a system field, a pack, or a pack's field.
        "change-of-no-field",
        lambda: e(
            BASE,
            "changes: {}",
            "changes:\n    packs.H.id: [H, Q]\n    status: [a, b]\n    packs.H.: [a, b]\n"
            "    packs.H.status.x: [a, b]",
        ),
        [
            f"{M}:29: history[0].changes.packs.H.id: 'packs.H.id' is no field of a pack a "
            "change records (name, group, status, notes)",
            f"{M}:30: history[0].changes.status: 'status' is no field a change records (version, "
            "backend_complete, completed_at, notes, name, description, base_url, extra, "
            "packs.<ID>[.<field>])",
            f"{M}:31: history[0].changes.packs.H.: 'packs.H.' is no field of a pack a change "
            "records (name, group, status, notes)",
            f"{M}:32: history[0].changes.packs.H.status.x: 'packs.H.status.x' is no field of a "
            "pack a change records (name, group, status, notes)",
        ],
    ),
    (
        "missing-required-field",
        lambda: e(BASE, "  group: System infrastructure\n", ""),
        [f"{M}:20: packs[2].group: required field is missing"],
    ),
    # --- unknown, misspelt and duplicate keys ----------------------------------------------
    (
        "http-base-url",
        lambda: e(
            BASE, "  version: 1.0.0\n", "  base_url: http://status.example\n  version: 1.0.0\n"
        ),
        [
            f"{M}:5: system.base_url: 'http://status.example' is not an absolute https URL (https://host/path)"
        ],
    ),
    (
        "relative-base-url",
        lambda: e(BASE, "  version: 1.0.0\n", "  base_url: /status\n  version: 1.0.0\n"),
        [f"{M}:5: system.base_url: '/status' is not an absolute https URL (https://host/path)"],
    ),
    (
        "base-url-port-out-of-range",
        lambda: e(BASE, "  version: 1.0.0\n", "  base_url: https://a:99999/\n  version: 1.0.0\n"),
        [f"{M}:5: system.base_url: 'https://a:99999/' has port 99999; a port is 1 to 65535"],
    ),
    (
        "base-url-unclosed-ipv6",
        lambda: e(BASE, "  version: 1.0.0\n", "  base_url: https://[::1\n  version: 1.0.0\n"),
        [
            f"{M}:5: system.base_url: 'https://[::1' is not an absolute https URL (https://host/path)"
        ],
    ),
    (
        "base-url-with-credentials",
        lambda: e(
            BASE,
            "  version: 1.0.0\n",
            "  base_url: https://u:p@status.example/\n  version: 1.0.0\n",
        ),
        [
            f"{M}:5: system.base_url: 'https://u:p@status.example/' holds a user name or "
            "password, which every page would publish"
        ],
    ),
    (
        "unknown-key",
        lambda: e(BASE, "  extra: {}\n", "  extra: {}\n  colour: red\n"),
        [f"{M}:11: system.colour: unknown field 'colour'"],
    ),
    (
        "misspelt-system-key",
        lambda: e(BASE, "  notes: null\n  updated_at", "  notse: null\n  updated_at"),
        [
            f"{M}:2: system.notes: required field is missing",
            f"{M}:7: system.notse: unknown field 'notse' (did you mean 'notes'?)",
        ],
    ),
    (
        "misspelt-pack-key",
        lambda: e(BASE, "status: pending", "stauts: pending"),
        [
            f"{M}:16: packs[1].status: required field is missing",
            f"{M}:19: packs[1].stauts: unknown field 'stauts' (did you mean 'status'?)",
        ],
    ),
    (
        "misspelt-top-level-key",
        lambda: e(BASE, "history:", "histroy:"),
        [f"{M}:24: histroy: unknown field 'histroy' (did you mean 'history'?)"],
    ),
    (
        "duplicate-key",
        lambda: e(BASE, "  notes: null\n  updated_at", "  notes: null\n  notes: x\n  updated_at"),
        [f"{M}:8: system.notes: duplicate key 'notes' (first at line 7)"],
    ),
    (
        "duplicate-key-in-pack",
        lambda: e(BASE, "  status: pending\n", "  status: pending\n  status: installed\n"),
        [f"{M}:20: packs[1].status: duplicate key 'status' (first at line 19)"],
    ),
    (
        # A key that is no string is said as what it is; two of them are no duplicate.
        "keys-that-are-no-string",
        lambda: e(BASE, "extra: {}", "extra: {? [a, b] : c, ? [a, b] : d, ? {k: v} : e, 1: f}"),
        [
            f"{M}:10: system.extra: a key is a list, not a string",
            f"{M}:10: system.extra: a key is a list, not a string",
            f"{M}:10: system.extra: a key is a mapping, not a string",
            f"{M}:10: system.extra: key 1 is not a string",
        ],
    ),
    (
        "duplicate-top-level-key",
        lambda: BASE + "schema_version: 1\n",
        [f"{M}:30: schema_version: duplicate key 'schema_version' (first at line 1)"],
    ),
    # --- ids ----------------------------------------------------------------------------------
    (
        "duplicate-id",
        lambda: e(BASE, "id: S", "id: H"),
        [f"{M}:20: packs[2].id: duplicate id 'H' (also packs[0])"],
    ),
    (
        "duplicate-id-differing-in-case",
        lambda: e(BASE, "id: S", "id: h"),
        [f"{M}:20: packs[2].id: 'h' must be upper-case in the manifest ('H')"],
    ),
    (
        "unquoted-yaml-boolean-id",
        lambda: e(BASE, "id: I", "id: TRUE"),
        [f"{M}:16: packs[1].id: must be a string, not true (a YAML boolean); quote it"],
    ),
    (
        "lower-case-id",
        lambda: e(BASE, "id: I", "id: i"),
        [f"{M}:16: packs[1].id: 'i' must be upper-case in the manifest ('I')"],
    ),
    (
        "path-like-id",
        lambda: e(BASE, "id: I", "id: ../x"),
        [f"{M}:16: packs[1].id: '../x' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "path-separator-id",
        lambda: e(BASE, "id: I", "id: A/B"),
        [f"{M}:16: packs[1].id: 'A/B' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "too-long-id",
        lambda: e(BASE, "id: I", "id: " + "X" * 33),
        [f"{M}:16: packs[1].id: '{'X' * 33}' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "non-ascii-id",
        lambda: e(BASE, "id: I", "id: É"),
        [f"{M}:16: packs[1].id: 'É' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "id-starting-with-digit",
        lambda: e(BASE, "id: I", "id: 1A"),
        [f"{M}:16: packs[1].id: '1A' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "empty-id",
        lambda: e(BASE, "id: I", "id: ''"),
        [f"{M}:16: packs[1].id: '' is not a valid pack id: {ID_RULE}"],
    ),
    (
        "id-with-trailing-newline",
        lambda: e(BASE, "id: I", 'id: "I\\n"'),
        [f"{M}:16: packs[1].id: 'I\\n' is not a valid pack id: {ID_RULE}"],
    ),
    # --- anchors, aliases, tags -------------------------------------------------------------
    (
        "anchor-and-alias",
        lambda: e(BASE, "name: Analyst Essentials", "name: &n Analyst Essentials").replace(
            "name: Reporter Premium", "name: *n"
        ),
        [
            f"{M}:13: packs[0].name: YAML anchor '&n' is not allowed",
            f"{M}:17: packs[1].name: YAML alias '*n' is not allowed",
        ],
    ),
    (
        "merge-key",
        lambda: e(BASE, "- id: S\n", "- id: S\n  <<: {status: pending}\n"),
        [f"{M}:21: packs[2].<<: unknown field '<<'"],
    ),
    (
        "explicit-str-tag",
        lambda: e(BASE, "name: Reporter Premium", "name: !!str Reporter Premium"),
        [f"{M}:17: packs[1].name: YAML tag 'tag:yaml.org,2002:str' is not allowed"],
    ),
    (
        "local-tag",
        lambda: e(BASE, "extra: {}", "extra: !custom {}"),
        [f"{M}:10: system.extra: YAML tag '!custom' is not allowed"],
    ),
    # --- text rules ---------------------------------------------------------------------------
    (
        "control-character",
        lambda: e(BASE, "name: Reporter Premium", 'name: "Reporter\\aPremium"'),
        [
            f"{M}:17: packs[1].name: contains the control character U+0007, which is not allowed",
        ],
    ),
    (
        "nul-character",
        lambda: e(BASE, "group: System infrastructure", 'group: "System\\0"'),
        [
            f"{M}:22: packs[2].group: contains the control character U+0000, which is not allowed",
        ],
    ),
    (
        "escape-sequence-in-notes",
        lambda: e(BASE, "  notes: null\n  updated", '  notes: "\\e[31mred"\n  updated'),
        [f"{M}:7: system.notes: contains the control character U+001B, which is not allowed"],
    ),
    (
        "bidi-override",
        lambda: e(BASE, "name: Reporter Premium", 'name: "Reporter \\u202Emuimerp"'),
        [
            f"{M}:17: packs[1].name: contains the control character U+202E, which is not allowed",
        ],
    ),
    (
        "bidi-isolate-in-by",
        lambda: e(BASE, "by: alice", 'by: "al\\u2066ice"'),
        [
            f"{M}:26: history[0].by: contains the control character U+2066, which is not allowed",
        ],
    ),
    (
        "zero-width-space",
        lambda: e(BASE, "name: Valhalla", 'name: "Val\\u200Bhalla"'),
        [f"{M}:3: system.name: contains the control character U+200B, which is not allowed"],
    ),
    (
        "line-separator-in-name",
        lambda: e(BASE, "name: Reporter Premium", 'name: "Reporter\u2028Premium"'),
        [
            f"{M}:17: packs[1].name: contains the control character U+2028, which is not allowed",
        ],
    ),
    (
        "newline-in-name",
        lambda: e(BASE, "name: Reporter Premium", 'name: "Reporter\\nPremium"'),
        [f"{M}:17: packs[1].name: must be one line (only notes may span lines)"],
    ),
    (
        "blank-name",
        lambda: e(BASE, "name: Reporter Premium", "name: '   '"),
        [f"{M}:17: packs[1].name: must not be blank"],
    ),
    (
        "empty-group",
        lambda: e(BASE, "group: System infrastructure", "group: ''"),
        [f"{M}:22: packs[2].group: must not be empty"],
    ),
    (
        "raw-control-byte-in-stream",
        lambda: e(BASE, "name: Reporter Premium", "name: Reporter\x07Premium"),
        [
            f"{M}:17: YAML syntax error: unacceptable character #x0007: "
            f"{'control' if LIBYAML else 'special'} characters are not allowed"
        ],
    ),
    (
        "raw-control-byte-after-non-ascii-text",
        lambda: e(
            BASE,
            "description: Valhalla professional capital markets system",
            "description: " + "é" * 60,
            "version: 1.0.0",
            "version: 1.0.0\x07",
        ),
        [
            f"{M}:5: YAML syntax error: unacceptable character #x0007: "
            f"{'control' if LIBYAML else 'special'} characters are not allowed"
        ],
    ),
    # --- length limits ------------------------------------------------------------------------
    (
        "pack-name-101",
        lambda: e(BASE, "name: Reporter Premium", "name: " + "n" * 101),
        [f"{M}:17: packs[1].name: is 101 characters; the limit is 100"],
    ),
    (
        "system-name-101",
        lambda: e(BASE, "name: Valhalla", "name: " + "v" * 101),
        [f"{M}:3: system.name: is 101 characters; the limit is 100"],
    ),
    (
        "group-61",
        lambda: e(BASE, "group: System infrastructure", "group: " + "g" * 61),
        [f"{M}:22: packs[2].group: is 61 characters; the limit is 60"],
    ),
    (
        "description-501",
        lambda: e(
            BASE,
            "description: Valhalla professional capital markets system",
            "description: " + "d" * 501,
        ),
        [f"{M}:4: system.description: is 501 characters; the limit is 500"],
    ),
    (
        "notes-2001",
        lambda: e(BASE, "  notes: null\n  updated", f"  notes: {'t' * 2001}\n  updated"),
        [f"{M}:7: system.notes: is 2,001 characters; the limit is 2,000"],
    ),
    (
        "history-notes-2001",
        lambda: e(BASE, "  changes: {}\n  notes: null", f"  changes: {{}}\n  notes: {'t' * 2001}"),
        [f"{M}:29: history[0].notes: is 2,001 characters; the limit is 2,000"],
    ),
    (
        "by-101",
        lambda: e(BASE, "by: alice", "by: " + "b" * 101),
        [f"{M}:26: history[0].by: is 101 characters; the limit is 100"],
    ),
    (
        "extra-over-64-kib",
        lambda: e(BASE, "extra: {}", "extra: {blob: " + "x" * (64 * 1024) + "}"),
        [f"{M}:10: system.extra: is 65,548 bytes serialised; the limit is 64 KiB"],
    ),
    (
        "extra-not-json",
        lambda: e(BASE, "extra: {}", "extra: {ratio: .nan}"),
        [f"{M}:10: system.extra: must be JSON-compatible (no NaN or infinity)"],
    ),
    # --- timestamps -------------------------------------------------------------------------
    (
        "naive-timestamp",
        lambda: e(BASE, "updated_at: '2025-09-20T00:00:00Z'", "updated_at: '2025-09-20T00:00:00'"),
        [
            f"{M}:8: system.updated_at: '2025-09-20T00:00:00' is not an RFC 3339 timestamp "
            "with a timezone (e.g. '2025-09-20T00:00:00Z')"
        ],
    ),
    (
        "not-rfc3339-timestamp",
        lambda: e(BASE, "- at: '2025-09-20T00:00:00Z'", "- at: 20 Sep 2025"),
        [
            f"{M}:25: history[0].at: '20 Sep 2025' is not an RFC 3339 timestamp "
            "with a timezone (e.g. '2025-09-20T00:00:00Z')"
        ],
    ),
    (
        "date-only-timestamp",
        lambda: e(BASE, "updated_at: '2025-09-20T00:00:00Z'", "updated_at: 2025-09-20"),
        [
            f"{M}:8: system.updated_at: '2025-09-20' is not an RFC 3339 timestamp "
            "with a timezone (e.g. '2025-09-20T00:00:00Z')"
        ],
    ),
    (
        "impossible-date",
        lambda: e(BASE, "updated_at: '2025-09-20T00:00:00Z'", "updated_at: '2025-02-30T00:00:00Z'"),
        [
            f"{M}:8: system.updated_at: '2025-02-30T00:00:00Z' is not a valid date and time: "
            "day is out of range for month"
        ],
    ),
    (
        "timestamp-out-of-range-in-utc",
        lambda: e(
            BASE, "updated_at: '2025-09-20T00:00:00Z'", "updated_at: '9999-12-31T23:59:59-01:00'"
        ),
        [
            f"{M}:8: system.updated_at: '9999-12-31T23:59:59-01:00' is after 9999-12-31 once in "
            "UTC; timestamps are from 1970-01-01 to 9999-12-31 (UTC)",
        ],
    ),
    (
        "completed-at-while-incomplete",
        lambda: e(BASE, "completed_at: null", "completed_at: '2025-09-19T00:00:00Z'"),
        [f"{M}:9: system.completed_at: must be null when backend_complete is false"],
    ),
    (
        "completed-at-missing-while-complete",
        lambda: e(
            BASE, "backend_complete: false", "backend_complete: true", "pending", "installed"
        ),
        [f"{M}:9: system.completed_at: must be set when backend_complete is true"],
    ),
    (
        "a-pack-pending-while-complete",
        lambda: e(
            BASE,
            "backend_complete: false",
            "backend_complete: true",
            "completed_at: null",
            "completed_at: '2025-09-20T00:00:00Z'",
        ),
        [
            f"{M}:19: packs[1].status: pending while the backend is complete; set the pack's "
            "status (valhalla-status pack set I --status installed) or mark the backend in "
            "development (valhalla-status incomplete)"
        ],
    ),
    (
        "completed-at-after-updated-at",
        lambda: e(
            BASE,
            "backend_complete: false",
            "backend_complete: true",
            "completed_at: null",
            "completed_at: '2025-09-20T00:00:01Z'",
            "pending",
            "installed",
        ),
        [
            f"{M}:9: system.completed_at: 2025-09-20T00:00:01Z is after updated_at "
            "2025-09-20T00:00:00Z"
        ],
    ),
    (
        "completed-at-after-updated-at-across-zones",
        lambda: e(
            BASE,
            "backend_complete: false",
            "backend_complete: true",
            "completed_at: null",
            "completed_at: '2025-09-20T01:00:00+00:30'",
            "pending",
            "installed",
        ),
        [
            f"{M}:9: system.completed_at: 2025-09-20T00:30:00Z is after updated_at "
            "2025-09-20T00:00:00Z"
        ],
    ),
    # --- all errors at once -----------------------------------------------------------------
    (
        "two-bad-fields-two-lines",
        lambda: e(BASE, "version: 1.0.0", "version: 1.0", "status: pending", "status: done"),
        [
            f"{M}:5: system.version: must be a string, not 1.0 (a YAML float); quote it",
            f"{M}:19: packs[1].status: 'done' {STATUS_RULE}",
        ],
    ),
    (
        "many-errors-across-sections",
        lambda: e(
            BASE,
            "backend_complete: false",
            "backend_complete: 'no'",
            "id: S",
            "id: s/../x",
            "action: init",
            "action: create",
        ),
        [
            f"{M}:6: system.backend_complete: must be true or false, not 'no'",
            f"{M}:20: packs[2].id: 's/../x' is not a valid pack id: {ID_RULE}",
            f"{M}:27: history[0].action: 'create' is not one of init, complete, incomplete, "
            "set-version, set-notes, pack-add, pack-set, pack-remove, migrate, revert, record",
        ],
    ),
    (
        "yaml-level-problems-together",
        lambda: e(
            BASE,
            "  notes: null\n  updated",
            "  notes: null\n  notes: x\n  updated",
            "name: Analyst Essentials",
            "name: !!binary QQ==",
        ),
        [
            f"{M}:8: system.notes: duplicate key 'notes' (first at line 7)",
            f"{M}:14: packs[0].name: YAML tag 'tag:yaml.org,2002:binary' is not allowed",
        ],
    ),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_manifest_is_rejected_with_located_message(
    ws: Workspace, content: Callable[[], str | bytes], expected: list[str]
) -> None:
    assert_rejected(ws, content(), expected)


def test_the_base_manifest_of_these_cases_is_valid(ws: Workspace) -> None:
    """The cases above differ from a valid file only by their edit."""
    ws.write(BASE)
    result = ws.run("validate")
    assert (result.exit_code, result.stderr, result.stdout) == (0, f"{M}: valid (3 packs)\n", "")


def test_what_the_rules_allow(ws: Workspace) -> None:
    """Multi-line notes, nested extra, emoji joiners and offsets are accepted (and normalised)."""
    text = e(
        BASE,
        "  notes: null\n  updated",
        "  notes: |-\n    line one\n    line two\n  updated",
        "extra: {}",
        "extra: {owner: {team: core, ids: [1, 2.5, true, null]}}",
        "name: Reporter Premium",
        "name: Reporter 👩‍💻 Premium",
        "updated_at: '2025-09-20T00:00:00Z'",
        "updated_at: '2025-09-20T02:00:00+02:00'",
    )
    ws.write(text)
    assert ws.run("validate").exit_code == 0
    result = ws.run("fmt")
    assert result.exit_code == 0, result.output
    data = ws.read()
    assert data["system"]["notes"] == "line one\nline two"
    assert data["system"]["updated_at"] == "2025-09-20T00:00:00Z"
    assert data["system"]["extra"] == {"owner": {"team": "core", "ids": [1, 2.5, True, None]}}
    assert data["packs"][1]["name"] == "Reporter 👩‍💻 Premium"


def test_unsafe_python_tag_does_not_execute(ws: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = e(
        BASE,
        "name: Reporter Premium",
        f"name: !!python/object/apply:os.system ['touch {marker}']",
        "extra: {}",
        f"extra: !!python/object/new:os.system ['touch {marker}']",
    )
    assert_rejected(
        ws,
        text,
        [
            f"{M}:10: system.extra: YAML tag 'tag:yaml.org,2002:python/object/new:os.system' "
            "is not allowed",
            f"{M}:17: packs[1].name: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' "
            "is not allowed",
        ],
        commands=(("validate",), MUTATION, ("fmt",), ("show",), ("pack", "list")),
    )
    assert not marker.exists()


def _billion_laughs() -> str:
    lines = ["schema_version: 1", "lol: &a [" + ", ".join(["lol"] * 10) + "]"]
    for index, (name, previous) in enumerate(zip("bcdefghi", "abcdefgh", strict=True)):
        lines.append(f"lol{index + 2}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _billion_laughs_expected() -> list[str]:
    expected = [f"{M}:2: lol: YAML anchor '&a' is not allowed"]
    for index, (name, previous) in enumerate(zip("bcdefghi", "abcdefgh", strict=True)):
        key, line = f"lol{index + 2}", index + 3
        expected.append(f"{M}:{line}: {key}: YAML anchor '&{name}' is not allowed")
        expected += [
            f"{M}:{line}: {key}[{i}]: YAML alias '*{previous}' is not allowed" for i in range(10)
        ]
    return expected


def test_billion_laughs_is_refused_without_expanding(ws: Workspace) -> None:
    assert_rejected(ws, _billion_laughs(), _billion_laughs_expected())


def test_billion_laughs_fails_within_a_small_memory_limit(ws: Workspace) -> None:
    """Expanding 10⁹ strings needs gigabytes; under a 2 GiB address-space cap the tool still
    gives the located refusal, so nothing was expanded."""
    ws.write(_billion_laughs())

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    result = subprocess.run(
        [sys.executable, "-m", "valhalla_status", "validate"],
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        preexec_fn=limit_memory,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == _billion_laughs_expected()
    assert result.stdout == ""


def test_oversized_file_is_refused_before_parsing(ws: Workspace) -> None:
    """A valid manifest padded past 32 MiB by a comment: only the size check can refuse it."""
    text = BASE + "#" + "x" * (33 * 1024 * 1024 - len(BASE) - 2) + "\n"
    assert len(text.encode()) == 33 * 1024 * 1024
    expected = [f"{M}: file is 33.0 MiB; the limit is 32 MiB (not parsed)"]
    assert_rejected(ws, text, expected)


@pytest.mark.slow
def test_file_just_under_the_size_limit_is_parsed(ws: Workspace) -> None:
    """The limit is on size, not on comments: 32 MiB minus a little is read and is valid."""
    text = BASE + "#" + "x" * (32 * 1024 * 1024 - len(BASE) - 3) + "\n"
    assert len(text.encode()) < 32 * 1024 * 1024
    ws.write(text)
    result = ws.run("validate")
    assert result.exit_code == 0
    assert result.stderr.endswith(f"{M}: valid (3 packs)\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            BASE.encode().replace(b"Reporter Premium", b"Reporter \xe9 Premium"),
            f"{M}:17: not valid UTF-8 (byte 0xe9 at column 18); save the file as UTF-8",
        ),
        (
            BASE.encode().replace(b"schema_version: 1", b"schema_version: 1\xff"),
            f"{M}:1: not valid UTF-8 (byte 0xff at column 18); save the file as UTF-8",
        ),
        (
            "\ufeff".encode("utf-16-le") + BASE.encode("utf-16-le"),
            f"{M}:1: not valid UTF-8 (byte 0xff at column 1); save the file as UTF-8",
        ),
    ],
    ids=["latin-1-byte", "stray-0xff", "utf-16"],
)
def test_invalid_utf8_is_refused(ws: Workspace, raw: bytes, expected: str) -> None:
    assert_rejected(ws, raw, [expected])


@pytest.mark.parametrize(
    ("conflict", "line", "marker"),
    [
        (
            "<<<<<<< HEAD\n  version: 1.1.0\n=======\n  version: 1.2.0\n>>>>>>> feature\n",
            5,
            "<<<<<<<",
        ),
        ("=======\n", 5, "======="),
        (">>>>>>> feature\n", 5, ">>>>>>>"),
    ],
    ids=["full-block", "separator-only", "end-only"],
)
def test_merge_conflict_markers_are_refused(
    ws: Workspace, conflict: str, line: int, marker: str
) -> None:
    text = e(BASE, "  version: 1.0.0\n", conflict)
    assert_rejected(
        ws, text, [f"{M}:{line}: merge-conflict marker '{marker}'; resolve the conflict first"]
    )


@pytest.mark.slow
def test_too_many_packs(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"] = [
        {"id": f"P{i}", "name": "n", "group": "g", "status": "installed"} for i in range(100_001)
    ]
    text = json.dumps(data)  # JSON is YAML; the quick way to write 100,001 packs
    assert_rejected(
        ws,
        text,
        [f"{M}:1: packs: has more than 100,000 packs; the limit is 100,000 (not read further)"],
        commands=(("validate",),),
    )


def test_missing_manifest_says_to_run_init(ws: Workspace) -> None:
    expected = [f"{M}: no manifest here; run `valhalla-status init` to create one"]
    commands: list[tuple[str, ...]] = [
        ("validate",),
        ("show",),
        ("fmt",),
        ("fmt", "--check"),
        ("history",),
        MUTATION,
        ("pack", "set", "H", "--status", "pending", "--no-build"),
    ]
    for command in commands:
        result = ws.run(*command)
        assert result.exit_code == 1, command
        assert result.stderr.splitlines() == expected, command
        assert "Traceback" not in result.output
        assert list(ws.root.iterdir()) == [], command  # not even the manifest folder


def test_manifest_path_is_a_folder(ws: Workspace) -> None:
    ws.manifest.mkdir(parents=True)
    for command in (("validate",), MUTATION):
        result = ws.run(*command)
        assert result.exit_code == 1
        assert result.stderr == f"{M}: is a folder, not a manifest file\n"


def _ignores_permissions(folder: Path) -> bool:
    """True when this process may create files in a mode-0555 folder (root may)."""
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return False
    probe.unlink()
    return True


_AS_NON_ROOT = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


def run_in_read_only_folder(ws: Workspace, args: tuple[str, ...]) -> tuple[int, str, str]:
    """Run the CLI with the manifest's folder read-only: (exit code, stdout, stderr).

    chmod 0555 is enough for a normal user. Root ignores it, so for root the command runs in a
    user namespace (``unshare --user``), where the same uid has no capabilities and the mode
    applies; where that is not possible the folder is made immutable (``chattr +i``), which
    stops root too.
    """
    folder = ws.manifest.parent
    folder.chmod(0o555)
    try:
        if not _ignores_permissions(folder):
            result = ws.run(*args)
            return result.exit_code, result.stdout, result.stderr
        if (
            shutil.which("unshare")
            and subprocess.run([*_AS_NON_ROOT, "true"], capture_output=True).returncode == 0
        ):
            done = subprocess.run(
                [*_AS_NON_ROOT, sys.executable, "-m", "valhalla_status", *args],
                cwd=ws.root,
                env=clean_env(),
                capture_output=True,
                text=True,
                check=False,
            )
            return done.returncode, done.stdout, done.stderr
        folder.chmod(0o755)
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        assert done.returncode == 0, f"cannot make a folder read-only for root: {done.stderr!r}"
        try:
            result = ws.run(*args)
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        return result.exit_code, result.stdout, result.stderr
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(
    "command",
    [
        MUTATION,
        ("pack", "set", "I", "--status", "installed", "--no-build", "--by", "qa"),
        ("fmt",),
    ],
    ids=["set-notes", "pack-set", "fmt"],
)
def test_read_only_folder(ws: Workspace, command: tuple[str, ...]) -> None:
    ws.write(BASE.replace("version: 1.0.0", "version:   1.0.0"))  # so fmt has work to do
    before = snapshot(ws.root)
    code, stdout, stderr = run_in_read_only_folder(ws, command)
    assert (code, stdout) == (1, "")
    assert "Traceback" not in stderr
    reasons = ("Permission denied", "Operation not permitted")
    assert stderr in {
        f"error: cannot lock {M}: {reason} (manifest/{LOCK_NAME})\n" for reason in reasons
    }
    assert snapshot(ws.root) == before
    assert sorted(os.listdir(ws.manifest.parent)) == ["valhalla.yaml"]


def test_read_only_folder_with_lock_file_present(ws: Workspace) -> None:
    """If the lock file already exists (and may be opened), the write itself is refused."""
    ws.write(BASE)
    lock = ws.manifest.parent / LOCK_NAME
    lock.touch()
    lock.chmod(0o666)
    before = snapshot(ws.root)
    code, stdout, stderr = run_in_read_only_folder(ws, MUTATION)
    assert (code, stdout) == (1, "")
    reasons = ("Permission denied", "Operation not permitted")
    assert stderr in {f"error: cannot write {M}: {reason}\n" for reason in reasons}
    assert snapshot(ws.root) == before
    assert sorted(os.listdir(ws.manifest.parent)) == [LOCK_NAME, "valhalla.yaml"]


def test_init_where_the_folder_is_a_file(ws: Workspace) -> None:
    """``--manifest`` under a path that is a regular file: init cannot create its folder."""
    (ws.root / "blocker").write_text("not a folder\n")
    result = ws.run("--manifest", "blocker/valhalla.yaml", "init", "--no-build", "--by", "qa")
    assert result.exit_code == 1
    assert result.stderr == "error: cannot create blocker: File exists\n"
    assert "Traceback" not in result.output
    assert snapshot(ws.root) == {"blocker": b"not a folder\n"}


def test_init_refuses_to_overwrite_an_invalid_manifest(ws: Workspace) -> None:
    text = e(BASE, "status: pending", "status: done")
    ws.write(text)
    result = ws.run("init", "--no-build", "--by", "qa")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {M} exists but is not valid; fix it, or replace it with `init --force`\n"
    )
    assert ws.manifest.read_text() == text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("pack", "add", "X", "--name", "bad\u202ename", "--group", "G"),
            "error: pack name: contains the control character U+202E, which is not allowed",
        ),
        (
            ("pack", "add", "X", "--name", "n" * 101, "--group", "G"),
            "error: pack name: is 101 characters; the limit is 100",
        ),
        (
            ("pack", "add", "X", "--name", "N", "--group", "two\nlines"),
            "error: pack group: must be one line (only notes may span lines)",
        ),
        (
            ("pack", "add", "../etc", "--name", "N", "--group", "G"),
            f"error: '../etc' is not a valid pack id: {ID_RULE}",
        ),
        (
            ("pack", "add", "ß", "--name", "N", "--group", "G"),
            f"error: 'ß' is not a valid pack id: {ID_RULE}",
        ),
        (
            ("pack", "add", "x" * 33, "--name", "N", "--group", "G"),
            f"error: '{'x' * 33}' is not a valid pack id: {ID_RULE}",
        ),
        (
            ("pack", "set", "I", "--name", "\x1b[2J"),
            "error: pack name: contains the control character U+001B, which is not allowed",
        ),
        (
            ("set-notes", "n" * 2001),
            "error: system notes: is 2,001 characters; the limit is 2,000",
        ),
        (
            ("set-notes", "bell\x07"),
            "error: system notes: contains the control character U+0007, which is not allowed",
        ),
        (
            ("complete", "--force", "--notes", "\u202e"),
            "error: system notes: contains the control character U+202E, which is not allowed",
        ),
        (
            ("set-notes", "ok", "--by", "b" * 101),
            "error: history by: is 101 characters; the limit is 100",
        ),
        (
            ("set-version", "1.0"),
            f"error: '1.0' {SEMVER_HINT}",
        ),
        (
            ("set-version", "01.2.3"),
            f"error: '01.2.3' {SEMVER_HINT}",
        ),
    ],
    ids=[
        "bidi-name",
        "long-name",
        "multi-line-group",
        "path-like-id",
        "non-ascii-id",
        "too-long-id",
        "escape-in-name",
        "long-notes",
        "control-in-notes",
        "bidi-in-complete-notes",
        "long-by",
        "two-part-version",
        "leading-zero-version",
    ],
)
def test_hostile_values_on_the_command_line(
    ws: Workspace, args: tuple[str, ...], expected: str
) -> None:
    ws.write(BASE)
    before = snapshot(ws.root)
    extra = () if "--by" in args else ("--by", "qa")
    result = ws.run(*args, "--no-build", *extra)
    assert result.exit_code == 1, result.output
    assert result.stderr == expected + "\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert snapshot(ws.root) == before


_LOCATED = re.compile(rf"^{re.escape(M)}(:[1-9][0-9]*)?: \S")
_FRAGMENTS = [b"&a ", b"*a", b"!!", b"{", b"[", b"- ", b": ", b"\n", b"  ", b"'", b'"', b"?"]
_FRAGMENTS += [b"|", b">", b"%", b"@", b"#", b"---\n", b"...\n", b"\t", b"~", b"<<: ", b".inf"]
_FRAGMENTS += [b"2025-13-45", b"\\u", b"\xf0\x9f\x98\x80", b"\xc3", b"\x00", b"\x1b[2J"]


@pytest.mark.slow
@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.data())
def test_no_corruption_of_the_file_gives_a_traceback(data: st.DataObject) -> None:
    """Random edits of a valid manifest: every outcome is 'valid' or located lines, exit 1."""
    raw = bytearray(BASE.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            del raw[at : at + data.draw(st.integers(1, 8))]
        else:
            chunk = data.draw(
                st.one_of(st.binary(min_size=1, max_size=4), st.sampled_from(_FRAGMENTS))
            )
            raw[at:at] = chunk
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "work"
        (root / "manifest").mkdir(parents=True)
        env: dict[str, str | None] = {"SOURCE_DATE_EPOCH": None}
        (root / M).write_bytes(bytes(raw))
        cwd = os.getcwd()
        os.chdir(root)
        try:
            for args in (("validate",), ("show", "--json"), MUTATION):
                result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
                assert result.exit_code in (0, 1), result.output
                assert "Traceback" not in result.output
                assert "internal error" not in result.output
                if result.exit_code == 1:
                    assert result.stdout == ""
                    assert all(_LOCATED.match(line) for line in result.stderr.splitlines())
                    assert (root / M).read_bytes() == bytes(raw)
        finally:
            os.chdir(cwd)


@pytest.mark.parametrize(
    "command",
    [
        ["pack", "set", "H", "--status", "pending", "--no-build"],
        ["complete", "--no-build"],
        ["fmt"],
        ["build"],
    ],
)
def test_a_failing_command_leaves_no_lock_file_behind(ws: Workspace, command: list[str]) -> None:
    """The first command on a folder that fails (invalid manifest, refused change) writes
    nothing at all: not even the lock file a successful change would leave."""
    data = small_manifest()  # pack I is pending, so `complete` is refused
    if command[0] != "complete":
        data["system"]["version"] = "1.0"
    ws.write(data)
    before = sorted(p.name for p in ws.manifest.parent.iterdir())
    result = ws.run(*command)
    assert result.exit_code == 1
    assert sorted(p.name for p in ws.manifest.parent.iterdir()) == before == ["valhalla.yaml"]
    assert sorted(p.name for p in ws.root.iterdir()) == ["manifest"]


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029", "\r"], ids=["nel", "ls", "ps", "cr"])
def test_lines_are_counted_as_editors_count_them_whatever_yaml_calls_a_break(
    ws: Workspace, brk: str
) -> None:
    """YAML also ends a line at NEL, LS, PS and a lone CR; messages count LF only."""
    dup = e(BASE, "  notes: null\n  updated_at", "  notes: null\n  notes: x\n  updated_at")
    broken = e(BASE, "  extra: {}", "  extra: {a: 1")
    syntax = "did not find expected ',' or '}'" if LIBYAML else "expected ',' or '}', but got ':'"
    for text, last in (
        (dup, f"{M}:9: system.notes: duplicate key 'notes' (first at line 8)"),
        (broken, f"{M}:12: YAML syntax error: while parsing a flow mapping {syntax}"),
    ):
        ws.write(f"# status{brk}# manifest\n" + text)
        result = ws.run("validate")
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1] == last
