"""``publish s3://BUCKET/PREFIX``: the built site uploaded to a real S3 API over HTTP (moto's
server on loopback, driven by boto3), in an order a reader never sees half-done, with each
object's headers from the rules of ``_headers``, nothing uploaded twice, and only its own
objects removed."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import EPOCH2_TEXT, Workspace, clean_env, small_manifest
from moto.server import ThreadedMotoServer
from test_consumers import header_rules

from valhalla_status.publishing.s3 import MARK, RECORD

# The type each kind of file is served with where ``_headers`` does not name it: what hosts
# guess from the extension.
GUESSED_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}
PREFIX = "status/"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port: a real S3 API over HTTP."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(endpoint: str, credentials: None) -> tuple[Any, str]:
    """A fresh bucket, and a client of its own (the tests' view of it)."""
    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    name = f"status-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def objects(client: Any, name: str) -> dict[str, str]:
    """Key -> ETag of every object in the bucket."""
    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
    return {item["Key"]: item["ETag"] for item in listed}


def publish(ws: Workspace, endpoint: str, name: str, *args: str) -> tuple[int, str, str]:
    result = ws.run("publish", f"s3://{name}/{PREFIX}", "--endpoint-url", endpoint, *args)
    return result.exit_code, result.stdout, result.stderr


def site_files(ws: Workspace) -> dict[str, bytes]:
    site = ws.root / "site"
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name != "_headers"
    }


def built(ws: Workspace, data: dict[str, Any] | None = None) -> dict[str, bytes]:
    ws.write(data or small_manifest())
    assert ws.run("build").exit_code == 0
    return site_files(ws)


def published(ws: Workspace, endpoint: str, bucket: tuple[Any, str]) -> tuple[Any, str]:
    """The small manifest's site built and published to the bucket; the bucket's client and
    name."""
    client, name = bucket
    built(ws)
    assert publish(ws, endpoint, name)[0] == 0
    return client, name


def changed_manifest() -> dict[str, Any]:
    """The small manifest one day later: pack H removed, pack X added (pending)."""
    data = small_manifest()
    removed = data["packs"].pop(0)
    added = {"id": "X", "name": "Exchange", "group": "Professional", "status": "pending"}
    data["packs"].append(added)
    data["system"]["updated_at"] = EPOCH2_TEXT
    entry = {"at": EPOCH2_TEXT, "by": "bob", "notes": None}
    data["history"] += [
        {**entry, "action": "pack-remove", "changes": {"packs.H": [removed, None]}},
        {**entry, "action": "pack-add", "changes": {"packs.X": [None, dict(added)]}},
    ]
    return data


