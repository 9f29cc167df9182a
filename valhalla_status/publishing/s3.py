"""``publish``: the built site uploaded to an S3-compatible bucket, in an order readers never see
half-done.

Each object carries the ``Content-Type`` and ``Cache-Control`` the site's ``_headers`` gives the
file (:mod:`valhalla_status.publishing.headers`). Objects go up in dependency order: the
schemas, the pack
files and the older history pages first, then the documents that name them, ``status.json``
and ``index.html``; a signed site's metadata after the documents it signs, ``timestamp.json``
last; so a reader polling during the upload never gets a document naming an object that is not
there yet, nor signed metadata naming a document not yet replaced. Objects the site no longer
has are removed only after, and only those this publish uploaded there (its record lists them,
and each carries the SHA-256 of its bytes in its metadata); anything else under the prefix is
left alone, and so is every object under a deeper prefix holding another publish's record. A
record at ``<prefix>.valhalla-publish.json`` lists what was uploaded (its ETag, checksum and
headers), so an unchanged file is not uploaded again.

boto3 is an optional dependency (``valhalla-status[s3]``), imported only here, only when used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ValhallaError
from ..storage.files import NotRegularFileError, os_reason, read_regular_file
from .headers import HOST_FILES, object_headers

RECORD = ".valhalla-publish.json"
"""The record of what was published, beside the site's objects under the prefix."""
MARK = "valhalla-status-sha256"
"""The metadata every uploaded object carries: the SHA-256 of its bytes."""
MISSING_BOTO3 = "publish to S3 needs boto3: pip install 'valhalla-status[s3]'"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}", re.IGNORECASE)
_HISTORY_PAGE = re.compile(r"history/(\d+)\.(json|html)")
_MAX_FILE = 256 * 2**20


@dataclass(frozen=True)
class Target:
    """Where the site goes: a bucket and a key prefix ('' or ending in ``/``)."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, path: str) -> str:
        return self.prefix + path


@dataclass(frozen=True)
class Step:
    """One change to the bucket: ``upload`` or ``delete`` of the object at ``key``."""

    action: Literal["upload", "delete"]
    key: str
    bucket: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class PublishResult:
    """What :func:`publish_site` did (or, with ``dry_run``, would do), in order; how many files
    were already there; and the objects under the prefix it left alone (not its own)."""

    target: str
    steps: list[Step] = field(default_factory=list)
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)
    dry_run: bool = False


def parse_target(text: str) -> Target:
    """``s3://bucket/prefix`` as a :class:`Target`; :class:`ValhallaError` for anything else."""
    rest = text.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if rest == text or not _BUCKET.fullmatch(bucket):
        raise ValhallaError(
            f"{text!r} is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX"
        )
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValhallaError(f"{text!r}: the prefix has an empty, '.' or '..' part")
    return Target(bucket, prefix + "/" if prefix else "")


# Where a file comes in the upload, by name: what a document names goes up before it. A signed
# site's roots name no document; its targets and snapshot name the documents; its timestamp
# names the snapshot, and goes last of all.
_RANKS = {"index.html": 4, "status.json": 3, "tuf/timestamp.json": 6}


def upload_rank(path: str) -> tuple[int, int, str]:
    """Where ``path`` comes in the upload: what a document names goes up before it."""
    page = _HISTORY_PAGE.fullmatch(path)
    if page:  # the oldest page first: each page names the one after it
        return (1, -int(page.group(1)), path)
    if path in _RANKS:
        return (_RANKS[path], 0, path)
    if path.startswith("tuf/"):
        return (0 if path.endswith("root.json") else 5, 0, path)
    if path.startswith("schema/"):
        return (0, 0, path)
    return (1 if path.startswith("packs/") else 2, 0, path)


