// Unsaved typing survives a reload: a task form's text is kept in this browser as a draft (per task and
// person) until it is submitted. Only empty fields are filled back, so nothing the server shows is
// overwritten; file choices cannot be kept by any page and are not.
(function () {
  const form = document.querySelector('form[data-draft]');
  if (!form || !window.localStorage) return;
  const key = 'zhibu-draft:' + form.dataset.draft;
  const fields = () => Array.from(form.elements).filter(
    (el) => el.name && el.name !== 'csrf_token' && el.type !== 'file' && el.type !== 'hidden' && !el.disabled);
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(key) || '{}'); } catch (err) { saved = {}; }
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
    const draft = {};
    for (const el of fields()) {
      if ((el.type === 'radio' || el.type === 'checkbox') && !el.checked) continue;
      if (el.value) draft[el.name] = el.value;
    }
    localStorage.setItem(key, JSON.stringify(draft));
  });
  form.addEventListener('submit', () => localStorage.removeItem(key));
})();
