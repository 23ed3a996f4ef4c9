"""Deploying by content hash: running instances keep their version; new ones take the newest."""

from __future__ import annotations

import shutil

import pytest

from tests.support import ASSIGNED, FIXED, REGISTERED, Driver, seed_people
from workflows.engine import specs
from workflows.engine.db import transaction
from workflows.engine.errors import DeployError, EngineError
from workflows.engine.models import AuditEvent, ProcessInstance


@pytest.fixture
def sources(tmp_path):
    bpmn_dir, forms_dir = tmp_path / "bpmn", tmp_path / "forms"
    shutil.copytree(specs.BPMN_DIR, bpmn_dir)
    shutil.copytree(specs.FORMS_DIR, forms_dir)
    return bpmn_dir, forms_dir


def deploy(factory, clock, sources):
    bpmn_dir, forms_dir = sources
    with transaction(factory) as s:
        return [
            v.id
            for v in specs.deploy_all(
                s, now=clock.now(), actor="admin", bpmn_dir=bpmn_dir, forms_dir=forms_dir
            )
        ]


@pytest.mark.parametrize("mode", ["straight", "restored"])
def test_instance_finishes_on_the_version_it_started_with(mode, db_url, factory, clock, sources):
    assert len(deploy(factory, clock, sources)) == len(list(specs.BPMN_DIR.glob("*.bpmn")))
    assert deploy(factory, clock, sources) == []  # unchanged content: no new version
    with transaction(factory) as session:
        seed_people(session, clock.now())
    driver = Driver(db_url, clock, mode)
    old = driver.start(REGISTERED)
    driver.complete(driver.only_task(old).id, ASSIGNED)

    diagram = sources[0] / "rectification.bpmn"
    diagram.write_text(
        diagram.read_text(encoding="utf-8").replace('name="整改落实"', 'name="整改落实（第二版）"'), "utf-8"
    )
    assert len(deploy(factory, clock, sources)) == 1

    assert driver.only_task(old).title == "整改落实"
    driver.complete(driver.only_task(old).id, FIXED)
    driver.complete(
        driver.only_task(old).id, {"approved": False, "comment": "重做", "deadline": "2026-12-10"}
    )
    assert driver.only_task(old).title == "整改落实"  # the loop comes back to version 1's task
    new = driver.start(REGISTERED)
    driver.complete(driver.only_task(new).id, ASSIGNED)
    assert driver.only_task(new).title == "整改落实（第二版）"
    old_row, new_row = driver.instance(old), driver.instance(new)
    assert old_row.spec_version_id != new_row.spec_version_id
    driver.complete(driver.only_task(old).id, FIXED)
    driver.complete(driver.only_task(old).id, {"approved": True})
    assert driver.instance(old).status == "completed"
    assert driver.mismatches() == []
    driver.close()


def test_changing_a_form_makes_a_new_version(factory, clock, sources):
    deploy(factory, clock, sources)
    form = sources[1] / "rectification-fix-schema.json"
    form.write_text(
        form.read_text(encoding="utf-8").replace('"maxLength": 2000', '"maxLength": 3000'), "utf-8"
    )
    assert len(deploy(factory, clock, sources)) == 1


def test_missing_form_is_a_deploy_error(factory, clock, sources):
    (sources[1] / "rectification-fix-schema.json").unlink()
    with pytest.raises(DeployError, match="rectification-fix-schema.json"):
        deploy(factory, clock, sources)
    with factory() as s:
        assert s.query(AuditEvent).count() == 0


def test_invalid_bpmn_is_a_deploy_error(factory, clock, sources):
    (sources[0] / "broken.bpmn").write_text("<bpmn:definitions", "utf-8")
    with pytest.raises(DeployError, match="broken.bpmn"):
        deploy(factory, clock, sources)


FAILING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="failing" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="boom" />
    <bpmn:scriptTask id="boom" name="出错的脚本">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>result = 1 / 0</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="boom" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def test_engine_failure_rolls_back_and_is_audited(db_url, factory, clock, sources):
    (sources[0] / "failing.bpmn").write_text(FAILING, "utf-8")
    deploy(factory, clock, sources)
    driver = Driver(db_url, clock, "straight")
    with pytest.raises(EngineError, match="ZeroDivisionError"):
        driver.start({"x": 1}, process="failing", actor="office1")
    events = driver.events()
    assert [e.action for e in events][-1] == "step.failed"
    failed = events[-1]
    assert failed.actor == "office1" and failed.instance_id is None
    assert '"error":' in failed.data and "ZeroDivisionError" in failed.data and '"x":1' in failed.data
    with factory() as s:
        assert s.query(ProcessInstance).count() == 0  # nothing half-written
    assert driver.verify().ok
    driver.close()