@pytest.mark.slow
def test_a_first_publish_uploads_every_file_the_site_has_in_dependency_order(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    files = built(ws)
    code, out, err = publish(ws, endpoint, name)
    assert code == 0, err
    uploaded = [line.removeprefix(f"upload s3://{name}/{PREFIX}") for line in out.splitlines()]
    assert sorted(uploaded) == sorted(files)
    assert uploaded[-2:] == ["status.json", "index.html"]
    first_document = min(uploaded.index(p) for p in ("packs.json", "history.json", "summary.json"))
    assert all(uploaded.index(p) < first_document for p in files if p.startswith("packs/"))
    assert all(uploaded.index(p) < first_document for p in files if p.startswith("schema/"))
    assert err == f"s3://{name}/{PREFIX}: {len(files)} uploaded, 0 deleted, 0 unchanged\n"
    stored = objects(client, name)
    assert set(stored) == {PREFIX + p for p in files} | {PREFIX + RECORD}
    for path, data in files.items():
        assert client.get_object(Bucket=name, Key=PREFIX + path)["Body"].read() == data


@pytest.mark.slow
def test_each_object_carries_the_type_and_caching_that_headers_gives_its_file(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    files = built(ws)
    assert publish(ws, endpoint, name)[0] == 0
    rules = header_rules((ws.root / "site" / "_headers").read_text(encoding="utf-8"))
    everywhere = dict(rules[0][1])
    assert rules[0][0] == "/*"
    named = {path: dict(headers) for path, headers in rules[1:]}
    assert named["/metrics.txt"] == {"content-type": "text/plain; version=0.0.4; charset=utf-8"}
    assert named["/feed.xml"] == {"content-type": "application/atom+xml; charset=utf-8"}
    for path in files:
        head = client.head_object(Bucket=name, Key=PREFIX + path)
        guessed = GUESSED_TYPES[Path(path).suffix]
        assert head["ContentType"] == named.get(f"/{path}", {}).get("content-type", guessed), path
        assert head["CacheControl"] == everywhere["cache-control"], path


@pytest.mark.slow
def test_publishing_an_unchanged_site_again_uploads_nothing(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    files = built(ws)
    assert publish(ws, endpoint, name)[0] == 0
    before = {
        k: client.head_object(Bucket=name, Key=k)["LastModified"] for k in objects(client, name)
    }
    code, out, err = publish(ws, endpoint, name)
    assert (code, out) == (0, "")
    assert err == f"s3://{name}/{PREFIX}: 0 uploaded, 0 deleted, {len(files)} unchanged\n"
    after = {
        k: client.head_object(Bucket=name, Key=k)["LastModified"] for k in objects(client, name)
    }
    assert after == before


@pytest.mark.slow
def test_an_object_changed_behind_its_back_is_uploaded_again(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    files = built(ws)
    assert publish(ws, endpoint, name)[0] == 0
    client.put_object(Bucket=name, Key=PREFIX + "status.json", Body=b"{}")
    client.delete_object(Bucket=name, Key=PREFIX + "packs/I.json")
    code, out, _ = publish(ws, endpoint, name)
    assert code == 0
    assert (
        out == f"upload s3://{name}/{PREFIX}packs/I.json\nupload s3://{name}/{PREFIX}status.json\n"
    )
    for path in ("status.json", "packs/I.json"):
        body = client.get_object(Bucket=name, Key=PREFIX + path)["Body"].read()
        assert body == files[path]


@pytest.mark.slow
def test_a_dry_run_lists_what_would_change_and_changes_nothing(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = published(ws, endpoint, bucket)
    files = built(ws, changed_manifest())
    before = objects(client, name)
    code, out, err = publish(ws, endpoint, name, "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert f"would upload s3://{name}/{PREFIX}packs/X.json" in lines
    assert lines[-3:] == [
        f"would upload s3://{name}/{PREFIX}status.json",
        f"would upload s3://{name}/{PREFIX}index.html",
        f"would delete s3://{name}/{PREFIX}packs/H.json",
    ]
    uploads = sum(line.startswith("would upload ") for line in lines)
    assert err == (
        f"s3://{name}/{PREFIX}: {uploads} to upload, 1 to delete, {len(files) - uploads} "
        "unchanged (dry run: nothing changed)\n"
    )
    assert objects(client, name) == before


class Reader(threading.Thread):
    """Polls the published site for as long as the upload runs: fetches every document that
    names other objects and checks that each object it names is there."""

    def __init__(self, client: Any, name: str) -> None:
        super().__init__(daemon=True)
        self.client, self.name = client, name
        self.condition = threading.Condition()
        self.rounds = 0
        self.stopped = False
        self.problems: list[str] = []
        self.documents_read = 0

    def get(self, path: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.name, Key=PREFIX + path)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def look(self) -> None:
        """One reading of the site as a client reads it: the documents that name other objects,
        then whether each object they name is there (the bucket's listing, read after them)."""
        named: dict[str, list[str]] = {}
        for document in ("status.json", "packs.json", "history.json"):
            body = self.get(document)
            if body is not None:
                data = json.loads(body)
                packs = [f"packs/{pack['id']}.json" for pack in data.get("packs", [])]
                named[document] = [*packs, data["$schema"]]
        page = self.get("index.html")
        if page is not None:
            named["index.html"] = re.findall(r'href="([^"#:]+)"', page.decode())
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=PREFIX).get("Contents", [])
        present = {item["Key"].removeprefix(PREFIX) for item in listed}
        self.documents_read += len(named)
        for document, paths in named.items():
            self.problems += [f"{document} names {p}, not there" for p in paths if p not in present]

    def run(self) -> None:
        while True:
            with self.condition:
                if self.stopped:
                    return
            self.look()
            with self.condition:
                self.rounds += 1
                self.condition.notify_all()

    def see_the_bucket_as_it_is_now(self, *_: Any, **__: Any) -> None:
        """Wait until a whole reading has begun after this moment (called after each change
        the upload makes, so that every state the bucket passes through is read)."""
        with self.condition:
            wanted = self.rounds + 2
            self.condition.wait_for(lambda: self.rounds >= wanted or self.stopped, timeout=60)

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
        self.join()


@pytest.mark.slow
def test_a_reader_polling_during_the_upload_never_sees_a_document_naming_a_missing_object(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = published(ws, endpoint, bucket)
    files = built(ws, changed_manifest())
    reader = Reader(client, name)
    made: list[tuple[str, str]] = []
    real_client = boto3.session.Session.client

    def watched_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        """The client publish makes, telling each change it makes and waiting after each one
        until the reader has read the bucket as it is then."""
        made_client = real_client(self, *args, **kwargs)
        for operation in ("PutObject", "DeleteObject"):
            made_client.meta.events.register(
                f"before-parameter-build.s3.{operation}",
                lambda model, params, **_: made.append((model.name, params["Key"])),
            )
            made_client.meta.events.register(
                f"after-call.s3.{operation}", reader.see_the_bucket_as_it_is_now
            )
        return made_client

    monkeypatch.setattr(boto3.session.Session, "client", watched_client)
    reader.start()
    try:
        code, out, err = publish(ws, endpoint, name)
    finally:
        reader.stop()
    assert code == 0, err
    assert reader.problems == []
    assert reader.rounds >= len(made) > 0
    assert reader.documents_read >= 4 * reader.rounds
    keys = [key.removeprefix(PREFIX) for _, key in made]
    assert keys[-1] == RECORD
    assert made[-2] == ("DeleteObject", PREFIX + "packs/H.json")
    assert keys.index("packs/X.json") < keys.index("packs.json") < keys.index("status.json")
    assert keys.index("status.json") < keys.index("index.html") < keys.index("packs/H.json")
    assert out.splitlines()[-1] == f"delete s3://{name}/{PREFIX}packs/H.json"
    stored = objects(client, name)
    assert set(stored) == {PREFIX + p for p in files} | {PREFIX + RECORD}


@pytest.mark.slow
def test_objects_it_did_not_upload_are_left_alone(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    built(ws)
    client.put_object(Bucket=name, Key=PREFIX + "packs/H.json", Body=b"someone else's")
    client.put_object(Bucket=name, Key=PREFIX + "notes/readme.txt", Body=b"ours, not the tool's")
    client.put_object(Bucket=name, Key="elsewhere/status.json", Body=b"outside the prefix")
    assert publish(ws, endpoint, name)[0] == 0
    built(ws, changed_manifest())
    code, out, err = publish(ws, endpoint, name)
    assert code == 0
    assert f"delete s3://{name}/{PREFIX}packs/H.json" in out.splitlines()
    assert "delete" not in out.replace(f"delete s3://{name}/{PREFIX}packs/H.json", "")
    assert err.startswith(
        f"note: left 1 other object(s) under s3://{name}/{PREFIX} alone (not published there by "
        "valhalla-status)\n"
    )
    stored = objects(client, name)
    assert PREFIX + "notes/readme.txt" in stored and "elsewhere/status.json" in stored
    head = client.head_object(Bucket=name, Key=PREFIX + "packs/X.json")
    assert MARK in head["Metadata"]


NOT_S3 = "is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3://no-such-bucket-here/status", "s3://no-such-bucket-here: no such bucket"),
        ("https://example.org/x", f"'https://example.org/x' {NOT_S3}"),
        ("s3://b/../x", f"'s3://b/../x' {NOT_S3}"),
        ("s3://bucket/a/../x", "'s3://bucket/a/../x': the prefix has an empty, '.' or '..' part"),
    ],
)
def test_a_bad_location_is_one_line_and_nothing_is_written(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str], location: str, message: str
) -> None:
    built(ws)
    result = ws.run("publish", location, "--endpoint-url", endpoint)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")


def test_missing_credentials_are_one_line(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = bucket
    built(ws)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, err = publish(ws, endpoint, name)
    assert (code, out) == (1, "")
    assert err == (
        "error: no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(or AWS_PROFILE)\n"
    )
    assert objects(client, name) == {}


def test_an_unreachable_endpoint_is_one_line(ws: Workspace, credentials: None) -> None:
    built(ws)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    result = ws.run("publish", "s3://status-site/x", "--endpoint-url", closed)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot reach the S3 endpoint {closed}\n"


def test_a_site_not_built_is_refused_before_any_request(ws: Workspace, credentials: None) -> None:
    ws.write(small_manifest())
    result = ws.run("publish", "s3://status-site/x", "--endpoint-url", "http://127.0.0.1:9")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: site: no such site folder; run `valhalla-status build` first\n"
    (ws.root / "other").mkdir()
    (ws.root / "other" / "status.json").write_text("{}")
    result = ws.run("publish", "s3://status-site/x", "--site", "other")
    assert result.stderr == (
        "error: other: not a site valhalla-status built (no .valhalla-site mark); "
        "run `valhalla-status build` first\n"
    )


def test_without_boto3_publish_says_how_to_install_it(ws: Workspace) -> None:
    built(ws)
    hide = "import sys; sys.modules['boto3'] = None; from valhalla_status.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "publish", "s3://status-site/x"],
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: publish to S3 needs boto3: pip install 'valhalla-status[s3]'\n"


def test_a_signed_site_s_metadata_goes_up_after_what_it_signs_and_the_timestamp_last() -> None:
    from valhalla_status.publishing.s3 import upload_rank

    files = [
        "tuf/timestamp.json",
        "status.json",
        "tuf/targets.json",
        "tuf/1.root.json",
        "packs/K.json",
        "tuf/snapshot.json",
        "index.html",
        "tuf/root.json",
        "summary.json",
    ]
    order = sorted(files, key=upload_rank)
    assert order[-1] == "tuf/timestamp.json"
    for signed in ("status.json", "summary.json", "packs/K.json"):
        for metadata in ("tuf/targets.json", "tuf/snapshot.json"):
            assert order.index(signed) < order.index(metadata), (signed, metadata)
    assert order.index("tuf/1.root.json") < order.index("tuf/targets.json")


@pytest.mark.slow
@pytest.mark.parametrize("outer", ["", PREFIX])
def test_a_site_published_under_a_deeper_prefix_is_never_deleted_by_one_above_it(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str], outer: str
) -> None:
    client, name = bucket
    files = built(ws)
    inner = f"{outer}preview/"
    assert ws.run("publish", f"s3://{name}/{inner}", "--endpoint-url", endpoint).exit_code == 0
    preview = {k: v for k, v in objects(client, name).items() if k.startswith(inner)}

    result = ws.run("publish", f"s3://{name}/{outer}", "--endpoint-url", endpoint)

    assert result.exit_code == 0, result.output
    assert result.stdout.count("delete") == 0
    assert result.stderr == f"s3://{name}/{outer}: {len(files)} uploaded, 0 deleted, 0 unchanged\n"
    after = objects(client, name)
    assert {k: v for k, v in after.items() if k.startswith(inner)} == preview


@pytest.mark.slow
def test_only_what_the_last_publish_there_recorded_is_deleted(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = published(ws, endpoint, bucket)
    client.delete_object(Bucket=name, Key=PREFIX + RECORD)  # the record lost
    built(ws, changed_manifest())

    code, out, err = publish(ws, endpoint, name)

    assert code == 0
    assert "delete" not in out
    assert PREFIX + "packs/H.json" in objects(client, name)
    assert err.startswith(f"note: left 1 other object(s) under s3://{name}/{PREFIX} alone")


@pytest.mark.slow
@pytest.mark.parametrize(
    "record", [b"{not json", b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"[]"]
)
def test_a_damaged_record_deletes_nothing_and_is_written_again(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str], record: bytes
) -> None:
    client, name = published(ws, endpoint, bucket)
    client.put_object(Bucket=name, Key=PREFIX + RECORD, Body=record)
    built(ws, changed_manifest())

    code, out, err = publish(ws, endpoint, name)

    assert code == 0, err
    assert "delete" not in out and "internal error" not in err
    assert err.startswith(f"note: left 1 other object(s) under s3://{name}/{PREFIX} alone")
    body = client.get_object(Bucket=name, Key=PREFIX + RECORD)["Body"].read()
    assert "packs/X.json" in json.loads(body)["files"]


@pytest.mark.slow
def test_what_this_site_published_under_another_site_s_prefix_is_said_left_alone(
    ws: Workspace, endpoint: str, bucket: tuple[Any, str]
) -> None:
    client, name = published(ws, endpoint, bucket)
    client.put_object(Bucket=name, Key=PREFIX + "packs/" + RECORD, Body=b'{"files": {}}')
    built(ws, changed_manifest())  # pack H removed

    code, out, err = publish(ws, endpoint, name)

    assert code == 0, err
    assert "delete" not in out
    assert err.startswith(f"note: left 1 other object(s) under s3://{name}/{PREFIX} alone")
    assert PREFIX + "packs/H.json" in objects(client, name)
