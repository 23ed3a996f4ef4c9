"""The backup file: one gzip'd tar holding a signed manifest, the database part and the evidence files.

Members, in this order: `manifest.json`; `manifest.sig`, an HMAC-SHA-256 of the manifest's bytes under
the audit chain's key (domain-separated; the key itself never enters the file); the database parts
(`database/...`, named by the dialect's module); each evidence file as `evidence/<sha256>`. The manifest
lists every other member with its SHA-256 and size, so a reader checks the signature first and then each
member as it streams past: no byte is trusted unchecked, no member is read by a name the manifest did not
give, and the file is read once, front to back. Without the key nobody can make a file that restores.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import tarfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from workflows.engine import audit
from workflows.engine.errors import ZhibuError
from workflows.programme import evidence

FORMAT = "zhibu-backup"
VERSION = 1
MANIFEST, SIGNATURE, EVIDENCE = "manifest.json", "manifest.sig", "evidence/"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupError(ZhibuError):
    """A backup that cannot be made, or a file that cannot be restored; the message says why."""


def key_id() -> str:
    """A public fingerprint of the audit chain's key: tells a wrong key from a tampered file."""
    return _mac(b"zhibu-backup-key-id")[:16]


def signature(body: bytes) -> str:
    """The manifest's signature under the audit chain's key."""
    return _mac(b"zhibu-backup-manifest\0" + body)


def _mac(data: bytes) -> str:
    return hmac.new(audit.chain_key(), data, hashlib.sha256).hexdigest()


def stored(root: Path, sha256: str) -> Path:
    """Where the evidence store keeps the file with this hash."""
    return evidence.content_path(evidence.EvidenceFile(sha256=sha256), root)


