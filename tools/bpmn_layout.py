"""Write the diagram part (BPMN DI) of a hand-authored BPMN file, so it opens in any modeler.

    python -m tools.bpmn_layout bpmn/branch_programme.bpmn [...]

The process semantics are authored by hand; this lays the elements out left to right by their
longest path from a start event, one horizontal band per lane, and replaces the file's
`bpmndi:BPMNDiagram`. Running it again on an unchanged process gives the same file.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
NODE_TAGS = {
    "startEvent": (36, 36),
    "endEvent": (36, 36),
    "intermediateCatchEvent": (36, 36),
    "intermediateThrowEvent": (36, 36),
    "boundaryEvent": (36, 36),
    "exclusiveGateway": (50, 50),
    "parallelGateway": (50, 50),
    "inclusiveGateway": (50, 50),
    "eventBasedGateway": (50, 50),
    "userTask": (110, 80),
    "manualTask": (110, 80),
    "scriptTask": (110, 80),
    "serviceTask": (110, 80),
    "task": (110, 80),
    "callActivity": (110, 80),
}
COLUMN, ROW, LEFT, LANE_HEADER = 170, 120, 160, 30


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _ranks(nodes: dict, flows: list, attached: dict[str, str]) -> dict[str, int]:
    """Longest-path rank from the start events, ignoring edges that close a loop."""
    succ = defaultdict(list)
    for _, source, target in flows:
        succ[source].append(target)
    for boundary, host in attached.items():
        succ[host].append(boundary)
    starts = [n for n, (tag, _) in nodes.items() if tag == "startEvent"]
    back, state = set(), {}

    def visit(node: str) -> None:  # iterative enough for diagrams of this size
        state[node] = 1
        for nxt in succ[node]:
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                visit(nxt)
        state[node] = 2

    for start in starts:
        visit(start)
    for node in nodes:
        if node not in state:
            visit(node)
    rank = {n: 0 for n in nodes}
    for _ in range(len(nodes)):
        changed = False
        for source, targets in succ.items():
            for target in targets:
                if (source, target) in back:
                    continue
                step = 0 if attached.get(target) == source else 1
                if rank[target] < rank[source] + step:
                    rank[target], changed = rank[source] + step, True
        if not changed:
            break
    return rank


def _nodes_of(container) -> tuple[dict, dict[str, str]]:
    nodes, attached = {}, {}
    for child in container:
        tag = etree.QName(child).localname
        if tag in NODE_TAGS:
            nodes[child.get("id")] = (tag, NODE_TAGS[tag])
            if tag == "boundaryEvent":
                attached[child.get("id")] = child.get("attachedToRef")
    return nodes, attached


def _flows_of(container) -> list[tuple[str, str, str]]:
    return [
        (f.get("id"), f.get("sourceRef"), f.get("targetRef"))
        for f in container.findall(_q(BPMN, "sequenceFlow"))
    ]


def _place(nodes, attached, flows, lanes, lane_of, top):
    """Bounds of every node, a band of rows per lane from `top`: (bounds, lane tops, rows, bottom, width)."""
    per_task = defaultdict(int)
    for host in attached.values():
        per_task[host] += 1
    for host, count in per_task.items():  # widen a task so its boundary events sit side by side
        tag, (w, h) = nodes[host]
        nodes[host] = (tag, (max(w, 46 * count + 30), h))
    column = max(COLUMN, max((w for _, (w, _h) in nodes.values()), default=0) + 40)
    rank = _ranks(nodes, flows, attached)
    slots: dict[tuple[str, int], int] = defaultdict(int)
    row_of = {}
    for node in nodes:
        if node in attached:
            continue
        key = (lane_of.get(node, lanes[0][0]), rank[node])
        row_of[node] = slots[key]
        slots[key] += 1
    lane_rows = {
        lane_id: max([slots[(lane_id, r)] for r in set(rank.values())] + [1]) for lane_id, _ in lanes
    }
    lane_top = {}
    for lane_id, _ in lanes:
        lane_top[lane_id] = top
        top += lane_rows[lane_id] * ROW + 20
    bounds = {}
    for node, (_tag, (w, h)) in nodes.items():
        if node in attached:
            continue
        cx = LEFT + rank[node] * column + column // 2
        cy = lane_top[lane_of.get(node, lanes[0][0])] + 10 + row_of[node] * ROW + ROW // 2
        bounds[node] = (cx - w // 2, cy - h // 2, w, h)
    per_host = defaultdict(int)
    for boundary, host in attached.items():
        hx, hy, hw, hh = bounds[host]
        offset = per_host[host]
        per_host[host] += 1
        bounds[boundary] = (hx + 15 + offset * 46, hy + hh - 18, 36, 36)
    width = LEFT + (max(rank.values(), default=0) + 1) * column + 40
    return bounds, lane_top, lane_rows, top, width


def layout(path: Path) -> None:
    """Replace the diagram part of one BPMN file with a fresh layout.

    Event subprocesses are drawn expanded, each in a band of its own under the lanes."""
    tree = etree.parse(str(path))
    root = tree.getroot()
    for old in root.findall(_q(BPMNDI, "BPMNDiagram")):
        root.remove(old)
    process = root.find(_q(BPMN, "process"))
    participant = root.find(f"{_q(BPMN, 'collaboration')}/{_q(BPMN, 'participant')}")
    nodes, attached = _nodes_of(process)
    flows = _flows_of(process)
    lanes = [
        (lane.get("id"), [r.text for r in lane.findall(_q(BPMN, "flowNodeRef"))])
        for lane in process.findall(f"{_q(BPMN, 'laneSet')}/{_q(BPMN, 'lane')}")
    ]
    lane_of = {node: lane_id for lane_id, refs in lanes for node in refs}
    if not lanes:
        lanes = [("_all", list(nodes))]
        lane_of = dict.fromkeys(nodes, "_all")
    bounds, lane_top, lane_rows, top, width = _place(nodes, attached, flows, lanes, lane_of, 40)
    subs = []
    for sub in process.findall(_q(BPMN, "subProcess")):
        inner, inner_attached = _nodes_of(sub)
        inner_flows = _flows_of(sub)
        band = [(sub.get("id"), list(inner))]
        placed, _, _, bottom, sub_width = _place(
            inner, inner_attached, inner_flows, band, dict.fromkeys(inner, sub.get("id")), top + 30
        )
        subs.append((sub.get("id"), top + 10, bottom - top, sub_width))
        bounds.update(placed)
        flows += inner_flows
        attached.update(inner_attached)
        width = max(width, sub_width)
        top = bottom + 20

    diagram = etree.SubElement(root, _q(BPMNDI, "BPMNDiagram"), id=f"BPMNDiagram_{process.get('id')}")
    plane_ref = participant.getparent().get("id") if participant is not None else process.get("id")
    plane = etree.SubElement(
        diagram, _q(BPMNDI, "BPMNPlane"), id=f"BPMNPlane_{process.get('id')}", bpmnElement=plane_ref
    )

    def shape(element_id: str, x: float, y: float, w: float, h: float, **extra) -> None:
        node = etree.SubElement(
            plane, _q(BPMNDI, "BPMNShape"), id=f"{element_id}_di", bpmnElement=element_id, **extra
        )
        etree.SubElement(
            node, _q(DC, "Bounds"), x=str(int(x)), y=str(int(y)), width=str(int(w)), height=str(int(h))
        )

    if participant is not None:
        shape(
            participant.get("id"),
            LEFT - LANE_HEADER - 30,
            40,
            width - LEFT + LANE_HEADER + 30,
            top - 40,
            isHorizontal="true",
        )
    for lane_id, _ in lanes:
        if lane_id != "_all":
            shape(
                lane_id,
                LEFT - 30,
                lane_top[lane_id],
                width - LEFT + 30,
                lane_rows[lane_id] * ROW + 20,
                isHorizontal="true",
            )
    for sub_id, sub_top, height, sub_width in subs:
        shape(sub_id, LEFT - 20, sub_top, sub_width - LEFT + 10, height, isExpanded="true")
    for node, (x, y, w, h) in bounds.items():
        shape(node, x, y, w, h)
    for flow_id, source, target in flows:
        sx, sy, sw, sh = bounds[source]
        tx, ty, tw, th = bounds[target]
        edge = etree.SubElement(plane, _q(BPMNDI, "BPMNEdge"), id=f"{flow_id}_di", bpmnElement=flow_id)
        if source in attached:
            points = [(sx + sw / 2, sy + sh), (sx + sw / 2, ty + th / 2), (tx, ty + th / 2)]
        elif tx > sx:
            start, end = (sx + sw, sy + sh / 2), (tx, ty + th / 2)
            points = (
                [start, end]
                if start[1] == end[1]
                else [start, ((start[0] + end[0]) / 2, start[1]), ((start[0] + end[0]) / 2, end[1]), end]
            )
        else:  # a loop back: under both shapes
            below = max(sy + sh, ty + th) + 25
            points = [
                (sx + sw / 2, sy + sh),
                (sx + sw / 2, below),
                (tx + tw / 2, below),
                (tx + tw / 2, ty + th),
            ]
        for x, y in points:
            etree.SubElement(edge, _q(DI, "waypoint"), x=str(int(x)), y=str(int(y)))
    etree.indent(tree, space="  ")
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        layout(Path(name))
