// The process diagram with its current, done and late steps marked (process.html supplies the data).
(async function () {
  const markers = JSON.parse(document.getElementById('bpmn-markers').textContent);
  const viewer = new BpmnJS({ container: '#diagram' });
  try {
    await viewer.importXML(document.getElementById('bpmn-xml').textContent);
    const canvas = viewer.get('canvas');
    const registry = viewer.get('elementRegistry');
    canvas.zoom('fit-viewport');
    for (const [kind, ids] of Object.entries(markers)) {
      for (const id of ids) { if (registry.get(id)) canvas.addMarker(id, kind); }
    }
    document.getElementById('diagram').dataset.ready = 'true';
  } catch (err) {
    document.getElementById('diagram').textContent = '流程图无法显示：' + err.message;
  }
})();
