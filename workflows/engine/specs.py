"""Deploying `bpmn/` and `forms/`: one immutable version per process and content hash.

A version's hash covers its diagram file and every form it references, so changing either makes a
new version; running instances keep the version they started with. Parsed specs are cached in
process memory by (process id, hash), which is safe across databases because content decides the key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.engine import audit
from workflows.engine.errors import DeployError, NotFound
from workflows.engine.models import SpecVersion
from workflows.engine.spiff import SERIALIZER, connect_event_subprocesses

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = PROJECT_ROOT / "bpmn"
FORMS_DIR = PROJECT_ROOT / "forms"
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")


@dataclass
class DeployedSpec:
    """A version ready to run: parsed specs plus its forms by file name."""

    version_id: int
    process_id: str
    content_hash: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    forms: dict[str, Any] = field(default_factory=dict)

    def form_schema(self, filename: str | None) -> dict[str, Any] | None:
        """The JSON Schema stored with this version under `filename`, if any."""
        return self.forms.get(filename) if filename else None


_cache: dict[tuple[str, str], tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec], dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget parsed specs (tests use it to prove specs are restored from the database)."""
    with _cache_lock:
        _cache.clear()


def form_key(filename: str | None) -> str | None:
    """`rectification-fix-schema.json` → `rectification-fix` (spiff-arena's naming)."""
    if not filename:
        return None
    return filename.removesuffix(".json").removesuffix("-schema")


def _referenced_forms(specs: list[BpmnProcessSpec]) -> list[str]:
    names = set()
    for spec in specs:
        for task_spec in spec.task_specs.values():
            props = getattr(task_spec, "extensions", {}).get("properties", {})
            names.update(props[p] for p in FORM_PROPERTIES if props.get(p))
    return sorted(names)


def _load_forms(names: list[str], forms_dir: Path, process_id: str) -> dict[str, Any]:
    forms = {}
    for name in names:
        path = forms_dir / name
        if not path.is_file():
            raise DeployError(f"流程 {process_id} 引用的表单文件 {name} 不存在")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            if name.endswith("-schema.json"):
                Draft202012Validator.check_schema(schema)
        except (ValueError, SchemaError) as exc:
            raise DeployError(f"表单文件 {name} 不是有效的 JSON Schema：{exc}") from exc
        forms[name] = schema
    return forms


def _parse(bpmn_dir: Path) -> tuple[SpiffBpmnParser, dict[str, bytes]]:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    sources = {}
    for path in sorted(bpmn_dir.glob("*.bpmn")):
        data = path.read_bytes()
        sources[path.name] = data
        try:
            parser.add_bpmn_xml(etree.fromstring(data), filename=path.name)
        except (etree.XMLSyntaxError, ValidationException) as exc:
            raise DeployError(f"BPMN 文件 {path.name} 无效：{exc}") from exc
    return parser, sources


def deploy_all(
    session: Session,
    *,
    now: datetime,
    actor: str,
    bpmn_dir: Path = BPMN_DIR,
    forms_dir: Path = FORMS_DIR,
) -> list[SpecVersion]:
    """Store a new version of every process whose diagram or forms changed; return the new versions."""
    parser, sources = _parse(bpmn_dir)
    created = []
    for process_id in parser.get_process_ids():
        try:
            spec = parser.get_spec(process_id)
            subprocess_specs = parser.get_subprocess_specs(process_id)
            for each in (spec, *subprocess_specs.values()):
                connect_event_subprocesses(each)
        except ValidationException as exc:
            raise DeployError(f"流程 {process_id} 无法解析：{exc}") from exc
        all_specs = [spec, *subprocess_specs.values()]
        files = sorted({Path(s.file).name for s in all_specs if s.file})
        form_names = _referenced_forms(all_specs)
        forms = _load_forms(form_names, forms_dir, process_id)
        digest = hashlib.sha256()
        for name in files:
            digest.update(name.encode() + b"\0" + sources[name] + b"\0")
        for name in form_names:
            digest.update(name.encode() + b"\0" + audit.canonical_json(forms[name]).encode() + b"\0")
        content_hash = digest.hexdigest()
        exists = session.scalar(
            select(SpecVersion.id).where(
                SpecVersion.process_id == process_id, SpecVersion.content_hash == content_hash
            )
        )
        if exists is not None:
            continue
        spec_doc = {
            "spec": SERIALIZER.to_dict(spec),
            "subprocess_specs": {k: SERIALIZER.to_dict(v) for k, v in subprocess_specs.items()},
        }
        version = SpecVersion(
            process_id=process_id,
            name=spec.description or process_id,
            content_hash=content_hash,
            source_file=Path(spec.file).name if spec.file else "",
            bpmn_xml=sources.get(Path(spec.file).name, b"").decode("utf-8") if spec.file else "",
            spec_json=json.dumps(spec_doc, ensure_ascii=False),
            forms_json=json.dumps(forms, ensure_ascii=False),
            deployed_at=now,
            deployed_by=actor,
        )
        session.add(version)
        session.flush()
        audit.append(
            session,
            action="spec.deployed",
            actor=actor,
            occurred_at=now,
            data={"process_id": process_id, "version_id": version.id, "content_hash": content_hash},
        )
        with _cache_lock:
            _cache[(process_id, content_hash)] = (spec, subprocess_specs, forms)
        created.append(version)
    return created


def latest_version(session: Session, process_id: str) -> SpecVersion:
    """The newest deployed version of a process."""
    version = session.scalar(
        select(SpecVersion)
        .where(SpecVersion.process_id == process_id)
        .order_by(SpecVersion.id.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(f"流程“{process_id}”尚未部署（请先运行 zhibu deploy）")
    return version


def deployed(session: Session, version_id: int, process_id: str, content_hash: str) -> DeployedSpec:
    """The runnable spec of a stored version; the database is read only on a cache miss."""
    with _cache_lock:
        cached = _cache.get((process_id, content_hash))
    if cached is not None:
        spec, subprocess_specs, forms = cached
        return DeployedSpec(version_id, process_id, content_hash, spec, subprocess_specs, forms)
    row = session.get(SpecVersion, version_id)
    if row is None:
        raise NotFound(f"流程版本 {version_id} 不存在")
    return as_deployed(row)


def as_deployed(row: SpecVersion) -> DeployedSpec:
    """Turn a version row into a runnable spec, from the cache or from its stored JSON."""
    key = (row.process_id, row.content_hash)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        doc = json.loads(row.spec_json)
        spec = SERIALIZER.from_dict(doc["spec"])
        subprocess_specs = {k: SERIALIZER.from_dict(v) for k, v in doc["subprocess_specs"].items()}
        for each in (spec, *subprocess_specs.values()):
            connect_event_subprocesses(each)
        cached = (spec, subprocess_specs, json.loads(row.forms_json))
        with _cache_lock:
            _cache[key] = cached
    spec, subprocess_specs, forms = cached
    return DeployedSpec(row.id, row.process_id, row.content_hash, spec, subprocess_specs, forms)
