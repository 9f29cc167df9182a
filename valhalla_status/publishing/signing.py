"""The published status as a TUF repository: keys, roots, and the signed metadata of a site.

python-tuf's metadata API writes the metadata; securesystemslib's ``CryptoSigner`` signs with
ed25519 keys. Both are imported only when a signing function runs (the ``[tuf]`` extra).

- **Roots** live in the status repository, beside the manifest: ``<manifest folder>/tuf/``
  holds every version ``1.root.json``, ``2.root.json``, … and ``root.json`` (the newest). They
  are committed and reviewed like any change; a build publishes all of them.
- **Private keys** never go into the repository: a key folder outside it holds
  ``<role>.pem`` (PKCS#8 PEM, mode 0600), or CI passes each key in an environment variable
  (:data:`KEY_VARIABLES`). The root key is needed only by ``keys init`` and ``keys rotate``.
- **A signed site** holds the documents exactly as an unsigned build writes them, and
  ``tuf/``: the roots, ``targets.json`` (the JSON documents a reader verifies),
  ``snapshot.json`` and ``timestamp.json``. ``consistent_snapshot`` is false: a build swaps
  the whole site in at once, so one version of each file is published.
- **Versions only go up**: a role's version is the signing time in seconds since 1970, or one
  more than the version the site being replaced holds when that is higher. A build from
  nothing (CI) still goes up, as long as the signing clock is right, which expiry needs anyway.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import RefusedError, ValhallaError
from ..rules.formats import SIGNING_ROLES, human_time, quoted
from ..storage.files import os_reason
from .sitefolder import within

ROLES = SIGNING_ROLES
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
KEYS_VARIABLE = "VALHALLA_STATUS_KEYS"
KEY_VARIABLES = {role: f"VALHALLA_STATUS_{role.upper()}_KEY" for role in ROLES}
METADATA_FOLDER = "tuf"  # in the site, and beside the manifest
ROOT_LIFETIME = timedelta(days=365)
TARGETS_LIFETIME = timedelta(days=90)
SNAPSHOT_LIFETIME = timedelta(days=7)
TIMESTAMP_LIFETIME = timedelta(days=1)
INSTALL_HINT = "python -m pip install 'valhalla-status[tuf]'"
_PACK_DOCUMENT = re.compile(r"packs/[^/]+\.json")
_DURATION = re.compile(r"([1-9][0-9]{0,7})([smhd])")  # 99,999,999 s: over the limit in any unit
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROOT_FILE = re.compile(r"([1-9][0-9]{0,8})\.root\.json")


def require_tuf() -> None:
    """Refuse, in one line, when python-tuf (or its signing library) is not installed."""
    try:
        import cryptography  # noqa: F401
        import securesystemslib  # noqa: F401
        import tuf.api.metadata  # noqa: F401
    except ImportError:
        raise ValhallaError(
            f"signing and verifying need python-tuf; install it: {INSTALL_HINT}"
        ) from None


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``1d``, ``3600s``: a lifetime (ValhallaError if not one)."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValhallaError(
            f"--expires: {quoted(text)} is not a duration such as 12h, 1d or 90m (s, m, h or d)"
        )
    lifetime = timedelta(seconds=int(found[1]) * _UNITS[found[2]])
    if lifetime > ROOT_LIFETIME:  # signed metadata never outlives the root that trusts it
        raise ValhallaError(
            f"--expires: {quoted(text)} is longer than the root's lifetime, "
            f"{ROOT_LIFETIME.days} days"
        )
    return lifetime


def now_utc() -> datetime:
    """The signing clock: the system clock (never SOURCE_DATE_EPOCH: metadata must be fresh)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


# --- where things are -------------------------------------------------------------------------


def roots_folder(manifest: str | os.PathLike[str]) -> Path:
    """``<manifest folder>/tuf``: the committed roots."""
    return Path(os.path.abspath(manifest)).parent / METADATA_FOLDER


