"""Each step of the plan (推进步骤) maps to BPMN elements that exist, in a lane, with a form where people act.

The mapping is data (`data/plan_steps.json`); this test checks it instead of trusting it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from workflows.engine import specs

MAPPING = json.loads((Path(specs.PROJECT_ROOT) / "data" / "plan_steps.json").read_text(encoding="utf-8"))[
    "steps"
]
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"

# The plan's steps, section 五 of the implementation plan: (phase, step, title).
PLAN = [
    (1, 1, "动员部署、制定方案"),
    (1, 2, "开展培训、掌握标准"),
    (1, 3, "领导包抓、示范推动"),
    (1, 4, "支部启动、制定清单"),
    (2, 1, "学标议标、明确方向"),
    (2, 2, "广泛自查、逐项对标"),
    (2, 3, "对接制度、跟踪管理"),
    (3, 1, "督促指导、有序推进"),
    (3, 2, "抓点示范、以点带面"),
    (4, 1, "强化考核、认真验收"),
    (4, 2, "汇总意见、及时反馈"),
    (4, 3, "跟踪问责、整改提升"),
    (5, 1, "巩固提升"),
]


def _process(process_id: str) -> etree._Element:
    for path in specs.BPMN_DIR.glob("*.bpmn"):
        process = etree.parse(str(path)).getroot().find(f"{BPMN}process[@id='{process_id}']")
        if process is not None:
            return process
    raise AssertionError(f"no diagram defines process {process_id}")


@pytest.mark.parametrize("phase,step,title", PLAN, ids=[f"{p}.{s}" for p, s, _ in PLAN])
def test_each_plan_step_has_bpmn_elements(phase, step, title):
    [entry] = [m for m in MAPPING if (m["phase"], m["step"]) == (phase, step)]
    assert entry["title"].startswith(title) and entry["elements"]
    for process_id, element_ids in entry["elements"].items():
        process = _process(process_id)
        lanes = {ref.text for ref in process.iter(f"{BPMN}flowNodeRef")}
        for element_id in element_ids:
            [element] = process.xpath(f".//*[@id='{element_id}']")
            assert element_id in lanes, f"{process_id}/{element_id} has no lane (no role performs it)"
            if etree.QName(element).localname == "userTask":
                assert element.xpath(".//*[local-name()='property'][@name='formJsonSchemaFilename']"), (
                    element_id
                )


def test_the_mapping_lists_no_step_the_plan_does_not_have():
    assert sorted((m["phase"], m["step"]) for m in MAPPING) == [(p, s) for p, s, _ in PLAN]


def test_every_branch_task_of_phases_1_to_4_has_a_phase_deadline():
    """Branch tasks carry their phase's deadline timer; phase 5 (长期坚持) has none by design."""
    process = _process("branch_programme")
    attached = {b.get("attachedToRef") for b in process.iter(f"{BPMN}boundaryEvent")}
    office = {
        ref.text for lane in process.iter(f"{BPMN}lane") if lane.get("name") == "党委工作室" for ref in lane
    }
    for task in process.iter(f"{BPMN}userTask"):
        if task.get("id") not in office and task.get("id") != "consolidate":
            assert task.get("id") in attached, task.get("id")
