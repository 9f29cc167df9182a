"""A signed site: keys, signed builds, refresh, and verified reads through python-tuf's real
``ngclient`` from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import Workspace, clean_env, snapshot
from status_server import Server, serve
from tuf.api.metadata import Metadata, Timestamp

from valhalla_status.publishing.publish import publish_site
from valhalla_status.publishing.signing import key_source, sign_site, signing

PAST = datetime(2025, 9, 20, tzinfo=timezone.utc)


@pytest.fixture
def signed(ws: Workspace, tmp_path: Path) -> Path:
    """A workspace with a manifest and keys (the private keys outside it); the key folder."""
    assert ws.run("init", "--no-build").exit_code == 0
    keys = tmp_path / "keys"
    result = ws.run("keys", "init", "--keys", str(keys))
    assert result.exit_code == 0, result.stderr
    return keys


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    """A server of ``tmp_path/served`` (a copy of whichever site a test publishes)."""
    folder = tmp_path / "served"
    folder.mkdir()
    with serve(folder) as running:
        yield running


def publish(ws: Workspace, server: Server, site: Path | None = None) -> None:
    """Serve a copy of ``site`` (default: the workspace's site) as the server's whole folder."""
    shutil.rmtree(server.root)
    shutil.copytree(site or ws.root / "site", server.root)


def check(ws: Workspace, server: Server, *args: str, root: str = "1.root.json") -> tuple[int, str]:
    trusted = ws.root / "manifest" / "tuf" / root
    result = ws.run("check", "--url", server.url + "/", "--trusted-root", str(trusted), *args)
    return result.exit_code, result.stderr


def expiry(site: Path) -> datetime:
    data = (site / "tuf" / "timestamp.json").read_bytes()
    return Metadata[Timestamp].from_bytes(data).signed.expires


# --- verified reads ---------------------------------------------------------------------------


def test_a_fresh_signed_site_verifies(ws: Workspace, signed: Path, served: Server) -> None:
    result = ws.run("build", "--keys", str(signed))
    assert result.stderr == "site: built (52 files, signed)\n"
    publish(ws, served)
    until = expiry(ws.root / "site")
    code, said = check(ws, served, "--all-installed")
    assert (code, said) == (
        0,
        "ready: Valhalla 1.0.0: all 16 packs installed "
        f"(verified; signed until {until:%Y-%m-%d %H:%M} UTC)\n",
    )
    trusted = str(ws.root / "manifest" / "tuf" / "1.root.json")
    result = ws.run("check", "--url", served.url + "/", "--trusted-root", trusted, "--json")
    document = json.loads(result.stdout)
    stamp = Metadata[Timestamp].from_bytes((ws.root / "site/tuf/timestamp.json").read_bytes())
    assert (result.exit_code, document["updated_at"], document["verified"]) == (
        1,
        json.loads((ws.root / "site/status.json").read_text())["updated_at"],
        {
            "metadata_version": stamp.signed.version,
            "expires": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    assert "/tuf/timestamp.json" in served.paths()


def test_a_signed_build_publishes_the_documents_of_an_unsigned_one_byte_for_byte(
    ws: Workspace, signed: Path
) -> None:
    assert ws.run("build").exit_code == 0
    unsigned = snapshot(ws.root / "site")
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    signed_site = snapshot(ws.root / "site")
    assert {p: d for p, d in signed_site.items() if not p.startswith("tuf/")} == unsigned
    assert sorted(p for p in signed_site if p.startswith("tuf/")) == [
        "tuf/1.root.json",
        "tuf/root.json",
        "tuf/snapshot.json",
        "tuf/targets.json",
        "tuf/timestamp.json",
    ]
    targets = json.loads(signed_site["tuf/targets.json"])["signed"]["targets"]
    packs = {p for p in unsigned if p.startswith("packs/")}
    assert (len(packs), set(targets)) == (16, {"status.json", "summary.json", "packs.json"} | packs)
    assert ws.run("build").exit_code == 0
    assert snapshot(ws.root / "site") == unsigned


def test_an_expired_timestamp_is_refused(ws: Workspace, signed: Path, served: Server) -> None:
    made = signing(ws.manifest, key_source(str(signed), {}), now=lambda: PAST)
    publish_site(ws.manifest, ws.root / "site", sign=functools.partial(sign_site, made))
    publish(ws, served)
    assert check(ws, served) == (
        3,
        "error: the published status expired at 2025-09-21 00:00 UTC: "
        "the publisher has not refreshed it\n",
    )


def test_a_document_changed_after_signing_is_refused(
    ws: Workspace, signed: Path, served: Server
) -> None:
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    status = served.root / "status.json"
    text = status.read_text()
    status.write_text(text.replace('"backend_complete": false', '"backend_complete": true'))
    assert status.read_text() != text
    assert check(ws, served) == (
        3,
        "error: status.json is not the document that was signed (its hash or length differs): "
        "it was changed after signing\n",
    )


def test_a_signature_by_a_key_not_in_the_root_is_refused(
    ws: Workspace, signed: Path, served: Server
) -> None:
    from securesystemslib.signer import CryptoSigner

    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    path = served.root / "tuf" / "timestamp.json"
    forged = Metadata[Timestamp].from_bytes(path.read_bytes())
    forged.signed.version += 1
    forged.sign(CryptoSigner.generate_ed25519())
    path.write_bytes(forged.to_bytes())
    code, said = check(ws, served)
    assert code == 3
    assert said.startswith("error: bad signature: ")
    assert said.endswith("the metadata is not signed by the keys the trusted root names\n")


def test_a_rollback_to_an_older_signed_site_is_refused(
    ws: Workspace, signed: Path, served: Server, tmp_path: Path
) -> None:
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    older = tmp_path / "older"
    shutil.copytree(ws.root / "site", older)
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    assert check(ws, served)[0] == 1  # verified (and not ready: the backend is incomplete)
    publish(ws, served, older)
    old = Metadata[Timestamp].from_bytes((older / "tuf/timestamp.json").read_bytes())
    new = old.signed.version + 1  # the second build went one above the site it replaced
    assert check(ws, served) == (
        3,
        f"error: rollback: New timestamp version {old.signed.version} must be >= {new}: "
        "the site serves older signed metadata than was verified before\n",
    )


def test_a_rotated_root_is_followed_from_the_old_trusted_root(
    ws: Workspace, signed: Path, served: Server
) -> None:
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    assert check(ws, served)[0] == 1
    old_timestamp_key = (signed / "timestamp.pem").read_bytes()
    for role in ("timestamp", "root"):
        result = ws.run("keys", "rotate", role, "--keys", str(signed))
        assert result.exit_code == 0, result.stderr
    assert (signed / "timestamp.pem").read_bytes() != old_timestamp_key
    roots = sorted(p.name for p in (ws.root / "manifest" / "tuf").iterdir())
    assert roots == ["1.root.json", "2.root.json", "3.root.json", "root.json"]
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    code, said = check(ws, served)
    assert (code, said.startswith("not ready: Valhalla 1.0.0")) == (1, True)
    assert "/tuf/3.root.json" in served.paths()
    # The timestamp key replaced no longer signs anything the root accepts.
    result = ws.run("build", env={"VALHALLA_STATUS_KEYS": str(signed)})
    assert result.exit_code == 0
    env = {"VALHALLA_STATUS_TIMESTAMP_KEY": old_timestamp_key.decode()}
    result = ws.run("refresh", "--keys", str(signed), env=env)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the timestamp key given is not one the newest root names for timestamp "
        "(a key from before a rotation?)\n",
    )


def test_refresh_extends_the_expiry_without_changing_the_documents(
    ws: Workspace, signed: Path, served: Server
) -> None:
    assert ws.run("build", "--keys", str(signed), "--expires", "1h").exit_code == 0
    before = snapshot(ws.root / "site")
    first = expiry(ws.root / "site")
    result = ws.run("refresh", "--keys", str(signed), "--expires", "2d")
    until = expiry(ws.root / "site")
    assert (result.exit_code, result.stderr) == (
        0,
        f"site: re-signed timestamp; valid until {until:%Y-%m-%d %H:%M} UTC\n",
    )
    # Signed an hour's validity, then refreshed for two days (the two moments a little apart).
    assert timedelta(hours=47) <= until - first < timedelta(hours=47, minutes=5)
    after = snapshot(ws.root / "site")
    assert {p for p in before if before[p] != after[p]} == {"tuf/timestamp.json"}
    publish(ws, served)
    assert check(ws, served)[0] == 1


def test_refresh_of_an_unsigned_site_is_refused(ws: Workspace, signed: Path) -> None:
    assert ws.run("build").exit_code == 0
    before = snapshot(ws.root / "site")
    result = ws.run("refresh", "--keys", str(signed))
    assert (result.exit_code, result.stderr) == (
        1,
        "error: site is not a signed site (it has no tuf/targets.json): "
        "run `valhalla-status build` with keys first\n",
    )
    assert snapshot(ws.root / "site") == before


def test_an_unsigned_site_read_with_a_trusted_root_is_unavailable(
    ws: Workspace, signed: Path, served: Server
) -> None:
    assert ws.run("build").exit_code == 0
    publish(ws, served)
    assert check(ws, served) == (
        3,
        f"error: {served.url}/tuf/timestamp.json not found: the site is not signed "
        "(build it with keys)\n",
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"{not json", "it is not TUF root metadata"),
        (lambda data: data.replace(b'"version": 1', b'"version": 2', 1), "signed by 0/1 keys"),
        (lambda data: b"{}", "it is not TUF root metadata"),
    ],
    ids=["not JSON", "edited", "empty"],
)
def test_a_trusted_root_that_is_no_usable_root_is_named_before_the_site_is_asked(
    ws: Workspace, signed: Path, served: Server, damage: Any, reason: str
) -> None:
    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    trusted = ws.root / "manifest" / "tuf" / "1.root.json"
    trusted.write_bytes(damage(trusted.read_bytes()))
    code, said = check(ws, served)
    assert code == 1, said
    assert said.startswith(f"error: the trusted root {trusted} is not usable: "), said
    assert reason in said and said.endswith("give the root.json the site's publisher shared\n")
    assert served.url not in said


def test_a_trusted_root_needs_a_url(ws: Workspace, signed: Path) -> None:
    result = ws.run("check", "--file", "site/status.json", "--trusted-root", "x.json")
    assert result.exit_code == 2
    assert "--trusted-root verifies a site read with --url" in result.stderr


@pytest.mark.parametrize("expires", ["1x", "-1d", "", "1.5d", "0d"])
def test_a_bad_expires_is_refused_with_or_without_keys(
    ws: Workspace, signed: Path, expires: str
) -> None:
    before = snapshot(ws.root)
    said = (
        f"error: --expires: {expires!r} is not a duration such as 12h, 1d or 90m (s, m, h or d)\n"
    )
    for keys in ([], ["--keys", str(signed)]):
        result = ws.run("build", "--expires", expires, *keys)
        assert (result.exit_code, result.stderr) == (1, said), keys
        assert snapshot(ws.root) == before


@pytest.mark.parametrize("expires", ["366d", "3000000d", "9999999d", "8761h", "31536001s"])
def test_an_expires_longer_than_the_root_s_lifetime_is_refused_without_a_write(
    ws: Workspace, signed: Path, expires: str
) -> None:
    before = snapshot(ws.root)
    said = f"error: --expires: {expires!r} is longer than the root's lifetime, 365 days\n"
    for command in (["build", "--keys", str(signed)], ["refresh", "--keys", str(signed)]):
        result = ws.run(*command, "--expires", expires)
        assert (result.exit_code, result.stderr) == (1, said), command
        assert snapshot(ws.root) == before
    for longest in ("365d", "31536000s"):
        assert ws.run("build", "--keys", str(signed), "--expires", longest).exit_code == 0


# --- keys ------------------------------------------------------------------------------------


def test_private_keys_are_refused_inside_the_repository(ws: Workspace, tmp_path: Path) -> None:
    assert ws.run("init", "--no-build").exit_code == 0
    before = snapshot(tmp_path)
    result = ws.run("keys", "init", "--keys", "secrets")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: refusing to write private keys into secrets: it is inside the status "
        f"repository ({ws.root}); give a folder outside it\n",
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    before = snapshot(tmp_path)
    result = ws.run("keys", "init", "--keys", str(tmp_path / "keys"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: refusing to write private keys into {tmp_path / 'keys'}: it is inside the "
        f"status repository ({tmp_path}); give a folder outside it\n",
    )
    assert snapshot(tmp_path) == before
    assert not (ws.root / "secrets").exists()


def test_private_keys_are_refused_inside_the_site_folder_every_build_replaces(
    ws: Workspace, signed: Path, tmp_path: Path
) -> None:
    pub = tmp_path / "pub"
    assert ws.run("build", "--site", str(pub), "--keys", str(signed)).exit_code == 0
    inside = pub / "keys"
    refused = (
        f"error: refusing to keep private keys in {inside}: it is inside the site folder "
        f"({pub}), which every build replaces; give a folder outside it\n"
    )
    before = snapshot(tmp_path)
    for command in (
        ["keys", "init", "--keys", str(inside)],
        ["keys", "rotate", "timestamp", "--keys", str(inside)],
    ):
        result = ws.run("--site", str(pub), *command)
        assert (result.exit_code, result.stderr) == (1, refused), command
        assert snapshot(tmp_path) == before

    # Keys put there by hand: a signed build, and a refresh, refuse them and leave them.
    shutil.copytree(signed, inside)
    before = snapshot(tmp_path)
    for command in (["build"], ["refresh"]):
        result = ws.run(*command, "--site", str(pub), "--keys", str(inside))
        assert (result.exit_code, result.stderr) == (1, refused), command
        assert snapshot(tmp_path) == before
    assert sorted(path.name for path in inside.iterdir()) == sorted(
        path.name for path in signed.iterdir()
    )


def test_keys_init_writes_the_root_beside_the_manifest_once(ws: Workspace, signed: Path) -> None:
    assert sorted(p.name for p in signed.iterdir()) == [
        "root.pem",
        "snapshot.pem",
        "targets.pem",
        "timestamp.pem",
    ]
    assert {oct(p.stat().st_mode & 0o777) for p in signed.iterdir()} == {"0o600"}
    root = ws.root / "manifest" / "tuf"
    assert (root / "1.root.json").read_bytes() == (root / "root.json").read_bytes()
    result = ws.run("keys", "init", "--keys", str(signed.parent / "other"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {root} already holds roots: use `valhalla-status keys rotate ROLE`\n",
    )


def test_without_python_tuf_signing_says_how_to_install_it(ws: Workspace, tmp_path: Path) -> None:
    assert ws.run("init", "--no-build").exit_code == 0
    code = (
        "import sys; sys.modules['tuf'] = None; from valhalla_status.cli import main; "
        "main(['keys', 'init', '--keys', sys.argv[1]])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "keys")],
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        "error: signing and verifying need python-tuf; install it: "
        "python -m pip install 'valhalla-status[tuf]'\n",
    )


def test_the_client_in_verified_mode_reads_a_signed_site_and_refuses_a_changed_one(
    ws: Workspace, signed: Path, served: Server
) -> None:
    from valhalla_status.client import StatusClient, StatusUnavailable

    assert ws.run("build", "--keys", str(signed)).exit_code == 0
    publish(ws, served)
    root = ws.root / "manifest" / "tuf" / "1.root.json"
    client = StatusClient(served.url + "/", trusted_root=root)
    status = client.fetch()
    stamp = Metadata[Timestamp].from_bytes((ws.root / "site/tuf/timestamp.json").read_bytes())
    assert (status.version, client.verified.version, client.verified.expires) == (
        "1.0.0",
        stamp.signed.version,
        stamp.signed.expires,
    )
    (served.root / "status.json").write_text("{}\n")
    with pytest.raises(StatusUnavailable, match=r"it was changed after signing$"):
        StatusClient(served.url + "/status.json", trusted_root=root).fetch()
