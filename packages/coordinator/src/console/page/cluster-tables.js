// The cluster as tables: the workers (one row per worker, kept by id), the header pills, the
// coordinators (leader and standbys) and the leader's status and rates.

import { el, fmtMs, fmtNum, setText, ui } from './dom.js';
import { swatch } from './worker-colours.js';

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

export function renderWorkers(workers) {
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

// Leader, standbys, status, rates

export function renderCluster(s) {
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
