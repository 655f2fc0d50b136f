// The operator console: the leader's view, live from /console/events (one ConsoleSnapshot a second),
// with the rebalance plan as a picture and the operator's actions behind OPERATOR_TOKEN. Plain browser
// JavaScript, no build step, nothing fetched from elsewhere; the server's CSP allows no inline script
// or style, so every element is made here and styles are set through the CSSOM. The data it reads is
// typed in ../console-data.ts and ../../control/control-data.ts.
//
// Rendering is incremental: one element per partition made once, touched only when what it shows
// changed; worker rows are kept by id. 4096 partitions at one snapshot a second cost a few ms.

const TOKEN_KEY = 'at-orchestrator.operator-token';
const STALE_AFTER_MS = 5000;
const RECONNECT_MS = 2000;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
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

/** The last snapshot rendered, or null. */
let snap = null;
let lastSnapshotAt = 0;
let streamState = 'connecting'; // connecting · open · closed
let selected = -1;
let hovered = -1;
/** The plan drawn on the map: partition → planned owner, and the table version it was made at. */
let plan = null;

// ---------------------------------------------------------------------------------------------
// Colours: a stable colour per worker id, never in the red kept for alarms. Each id prefers a palette
// slot by its FNV-1a hash and takes the next free one if another worker present holds it; it keeps
// that colour for as long as it is in the snapshots (ids are placed in sorted order, so a reload
// shows the same colours). Past the palette, a hue from the hash.

const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#edc948', '#76b7b2',
  '#9c755f', '#ff9da7', '#bab0ac', '#a0cbe8', '#bcbd22', '#e377c2',
];
/** id → colour, for the ids present. */
const colourOf = new Map();
/** palette slot → id holding it. */
const slots = new Map();

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final mix, so that ids differing in their last character land far apart.
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return h >>> 0;
}
function hashedColour(id) {
  const h = fnv1a(id);
  return `hsl(${28 + (h % 304)} ${52 + ((h >>> 12) % 28)}% ${50 + ((h >>> 20) % 16)}%)`;
}
/** Gives every id present a colour (sorted, so that the same set always gets the same colours) and frees the colours of ids gone. */
function placeColours(ids) {
  const present = new Set(ids);
  for (const [slot, id] of slots) {
    if (!present.has(id)) {
      slots.delete(slot);
      colourOf.delete(id);
    }
  }
  for (const id of [...present].sort()) {
    if (colourOf.has(id)) continue;
    const start = fnv1a(id) % PALETTE.length;
    let placed = false;
    for (let k = 0; k < PALETTE.length && !placed; k++) {
      const slot = (start + k) % PALETTE.length;
      if (!slots.has(slot)) {
        slots.set(slot, id);
        colourOf.set(id, PALETTE[slot]);
        placed = true;
      }
    }
    if (!placed) colourOf.set(id, hashedColour(id));
  }
}
function colour(id) {
  if (id === null || id === undefined || id === '') return '';
  // An id not in the snapshot (a plan naming a worker the last snapshot did not list yet).
  return colourOf.get(id) ?? hashedColour(id);
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
function fmtNum(v) {
  if (v === null || v === undefined) return '–';
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
function swatch(id) {
  const s = el('span', id ? 'swatch' : 'swatch unowned');
  if (id) s.style.backgroundColor = colour(id);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The partition map

/** One element per partition, and the key of what each shows (re-rendered only when it changes). */
const cells = [];
const shown = [];

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
  const to = plan?.moves.get(p.partition);
  if (to !== undefined) parts.push(`plan: → ${to ?? 'nobody'}`);
  return parts.join(' · ');
}

function renderMap(partitions) {
  ensureCells(partitions.length);
  let unowned = 0;
  let moving = 0;
  for (let i = 0; i < partitions.length && i < cells.length; i++) {
    const p = partitions[i];
    const isUnowned = p.owner === null || p.phase === 'unowned';
    if (isUnowned) unowned++;
    if (p.phase === 'revoking') moving++;
    const planTo = plan?.moves.get(i);
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

function renderLegend(s) {
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
  if (selected < 0 || !snap || !snap.partitions[selected]) {
    ui.details.classList.add('hidden');
    return;
  }
  const p = snap.partitions[selected];
  ui.details.classList.remove('hidden');
  ui.details.dataset.details = String(selected);
  setText(ui.detailsText, describePartition(p));
  // Move targets: live workers that are not draining, the current owner excluded.
  const targets = snap.workers.filter((w) => w.state === 'live' && !w.drain_requested && w.id !== p.owner).map((w) => w.id);
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
  if (!c || !snap) return;
  hovered = Number(c.dataset.partition);
  c.title = describePartition(snap.partitions[hovered]);
});
ui.detailsClose.addEventListener('click', () => select(-1));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !ui.dialog.open) select(-1);
});

