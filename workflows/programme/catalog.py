"""The standard catalog (标准条目): areas → items with points, deduction rule, evidence and veto flag.

The office loads its own handbook as a JSON file (`zhibu catalog load FILE`); each load is a new
version and becomes the active one, old versions stay for the record. Grade bands come with the
catalog. Functions never commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit, forms
from workflows.engine.errors import FormInvalid, InvalidInput, NotFound
from workflows.engine.models import Base, UTCDateTime

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DEFAULT_CATALOG = DATA_DIR / "catalog.json"
_SCHEMA = json.loads((DATA_DIR / "catalog.schema.json").read_text(encoding="utf-8"))
DEFAULT_GRADES = [
    {"grade": "示范", "min_score": 90, "requires_no_veto": True},
    {"grade": "达标", "min_score": 80, "requires_no_veto": True},
]


class Catalog(Base):
    """One loaded version of the catalog; exactly one is active."""

    __tablename__ = "catalogs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    grades_json: Mapped[str] = mapped_column(Text)
    fail_grade: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    loaded_by: Mapped[str] = mapped_column(String(100))


class CatalogItem(Base):
    """One scorable standard item."""

    __tablename__ = "catalog_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    area_no: Mapped[int] = mapped_column(Integer)
    area_name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    points: Mapped[float] = mapped_column(Float)
    deduction: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[str] = mapped_column(Text, default="")
    veto: Mapped[bool] = mapped_column(Boolean, default=False)
    veto_rule: Mapped[str] = mapped_column(Text, default="")


def read_file(path: Path | str) -> dict[str, Any]:
    """Parse a catalog file, or InvalidInput saying what is wrong with it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"找不到目录文件 {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"目录文件 {path} 不是有效的 JSON：{exc}") from exc


def load(session: Session, content: dict[str, Any], *, now: datetime, actor: str) -> Catalog:
    """Validate a catalog and make it the active version (the same content twice is one version)."""
    try:
        forms.validate(_SCHEMA, content)
    except FormInvalid as exc:
        raise InvalidInput(
            "目录文件格式有误：" + "；".join(f"{_where(k)}：{v}" for k, v in exc.errors.items())
        ) from exc
    codes = [item["code"] for area in content["areas"] for item in area["items"]]
    duplicated = sorted({c for c in codes if codes.count(c) > 1})
    if duplicated:
        raise InvalidInput(f"目录文件中条目编号重复：{', '.join(duplicated)}")
    digest = hashlib.sha256(audit.canonical_json(content).encode("utf-8")).hexdigest()
    current = active(session, required=False)
    if current is not None and current.content_hash == digest:
        return current
    session.execute(update(Catalog).values(active=False))
    grades = sorted(content.get("grades") or DEFAULT_GRADES, key=lambda g: -g["min_score"])
    catalog = Catalog(
        name=content["name"],
        content_hash=digest,
        grades_json=json.dumps(grades, ensure_ascii=False),
        fail_grade=content.get("fail_grade", "不达标"),
        active=True,
        loaded_at=now,
        loaded_by=actor,
    )
    session.add(catalog)
    session.flush()
    position = 0
    for area in content["areas"]:
        for item in area["items"]:
            position += 1
            session.add(
                CatalogItem(
                    catalog_id=catalog.id,
                    position=position,
                    area_no=area["no"],
                    area_name=area["name"],
                    code=item["code"],
                    text=item["text"],
                    points=item["points"],
                    deduction=item.get("deduction", ""),
                    evidence=item.get("evidence", ""),
                    veto=item.get("veto", False),
                    veto_rule=item.get("veto_rule", ""),
                )
            )
    session.flush()
    audit.append(
        session,
        action="catalog.loaded",
        actor=actor,
        occurred_at=now,
        data={"catalog_id": catalog.id, "name": catalog.name, "items": position, "hash": digest},
    )
    return catalog


def _where(path: str) -> str:
    """A field path of the catalog file in words: `areas.0.items.2.points` → 方面第1项 条目第3项 分值."""
    node, words = _SCHEMA, []
    for part in path.split(".") if path and path != "_form" else []:
        if part.isdigit():
            words[-1:] = [f"{words[-1] if words else ''}第{int(part) + 1}项"]
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
            words.append(node.get("title", part))
    return " ".join(words) or "文件"


def active(session: Session, *, required: bool = True) -> Catalog | None:
    """The active catalog version."""
    found = session.scalar(select(Catalog).where(Catalog.active.is_(True)))
    if found is None and required:
        raise NotFound("尚未加载标准条目目录（zhibu catalog load FILE）")
    return found


def items(session: Session, catalog_id: int | None = None) -> list[CatalogItem]:
    """The items of a catalog version (the active one by default), in file order."""
    if catalog_id is None:
        catalog_id = active(session).id
    return list(
        session.scalars(
            select(CatalogItem).where(CatalogItem.catalog_id == catalog_id).order_by(CatalogItem.position)
        )
    )


def checklist(session: Session, catalog_id: int | None = None) -> dict[str, Any]:
    """A catalog version (the active one by default) as plain data for a form: its id and every item."""
    catalog = active(session) if catalog_id is None else session.get(Catalog, catalog_id)
    if catalog is None:
        raise NotFound(f"标准条目目录 {catalog_id} 不存在")
    return {
        "catalog_id": catalog.id,
        "items": [
            {
                "code": i.code,
                "area": f"{i.area_no} {i.area_name}",
                "text": i.text,
                "points": i.points,
                "deduction": i.deduction,
                "veto": i.veto,
            }
            for i in items(session, catalog.id)
        ],
    }


@dataclass(frozen=True)
class Grade:
    """Outcome of scoring one branch against a catalog."""

    total: float
    vetoed: list[str]
    grade: str
    passed: bool


def grade(session: Session, catalog_id: int, scores: dict[str, float], vetoed: list[str]) -> Grade:
    """Total the scores (each capped at its item's points) and apply the catalog's grade bands."""
    catalog = session.get(Catalog, catalog_id)
    if catalog is None:
        raise NotFound(f"标准条目目录 {catalog_id} 不存在")
    by_code = {i.code: i for i in items(session, catalog_id)}
    total = round(sum(min(max(scores.get(code, 0.0), 0.0), item.points) for code, item in by_code.items()), 2)
    vetoes = sorted(code for code in vetoed if code in by_code and by_code[code].veto)
    for band in json.loads(catalog.grades_json):
        if total >= band["min_score"] and not (vetoes and band.get("requires_no_veto", True)):
            return Grade(total, vetoes, band["grade"], True)
    return Grade(total, vetoes, catalog.fail_grade, False)
