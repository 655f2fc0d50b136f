// The partition map: one element per partition, made once and touched only when what it shows
// changed (4096 partitions at one snapshot a second cost a few ms); its legend; the details of the
// partition clicked, with the move form.

import { el, fmtMs, setText, ui } from './dom.js';
import { updateActionControls } from './operator-token.js';
import { state } from './page-state.js';
import { colour, swatch } from './worker-colours.js';

/** One element per partition, and the key of what each shows (re-rendered only when it changes). */
const cells = [];
const shown = [];
let selected = -1;
let hovered = -1;

/** The partition whose details are open, or -1. */
export function selectedPartition() {
  return selected;
}

function ensureCells(n) {
  if (n === 0 || cells.length === n) return;
  cells.length = 0;
  shown.length = 0;
  selected = -1;
  hovered = -1;
  const size = n <= 64 ? 40 : n <= 256 ? 26 : n <= 1024 ? 14 : 9;
  ui.map.style.setProperty('--cell', `${size}px`);
  ui.map.classList.toggle('small', n > 256 && n <= 1024);
  ui.map.classList.toggle('tiny', n > 1024);
  const frag = document.createDocumentFragment();
  for (let i = 0; i < n; i++) {
    const c = el('div', 'cell');
    c.dataset.partition = String(i);
    c.setAttribute('role', 'gridcell');
    if (n <= 256) c.append(el('span', '', String(i)));
    frag.append(c);
    cells.push(c);
    shown.push('');
  }
  ui.map.replaceChildren(frag);
  ui.details.classList.add('hidden');
}

function describePartition(p) {
  if (!p) return '';
  const parts = [`partition ${p.partition}`, `owner ${p.owner ?? 'NONE'}`, `epoch ${p.epoch}`, `phase ${p.phase}`];
  if (p.next) parts.push(`next ${p.next}`);
  parts.push(p.pinned_to ? `pinned to ${p.pinned_to}` : 'not pinned');
  if (p.open !== null && p.open !== undefined) parts.push(`${p.open} open correlation${p.open === 1 ? '' : 's'}`);
  if (p.oldest_open_ms !== null && p.oldest_open_ms !== undefined) parts.push(`oldest open ${fmtMs(p.oldest_open_ms)}`);
  const to = state.plan?.moves.get(p.partition);
  if (to !== undefined) parts.push(`plan: → ${to ?? 'nobody'}`);
  return parts.join(' · ');
}

export function renderMap(partitions) {
  ensureCells(partitions.length);
  let unowned = 0;
  let moving = 0;
  for (let i = 0; i < partitions.length && i < cells.length; i++) {
    const p = partitions[i];
    const isUnowned = p.owner === null || p.phase === 'unowned';
    if (isUnowned) unowned++;
    if (p.phase === 'revoking') moving++;
    const planTo = state.plan?.moves.get(i);
    const key = `${p.owner}|${p.epoch}|${p.phase}|${p.next ?? ''}|${p.pinned_to ?? ''}|${planTo === undefined ? '' : `>${planTo}`}|${colour(p.owner)}|${colour(p.next)}|${planTo ? colour(planTo) : ''}`;
    if (shown[i] === key) continue;
    shown[i] = key;
    const c = cells[i];
    c.dataset.owner = p.owner ?? '';
    c.dataset.epoch = String(p.epoch);
    c.dataset.phase = p.phase;
    c.dataset.next = p.next ?? '';
    c.dataset.pinned = p.pinned_to ?? '';
    c.style.backgroundColor = isUnowned ? '' : colour(p.owner);
    c.classList.toggle('unowned', isUnowned);
    c.classList.toggle('revoking', p.phase === 'revoking');
    if (p.phase === 'revoking' && p.next) c.style.setProperty('--next', colour(p.next));
    else c.style.removeProperty('--next');
    c.classList.toggle('pinned', p.pinned_to !== null && p.pinned_to !== undefined);
    c.classList.toggle('planned', planTo !== undefined);
    if (planTo !== undefined) c.style.setProperty('--plan-to', planTo === null ? 'var(--alarm)' : colour(planTo));
    else c.style.removeProperty('--plan-to');
  }
  if (hovered >= 0 && partitions[hovered]) cells[hovered].title = describePartition(partitions[hovered]);
  setText(ui.mapCount, `${partitions.length}`);
  ui.unownedPill.dataset.unowned = String(unowned);
  setText(ui.unownedPill, `${unowned} unowned`);
  ui.unownedPill.classList.toggle('hidden', unowned === 0);
  setText(ui.movingPill, `${moving} moving`);
  ui.movingPill.classList.toggle('hidden', moving === 0);
  renderDetails();
}