def read_site(site_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every file of the built site to publish (not the host's configuration), read under the
    site's lock so that no build swaps it half-way."""
    from ..site import list_files
    from ..storage.locking import manifest_lock
    from .sitefolder import has_mark

    shown = os.fspath(site_dir)
    root = Path(os.path.realpath(site_dir))
    if not root.is_dir():
        raise ValhallaError(f"{shown}: no such site folder; run `valhalla-status build` first")
    if not has_mark(root):
        raise ValhallaError(
            f"{shown}: not a site valhalla-status built (no .valhalla-site mark); "
            "run `valhalla-status build` first"
        )
    files: dict[str, bytes] = {}
    with manifest_lock(root):
        for path in list_files(root):
            if path.rpartition("/")[2] in HOST_FILES:
                continue
            files[path] = _read(root, path, shown)
    return files


def _read(root: Path, path: str, shown: str) -> bytes:
    try:
        return read_regular_file(root / path, _MAX_FILE, follow_symlinks=False)
    except NotRegularFileError as exc:
        problem = f"is {exc.kind}"
    except OSError as exc:
        problem = f"cannot be read: {os_reason(exc)}"
    raise ValhallaError(
        f"{shown}/{path.rstrip('/')}: {problem}, not a file the build wrote; "
        "run `valhalla-status build`"
    )


@dataclass(frozen=True)
class _Local:
    """A file to publish: its bytes, their checksum and the headers its object carries."""

    data: bytes
    sha256: str
    headers: dict[str, str]

    def recorded(self, etag: str) -> dict[str, str]:
        return {"etag": etag, "sha256": self.sha256, **self.headers}


def _local(files: dict[str, bytes]) -> dict[str, _Local]:
    return {
        path: _Local(data, hashlib.sha256(data).hexdigest(), object_headers(path))
        for path, data in sorted(files.items(), key=lambda item: upload_rank(item[0]))
    }


class _Bucket:
    """The few S3 calls ``publish`` makes, with every failure turned into one clear line."""

    def __init__(self, client: Any, target: Target, errors: Any) -> None:
        self.client = client
        self.target = target
        self.errors = errors

    def call(self, what: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except self.errors.NoCredentialsError:
            raise ValhallaError(
                "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)"
            ) from None
        except self.errors.ClientError as exc:
            raise ValhallaError(self._refusal(what, exc.response)) from None
        except self.errors.EndpointConnectionError:
            endpoint = self.client.meta.endpoint_url
            raise ValhallaError(f"cannot reach the S3 endpoint {endpoint}") from None
        except self.errors.BotoCoreError as exc:
            raise ValhallaError(f"{self.target.url}: {what}: {exc}") from None

    def _refusal(self, what: str, response: dict[str, Any]) -> str:
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        if code == "NoSuchBucket":
            return f"s3://{self.target.bucket}: no such bucket"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"the S3 credentials were refused: {message}"
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return f"{self.target.url}: access denied ({what}): {message}"
        return f"{self.target.url}: {what} failed: {code}: {message}"

    def listing(self) -> dict[str, str]:
        """Key -> ETag of every object under the prefix."""

        def pages() -> dict[str, str]:
            found: dict[str, str] = {}
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.target.bucket, Prefix=self.target.prefix):
                for item in page.get("Contents", []):
                    found[item["Key"]] = item["ETag"]
            return found

        listed: dict[str, str] = self.call("listing the objects", pages)
        return listed

    def record(self) -> dict[str, dict[str, str]] | None:
        """What the last publish uploaded (path -> its record); None when no record is read."""
        key = self.target.key(RECORD)

        def fetch() -> bytes | None:
            try:
                body: bytes = self.client.get_object(Bucket=self.target.bucket, Key=key)[
                    "Body"
                ].read()
            except self.errors.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return body

        body = self.call(f"reading {RECORD}", fetch)
        try:
            files = json.loads(body)["files"] if body is not None else None
        except (ValueError, KeyError, TypeError, RecursionError):  # damaged: none read
            return None
        return files if isinstance(files, dict) else None

    def ours(self, key: str) -> bool:
        """Whether the object at ``key`` was uploaded by this tool (it carries the mark)."""
        head = self.call(
            f"reading {key}",
            lambda: self.client.head_object(Bucket=self.target.bucket, Key=key),
        )
        return MARK in head.get("Metadata", {})

    def put(self, key: str, data: bytes, headers: dict[str, str], sha256: str) -> str:
        response = self.call(
            f"uploading {key}",
            lambda: self.client.put_object(
                Bucket=self.target.bucket,
                Key=key,
                Body=data,
                ContentType=headers["Content-Type"],
                CacheControl=headers["Cache-Control"],
                Metadata={MARK: sha256},
            ),
        )
        etag: str = response["ETag"]
        return etag

    def delete(self, key: str) -> None:
        self.call(
            f"deleting {key}",
            lambda: self.client.delete_object(Bucket=self.target.bucket, Key=key),
        )


def _client(endpoint_url: str | None) -> tuple[Any, Any]:
    """A boto3 S3 client and botocore's exceptions module; a clear line without boto3."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise ValhallaError(MISSING_BOTO3) from None
    config = botocore.config.Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60
    )
    try:
        client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
    except ValueError as exc:  # a malformed --endpoint-url
        raise ValhallaError(f"--endpoint-url: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise ValhallaError(str(exc)) from None
    return client, botocore.exceptions


def _changed(
    local: dict[str, _Local],
    listing: dict[str, str],
    record: dict[str, dict[str, str]] | None,
    target: Target,
) -> Iterator[str]:
    """The paths to upload: those whose object is missing, or differs from the file (by the
    record of what was uploaded and the ETag it got)."""
    for path, item in local.items():
        etag = listing.get(target.key(path))
        recorded = (record or {}).get(path)
        if etag is None or recorded != item.recorded(etag):
            yield path


def publish_site(
    site_dir: str | os.PathLike[str],
    location: str,
    *,
    endpoint_url: str | None = None,
    dry_run: bool = False,
) -> PublishResult:
    """Upload the built site at ``site_dir`` to ``location`` (``s3://bucket/prefix``): the
    changed files in dependency order, then remove the objects it uploaded before that the
    site no longer has. With ``dry_run``, only say what would change."""
    target = parse_target(location)
    local = _local(read_site(site_dir))
    client, errors = _client(endpoint_url)
    bucket = _Bucket(client, target, errors)
    listing = bucket.listing()
    record = bucket.record()
    uploads = list(_changed(local, listing, record, target))
    result = PublishResult(target.url, dry_run=dry_run, unchanged=len(local) - len(uploads))
    others = _other_sites(listing, target)
    stale = [k for k in listing if k.removeprefix(target.prefix) not in local]
    result.steps = [Step("upload", target.key(path), target.bucket) for path in uploads]
    for key in (k for k in stale if k != target.key(RECORD)):
        recorded = key.removeprefix(target.prefix) in (record or {})
        if key.startswith(others):  # another site's: said only when this one published it
            if recorded:
                result.kept.append(key)
        elif recorded and bucket.ours(key):
            result.steps.append(Step("delete", key, target.bucket))
        else:
            result.kept.append(key)
    if dry_run or not result.steps:
        return result
    published = {p: r for p, r in (record or {}).items() if target.key(p) in listing}
    for path in uploads:
        item = local[path]
        etag = bucket.put(target.key(path), item.data, item.headers, item.sha256)
        published[path] = item.recorded(etag)
    for step in result.steps[len(uploads) :]:
        bucket.delete(step.key)
        published.pop(step.key.removeprefix(target.prefix), None)
    _write_record(bucket, target, published)
    return result


def _other_sites(listing: dict[str, str], target: Target) -> tuple[str, ...]:
    """The prefixes under ``target``'s that hold another publish's record: what lies there is
    another site's, never this one's to remove."""
    return tuple(
        key.removesuffix(RECORD)
        for key in listing
        if key.rpartition("/")[2] == RECORD and key != target.key(RECORD)
    )


def _write_record(bucket: _Bucket, target: Target, published: dict[str, dict[str, str]]) -> None:
    body = json.dumps({"files": dict(sorted(published.items()))}, indent=1).encode() + b"\n"
    bucket.call(
        f"writing {RECORD}",
        lambda: bucket.client.put_object(
            Bucket=target.bucket,
            Key=target.key(RECORD),
            Body=body,
            ContentType="application/json",
            CacheControl="no-store",
        ),
    )