// ---------------------------------------------------------------------------------------------
// Workers

const COLUMNS = ['id', 'state', 'heartbeat', 'capacity', 'partitions', 'open', 'decisions', 'forwarded', 'fenced', 'version', 'draining', 'action'];
const NUMERIC = new Set(['heartbeat', 'capacity', 'partitions', 'open', 'decisions', 'forwarded', 'fenced']);
/** id → {tr, td: {column → element}, state: element, button} */
const rows = new Map();
let rowOrder = '';

function makeRow(id) {
  const tr = el('tr');
  tr.dataset.worker = id;
  const td = {};
  for (const col of COLUMNS) {
    const cell = el('td', NUMERIC.has(col) ? 'num' : '');
    cell.dataset.col = col;
    td[col] = cell;
    tr.append(cell);
  }
  td.id.append(swatch(id), document.createTextNode(` ${id}`));
  const state = el('span', 'state');
  td.state.append(state);
  const button = el('button', 'action', 'Drain…');
  button.type = 'button';
  button.dataset.action = 'drain';
  button.dataset.drain = id;
  button.disabled = true;
  td.action.append(button);
  return { tr, td, state, button };
}

function renderWorkers(workers) {
  const seen = new Set();
  for (const w of workers) {
    seen.add(w.id);
    let r = rows.get(w.id);
    if (!r) {
      r = makeRow(w.id);
      rows.set(w.id, r);
    }
    if (r.tr.dataset.state !== w.state) {
      r.tr.dataset.state = w.state;
      r.tr.className = w.state;
      r.state.className = `state ${w.state}`;
      setText(r.state, w.state);
    }
    setText(r.td.heartbeat, w.heartbeat_age_ms === null ? '–' : fmtMs(w.heartbeat_age_ms));
    setText(r.td.capacity, fmtNum(w.capacity));
    setText(r.td.partitions, String(w.partitions.length));
    setText(r.td.open, fmtNum(w.open_correlations));
    setText(r.td.decisions, fmtNum(w.decisions_per_s));
    setText(r.td.forwarded, fmtNum(w.forwarded_per_s));
    setText(r.td.fenced, fmtNum(w.fenced_writes));
    setText(r.td.version, w.version ?? '–');
    setText(r.td.draining, w.drain_requested ? 'requested' : w.state === 'draining' ? 'yes' : '');
    r.tr.dataset.partitions = String(w.partitions.length);
    r.button.dataset.blocked = w.state === 'live' && !w.drain_requested ? '' : '1';
  }
  for (const [id, r] of rows) {
    if (!seen.has(id)) {
      r.tr.remove();
      rows.delete(id);
    }
  }
  const order = [...seen].sort();
  const orderKey = order.join('\n');
  if (orderKey !== rowOrder) {
    rowOrder = orderKey;
    ui.workersBody.append(...order.map((id) => rows.get(id).tr));
  }
}

// ---------------------------------------------------------------------------------------------
// Leader, standbys, status, rates

