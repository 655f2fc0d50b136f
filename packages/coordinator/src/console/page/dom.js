// The page's elements, found once by id, and the small helpers every part of the page uses: making
// elements, setting text only when it changed, formatting numbers and durations, and the line
// that shows the answer to a request (an action or Plan).

export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export const ui = {
  banner: $('banner'),
  leaderPill: $('leader-pill'),
  tablePill: $('table-pill'),
  unownedPill: $('unowned-pill'),
  movingPill: $('moving-pill'),
  pausedPill: $('paused-pill'),
  frozenPill: $('frozen-pill'),
  servedBy: $('served-by'),
  tokenForm: /** @type {HTMLFormElement} */ ($('token-form')),
  tokenInput: /** @type {HTMLInputElement} */ ($('token-input')),
  tokenState: $('token-state'),
  tokenSet: $('token-set'),
  tokenForget: $('token-forget'),
  map: $('map'),
  mapCount: $('map-count'),
  legend: $('legend'),
  details: $('details'),
  detailsText: $('details-text'),
  detailsClose: $('details-close'),
  moveTarget: /** @type {HTMLSelectElement} */ ($('move-target')),
  planButton: /** @type {HTMLButtonElement} */ ($('plan-button')),
  planClear: $('plan-clear'),
  plan: $('plan'),
  planTitle: $('plan-title'),
  planNote: $('plan-note'),
  planList: $('plan-list'),
  planText: $('plan-text'),
  workersBody: $('workers-body'),
  coordinators: $('coordinators'),
  leaderEpoch: $('leader-epoch'),
  tableVersion: $('table-version'),
  pausedState: $('paused-state'),
  frozenState: $('frozen-state'),
  handoffs: $('handoffs'),
  phases: $('phases'),
  backlog: $('backlog'),
  dlq: $('dlq'),
  historySpan: $('history-span'),
  result: $('action-result'),
  dialog: /** @type {HTMLDialogElement} */ ($('confirm')),
  dialogText: $('confirm-text'),
};

// Formatting

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
export function fmtNum(v) {
  if (v === null || v === undefined) return '–';
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Shows the outcome of a request in the result line (the tests read its data attributes). */
export function showResult(kind, text, attrs) {
  ui.result.className = `action-result ${kind}`;
  ui.result.dataset.actionResult = kind;
  ui.result.dataset.status = String(attrs.status ?? '');
  ui.result.dataset.code = attrs.code ?? '';
  ui.result.dataset.cmd = attrs.cmd ?? '';
  ui.result.textContent = `${new Date().toLocaleTimeString()} ${text}`;
}
