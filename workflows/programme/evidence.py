"""Evidence files (佐证材料): checked, stored by content hash, linked to a task, recorded in the trail.

A file is kept under `<root>/<first two hex digits>/<sha256>`: the name a user gave never becomes
a path, so nothing can be written or read outside the store. Only files of the allowed types and
size are accepted. Whoever may see the task may download its files. Functions never commit.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.errors import InvalidInput, NotFound
from workflows.engine.models import Base, TaskRecord, UTCDateTime

MAX_BYTES = 10 * 1024 * 1024
ALLOWED = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
}
# The first bytes a file of these types must start with, so a renamed program is refused.
MAGIC = {
    ".pdf": [b"%PDF"],
    ".png": [b"\x89PNG"],
    ".jpg": [b"\xff\xd8\xff"],
    ".jpeg": [b"\xff\xd8\xff"],
    ".docx": [b"PK\x03\x04"],
    ".xlsx": [b"PK\x03\x04"],
    ".pptx": [b"PK\x03\x04"],
    ".doc": [b"\xd0\xcf\x11\xe0"],
    ".xls": [b"\xd0\xcf\x11\xe0"],
    ".ppt": [b"\xd0\xcf\x11\xe0"],
}


class EvidenceFile(Base):
    """One uploaded file, attached to a task."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    mimetype: Mapped[str] = mapped_column(String(120))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


def store_root() -> Path:
    """Where files are kept (ZHIBU_EVIDENCE_DIR, default instance/evidence)."""
    return Path(os.environ.get("ZHIBU_EVIDENCE_DIR", "instance/evidence"))


def _path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def store(
    session: Session,
    *,
    content: bytes,
    name: str,
    task: TaskRecord,
    uploaded_by: str,
    now: datetime,
    root: Path,
) -> EvidenceFile:
    """Check and keep an uploaded file for a task; InvalidInput says why one is refused."""
    name = Path(name.replace("\\", "/")).name.strip() or "file"
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED:
        raise InvalidInput(f"不支持的文件类型“{suffix or name}”，可上传：{'、'.join(sorted(ALLOWED))}")
    if not content:
        raise InvalidInput(f"文件“{name}”是空的")
    if len(content) > MAX_BYTES:
        raise InvalidInput(f"文件“{name}”超过 {MAX_BYTES // (1024 * 1024)} MB")
    if suffix in MAGIC and not any(content.startswith(m) for m in MAGIC[suffix]):
        raise InvalidInput(f"文件“{name}”的内容与扩展名 {suffix} 不符")
    digest = hashlib.sha256(content).hexdigest()
    path = _path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        partial.replace(path)  # atomic: a reader never sees half a file
    item = EvidenceFile(
        sha256=digest,
        size=len(content),
        name=name[:255],
        mimetype=ALLOWED[suffix],
        task_id=task.id,
        instance_id=task.instance_id,
        uploaded_by=uploaded_by,
        uploaded_at=now,
    )
    session.add(item)
    session.flush()
    audit.append(
        session,
        action="evidence.uploaded",
        actor=uploaded_by,
        occurred_at=now,
        instance_id=task.instance_id,
        task_id=task.id,
        bpmn_id=task.bpmn_id,
        branch=task.branch,
        data={"file_id": item.id, "name": item.name, "sha256": digest, "size": item.size},
    )
    return item


def of_task(session: Session, task_id: str) -> list[EvidenceFile]:
    """A task's files, in upload order."""
    return list(
        session.scalars(select(EvidenceFile).where(EvidenceFile.task_id == task_id).order_by(EvidenceFile.id))
    )


def get(session: Session, file_id: int) -> EvidenceFile:
    """A file's record, or NotFound."""
    item = session.get(EvidenceFile, file_id)
    if item is None:
        raise NotFound(f"文件 {file_id} 不存在")
    return item


def content_path(item: EvidenceFile, root: Path) -> Path:
    """Where a stored file's bytes are."""
    return _path(root, item.sha256)