function renderCluster(s) {
  const st = s.status;
  ui.leaderPill.dataset.leader = s.leader?.id ?? '';
  setText(ui.leaderPill, s.leader ? `leader ${s.leader.id} · epoch ${s.leader.epoch}` : 'no leader');
  ui.leaderPill.classList.toggle('alarm', !s.leader);
  setText(ui.tablePill, st ? `table v${st.table_version}` : 'table v–');
  setText(ui.servedBy, s.served_by);
  ui.pausedPill.classList.toggle('hidden', !st?.paused);
  // Paused is itself a reason to freeze: the frozen pill is for the other reasons.
  ui.frozenPill.classList.toggle('hidden', !st?.frozen || st.paused);
  if (st?.frozen) ui.frozenPill.title = st.frozen;
  setText(ui.frozenPill, st?.frozen ? `frozen: ${st.frozen}` : 'frozen');
  document.body.dataset.paused = st ? String(st.paused) : '';

  const key = JSON.stringify(s.coordinators);
  if (ui.coordinators.dataset.key !== key) {
    ui.coordinators.dataset.key = key;
    const list = [...s.coordinators].sort((a, b) => Number(b.leading) - Number(a.leading) || (a.id < b.id ? -1 : 1));
    ui.coordinators.replaceChildren(...list.map((c) => {
      const li = el('li');
      li.dataset.coordinator = c.id;
      li.dataset.leading = String(c.leading);
      li.append(el('span', c.leading ? 'role leader' : 'role', c.leading ? 'leader' : 'standby'), document.createTextNode(` ${c.id} `));
      const a = el('a', '', 'console');
      a.href = c.console_url;
      li.append(a, el('span', 'muted', ` · ${c.version} · since ${new Date(c.started_at).toLocaleString()}`));
      return li;
    }));
    if (list.length === 0) ui.coordinators.replaceChildren(el('li', 'muted', 'no coordinator presence'));
  }
  setText(ui.leaderEpoch, s.leader ? String(s.leader.epoch) : '–');
  setText(ui.tableVersion, st ? String(st.table_version) : '–');
  setText(ui.pausedState, st ? (st.paused ? 'paused by an operator' : 'running') : '–');
  ui.pausedState.classList.toggle('warn-text', !!st?.paused);
  setText(ui.frozenState, st ? (st.frozen ?? 'no') : '–');
  setText(ui.handoffs, st ? String(st.handoffs_in_flight) : '–');
  setText(ui.phases, st ? Object.entries(st.counts).map(([k, v]) => `${v} ${k}`).join(' · ') : '–');

  const r = s.rates;
  const lag = st?.lag;
  setText(ui.backlog, lag ? `${fmtNum(lag.pending)} / ${fmtNum(lag.ack_pending)} (${lag.stream} · ${lag.durable})` : fmtNum(r.backlog));
  const dlq = Object.entries(r.dlq_per_s).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  setText(ui.dlq, dlq.length === 0 ? 'none' : dlq.map(([k, v]) => `${k} ${fmtNum(v)}/s`).join(' · '));
}