export function renderLegend(s) {
  const counts = new Map();
  let unowned = 0;
  for (const p of s.partitions) {
    if (p.owner === null || p.phase === 'unowned') unowned++;
    else counts.set(p.owner, (counts.get(p.owner) ?? 0) + 1);
  }
  for (const w of s.workers) if (!counts.has(w.id)) counts.set(w.id, 0);
  const key = JSON.stringify([[...counts].sort(), unowned, [...counts.keys()].map(colour)]);
  if (ui.legend.dataset.key === key) return;
  ui.legend.dataset.key = key;
  const items = [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([id, n]) => {
    const item = el('span', 'legend-item');
    item.dataset.legendWorker = id;
    item.append(swatch(id), document.createTextNode(`${id} (${n})`));
    return item;
  });
  if (unowned > 0) {
    const item = el('span', 'legend-item');
    item.append(swatch(null), document.createTextNode(`unowned (${unowned})`));
    items.push(item);
  }
  const hint = el('span', 'legend-item muted', 'dashed border + sweep: moving (border = next owner) · dot: pinned');
  ui.legend.replaceChildren(...items, hint);
}

function renderDetails() {
  if (selected < 0 || !state.snap || !state.snap.partitions[selected]) {
    ui.details.classList.add('hidden');
    return;
  }
  const p = state.snap.partitions[selected];
  ui.details.classList.remove('hidden');
  ui.details.dataset.details = String(selected);
  setText(ui.detailsText, describePartition(p));
  // Move targets: live workers that are not draining, the current owner excluded.
  const targets = state.snap.workers.filter((w) => w.state === 'live' && !w.drain_requested && w.id !== p.owner).map((w) => w.id);
  const key = targets.join('\n');
  if (ui.moveTarget.dataset.key !== key) {
    const before = ui.moveTarget.value;
    ui.moveTarget.dataset.key = key;
    ui.moveTarget.replaceChildren(...targets.map((id) => {
      const o = el('option', '', id);
      o.value = id;
      return o;
    }));
    if (targets.includes(before)) ui.moveTarget.value = before;
  }
  const moveButton = ui.details.querySelector('[data-action="move"]');
  moveButton.dataset.blocked = targets.length === 0 ? '1' : '';
  updateActionControls();
}

function select(i) {
  if (selected >= 0 && cells[selected]) cells[selected].classList.remove('selected');
  selected = i;
  if (i >= 0 && cells[i]) cells[i].classList.add('selected');
  renderDetails();
}

ui.map.addEventListener('click', (e) => {
  const c = /** @type {HTMLElement} */ (e.target).closest('.cell');
  if (!c) return;
  const i = Number(c.dataset.partition);
  select(i === selected ? -1 : i);
});
// Titles are made on hover only: a title per cell per snapshot would be 4096 strings a second.
ui.map.addEventListener('pointerover', (e) => {
  const c = /** @type {HTMLElement} */ (e.target).closest('.cell');
  if (!c || !state.snap) return;
  hovered = Number(c.dataset.partition);
  c.title = describePartition(state.snap.partitions[hovered]);
});
ui.detailsClose.addEventListener('click', () => select(-1));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !ui.dialog.open) select(-1);
});