class _Hashing:
    """A binary stream read through, hashing what passes."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        return self._seen(self.raw.read(size))

    def readline(self) -> bytes:
        return self._seen(self.raw.readline())

    def __iter__(self):
        while line := self.readline():
            yield line

    def _seen(self, data: bytes) -> bytes:
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> tuple[str, int]:
        """Read what is left; the hash and size of the whole stream."""
        while self.read(_CHUNK):
            pass
        return self.digest.hexdigest(), self.size


def file_sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return _Hashing(stream).drain()[0]


def write(file: Path, manifest: dict[str, Any], parts: list[tuple[str, Path]], evidence_root: Path) -> int:
    """Write the backup to `file` (mode 600) through a temporary file, checking every evidence file on
    the way; returns the file's size. A failed backup leaves no file behind."""
    listed = [
        {"name": name, "sha256": file_sha256(path), "size": path.stat().st_size} for name, path in parts
    ]
    manifest = {**manifest, "parts": listed}
    body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    mtime = datetime.fromisoformat(manifest["created_at"]).timestamp()
    partial = file.with_name(f".{file.name}.{secrets.token_hex(4)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:gz", compresslevel=6) as tar:
            for name, content in ((MANIFEST, body), (SIGNATURE, signature(body).encode("ascii"))):
                _add(tar, name, io.BytesIO(content), hashlib.sha256(content).hexdigest(), len(content), mtime)
            for (name, path), part in zip(parts, listed, strict=True):
                with open(path, "rb") as stream:
                    _add(tar, name, stream, part["sha256"], part["size"], mtime)
            for item in manifest["evidence"]:
                path = stored(evidence_root, item["sha256"])
                try:
                    stream = open(path, "rb")  # noqa: SIM115  (closed just below)
                except FileNotFoundError:
                    raise BackupError(f"佐证材料文件缺失：{path}（数据库中有它的记录）") from None
                with stream:
                    _add(tar, EVIDENCE + item["sha256"], stream, item["sha256"], item["size"], mtime)
        os.replace(partial, file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return file.stat().st_size


def _add(tar: tarfile.TarFile, name: str, stream, sha256: str, size: int, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o600
    reader = _Hashing(stream)
    try:
        tar.addfile(info, reader)
    except OSError as exc:  # shorter than its record says
        raise BackupError(f"{name} 读取出错或已变短：{exc}") from exc
    if (reader.digest.hexdigest(), reader.size) != (sha256, size):
        raise BackupError(f"{name} 的内容与记录的哈希不符（存储中的文件已损坏？）")


class Reader:
    """A backup read front to back: the manifest (signature checked) on opening, then each member."""

    def __init__(self, file: Path):
        if not file.is_file():
            raise BackupError(f"备份文件不存在：{file}")
        try:
            self._tar = tarfile.open(file, mode="r|*")  # noqa: SIM115  (closed by __exit__)
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"{file} 不是 zhibu 备份文件（{exc}）") from exc
        self._members = iter(self._tar)
        try:
            self.manifest = self._open_manifest(file)
        except BaseException:
            self._tar.close()
            raise

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_exc) -> None:
        self._tar.close()

    def _open_manifest(self, file: Path) -> dict[str, Any]:
        body = self._small(MANIFEST, f"{file} 不是 zhibu 备份文件")
        sig = self._small(SIGNATURE, "备份文件不完整：缺少清单签名")
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise BackupError(f"备份清单无法读取：{exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BackupError(f"{file} 不是 zhibu 备份文件")
        if manifest.get("version") != VERSION:
            raise BackupError(f"备份文件格式版本 {manifest.get('version')} 不受支持（本程序支持 {VERSION}）")
        if manifest.get("audit", {}).get("key_id") != key_id():
            raise BackupError(
                "本机的审计链密钥不是制作备份时的密钥：请把原部署的密钥文件放到 ZHIBU_AUDIT_KEY_FILE 所指位置"
                "（默认 instance/audit_key），或设置 ZHIBU_AUDIT_KEY"
            )
        if not hmac.compare_digest(sig, signature(body).encode("ascii")):
            raise BackupError("备份清单的签名不符：备份文件被改动过")
        if not all(_SHA256.fullmatch(item["sha256"]) for item in manifest["evidence"]):
            raise BackupError("备份清单中的佐证材料哈希无效")
        return manifest

    def _next(self, name: str, problem: str) -> tarfile.TarInfo:
        try:
            info = next(self._members, None)
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise BackupError(f"备份文件已损坏：{exc}") from exc
        if info is None or info.name != name or not info.isfile():
            raise BackupError(problem if info is None else f"备份文件被改动过：应为 {name}，实为 {info.name}")
        return info

    def _small(self, name: str, problem: str) -> bytes:
        info = self._next(name, problem)
        if info.size > 16 * _CHUNK:
            raise BackupError(f"{problem}（{name} 过大）")
        return self._tar.extractfile(info).read()

    def parts(self):
        """Each database part in order as (name, stream); its hash is checked once the caller has read it."""
        for part in self.manifest["parts"]:
            info = self._next(part["name"], f"备份文件不完整：缺少 {part['name']}")
            stream = _Hashing(self._tar.extractfile(info))
            yield part["name"], stream
            if stream.drain() != (part["sha256"], part["size"]):
                raise BackupError(f"备份文件被改动过：{part['name']} 的内容与清单不符")

    def evidence(self, staging: Staging) -> None:
        """Copy each evidence file into `staging`, checking its hash; then make sure nothing follows."""
        for item in self.manifest["evidence"]:
            name = EVIDENCE + item["sha256"]
            stream = _Hashing(self._tar.extractfile(self._next(name, f"备份文件不完整：缺少 {name}")))
            with open(staging.folder / item["sha256"], "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
            if stream.drain() != (item["sha256"], item["size"]):
                raise BackupError(f"备份文件被改动过：佐证材料 {item['sha256'][:12]}… 的内容与其哈希不符")
        extra = next(self._members, None)
        if extra is not None:
            raise BackupError(f"备份文件被改动过：含有清单之外的 {extra.name}")


class Staging:
    """Evidence files checked but not yet in the store: a folder inside it, moved in by `publish`."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.folder = root / f".restore-{secrets.token_hex(6)}"
        self.folder.mkdir()

    def publish(self) -> None:
        """Move every staged file to its place in the store (each move atomic); keep files already there."""
        for staged in sorted(self.folder.iterdir()):
            target = stored(self.root, staged.name)
            if target.exists() and file_sha256(target) == staged.name:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
