// Unsaved typing survives a reload or a failed submit: a task form's text is kept in this browser as a
// draft per task and person, for three days. Only empty fields are filled back, so nothing the server
// shows is overwritten; dates are not restored (a deadline must be chosen afresh) and file choices
// cannot be kept by any page. Signing out removes the person's drafts from this browser.
(function () {
  const PREFIX = 'zhibu-draft:';
  const KEEP_MS = 3 * 24 * 3600 * 1000;
  if (!window.localStorage) return;
  const logout = document.querySelector('form[action$="/logout"]');
  if (logout) {
    logout.addEventListener('submit', () => {
      for (const key of Object.keys(localStorage)) if (key.startsWith(PREFIX)) localStorage.removeItem(key);
    });
  }
  for (const key of Object.keys(localStorage)) {  // drafts of tasks long done are not kept forever
    if (!key.startsWith(PREFIX)) continue;
    try {
      if (Date.now() - (JSON.parse(localStorage.getItem(key)).at || 0) > KEEP_MS) localStorage.removeItem(key);
    } catch (err) { localStorage.removeItem(key); }
  }
  const form = document.querySelector('form[data-draft]');
  if (!form) return;
  const key = PREFIX + form.dataset.draft;
  const fields = () => Array.from(form.elements).filter((el) =>
    el.name && el.name !== 'csrf_token' && !['file', 'hidden', 'date'].includes(el.type) && !el.disabled);
  let saved = {};
  try { saved = (JSON.parse(localStorage.getItem(key) || '{}').values) || {}; } catch (err) { saved = {}; }
  let restored = false;
  for (const el of fields()) {
    if (!(el.name in saved)) continue;
    if (el.type === 'radio' || el.type === 'checkbox') {
      if (!form.querySelector(`[name="${CSS.escape(el.name)}"]:checked`) && el.value === saved[el.name]) {
        el.checked = true; restored = true;
      }
    } else if (!el.value && saved[el.name]) {
      el.value = saved[el.name]; restored = true;
    }
  }
  if (restored) {
    const note = document.createElement('p');
    note.className = 'notice';
    note.textContent = '已恢复您上次未提交的填写内容（草稿）。';
    form.prepend(note);
  }
  form.addEventListener('input', () => {
    const values = {};
    for (const el of fields()) {
      if ((el.type === 'radio' || el.type === 'checkbox') && !el.checked) continue;
      if (el.value) values[el.name] = el.value;
    }
    localStorage.setItem(key, JSON.stringify({ at: Date.now(), values }));
  });
})();
