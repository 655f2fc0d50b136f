// Actions: confirmed in the page, sent with the token, the server's answer shown. One click
// handler for every button.action (data-action: drain, move, rebalance, pause, resume).

import { $, setText, showResult, ui } from './dom.js';
import { getToken } from './operator-token.js';
import { state } from './page-state.js';
import { selectedPartition } from './partition-map.js';
import { clearPlan } from './rebalance-plan.js';

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
  const { snap, plan } = state;
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
    const selected = selectedPartition();
    if (selected < 0 || ui.moveTarget.value === '') return;
    void act({ cmd, partition: selected, worker: ui.moveTarget.value });
  } else void act({ cmd });
});
