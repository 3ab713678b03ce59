// Small DOM helpers: elements built with text nodes only (never parsed markup, so
// nothing an API returns can become markup), modal dialogs, copy buttons.

/** Builds an element: h('button', {type: 'button', onclick: f}, 'Save'). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (name === 'value') {
      element.value = value;
    } else if (name === 'checked') {
      element.checked = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let view = 0;
/** Starts a new page view; answers that arrive for an older one are dropped. */
export function nextView() {
  view += 1;
  return view;
}
/** The current view's number, to check against after an await. */
export function currentView() {
  return view;
}

let idCounter = 0;
/** A fresh element id, to tie labels, hints and errors to their inputs. */
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** Replaces the main area with `children` and moves focus to its heading. */
export function show(...children) {
  const main = document.getElementById('main');
  main.replaceChildren();
  append(main, children);
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

/** Says `text` to screen readers (and nothing on screen). */
export function announce(text) {
  const region = document.getElementById('announce');
  region.textContent = '';
  // A change the next frame is announced even when the text repeats.
  requestAnimationFrame(() => { region.textContent = text; });
}

/** A labelled text input with an optional hint and error line. */
export function field(label, attributes = {}, hint = '') {
  const id = attributes.id || uid();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = `${id}-error`;
  const input = h(attributes.multiline ? 'textarea' : 'input', {
    type: attributes.multiline ? undefined : (attributes.type || 'text'),
    ...attributes,
    multiline: undefined,
    id,
    'aria-describedby': [hintId, errorId].filter(Boolean).join(' '),
  });
  const error = h('p', { id: errorId, class: 'field-error', 'aria-live': 'polite' });
  const wrapper = h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { id: hintId, class: 'hint' }, hint) : null,
    input,
    error);
  return {
    wrapper, input,
    setError(message) {
      error.textContent = message || '';
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

/** An error box showing an API error's message (or any error's). */
export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, messageOf(error));
}

/** The words to show for a failure: the API's own message when it has one. */
export function messageOf(error) {
  if (!error) return '';
  if (error.message) return error.message;
  return String(error);
}

/**
 * Opens a modal dialog. `build(close)` returns its content; `canClose()`
 * decides whether Esc may close it (the secret dialog says no until the
 * secret is acknowledged). The dialog is removed from the document when it
 * closes, so nothing it showed stays in the DOM. A modal <dialog> makes the
 * rest of the page inert: Tab stays inside it.
 */
export function openDialog(title, build, { canClose = () => true, onClose } = {}) {
  const titleId = uid('dialog-title');
  const dialog = h('dialog', { 'aria-labelledby': titleId });
  const opener = document.activeElement;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    dialog.close();
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected) opener.focus();
  };
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    if (canClose()) close();
  });
  // Browsers may close a modal dialog despite a prevented cancel (a second
  // Escape without user activation): one that may not close yet reopens.
  dialog.addEventListener('close', () => {
    if (closed) return;
    if (canClose()) close();
    else dialog.showModal();
  });
  dialog.append(h('h2', { id: titleId }, title));
  append(dialog, [build(close)]);
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector('input, textarea, select, button:not([disabled])');
  if (first) first.focus();
  return { dialog, close };
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(label, text, name) {
  const status = h('span', { class: 'ok', 'aria-live': 'polite' });
  const button = h('button', {
    type: 'button',
    'aria-label': name || label,
    onclick: async () => {
      const ok = await copyText(text());
      status.textContent = ok ? 'Copied' : 'Select the text and copy it';
    },
  }, label);
  return h('span', {}, button, ' ', status);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Without clipboard permission: copy from a temporary selection.
    const area = h('textarea', { 'aria-hidden': 'true', readonly: true, class: 'visually-hidden' });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/** A timestamp (RFC 3339) in the reader's locale, or `fallback`. */
export function when(timestamp, fallback = 'never') {
  if (!timestamp) return fallback;
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return timestamp;
  return h('time', { datetime: timestamp, title: timestamp }, date.toLocaleString());
}

/** "CREDENTIAL_STATE_ACTIVE" → "active". */
export function enumWord(value, prefix) {
  if (!value) return 'unknown';
  return value.replace(prefix, '').toLowerCase().replaceAll('_', ' ');
}

/** A table that becomes a list of cards on a narrow screen. */
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((column) => h('th', { scope: 'col' }, column)))),
      h('tbody', {}, rows.map((cells) => h('tr', {},
        cells.map((cell, index) => h('td', { 'data-label': columns[index] }, cell)))))));
}

/** A "Loading…" line for a section that is being fetched. */
export function loading(what) {
  return h('p', { class: 'loading', role: 'status' }, `Loading ${what}…`);
}
