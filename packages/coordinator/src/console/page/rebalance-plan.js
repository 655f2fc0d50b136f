// The rebalance plan, drawn before anything moves: Plan asks the leader what Rebalance would move,
// lists the moves and marks them on the map until cleared (or carried out).

import { el, setText, showResult, ui } from './dom.js';
import { state } from './page-state.js';
import { renderMap } from './partition-map.js';
import { swatch } from './worker-colours.js';

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
  state.plan = { data, moves: new Map(data.moves.map((m) => [m.partition, m.to])), tableVersion: state.snap?.status?.table_version ?? null };
  ui.plan.classList.remove('hidden');
  ui.planClear.classList.remove('hidden');
  ui.plan.dataset.moves = String(data.moves.length);
  const n = data.moves.length;
  setText(ui.planTitle, n === 0 ? 'Plan: nothing would move' : `Plan: ${n} move${n === 1 ? '' : 's'}`);
  ui.planList.replaceChildren(...data.moves.map((m) => moveItem(m, false)), ...data.deferred.map((m) => moveItem(m, true)));
  setText(ui.planText, data.text);
  if (state.snap) renderMap(state.snap.partitions);
  renderPlanState();
}

/** Notes whether the plan drawn is still the table's (a new snapshot may have moved on). */
export function renderPlanState() {
  const plan = state.plan;
  if (!plan) return;
  const now = state.snap?.status?.table_version ?? null;
  const stale = plan.tableVersion !== null && now !== null && now !== plan.tableVersion;
  const notes = [];
  if (plan.data.paused) notes.push('rebalancing is paused: these moves wait for resume, or apply them with Rebalance');
  else notes.push('what Rebalance would move now; nothing has moved');
  if (stale) notes.push(`the table changed since (v${plan.tableVersion} → v${now}): press Plan again`);
  setText(ui.planNote, `(${notes.join('; ')})`);
  ui.plan.dataset.stale = String(stale);
}

export function clearPlan() {
  state.plan = null;
  ui.plan.classList.add('hidden');
  ui.planClear.classList.add('hidden');
  ui.planList.replaceChildren();
  if (state.snap) renderMap(state.snap.partitions);
}

ui.planButton.addEventListener('click', () => void fetchPlan());
ui.planClear.addEventListener('click', clearPlan);