def read_roots(manifest: str | os.PathLike[str]) -> list[bytes]:
    """Every committed root, version 1 first (ValhallaError when there is none, or a gap)."""
    folder = roots_folder(manifest)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise ValhallaError(
            f"no {folder / '1.root.json'}: run `valhalla-status keys init --keys DIR` first"
        ) from None
    versions = sorted(int(m[1]) for m in map(_ROOT_FILE.fullmatch, names) if m)
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise ValhallaError(f"{folder} must hold 1.root.json, 2.root.json, … with no gap")
    return [(folder / f"{v}.root.json").read_bytes() for v in versions]


def _refuse_inside_site(keys_dir: str | os.PathLike[str], site_dir: str | os.PathLike[str]) -> None:
    """Private keys never go inside the site folder: every build replaces it whole."""
    if within(Path(os.path.realpath(keys_dir)), Path(os.path.realpath(site_dir))):
        raise RefusedError(
            f"refusing to keep private keys in {os.fspath(keys_dir)}: it is inside the site "
            f"folder ({os.fspath(site_dir)}), which every build replaces; give a folder "
            "outside it"
        )


def _refuse_inside_repository(keys_dir: Path, manifest: str | os.PathLike[str]) -> None:
    """Private keys never go where they could be committed: the git work tree holding the
    manifest, or the folder holding the manifest's folder."""
    from ..workspace import repository_top

    manifest_path = os.path.realpath(manifest)
    folders = [os.path.dirname(os.path.dirname(manifest_path))]
    top = repository_top(manifest_path)
    if top is not None:
        folders.append(os.path.realpath(top))
    wanted = os.path.realpath(keys_dir)
    for folder in folders:
        if within(Path(wanted), Path(folder)):
            raise RefusedError(
                f"refusing to write private keys into {keys_dir}: it is inside the status "
                f"repository ({folder}); give a folder outside it"
            )


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySource:
    """Where the private keys are: a folder of ``<role>.pem``, and environment variables."""

    folder: str | None = None
    environment: Mapping[str, str] | None = None

    @property
    def given(self) -> bool:
        env = self.environment or {}
        return self.folder is not None or any(env.get(v) for v in KEY_VARIABLES.values())

    def pem(self, role: str) -> bytes:
        text = (self.environment or {}).get(KEY_VARIABLES[role])
        if text:
            return text.encode()
        if self.folder is None:
            raise ValhallaError(
                f"no {role} key: set {KEY_VARIABLES[role]} or give --keys DIR "
                f"(or {KEYS_VARIABLE}) holding {role}.pem"
            )
        path = Path(self.folder) / f"{role}.pem"
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ValhallaError(f"no {role} key: cannot read {path}: {os_reason(exc)}") from None


def key_source(folder: str | None, environment: Mapping[str, str]) -> KeySource:
    """The keys given by ``--keys`` (else ``VALHALLA_STATUS_KEYS``) and the per-role variables."""
    return KeySource(folder or environment.get(KEYS_VARIABLE) or None, environment)


