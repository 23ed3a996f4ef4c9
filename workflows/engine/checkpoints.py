"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint records the chain's head (seq and hash) and the hash of every event since the previous
checkpoint, signed with an Ed25519 key that does not live in the database (`ZHIBU_CHECKPOINT_KEY`,
a PEM file; default `instance/checkpoint_key.pem`, made on first use). Checkpoints are written daily
by the scheduler into a directory (`ZHIBU_CHECKPOINT_DIR`, default `instance/checkpoints`) and sent to
the office, so copies exist beyond this server.

`verify` compares the database with them: an event rewritten before the newest checkpoint is named
even when the whole chain was recomputed with a stolen chain key, and events deleted from the end
are found missing against the newest checkpoint. Only reads the database; never commits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.engine import audit
from workflows.engine.models import AuditEvent, AuditHead


def directory() -> Path:
    """Where checkpoints are written and read by default."""
    return Path(os.environ.get("ZHIBU_CHECKPOINT_DIR", "instance/checkpoints"))


def _key_file() -> Path:
    return Path(os.environ.get("ZHIBU_CHECKPOINT_KEY", "instance/checkpoint_key.pem"))


def signing_key(*, create: bool = True) -> Ed25519PrivateKey:
    """The checkpoint signing key (`ZHIBU_CHECKPOINT_KEY`, default `instance/checkpoint_key.pem`),
    made on first use by the writer; a verifier (`create=False`) never makes one."""
    file = _key_file()
    if not file.exists():
        if not create:
            raise FileNotFoundError(f"没有检查点签名密钥 {file}：请用 --public-key 给出签名公钥")
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        audit.create_secret_file(file, pem)
    key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{file} is not an Ed25519 private key")
    return key


def public_key_hex(key: Ed25519PublicKey) -> str:
    """A public key as 64 hex digits (what a checkpoint names and an inspector can keep on paper)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _signed_part(body: dict) -> bytes:
    return audit.canonical_json({k: v for k, v in body.items() if k != "signature"}).encode("utf-8")


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: the head it records, the event hashes it covers (from `first_seq`), its file."""

    seq: int
    hash: str
    first_seq: int
    hashes: list[str]
    at: str
    public_key: str
    path: Path | None = None


def _last_written(folder: Path) -> Checkpoint | None:
    found = [c for c in read_all(folder) if c is not None]
    return max(found, key=lambda c: c.seq, default=None)


def write(
    session: Session, folder: Path, *, now: datetime, key: Ed25519PrivateKey | None = None
) -> Checkpoint:
    """Sign the chain's head and the events since the previous checkpoint in `folder`; write the file."""
    key = key or signing_key()
    head = session.get(AuditHead, 1)
    seq, head_hash = (head.seq, head.hash) if head is not None else (0, "")
    previous = _last_written(folder)
    first = previous.seq + 1 if previous is not None and previous.seq <= seq else 1
    hashes = list(
        session.scalars(
            select(AuditEvent.hash)
            .where(AuditEvent.seq >= first, AuditEvent.seq <= seq)
            .order_by(AuditEvent.seq)
        )
    )
    body = {
        "seq": seq,
        "hash": head_hash,
        "first_seq": first,
        "hashes": hashes,
        "at": now.astimezone(UTC).isoformat(),
        "public_key": public_key_hex(key.public_key()),
    }
    body["signature"] = key.sign(_signed_part(body)).hex()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint-{seq:012d}-{now.astimezone(UTC):%Y%m%dT%H%M%S}.json"
    # Written aside, then renamed: a reader never sees half a checkpoint (it would read as forged).
    partial = folder / f".{path.name}.{os.getpid()}.partial"
    partial.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, path)
    return Checkpoint(seq, head_hash, first, hashes, body["at"], body["public_key"], path)


def read_all(folder: Path, trusted: str | None = None) -> list[Checkpoint | None]:
    """Every checkpoint file in `folder`, oldest first; None for a file whose signature does not hold.

    `trusted`: the public key (hex) checkpoints must be signed with; default, the signing key's own.
    """
    if not folder.is_dir():
        return []
    trusted = trusted or public_key_hex(signing_key(create=False).public_key())
    try:
        verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(trusted))
    except ValueError as exc:
        raise ValueError(f"签名公钥应为 64 位十六进制数字：{trusted}") from exc
    found: list[Checkpoint | None] = []
    for path in sorted(folder.glob("checkpoint-*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            verifier.verify(bytes.fromhex(body["signature"]), _signed_part(body))
            found.append(
                Checkpoint(
                    int(body["seq"]),
                    body["hash"],
                    int(body["first_seq"]),
                    list(body["hashes"]),
                    body["at"],
                    body["public_key"],
                    path,
                )
            )
        except (InvalidSignature, ValueError, KeyError, TypeError):
            found.append(None)
    return found


def verify(session: Session, folder: Path, *, trusted: str | None = None) -> audit.Verification:
    """Check the database against every checkpoint in `folder` (see the module docstring)."""
    checkpoints = read_all(folder, trusted)
    bad = [i for i, c in enumerate(checkpoints) if c is None]
    if bad:
        names = sorted(folder.glob("checkpoint-*.json"))
        return audit.Verification(
            False, 0, None, f"检查点文件 {names[bad[0]].name} 的签名无效（被篡改或不是本系统签发）"
        )
    if not checkpoints:
        return audit.Verification(False, 0, None, f"{folder} 中没有检查点")
    stored: dict[int, str] = {}
    ids: dict[int, int] = {}
    for seq, event_id, event_hash in session.execute(select(AuditEvent.seq, AuditEvent.id, AuditEvent.hash)):
        stored[seq], ids[seq] = event_hash, event_id
    checked, covered = 0, 0
    for checkpoint in sorted(checkpoints, key=lambda c: (c.seq, c.first_seq)):
        # Together the checkpoints cover the chain from event 1 without a gap (overlaps are fine: two
        # schedulers may sign the same day); a gap means a checkpoint file was removed.
        if checkpoint.first_seq > covered + 1:
            return audit.Verification(
                False,
                checked,
                None,
                f"检查点不连续：第 {covered + 1}—{checkpoint.first_seq - 1} 号事件没有检查点（文件被删除）",
            )
        covered = max(covered, checkpoint.seq)
        for offset, expected in enumerate(checkpoint.hashes):
            seq = checkpoint.first_seq + offset
            checked += 1
            if seq not in stored:
                return audit.Verification(
                    False,
                    checked,
                    None,
                    f"第 {seq} 号事件缺失（{checkpoint.at} 的检查点记录过它：事件被删除）",
                )
            if stored[seq] != expected:
                return audit.Verification(
                    False,
                    checked,
                    ids[seq],
                    f"事件 id={ids[seq]}（第 {seq} 号）与 {checkpoint.at} 的检查点不符（事件被改写）",
                )
    newest = max(checkpoints, key=lambda c: c.seq)
    if newest.seq and stored.get(newest.seq) != newest.hash:
        return audit.Verification(False, checked, None, f"链头第 {newest.seq} 号事件与最新检查点不符")
    return audit.Verification(True, checked)
