// The process diagram with its current, done and late steps marked (process.html supplies the data).
// Big diagrams open on the current step at a readable scale; the buttons zoom, fit and return to it.
(async function () {
  const markers = JSON.parse(document.getElementById('bpmn-markers').textContent);
  const viewer = new BpmnJS({ container: '#diagram' });
  try {
    await viewer.importXML(document.getElementById('bpmn-xml').textContent);
    const canvas = viewer.get('canvas');
    const registry = viewer.get('elementRegistry');
    for (const [kind, ids] of Object.entries(markers)) {
      for (const id of ids) { if (registry.get(id)) canvas.addMarker(id, kind); }
    }
    const focus = [...(markers.late || []), ...(markers.current || [])].map((id) => registry.get(id)).filter(Boolean);
    const showCurrent = () => {
      if (!focus.length) { canvas.zoom('fit-viewport'); return; }
      canvas.zoom(1);
      canvas.scrollToElement(focus[0], { top: 120, bottom: 120, left: 160, right: 160 });
    };
    canvas.zoom('fit-viewport');
    if (canvas.zoom() < 0.5) { showCurrent(); }  // too small to read: open on the current step instead
    const tools = document.getElementById('diagram-tools');
    tools.hidden = false;
    tools.addEventListener('click', (event) => {
      const action = event.target.dataset && event.target.dataset.zoom;
      if (action === 'in') { canvas.zoom(canvas.zoom() * 1.25); }
      else if (action === 'out') { canvas.zoom(canvas.zoom() / 1.25); }
      else if (action === 'fit') { canvas.zoom('fit-viewport'); }
      else if (action === 'current') { showCurrent(); }
    });
    document.getElementById('diagram').dataset.ready = 'true';
  } catch (err) {
    document.getElementById('diagram').textContent = '流程图无法显示：' + err.message;
  }
})();