def _signer(pem: bytes, role: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        private = load_pem_private_key(pem, None)
    except (ValueError, TypeError):
        raise ValhallaError(f"the {role} key is not an unencrypted PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ValhallaError(f"the {role} key is not an ed25519 key")
    return CryptoSigner(private)


def _signers(source: KeySource, roles: tuple[str, ...], root: Any) -> dict[str, Any]:
    """A signer per role, each checked to be a key ``root`` names for that role."""
    signers = {}
    for role in roles:
        signer = _signer(source.pem(role), role)
        if signer.public_key.keyid not in root.roles[role].keyids:
            raise ValhallaError(
                f"the {role} key given is not one the newest root names for {role} "
                "(a key from before a rotation?)"
            )
        signers[role] = signer
    return signers


def _write_key(folder: Path, role: str, signer: Any, suffix: str = "") -> Path:
    from ..storage.atomic import write_synced

    path = folder / f"{role}.pem{suffix}"
    temp = folder / f".{role}.pem.tmp-{os.getpid()}"
    write_synced(temp, path, signer.private_bytes, 0o600)
    return path


def _json(metadata: Any) -> bytes:
    from tuf.api.serialization.json import JSONSerializer

    data: bytes = metadata.to_bytes(JSONSerializer(compact=False))
    return data + b"\n"


@dataclass(frozen=True)
class KeysResult:
    root_files: tuple[str, ...]
    key_files: tuple[str, ...]
    version: int


def init_keys(
    manifest: str | os.PathLike[str],
    keys_dir: str,
    site_dir: str | os.PathLike[str],
    *,
    now: datetime | None = None,
) -> KeysResult:
    """Generate a key per role, write ``1.root.json`` and ``root.json`` beside the manifest and
    the private keys into ``keys_dir`` (outside the repository and the site folder; nothing
    written if refused)."""
    require_tuf()
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root

    folder = Path(keys_dir)
    _refuse_inside_repository(folder, manifest)
    _refuse_inside_site(folder, site_dir)
    roots = roots_folder(manifest)
    if roots.exists() and any(roots.iterdir()):
        raise RefusedError(f"{roots} already holds roots: use `valhalla-status keys rotate ROLE`")
    taken = [f"{role}.pem" for role in ROLES if (folder / f"{role}.pem").exists()]
    if taken:
        raise RefusedError(f"{folder} already holds {', '.join(taken)}: give an empty folder")
    signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
    root = Root(expires=(now or now_utc()) + ROOT_LIFETIME, consistent_snapshot=False)
    for role, signer in signers.items():
        root.add_key(signer.public_key, role)
    metadata = Metadata(root)
    metadata.sign(signers["root"])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = tuple(str(_write_key(folder, role, signer)) for role, signer in signers.items())
    written = _write_root(roots, metadata)
    return KeysResult(written, keys, 1)


def _write_root(roots: Path, metadata: Any) -> tuple[str, ...]:
    from ..storage.atomic import atomic_write

    roots.mkdir(parents=True, exist_ok=True)
    data = _json(metadata)
    version = metadata.signed.version
    paths = (roots / f"{version}.root.json", roots / "root.json")
    for path in paths:
        atomic_write(path, data)
    return tuple(str(path) for path in paths)


def rotate_key(
    manifest: str | os.PathLike[str],
    keys_dir: str,
    role: str,
    site_dir: str | os.PathLike[str],
    *,
    now: datetime | None = None,
) -> KeysResult:
    """Replace ``role``'s key: a new root version signed by the old root key (and, for the
    root itself, the new one too), as a reader following the root chain requires."""
    require_tuf()
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root

    folder = Path(keys_dir)
    _refuse_inside_repository(folder, manifest)
    _refuse_inside_site(folder, site_dir)
    current = Metadata[Root].from_bytes(read_roots(manifest)[-1])
    old_root = _signers(KeySource(str(folder)), ("root",), current.signed)["root"]
    new = CryptoSigner.generate_ed25519()
    root = current.signed
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    root.add_key(new.public_key, role)
    root.version += 1
    root.expires = (now or now_utc()) + ROOT_LIFETIME
    metadata = Metadata(root)
    metadata.sign(old_root)
    if role == "root":
        metadata.sign(new, append=True)
    staged = _write_key(folder, role, new, ".new")
    written = _write_root(roots_folder(manifest), metadata)
    final = folder / f"{role}.pem"
    os.replace(staged, final)
    return KeysResult(written, (str(final),), root.version)


# --- the site's metadata --------------------------------------------------------------------


def signed_paths(files: Mapping[str, bytes]) -> list[str]:
    """The documents a reader verifies: ``status.json``, ``summary.json``, ``packs.json`` and
    ``packs/<ID>.json``."""
    top = [p for p in ("status.json", "summary.json", "packs.json") if p in files]
    return top + sorted(p for p in files if _PACK_DOCUMENT.fullmatch(p))


def _previous_version(site: Path | None, role: str) -> int:
    """The version of ``role`` in the site being replaced (0 when there is none)."""
    if site is None:
        return 0
    from tuf.api.metadata import Metadata

    try:
        data = (site / METADATA_FOLDER / f"{role}.json").read_bytes()
        return int(Metadata.from_bytes(data).signed.version)
    except Exception:  # absent or unreadable: nothing to go above
        return 0


def next_version(site: Path | None, role: str, now: datetime) -> int:
    return max(_previous_version(site, role) + 1, int(now.timestamp()))


@dataclass(frozen=True)
class Signing:
    """What a signed build or a refresh needs: the keys, the roots, the clock, the expiry."""

    keys: KeySource
    roots: tuple[bytes, ...]
    timestamp_lifetime: timedelta = TIMESTAMP_LIFETIME
    now: Callable[[], datetime] = now_utc

    def signers(self, roles: tuple[str, ...]) -> dict[str, Any]:
        from tuf.api.metadata import Metadata, Root

        root = Metadata[Root].from_bytes(self.roots[-1]).signed
        return _signers(self.keys, roles, root)

    def root_files(self) -> dict[str, bytes]:
        files = {f"{METADATA_FOLDER}/{v}.root.json": d for v, d in enumerate(self.roots, 1)}
        files[f"{METADATA_FOLDER}/root.json"] = self.roots[-1]
        return files


def signing(
    manifest: str | os.PathLike[str],
    keys: KeySource,
    timestamp_lifetime: timedelta = TIMESTAMP_LIFETIME,
    now: Callable[[], datetime] = now_utc,
    *,
    site_dir: str | os.PathLike[str] | None = None,
) -> Signing:
    """Everything a signed build of the site in ``site_dir`` needs, checked before anything is
    built (a key folder inside the site folder is refused: the build would replace it)."""
    require_tuf()
    if keys.folder is not None and site_dir is not None:
        _refuse_inside_site(keys.folder, site_dir)
    made = Signing(keys, tuple(read_roots(manifest)), timestamp_lifetime, now)
    made.signers(ONLINE_ROLES)  # every key given and named by the newest root
    return made


def sign_site(made: Signing, files: Mapping[str, bytes], live: Path | None) -> dict[str, bytes]:
    """The ``tuf/`` files of a site whose documents are ``files``; ``live`` is the site being
    replaced (its versions are gone above)."""
    from tuf.api.metadata import Metadata, TargetFile, Targets

    now = made.now()
    signers = made.signers(ONLINE_ROLES)
    targets = Targets(version=next_version(live, "targets", now), expires=now + TARGETS_LIFETIME)
    for path in signed_paths(files):
        targets.targets[path] = TargetFile.from_data(path, files[path], ["sha256"])
    targets_md = Metadata(targets)
    targets_md.sign(signers["targets"])
    out = made.root_files()
    out[f"{METADATA_FOLDER}/targets.json"] = _json(targets_md)
    out.update(_sign_snapshot_and_timestamp(made, signers, out, live, now))
    return out


def _meta(data: bytes, version: int) -> Any:
    import hashlib

    from tuf.api.metadata import MetaFile

    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def _sign_snapshot_and_timestamp(
    made: Signing,
    signers: Mapping[str, Any],
    files: Mapping[str, bytes],
    live: Path | None,
    now: datetime,
    snapshot: bytes | None = None,
) -> dict[str, bytes]:
    """A new snapshot of ``targets.json`` (unless ``snapshot`` is kept) and a new timestamp."""
    from tuf.api.metadata import Metadata, Snapshot, Timestamp

    out = {}
    if snapshot is None:
        targets_data = files[f"{METADATA_FOLDER}/targets.json"]
        targets_version = Metadata.from_bytes(targets_data).signed.version
        shot = Snapshot(
            version=next_version(live, "snapshot", now), expires=now + SNAPSHOT_LIFETIME
        )
        shot.meta["targets.json"] = _meta(targets_data, targets_version)
        shot_md = Metadata(shot)
        shot_md.sign(signers["snapshot"])
        snapshot = out[f"{METADATA_FOLDER}/snapshot.json"] = _json(shot_md)
    stamp = Timestamp(
        version=next_version(live, "timestamp", now),
        expires=now + made.timestamp_lifetime,
        snapshot_meta=_meta(snapshot, Metadata.from_bytes(snapshot).signed.version),
    )
    stamp_md = Metadata(stamp)
    stamp_md.sign(signers["timestamp"])
    out[f"{METADATA_FOLDER}/timestamp.json"] = _json(stamp_md)
    return out


# --- refresh ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshResult:
    site: str
    renewed: tuple[str, ...]
    version: int
    expires: datetime

    @property
    def message(self) -> str:
        roles = " and ".join(self.renewed)
        return f"{self.site}: re-signed {roles}; valid until {human_time(self.expires)}"


def refresh_metadata(made: Signing, site: Path) -> dict[str, bytes]:
    """New ``tuf/`` files for the signed site in ``site``, its documents untouched: a new
    timestamp; a new snapshot (and targets) when it would expire before the timestamp after
    the next one."""
    now = made.now()
    current = _current(site)
    expiring = {
        role
        for role, (_, expires) in current.items()
        if expires < now + 2 * made.timestamp_lifetime
    }
    if "targets" in expiring:
        return sign_site(made, _documents(site), site)
    files = {f"{METADATA_FOLDER}/targets.json": current["targets"][0]}
    kept = None if "snapshot" in expiring else current["snapshot"][0]
    roles = ("timestamp",) if kept else ("snapshot", "timestamp")
    signers = made.signers(roles)
    return made.root_files() | _sign_snapshot_and_timestamp(
        made, signers, files, site, now, snapshot=kept
    )


def _current(site: Path) -> dict[str, tuple[bytes, datetime]]:
    """The site's targets and snapshot metadata, with when each expires."""
    from tuf.api.metadata import Metadata

    current = {}
    for role in ("targets", "snapshot"):
        path = site / METADATA_FOLDER / f"{role}.json"
        try:
            data = path.read_bytes()
            current[role] = (data, Metadata.from_bytes(data).signed.expires)
        except FileNotFoundError:
            raise ValhallaError(
                f"{site} is not a signed site (it has no {METADATA_FOLDER}/{role}.json): "
                "run `valhalla-status build` with keys first"
            ) from None
        except Exception as exc:
            raise ValhallaError(f"cannot read {path}: {exc}") from None
    return current


def refresh_site(made: Signing, site_dir: str | os.PathLike[str]) -> RefreshResult:
    """Re-sign the signed site in ``site_dir`` in place (its documents untouched), under the
    site's lock: each new file replaces the old one atomically, the timestamp last."""
    from tuf.api.metadata import Metadata

    from ..storage.atomic import atomic_write
    from ..storage.locking import manifest_lock

    site = Path(site_dir)
    if not site.is_dir():
        raise ValhallaError(f"{site} does not exist: build the signed site first")
    with manifest_lock(site):
        files = refresh_metadata(made, site)
        (site / METADATA_FOLDER).mkdir(exist_ok=True)
        renewed = []
        for path, data in files.items():
            target = site / path
            if target.is_file() and target.read_bytes() == data:
                continue
            atomic_write(target, data)
            if not _ROOT_FILE.fullmatch(path.rpartition("/")[2]) and not path.endswith(
                "/root.json"
            ):
                renewed.append(path.rpartition("/")[2].removesuffix(".json"))
    stamp = Metadata.from_bytes(files[f"{METADATA_FOLDER}/timestamp.json"]).signed
    return RefreshResult(os.fspath(site_dir), tuple(renewed), stamp.version, stamp.expires)


def _documents(site: Path) -> dict[str, bytes]:
    """The signed documents as the site holds them (to sign new targets of the same bytes)."""
    from tuf.api.metadata import Metadata, Targets

    data = (site / METADATA_FOLDER / "targets.json").read_bytes()
    targets = Metadata[Targets].from_bytes(data).signed.targets
    documents = {}
    for path, info in targets.items():
        content = (site / path).read_bytes()
        try:
            info.verify_length_and_hashes(content)
        except Exception:
            raise ValhallaError(
                f"{site / path} changed since it was signed: run `valhalla-status build`"
            ) from None
        documents[path] = content
    return documents
