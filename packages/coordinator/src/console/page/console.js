// The operator console: the leader's view, live from /console/events (one ConsoleSnapshot a second),
// with the rebalance plan as a picture and the operator's actions behind OPERATOR_TOKEN. Plain browser
// JavaScript in ES modules, no build step, nothing fetched from elsewhere; the server's CSP allows no
// inline script or style, so every element is made here and styles are set through the CSSOM. The
// data it reads is typed in ../console-data.ts and ../../control/control-data.ts.
//
// This module is the page's entry (console.html loads it): the event stream, the banner, and one
// render per snapshot that hands each part to its module:
//   dom.js             the elements by id, small helpers, the result line
//   page-state.js      the snapshot on screen and the plan drawn
//   worker-colours.js  a stable colour per worker id
//   partition-map.js   the map, its legend, the partition details and move form
//   cluster-tables.js  workers, coordinators, header pills, status and rates
//   history-charts.js  the charts from snapshot.history
//   rebalance-plan.js  Plan: the moves Rebalance would make, on the map
//   operator-token.js  the operator token (sessionStorage) and which buttons it enables
//   actions.js         confirm, send, and show the answer of an action
//
// Rendering is incremental: one element per partition made once, touched only when what it shows
// changed; worker rows are kept by id. 4096 partitions at one snapshot a second cost a few ms.

import './actions.js';
import { renderCharts } from './history-charts.js';
import { renderCluster, renderWorkers } from './cluster-tables.js';
import { fmtMs, setText, ui } from './dom.js';
import { renderToken, updateActionControls } from './operator-token.js';
import { state } from './page-state.js';
import { renderLegend, renderMap } from './partition-map.js';
import { renderPlanState } from './rebalance-plan.js';
import { placeColours } from './worker-colours.js';

const STALE_AFTER_MS = 5000;
const RECONNECT_MS = 2000;

let lastSnapshotAt = 0;
let streamState = 'connecting'; // connecting · open · closed

function render(s) {
  const t0 = performance.now();
  state.snap = s;
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
  const snap = state.snap;
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

renderToken();
updateBanner();
connect();