// Small inline SVG charts from snapshot.history.
const SVG_NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 56;
const charts = new Map();
function chart(id) {
  let c = charts.get(id);
  if (!c) {
    const fig = $(id);
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const area = document.createElementNS(SVG_NS, 'polygon');
    const line = document.createElementNS(SVG_NS, 'polyline');
    svg.append(area, line);
    fig.append(svg);
    c = { fig, svg, area, line, now: fig.querySelector('.now') };
    charts.set(id, c);
  }
  return c;
}
function drawChart(id, history, pick, format = fmtNum) {
  const c = chart(id);
  const pts = history.map((h) => [h.at, pick(h)]).filter((p) => p[1] !== null && p[1] !== undefined && Number.isFinite(p[1]));
  const last = history.length > 0 ? pick(history[history.length - 1]) : null;
  if (pts.length === 0) {
    c.line.setAttribute('points', '');
    c.area.setAttribute('points', '');
    setText(c.now, '–');
    return;
  }
  const t0 = history[0].at;
  const span = Math.max(1, history[history.length - 1].at - t0);
  const max = Math.max(...pts.map((p) => p[1]));
  const top = max > 0 ? max * 1.1 : 1;
  const xy = pts.map(([t, v]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - (v / top) * (H - 2)).toFixed(1)}`);
  c.line.setAttribute('points', xy.join(' '));
  const x0 = (((pts[0][0] - t0) / span) * W).toFixed(1);
  const x1 = (((pts[pts.length - 1][0] - t0) / span) * W).toFixed(1);
  c.area.setAttribute('points', `${x0},${H} ${xy.join(' ')} ${x1},${H}`);
  setText(c.now, `${last === null || last === undefined ? '–' : format(last)} · max ${format(max)}`);
}
function renderCharts(s) {
  const h = s.history;
  const span = h.length > 1 ? h[h.length - 1].at - h[0].at : 0;
  setText(ui.historySpan, span === 0 ? '' : `last ${span < 90_000 ? `${Math.round(span / 1000)} s` : `${Math.round(span / 6000) / 10} min`}`);
  drawChart('chart-decisions', h, (p) => p.decisions_per_s);
  drawChart('chart-p99', h, (p) => p.p99_ms, fmtMs);
  drawChart('chart-backlog', h, (p) => p.backlog);
  drawChart('chart-dlq', h, (p) => p.dlq_per_s);
}

// ---------------------------------------------------------------------------------------------
// The stream and the banner

function render(s) {
  const t0 = performance.now();
  snap = s;
  const ids = new Set(s.workers.map((w) => w.id));
  for (const p of s.partitions) {
    if (p.owner) ids.add(p.owner);
    if (p.next) ids.add(p.next);
  }
  placeColours(ids);
  lastSnapshotAt = Date.now();
  // Without a leader's table (no leader answered) the map and its legend keep the last one known.
  if (s.partitions.length > 0) {
    renderMap(s.partitions);
    renderLegend(s);
  }
  renderWorkers(s.workers);
  renderCluster(s);
  renderCharts(s);
  renderPlanState();
  updateActionControls();
  document.body.dataset.tableVersion = s.status ? String(s.status.table_version) : '';
  document.body.dataset.snapshotAt = String(s.at);
  updateBanner();
  // How long this snapshot took to render (the tests check it stays small at 4096 partitions).
  document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
}

function updateBanner() {
  let kind = 'ok';
  let text = '';
  const age = Date.now() - lastSnapshotAt;
  if (streamState !== 'open') {
    kind = snap ? 'disconnected' : 'connecting';
    text = snap ? `disconnected from ${location.host}: reconnecting… (last update ${fmtMs(age)} ago)` : 'connecting…';
  } else if (snap && (snap.error || !snap.leader)) {
    kind = 'no-leader';
    text = `no leader: ${snap.error ?? 'no coordinator leads'} (the map shows the last table known)`;
  } else if (snap && age > STALE_AFTER_MS) {
    kind = 'stale';
    text = `no update for ${fmtMs(age)}`;
  } else if (!snap) {
    kind = 'connecting';
    text = 'waiting for the first snapshot…';
  }
  if (ui.banner.dataset.banner !== kind) {
    ui.banner.dataset.banner = kind;
    ui.banner.className = `banner ${kind === 'ok' ? 'ok' : kind === 'stale' || kind === 'connecting' ? kind : 'bad'}`;
  }
  setText(ui.banner, text);
  document.body.classList.toggle('offline', kind !== 'ok');
}

let source = null;
function connect() {
  streamState = 'connecting';
  source = new EventSource('/console/events');
  source.addEventListener('open', () => {
    streamState = 'open';
    updateBanner();
  });
  source.addEventListener('snapshot', (e) => {
    streamState = 'open';
    let s;
    try {
      s = JSON.parse(/** @type {MessageEvent} */ (e).data);
    } catch {
      return;
    }
    render(s);
  });
  source.addEventListener('error', () => {
    // EventSource retries by itself while CONNECTING; once CLOSED (an HTTP error) it never does.
    streamState = source.readyState === EventSource.OPEN ? 'open' : 'closed';
    updateBanner();
    if (source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(connect, RECONNECT_MS);
    }
  });
}
setInterval(updateBanner, 1000);

// ---------------------------------------------------------------------------------------------
// The rebalance plan, drawn before anything moves

async function fetchPlan() {
  ui.planButton.disabled = true;
  try {
    const res = await fetch('/console/api/plan', { cache: 'no-store' });
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !Array.isArray(body.moves)) {
      const err = body?.error;
      showResult('error', `plan: ${res.status} ${err?.code ?? ''} ${err?.message ?? res.statusText}`.trim(), { status: res.status, code: err?.code ?? '', cmd: 'plan' });
      return;
    }
    drawPlan(body);
  } catch (e) {
    showResult('error', `plan: ${String(e)}`, { status: 0, code: 'NETWORK', cmd: 'plan' });
  } finally {
    ui.planButton.disabled = false;
  }
}

function moveItem(m, deferred) {
  const li = el('li', deferred ? 'deferred' : '');
  const pre = deferred ? 'deferred' : 'plan';
  li.setAttribute(`data-${pre}-partition`, String(m.partition));
  li.setAttribute(`data-${pre}-from`, m.from ?? '');
  li.setAttribute(`data-${pre}-to`, m.to ?? '');
  li.append(el('strong', '', `p${m.partition} `), swatch(m.from), document.createTextNode(` ${m.from ?? 'none'} → `), swatch(m.to), document.createTextNode(` ${m.to ?? 'nobody'}`));
  if (deferred) li.title = 'wanted, but waits: no other worker may take it yet';
  return li;
}

function drawPlan(data) {
  plan = { data, moves: new Map(data.moves.map((m) => [m.partition, m.to])), tableVersion: snap?.status?.table_version ?? null };
  ui.plan.classList.remove('hidden');
  ui.planClear.classList.remove('hidden');
  ui.plan.dataset.moves = String(data.moves.length);
  const n = data.moves.length;
  setText(ui.planTitle, n === 0 ? 'Plan: nothing would move' : `Plan: ${n} move${n === 1 ? '' : 's'}`);
  ui.planList.replaceChildren(...data.moves.map((m) => moveItem(m, false)), ...data.deferred.map((m) => moveItem(m, true)));
  setText(ui.planText, data.text);
  if (snap) renderMap(snap.partitions);
  renderPlanState();
}

function renderPlanState() {
  if (!plan) return;
  const now = snap?.status?.table_version ?? null;
  const stale = plan.tableVersion !== null && now !== null && now !== plan.tableVersion;
  const notes = [];
  if (plan.data.paused) notes.push('rebalancing is paused: these moves wait for resume, or apply them with Rebalance');
  else notes.push('what Rebalance would move now; nothing has moved');
  if (stale) notes.push(`the table changed since (v${plan.tableVersion} → v${now}): press Plan again`);
  setText(ui.planNote, `(${notes.join('; ')})`);
  ui.plan.dataset.stale = String(stale);
}

function clearPlan() {
  plan = null;
  ui.plan.classList.add('hidden');
  ui.planClear.classList.add('hidden');
  ui.planList.replaceChildren();
  if (snap) renderMap(snap.partitions);
}

ui.planButton.addEventListener('click', () => void fetchPlan());
ui.planClear.addEventListener('click', clearPlan);

// ---------------------------------------------------------------------------------------------
// The operator credential: in sessionStorage only, never shown again after entry

function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}
function renderToken() {
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

function updateActionControls() {
  const has = getToken() !== '';
  for (const b of document.querySelectorAll('button.action')) {
    const disabled = !has || /** @type {HTMLElement} */ (b).dataset.blocked === '1';
    if (/** @type {HTMLButtonElement} */ (b).disabled !== disabled) /** @type {HTMLButtonElement} */ (b).disabled = disabled;
    const title = has ? '' : 'enter the operator token to act';
    if (b.title !== title) b.title = title;
  }
}

// ---------------------------------------------------------------------------------------------
// Actions: confirmed in the page, sent with the token, the server's answer shown

function confirmInPage(text) {
  return new Promise((resolve) => {
    setText(ui.dialogText, text);
    ui.dialog.returnValue = '';
    ui.dialog.addEventListener('close', () => resolve(ui.dialog.returnValue === 'ok'), { once: true });
    ui.dialog.showModal();
    $('confirm-cancel').focus();
  });
}

function describeAction(a) {
  const w = snap?.workers.find((x) => x.id === a.worker);
  const p = a.partition === undefined ? undefined : snap?.partitions[a.partition];
  switch (a.cmd) {
    case 'rebalance':
      return plan
        ? `Rebalance now: apply the plan (${plan.data.moves.length} partition move${plan.data.moves.length === 1 ? '' : 's'}) at once, even while paused.`
        : 'Rebalance now: move whatever the leader plans at this moment, even while paused (press Plan first to see it).';
    case 'drain':
      return `Drain worker ${a.worker}: its ${w ? w.partitions.length : '?'} partitions move to the other workers, then it exits.`;
    case 'move':
      return `Move partition ${a.partition} from ${p?.owner ?? 'nobody'} to ${a.worker} and pin it there.`;
    case 'pause':
      return 'Pause rebalancing: joins, drains and rebalances wait until resume (a dead worker\'s partitions still move).';
    case 'resume':
      return 'Resume rebalancing: waiting joins and drains start moving partitions now.';
    default:
      return a.cmd;
  }
}

function showResult(kind, text, attrs) {
  ui.result.className = `action-result ${kind}`;
  ui.result.dataset.actionResult = kind;
  ui.result.dataset.status = String(attrs.status ?? '');
  ui.result.dataset.code = attrs.code ?? '';
  ui.result.dataset.cmd = attrs.cmd ?? '';
  ui.result.textContent = `${new Date().toLocaleTimeString()} ${text}`;
}

function summarise(cmd, data) {
  if (!data || typeof data !== 'object') return '';
  if (cmd === 'rebalance') return `${data.moves?.length ?? 0} move(s) started, ${data.deferred?.length ?? 0} deferred`;
  if (cmd === 'drain') return `${data.worker}: ${data.partitions} partition(s) to move${data.paused ? ' (paused: they wait)' : ''}`;
  if (cmd === 'move') return `partition ${data.partition} → ${data.worker} (from ${data.from ?? 'nobody'})`;
  if (cmd === 'pause' || cmd === 'resume') return data.paused ? 'rebalancing paused' : 'rebalancing running';
  return '';
}

async function act(action) {
  const token = getToken();
  if (token === '' || ui.dialog.open) return;
  if (!(await confirmInPage(describeAction(action)))) return;
  // As the CLI spells it: move <partition> <worker>, drain <worker>.
  const label = [action.cmd, action.partition, action.worker].filter((x) => x !== undefined).join(' ');
  showResult('pending', `${label}: sent…`, { cmd: action.cmd });
  let res;
  try {
    res = await fetch('/console/api/action', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(action),
      cache: 'no-store',
    });
  } catch (e) {
    showResult('error', `${label}: not sent (${String(e)})`, { status: 0, code: 'NETWORK', cmd: action.cmd });
    return;
  }
  const body = await res.json().catch(() => null);
  if (res.ok && body?.ok) {
    const more = summarise(action.cmd, body.data);
    showResult('ok', `${label}: ok${more ? ` · ${more}` : ''} (leader ${body.leader}, epoch ${body.leader_epoch})`, { status: res.status, code: 'OK', cmd: action.cmd });
    if (action.cmd === 'rebalance') clearPlan();
  } else {
    const code = body?.error?.code ?? 'ERROR';
    const message = body?.error?.message ?? res.statusText;
    showResult('error', `${label}: refused · ${res.status} ${code}: ${message}`, { status: res.status, code, cmd: action.cmd });
  }
}

document.addEventListener('click', (e) => {
  const b = /** @type {HTMLElement} */ (e.target).closest('button.action');
  if (!b || /** @type {HTMLButtonElement} */ (b).disabled) return;
  const cmd = b.dataset.action;
  if (cmd === 'drain') void act({ cmd, worker: b.dataset.drain });
  else if (cmd === 'move') {
    if (selected < 0 || ui.moveTarget.value === '') return;
    void act({ cmd, partition: selected, worker: ui.moveTarget.value });
  } else void act({ cmd });
});

renderToken();
updateBanner();
connect();
