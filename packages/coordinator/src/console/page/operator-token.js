// The operator credential: in sessionStorage only, never shown again after entry. Without it every
// action button is disabled (the leader would refuse the action anyway).

import { setText, ui } from './dom.js';

const TOKEN_KEY = 'at-orchestrator.operator-token';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}
export function renderToken() {
  const has = getToken() !== '';
  setText(ui.tokenState, has ? 'operator token set (this tab)' : 'read-only');
  ui.tokenState.classList.toggle('set', has);
  ui.tokenInput.classList.toggle('hidden', has);
  ui.tokenSet.classList.toggle('hidden', has);
  ui.tokenForget.classList.toggle('hidden', !has);
  updateActionControls();
}
ui.tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const value = ui.tokenInput.value.trim();
  ui.tokenInput.value = '';
  if (value !== '') sessionStorage.setItem(TOKEN_KEY, value);
  renderToken();
});
ui.tokenForget.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  renderToken();
});

/** Enables the action buttons when a token is set and nothing blocks them (data-blocked). */
export function updateActionControls() {
  const has = getToken() !== '';
  for (const b of document.querySelectorAll('button.action')) {
    const disabled = !has || /** @type {HTMLElement} */ (b).dataset.blocked === '1';
    if (/** @type {HTMLButtonElement} */ (b).disabled !== disabled) /** @type {HTMLButtonElement} */ (b).disabled = disabled;
    const title = has ? '' : 'enter the operator token to act';
    if (b.title !== title) b.title = title;
  }
}
