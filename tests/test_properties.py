"""Hostile input, property-based, with Hypothesis.

(a) Any valid manifest round-trips load → write → load unchanged (and byte-stable).
(b) Any byte-level or structural mutation of a valid manifest either loads as valid or fails
    with ManifestError whose every line is located (``file:line: …``); through the CLI that is
    exit 1, those lines, no traceback, and the file is not written.

Examples per test: ``VALHALLA_HYPOTHESIS_PROFILE=ci`` (default, short) or ``long``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valhalla_status.cli import main
from valhalla_status.errors import ManifestError
from valhalla_status.manifest import dump_manifest, load_manifest, parse_manifest, write_manifest
from valhalla_status.models import (
    ACTIONS,
    FORBIDDEN_CHAR,
    FORBIDDEN_CHAR_MULTILINE,
    PACK_ID_PATTERN,
    STATUSES,
    HistoryEntry,
    Manifest,
)
from valhalla_status.rules.formats import PACK_FIELDS, SYSTEM_FIELDS, pack_change_key

PROFILES = {"ci": 100, "long": 2_000}  # examples per property
PROFILE = os.environ.get("VALHALLA_HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"VALHALLA_HYPOTHESIS_PROFILE={PROFILE!r}: use one of ci, long")
EXAMPLES = PROFILES[PROFILE]
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- valid manifests -----------------------------------------------------------------------

CHARS = st.characters(exclude_categories=("Cs",))  # lone surrogates cannot be UTF-8
_REFUSED = "".join(chr(c) for c in range(0x10000) if FORBIDDEN_CHAR.match(chr(c)))
_REFUSED_MULTILINE = _REFUSED.replace("\n", "")
assert not any(FORBIDDEN_CHAR.match(chr(c)) for c in range(0x10000, 0x110000, 97))


def one_line(max_size: int) -> st.SearchStrategy[str]:
    alphabet = st.characters(exclude_categories=("Cs",), exclude_characters=_REFUSED)
    return st.text(alphabet, min_size=1, max_size=max_size).filter(
        lambda s: s.strip() and not FORBIDDEN_CHAR.search(s)
    )


def multi_line(max_size: int) -> st.SearchStrategy[str]:
    alphabet = st.characters(exclude_categories=("Cs",), exclude_characters=_REFUSED_MULTILINE)
    return st.text(alphabet, min_size=1, max_size=max_size).filter(
        lambda s: s.strip() and not FORBIDDEN_CHAR_MULTILINE.search(s)
    )


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(CHARS, max_size=20)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(CHARS, max_size=8), inner),
    max_leaves=12,
)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)
VERSIONS = st.builds(
    lambda a, b, c, pre, build: f"{a}.{b}.{c}{pre}{build}",
    st.integers(0, 10**6),
    st.integers(0, 999),
    st.integers(0, 999),
    st.sampled_from(["", "-rc.1", "-alpha", "-0.3.7", "-x.7.z.92"]),
    st.sampled_from(["", "+build.5", "+20130313144700", "+exp.sha.5114f85"]),
)
PACK_IDS = st.from_regex(PACK_ID_PATTERN, fullmatch=True)


# The keys a change records: a system field, a pack, or one of a pack's fields.
CHANGE_KEYS = st.sampled_from([*SYSTEM_FIELDS, "updated_at"]) | st.builds(
    pack_change_key, PACK_IDS, st.sampled_from(["", *PACK_FIELDS])
)


@st.composite
def manifests(draw: Any) -> Manifest:
    updated = draw(MOMENTS)
    complete = draw(st.booleans())
    completed = (
        draw(
            st.datetimes(min_value=datetime(1970, 1, 1), max_value=updated.replace(tzinfo=None))
        ).replace(tzinfo=timezone.utc)
        if complete
        else None
    )
    ids = draw(st.lists(PACK_IDS, max_size=8, unique=True))
    packs = [
        {
            "id": pack_id,
            "name": draw(one_line(100)),
            "group": draw(one_line(60)),
            # a complete backend has no pending pack
            "status": draw(
                st.sampled_from([s for s in STATUSES if not complete or s != "pending"])
            ),
        }
        for pack_id in ids
    ]
    history = [
        {
            "at": draw(MOMENTS),
            "by": draw(one_line(100)),
            "action": draw(st.sampled_from(ACTIONS)),
            "changes": draw(st.dictionaries(CHANGE_KEYS, st.tuples(JSON, JSON).map(list))),
            "notes": draw(st.none() | multi_line(200)),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    system: dict[str, Any] = {
        "name": draw(one_line(100)),
        "description": draw(one_line(500)),
        "version": draw(VERSIONS),
        "backend_complete": complete,
        "notes": draw(st.none() | multi_line(2000)),
        "updated_at": updated,
        "completed_at": completed,
        "extra": draw(st.dictionaries(st.text(CHARS, max_size=10), JSON, max_size=4)),
    }
    if draw(st.booleans()):
        system["base_url"] = draw(
            st.sampled_from(["https://status.example.com", "https://x.org/valhalla/status/"])
        )
    return Manifest.model_validate(
        {"schema_version": 1, "system": system, "packs": packs, "history": history}
    )


def as_recorded(manifest: Manifest) -> Manifest:
    """``manifest`` with each history entry as recorded: without the id and the landing time a
    read adds (the entry's file name, and git's word on when it landed)."""
    fields = HistoryEntry.model_fields
    history = [
        HistoryEntry.model_construct(**{name: getattr(entry, name) for name in fields})
        for entry in manifest.history
    ]
    return manifest.model_copy(update={"history": history})


@pytest.mark.slow
@PROPERTY
@given(manifest=manifests())
def test_valid_manifests_round_trip_unchanged(manifest: Manifest) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valhalla.yaml"
        write_manifest(path, manifest)
        loaded = load_manifest(path)
        assert as_recorded(loaded) == manifest
        first = path.read_bytes()
        assert write_manifest(path, loaded) is None, "a re-write of the same data is a no-op"
        assert path.read_bytes() == first
        assert dump_manifest(load_manifest(path)).encode() == first


# --- mutations of a valid manifest ---------------------------------------------------------

BASE: dict[str, Any] = {
    "schema_version": 1,
    "system": {
        "name": "Valhalla",
        "description": "Valhalla professional capital markets system",
        "version": "1.2.3-rc.1",
        "backend_complete": True,
        "notes": "Line one\nline two: 'quoted' & <b>",
        "updated_at": "2025-09-21T00:00:00Z",
        "completed_at": "2025-09-20T00:00:00Z",
        "extra": {"owner": "ops", "tiers": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}},
    },
    "packs": [
        {"id": "H", "name": "Analyst Essentials", "group": "Professional", "status": "installed"},
        {"id": "I", "name": "Reporter Premium", "group": "Professional", "status": "experimental"},
        {"id": "S", "name": "Rollout Manager", "group": "System", "status": "deprecated"},
    ],
    "history": [
        {
            "at": "2025-09-20T00:00:00Z",
            "by": "alice",
            "action": "complete",
            "changes": {"backend_complete": [False, True], "notes": [None, "Line one"]},
            "notes": "Backend verification passed",
        }
    ],
}
BASE_TEXT = dump_manifest(Manifest.model_validate(BASE))
WHOLE_FILE = re.compile(r": the manifest is empty; run `valhalla-status init`$")

BYTES = st.binary(max_size=12) | st.sampled_from(
    [b"\x00", b"\xff\xfe", b"\t", b"\r", b": ", b"- ", b"&a ", b"*a", b"!!python/object ",
     b"<<: ", b"'", b'"', b"{", b"[", b"#", b"%YAML 1.1\n", b"---\n", b"<<<<<<< HEAD\n",
     b"\xe2\x80\xae", b"\xef\xbb\xbf", b"  ", b"\n", b"? ", b"|", b">-", b"~", b"0x1F", b"1e9"]
)  # fmt: skip


@st.composite
def byte_mutations(draw: Any) -> bytes:
    data = bytearray(BASE_TEXT.encode())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "lines"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(BYTES)
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "replace":
            data[at : at + 1] = draw(BYTES)
        elif kind == "truncate":
            del data[at:]
        else:
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            choice = draw(st.sampled_from(["swap", "duplicate", "indent", "dedent"]))
            if choice == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            elif choice == "duplicate":
                lines.insert(j, lines[i])
            elif choice == "indent":
                lines[i] = b"  " + lines[i]
            else:
                lines[i] = lines[i].lstrip(b" ")
            data = bytearray(b"\n".join(lines))
    return bytes(data)


YAML_VALUES = st.recursive(
    JSON_SCALARS | st.sampled_from(["1.0", "yes", "2025-09-20", "instaled", "h", "../x", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(CHARS, max_size=6), inner),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def structural_mutations(draw: Any) -> bytes:
    data = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        *parents, last = path
        holder: Any = data
        for part in parents:
            holder = holder[part]
        if not isinstance(holder, (dict, list)):
            continue
        kind = draw(st.sampled_from(["set", "delete", "add-key", "duplicate"]))
        if kind == "set":
            holder[last] = draw(YAML_VALUES)
        elif kind == "delete":
            del holder[last]
        elif kind == "add-key" and isinstance(holder, dict):
            holder[draw(st.text(CHARS, min_size=1, max_size=10))] = draw(YAML_VALUES)
        elif kind == "duplicate" and isinstance(holder, list):
            holder.append(json.loads(json.dumps(holder[last])))
    flow = draw(st.booleans())
    return yaml.safe_dump(
        data, sort_keys=draw(st.booleans()), allow_unicode=True, default_flow_style=flow
    ).encode()


def check_loads_or_located(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valhalla.yaml"
        path.write_bytes(raw)
        # YAML breaks lines at \r too (and so do editors): count lines as it does, at most.
        lines_in_file = len(raw.decode("utf-8", "replace").splitlines()) + 1
        try:
            manifest = load_manifest(path)
        except ManifestError as exc:
            assert exc.problems, "an error names at least one problem"
            for problem in exc.problems:
                located = re.match(rf"{re.escape(str(path))}:(\d+): .", problem)
                if located:
                    assert 1 <= int(located.group(1)) <= lines_in_file, problem
                else:
                    assert WHOLE_FILE.search(problem), f"unlocated: {problem!r}"
                assert "Traceback" not in problem
            valid, problems = False, exc.problems
        else:
            valid, problems = True, []
            assert parse_manifest(dump_manifest(manifest)) == manifest

        # Through the CLI: a mutation either works or fails with exactly those lines; an
        # invalid file is never written.
        runner = CliRunner()
        result = runner.invoke(
            main,
            ["--manifest", str(path), "pack", "set", "h", "--status", "experimental",
             "--no-build", "--by", "prop"],
            env={"SOURCE_DATE_EPOCH": "1767225600"},
        )  # fmt: skip
        assert isinstance(result.exception, (SystemExit, type(None))), result.exception
        assert "Traceback" not in result.output
        if not valid:
            assert result.exit_code == 1
            assert path.read_bytes() == raw, "an invalid manifest was written"
            assert result.output.splitlines() == problems
        else:
            assert result.exit_code in (0, 1), result.output
            load_manifest(path)  # still valid after whatever the command did

        # The other readers of a manifest: validate, fmt, and diff against a valid one.
        base = Path(folder) / "base.yaml"
        base.write_text(BASE_TEXT, encoding="utf-8")
        current = path.read_bytes()
        for args in (["validate"], ["fmt"], ["diff", str(base), str(path)]):
            result = runner.invoke(main, ["--manifest", str(path), *args])
            assert isinstance(result.exception, (SystemExit, type(None))), result.exception
            assert "Traceback" not in result.output and "internal error" not in result.output
            assert result.exit_code == (1 if not valid else 0), (args, result.output)
            if not valid:
                assert path.read_bytes() == current, f"{args[0]} wrote an invalid manifest"
        if valid:
            assert dump_manifest(load_manifest(path)).encode() == path.read_bytes()  # fmt'd


@pytest.mark.slow
@PROPERTY
@given(raw=byte_mutations())
def test_byte_mutations_load_or_fail_located(raw: bytes) -> None:
    check_loads_or_located(raw)


@pytest.mark.slow
@PROPERTY
@given(raw=structural_mutations())
def test_structural_mutations_load_or_fail_located(raw: bytes) -> None:
    check_loads_or_located(raw)


def test_mutation_checker_rejects_an_unlocated_error() -> None:
    """The located-error check itself can fail: an empty file is the only unlocated case."""
    check_loads_or_located(b"")
    assert not WHOLE_FILE.search("x.yaml: packs[0].id: bad")
    assert re.match(r"x\.yaml:(\d+): \S", "x.yaml: bad") is None


def test_round_trip_covers_awkward_text() -> None:
    """Strings YAML is known to mangle, pinned as explicit cases beside the random ones."""
    awkward = [
        "yes", "no", "on", "null", "~", "1.0", "0x1F", "1e3", "2025-09-20", "- x", ": x",
        "#x", "x #y", "'", '"', "\\", "a: b", "{x}", "[x]", "&a", "*a", "!x", "%x", "@x",
        "`x`", "\u2028x", "x\u2029", "\u00a0x\u00a0", "\ufffe", "\U0001f600", "é", " lead",
        "trail ", "|", ">", "?", "<<",
    ]  # fmt: skip
    data = json.loads(json.dumps(BASE))
    data["packs"] = [
        {"id": f"A{i}", "name": text, "group": text, "status": "installed"}
        for i, text in enumerate(awkward)
        if not FORBIDDEN_CHAR.search(text)
    ]
    data["system"]["notes"] = "\n".join(data["packs"][i]["name"] for i in range(9)) + "\n\n  x\n"
    data["system"]["extra"] = {text: text for text in [*awkward, "\x85", "a\x85\nb", "\x00"]}
    assert len(data["packs"]) > 30
    manifest = Manifest.model_validate(data)
    assert as_recorded(parse_manifest(dump_manifest(manifest))) == manifest


def test_time_zones_normalise_to_utc() -> None:
    data = json.loads(json.dumps(BASE))
    data["system"]["updated_at"] = "2025-09-21T02:00:00+02:00"
    data["system"]["completed_at"] = "2025-09-20T00:00:00.5Z"
    manifest = parse_manifest(yaml.safe_dump(data))
    assert manifest.system.updated_at == datetime(2025, 9, 21, tzinfo=timezone.utc)
    assert manifest.system.completed_at == datetime(
        2025, 9, 20, 0, 0, 0, 500000, tzinfo=timezone.utc
    )
    again = parse_manifest(dump_manifest(manifest))
    assert again == manifest
    assert again.system.updated_at - again.system.completed_at == timedelta(seconds=86399.5)


# --- the site of any valid manifest -------------------------------------------------------

_SITE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")


@pytest.mark.slow
@PROPERTY
@given(manifest=manifests())
def test_any_valid_manifest_builds_a_valid_site(manifest: Manifest) -> None:
    from xml.etree import ElementTree

    import jsonschema

    from valhalla_status.publishing.schemas import schema_for
    from valhalla_status.site import render_site

    manifest = parse_manifest(dump_manifest(manifest))  # as a build reads it: with entry ids
    files = render_site(manifest)
    validators: dict[str, Any] = {}
    for path, data in files.items():
        # Every path is a plain relative path: nothing can land outside the site folder.
        assert _SITE_PATH.fullmatch(path), path
        assert ".." not in path.split("/")
        if path.endswith(".json") and not path.startswith("schema/"):
            name = schema_for(path)
            if name not in validators:
                schema = json.loads(files[f"schema/{name}"])
                validators[name] = jsonschema.Draft202012Validator(
                    schema, format_checker=jsonschema.FormatChecker()
                )
            validators[name].validate(json.loads(data))
            assert data.endswith(b"\n")
    for path in ("feed.xml", "badge.svg"):
        ElementTree.fromstring(files[path])  # well-formed XML whatever the strings hold
    for path in ("index.html", "404.html", "feed.xml", "badge.svg"):
        text = files[path].decode("utf-8")
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]", text), path
    assert files["index.html"].rstrip(b"\n").endswith(b"</html>")
    status = json.loads(files["status.json"])
    assert [p["id"] for p in status["packs"]] == [p.id for p in manifest.packs]
    assert status["name"] == manifest.system.name
    assert status["notes"] == manifest.system.notes


# --- any sequence of commands --------------------------------------------------------------

IDS = st.sampled_from(["H", "I", "S", "X", "y-1"])
TEXTS = st.sampled_from(["Alpha", "Beta <b>", "{{ 7*7 }}", "x" * 100, "x" * 101, "bad\u202e", ""])
OPERATIONS = st.one_of(
    st.tuples(st.just("add"), IDS, TEXTS, TEXTS, st.sampled_from(STATUSES)),
    st.tuples(st.just("set"), IDS, st.none() | st.sampled_from(STATUSES), st.none() | TEXTS),
    st.tuples(st.just("remove"), IDS),
    st.tuples(st.just("complete"), st.booleans(), st.none() | TEXTS),
    st.tuples(st.just("incomplete"), st.none() | TEXTS),
    st.tuples(
        st.just("version"),
        st.sampled_from(["0.9.0", "1.2.3", "2.0.0-rc.1", "1.0", "x"]),
        st.booleans(),
    ),
    st.tuples(st.just("notes"), st.none() | TEXTS),
)


def apply(path: Path, operation: tuple[Any, ...], moment: datetime) -> Any:
    from valhalla_status import service

    kind, *args = operation
    common = {"by": "prop", "now": moment}
    if kind == "add":
        return service.add_pack(path, args[0], args[1], args[2], args[3], **common)
    if kind == "set":
        return service.set_pack(path, args[0], status=args[1], name=args[2], **common)
    if kind == "remove":
        return service.remove_pack(path, args[0], **common)
    if kind == "complete":
        extra = {} if args[1] is None else {"notes": args[1]}
        return service.set_backend_complete(path, True, force=args[0], **extra, **common)
    if kind == "incomplete":
        extra = {} if args[0] is None else {"notes": args[0]}
        return service.set_backend_complete(path, False, **extra, **common)
    if kind == "version":
        return service.update_version(path, args[0], force=args[1], **common)
    return service.set_notes(path, args[0], **common)


@pytest.mark.slow
@settings(PROPERTY, max_examples=max(EXAMPLES // 2, 10))
@given(operations=st.lists(OPERATIONS, max_size=12))
def test_any_sequence_of_commands_keeps_every_change(operations: list[tuple[Any, ...]]) -> None:
    """Each command either changes the manifest and records exactly one entry saying what, or
    is refused with a ValhallaError and writes nothing; the file always loads as what the
    command returned."""
    from valhalla_status.errors import ValhallaError
    from valhalla_status.service import compute_changes

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valhalla.yaml"
        write_manifest(path, Manifest.model_validate(BASE))
        moment = datetime(2025, 9, 22, tzinfo=timezone.utc)
        for operation in operations:
            before_bytes = path.read_bytes()
            before = load_manifest(path)
            moment += timedelta(minutes=1)
            try:
                outcome = apply(path, operation, moment)
            except ValhallaError as exc:
                assert "\n" not in exc.format_message()
                assert path.read_bytes() == before_bytes, f"{operation} refused but wrote"
                continue
            after = load_manifest(path)
            assert after == outcome.manifest
            if outcome.entry is None:
                assert path.read_bytes() == before_bytes, f"{operation}: no change, but wrote"
                continue
            assert after.history == [*before.history, outcome.entry]
            assert outcome.entry.changes == compute_changes(before, after)
            assert outcome.entry.changes, "an entry records what changed"
            assert after.system.updated_at == outcome.entry.at == moment
        assert dump_manifest(load_manifest(path)).encode() == path.read_bytes()


ANY_TEXT = st.text(st.characters(), max_size=120)  # surrogates too: argv bytes that are not UTF-8


@pytest.mark.slow
@settings(PROPERTY, max_examples=max(EXAMPLES // 2, 10))
@given(
    command=st.sampled_from(["add", "set", "notes", "version", "remove", "show"]),
    first=ANY_TEXT | IDS,
    second=ANY_TEXT,
)
def test_any_command_line_text_is_done_or_refused_in_one_line(
    command: str, first: str, second: str
) -> None:
    """Arbitrary text as ids, names, groups, notes and versions: exit 0 with a valid manifest,
    or exit 1 with one line of error and the file untouched; never a traceback."""
    args = {
        "add": ["pack", "add", first, "--name", second, "--group", second or "G"],
        "set": ["pack", "set", first, "--name", second],
        "notes": ["set-notes", second or first],
        "version": ["set-version", first, "--force"],
        "remove": ["pack", "remove", first],
        "show": ["pack", "show", first],
    }[command]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valhalla.yaml"
        write_manifest(path, Manifest.model_validate(BASE))
        before = path.read_bytes()
        result = CliRunner().invoke(
            main,
            [
                "--manifest",
                str(path),
                *args,
                *([] if command == "show" else ["--no-build", "--by", "p"]),
            ],
            env={"SOURCE_DATE_EPOCH": "1767225600"},
        )
        assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
        assert "Traceback" not in result.output and "internal error" not in result.output
        assert result.exit_code in (0, 1, 2), result.output
        if result.exit_code != 0:
            assert path.read_bytes() == before
        if result.exit_code == 1:  # (2 is click's usage error, e.g. for a text like '-x')
            assert len(result.stderr.splitlines()) == 1, result.stderr
        load_manifest(path)
        assert dump_manifest(load_manifest(path)).encode() == path.read_bytes()
