import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { CLEAN_MIX, SimulatedAgents } from '@at-orchestrator/sim';
import { ClusterHarness } from './helpers/cluster.js';
import { Stack, TEST_OPERATOR_TOKEN, type CliProcess } from './helpers/stack.js';
import { launchBrowser, mapView, openPage, planView, type CellView, type PageElement, type PageProblems, type PageWindow } from './helpers/browser.js';
import { ConsoleFake, fakeSnapshot } from './helpers/console-fake.js';

// The operator console in a real Chromium against a real cluster (two coordinators, workers as
// processes of the built CLI): what the page shows must equal what the leader's control API says,
// through a drain, a paused plan, refused and accepted actions and a handoff storm. The page is opened
// on the coordinator that does NOT lead, so every view also proves it is the leader's, relayed. A
// second part runs the page against a scripted fake server for what the page alone decides.

interface PartitionRow {
  partition: number;
  owner: string | null;
  epoch: number;
  phase: string;
  next: string | null;
}
interface Move {
  partition: number;
  from: string | null;
  to: string | null;
}

let stack: Stack | undefined;
let cluster: ClusterHarness;
let browser: Browser | undefined;
let page: Page;
let problems: PageProblems;
let base: string;
let standby: string;

function httpPort(proc: CliProcess): number {
  const line = proc.output.find((l) => l.includes('"http_port"'));
  if (line === undefined) throw new Error('process did not log its http_port');
  return (JSON.parse(line) as { http_port: number }).http_port;
}

async function table(): Promise<PartitionRow[]> {
  const { partitions } = await cluster.cli<{ partitions: PartitionRow[] }>('partitions');
  return partitions.map((p) => ({ partition: p.partition, owner: p.owner, epoch: p.epoch, phase: p.phase, next: p.next ?? null }));
}

async function status(): Promise<{ coordinator: string; paused: boolean; table_version: number }> {
  return cluster.cli('status');
}

/** Waits until the page's map equals `want` (every partition: owner, epoch, phase, next). */
async function mapEquals(want: CellView[], timeout = 15_000): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(await mapView(page)).toEqual(want);
    },
    { timeout, interval: 100 },
  );
}

/** Takes the leader's table once the cluster has settled on `workers`, then waits for the page to show exactly it. */
async function pageShowsSettledTable(workers: string[]): Promise<CellView[]> {
  await cluster.waitForBalance(workers);
  const want = await table();
  await mapEquals(want);
  return want;
}

async function workerRows(): Promise<Array<{ id: string; partitions: number; state: string }>> {
  return page.$$eval('tr[data-worker]', (rows) =>
    rows.map((r) => {
      const d = (r as unknown as PageElement).dataset;
      return { id: d.worker ?? '', partitions: Number(d.partitions), state: d.state ?? '' };
    }),
  );
}

async function postAction(authorization: string | null, body: unknown): Promise<{ status: number; body: { ok: boolean; error?: { code: string; message: string } } }> {
  return page.evaluate(
    async ({ authorization, body }) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== null) headers.authorization = authorization;
      const res = await fetch('/console/api/action', { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { ok: boolean; error?: { code: string; message: string } } };
    },
    { authorization, body },
  );
}

/** Clicks an action control, checks the in-page dialog names what will happen, confirms, and returns the result shown. */
async function actThroughPage(selector: string, dialogSays: RegExp): Promise<{ status: string; code: string; text: string }> {
  const before = await page.$eval('[data-action-result]', (e) => e.textContent ?? '');
  await page.click(selector);
  await page.waitForSelector('dialog#confirm[open]');
  expect(await page.textContent('#confirm-text')).toMatch(dialogSays);
  await page.click('#confirm-ok');
  await page.waitForFunction(
    (prev) => {
      const e = (globalThis as unknown as PageWindow).document.querySelector('[data-action-result]')!;
      return e.textContent !== prev && e.dataset.actionResult !== 'pending';
    },
    before,
  );
  return page.$eval('[data-action-result]', (e) => {
    const d = (e as unknown as PageElement).dataset;
    return { status: d.status ?? '', code: d.code ?? '', text: (e as unknown as PageElement).textContent ?? '' };
  });
}

/** Chromium logs every refused request as a console error: exactly `n` of those, and nothing else, since the last check. */
function expectOnlyRefusalsLogged(n: number): void {
  const logged = problems.errors.splice(0);
  expect(logged).toEqual(Array.from({ length: n }, () => 'console.error: Failed to load resource: the server responded with a status of 403 (Forbidden)'));
}

async function setToken(token: string): Promise<void> {
  if (await page.isVisible('#token-forget')) await page.click('#token-forget');
  await page.fill('#token-input', token);
  await page.click('#token-set');
}

describe('console in Chromium against a real cluster', () => {
  beforeAll(async () => {
    stack = await Stack.start();
    cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'console' });
    await cluster.startCoordinator('coord-a');
    await cluster.startCoordinator('coord-b');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => cluster.startWorker(w)));
    await cluster.waitForBalance(['w1', 'w2', 'w3']);
    const leader = (await status()).coordinator;
    standby = leader === 'coord-a' ? 'coord-b' : 'coord-a';
    base = `http://127.0.0.1:${httpPort(cluster.coordinators.get(standby)!)}`;
    browser = await launchBrowser();
    ({ page, problems } = await openPage(browser, `${base}/console`));
  }, 120_000);

  afterEach(() => {
    // No script error, no CSP refusal, no failed request the page made, in any test.
    expect(problems.errors).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.stopAll();
    await stack?.stop();
  }, 60_000);

  it('the map shows every partition with its owner and epoch, as `partitions --json` says; the leader and workers as `status` says', async () => {
    const want = await pageShowsSettledTable(['w1', 'w2', 'w3']);
    expect(want).toHaveLength(64);
    const st = await status();
    expect(st.coordinator).not.toBe(standby);
    expect(await page.textContent('#served-by')).toBe(standby); // served by the standby…
    expect(await page.getAttribute('#leader-pill', 'data-leader')).toBe(st.coordinator); // …showing the leader's view
    expect(await page.getAttribute('#unowned-pill', 'data-unowned')).toBe('0');
    const counts = new Map<string, number>();
    for (const p of want) counts.set(p.owner!, (counts.get(p.owner!) ?? 0) + 1);
    await vi.waitFor(async () => {
      expect((await workerRows()).map((r) => [r.id, r.partitions, r.state])).toEqual(['w1', 'w2', 'w3'].map((w) => [w, counts.get(w), 'live']));
    });
    // Read-only without the operator token: every action control disabled.
    expect(await page.$$eval('button.action', (bs) => bs.length > 0 && bs.every((b) => (b as unknown as PageElement).disabled === true))).toBe(true);
  });

  it('a drain started from the CLI shows the worker\'s cells moving away until the map equals the new table', async () => {
    const before = await mapView(page);
    const w3Cells = before.filter((c) => c.owner === 'w3').map((c) => c.partition);
    expect(w3Cells.length).toBeGreaterThan(0);
    // Record, in the page, every state a cell of w3 is drawn in while it moves.
    await page.evaluate((cells) => {
      const w = globalThis as unknown as PageWindow;
      const seen = new Set<string>();
      w.drainSeen = seen;
      const observer = new w.MutationObserver((records) => {
        for (const r of records) {
          const d = r.target.dataset;
          if (cells.includes(Number(d.partition))) seen.add(`${d.phase}:${d.owner}>${d.next}`);
        }
      });
      observer.observe(w.document.getElementById('map')!, { subtree: true, attributes: true, attributeFilter: ['data-owner', 'data-phase'] });
    }, w3Cells);
    const started = Date.now();
    await cluster.cli('drain', 'w3');
    await vi.waitFor(
      async () => {
        const now = await mapView(page);
        expect(now.filter((c) => c.owner === 'w3' || c.phase !== 'owned')).toEqual([]);
      },
      { timeout: 20_000, interval: 50 },
    );
    const reflectedMs = Date.now() - started;
    console.log(`drain reflected on the page in ${reflectedMs} ms (${w3Cells.length} partitions left w3)`);
    expect(await cluster.workers.get('w3')!.exited()).toBe(0);
    const after = await pageShowsSettledTable(['w1', 'w2']);
    // Exactly w3's partitions changed hands, each at a newer epoch; the others kept owner and epoch.
    for (const p of after) {
      const old = before[p.partition]!;
      if (old.owner === 'w3') expect(p.epoch).toBeGreaterThan(old.epoch);
      else expect(p).toEqual(old);
    }
    const seen = await page.evaluate(() => [...((globalThis as unknown as PageWindow).drainSeen as Set<string>)]);
    console.log(`cell states drawn for w3's partitions during the drain: ${seen.join(', ')}`);
    await vi.waitFor(async () => expect((await workerRows()).map((r) => r.id)).toEqual(['w1', 'w2']));
  });

  it('the plan picture equals `plan --json` while paused, and nothing moves until resume', async () => {
    await cluster.cli('pause');
    try {
      await planWhilePaused();
    } finally {
      // Whatever failed above, the next tests start with rebalancing on.
      await cluster.cli('resume');
    }
  });

  async function planWhilePaused(): Promise<void> {
    await cluster.startWorker('w4');
    // The leader sees w4's heartbeat: the plan has moves, the table none.
    await vi.waitFor(async () => expect((await cluster.cli<{ moves: Move[] }>('plan')).moves.length).toBeGreaterThan(0), { timeout: 15_000, interval: 250 });
    await vi.waitFor(async () => expect(await page.getAttribute('body', 'data-paused')).toBe('true'));
    await page.click('#plan-button');
    await page.waitForSelector('[data-plan-partition]');
    const cli = await cluster.cli<{ paused: boolean; moves: Move[] }>('plan');
    expect(cli.paused).toBe(true);
    expect(cli.moves.every((m) => m.to === 'w4')).toBe(true);
    expect(await planView(page)).toEqual(cli.moves);
    // Drawn on the map too: exactly the planned cells, in the planned owner's colour.
    const planned = await page.$$eval('.cell.planned', (cs) => cs.map((c) => Number((c as unknown as PageElement).dataset.partition)));
    expect(planned).toEqual(cli.moves.map((m) => m.partition));
    // The workers table lists w4 from the first snapshot that has its heartbeat (the plan may come first).
    await page.waitForSelector('[data-worker="w4"] .swatch');
    const colours = await page.evaluate(() => {
      // Each colour as the browser resolves it, so that #hex and rgb() compare.
      const w = globalThis as unknown as PageWindow;
      const probe = w.document.createElement('div');
      w.document.body.append(probe);
      const resolve = (c: string): string => {
        probe.style.backgroundColor = c;
        return w.getComputedStyle(probe).backgroundColor;
      };
      const cells = [...w.document.querySelectorAll('.cell.planned')].map((c) => resolve(w.getComputedStyle(c).getPropertyValue('--plan-to').trim()));
      const swatch = (id: string): string => resolve(w.document.querySelector(`[data-worker="${id}"] .swatch`)!.style.backgroundColor);
      const w4 = swatch('w4');
      const others = ['w1', 'w2'].map(swatch);
      probe.remove();
      return { cells: [...new Set(cells)], w4, others };
    });
    expect(colours.cells).toEqual([colours.w4]);
    expect(colours.others).not.toContain(colours.w4);
    // Nothing moved: the table still has no cell of w4 and the page equals it.
    const held = await table();
    expect(held.filter((p) => p.owner === 'w4' || p.next === 'w4')).toEqual([]);
    await mapEquals(held);
    await cluster.cli('resume');

    const after = await pageShowsSettledTable(['w1', 'w2', 'w4']);
    expect(after.filter((p) => p.owner === 'w4').map((p) => p.partition)).toEqual(cli.moves.map((m) => m.partition));
    // The plan now describes a table that changed: the page says so.
    await vi.waitFor(async () => expect(await page.getAttribute('#plan', 'data-stale')).toBe('true'));
    await page.click('#plan-clear');
    expect(await page.$$('[data-plan-partition]')).toHaveLength(0);
    // Back to two workers for the storm.
    cluster.workers.get('w4')!.kill('SIGTERM');
    expect(await cluster.workers.get('w4')!.exited()).toBe(0);
    await pageShowsSettledTable(['w1', 'w2']);
  }

  it('an action without the operator token, or with a wrong one, is refused by the server (403 UNAUTHORIZED) and changes nothing; with the token it is carried out', async () => {
    expect((await status()).paused).toBe(false);
    // Straight at the API from the page's origin, past whatever the page would show.
    for (const authorization of [null, 'Bearer wrong-token-0123456789', `Bearer ${TEST_OPERATOR_TOKEN}x`, TEST_OPERATOR_TOKEN]) {
      const r = await postAction(authorization, { cmd: 'pause' });
      expect({ authorization, status: r.status, code: r.body.error?.code }).toEqual({ authorization, status: 403, code: 'UNAUTHORIZED' });
    }
    expect((await status()).paused).toBe(false);
    expectOnlyRefusalsLogged(4);

    // Through the page: a wrong token enables the controls, the server refuses.
    await setToken('wrong-token-0123456789');
    expect(await page.inputValue('#token-input')).toBe('');
    expect(await page.isVisible('#token-input')).toBe(false);
    expect(await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      return { local: w.localStorage.length, url: w.location.href };
    })).toEqual({ local: 0, url: `${base}/console` });
    expect(await page.textContent('body')).not.toContain('wrong-token-0123456789');
    const refused = await actThroughPage('button.action[data-action="pause"]', /Pause rebalancing/);
    expect(refused).toMatchObject({ status: '403', code: 'UNAUTHORIZED' });
    expect(refused.text).toContain('UNAUTHORIZED');
    expect((await status()).paused).toBe(false);
    expectOnlyRefusalsLogged(1);

    // The right token: carried out, and the page shows the new state from the next snapshot.
    await setToken(TEST_OPERATOR_TOKEN);
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).sessionStorage.length)).toBe(1);
    const paused = await actThroughPage('button.action[data-action="pause"]', /Pause rebalancing/);
    expect(paused).toMatchObject({ status: '200', code: 'OK' });
    expect((await status()).paused).toBe(true);
    await vi.waitFor(async () => expect(await page.getAttribute('body', 'data-paused')).toBe('true'));
    // Cancelling the dialog sends nothing.
    await page.click('button.action[data-action="resume"]');
    await page.waitForSelector('dialog#confirm[open]');
    await page.click('#confirm-cancel');
    expect((await status()).paused).toBe(true);
    const resumed = await actThroughPage('button.action[data-action="resume"]', /Resume rebalancing/);
    expect(resumed).toMatchObject({ status: '200', code: 'OK' });
    expect((await status()).paused).toBe(false);
    await vi.waitFor(async () => expect(await page.getAttribute('body', 'data-paused')).toBe('false'));
    await page.click('#token-forget');
    expect(await page.$$eval('button.action', (bs) => bs.every((b) => (b as unknown as PageElement).disabled === true))).toBe(true);
  });

  it('after a handoff storm of about 10 s under traffic (2 → 5 → 2 workers, graceful stops and kill -9) the page equals the final table', async () => {
    const versions = new Set<string>();
    const started = Date.now();
    let traffic: Promise<void> | undefined;
    const watch = setInterval(() => {
      void page.getAttribute('body', 'data-table-version').then((v) => versions.add(v ?? ''), () => undefined);
    }, 100);
    try {
      // Six waves of handoffs under traffic, each started as soon as the previous one shows in the
      // table: three joins one after another, then a graceful stop, a kill -9 and a graceful stop.
      const agents = new SimulatedAgents(stack!.nc);
      traffic = agents.run({ rate: 100, count: 1_200, seed: 5, prefix: 'console-storm', mix: { ...CLEAN_MIX, jitterMs: 5 } });
      const owns = (w: string, yes: boolean): Promise<void> =>
        vi.waitFor(async () => expect(((await cluster.ownership()).get(w) ?? 0) > 0).toBe(yes), { timeout: 20_000, interval: 100 });
      for (const w of ['w5', 'w6', 'w7']) {
        await cluster.startWorker(w);
        await owns(w, true);
      }
      cluster.workers.get('w5')!.kill('SIGTERM');
      expect(await cluster.workers.get('w5')!.exited()).toBe(0);
      cluster.workers.get('w6')!.kill('SIGKILL');
      await owns('w6', false);
      cluster.workers.get('w7')!.kill('SIGTERM');
      expect(await cluster.workers.get('w7')!.exited()).toBe(0);
      await pageShowsSettledTable(['w1', 'w2']);
    } finally {
      clearInterval(watch);
      await traffic;
    }
    console.log(`handoff storm 2 → 5 → 2 settled and shown after ${Date.now() - started} ms; the page rendered ${versions.size} table versions`);
    expect(versions.size).toBeGreaterThan(3);
    await vi.waitFor(async () => expect((await workerRows()).map((r) => [r.id, r.state])).toEqual([['w1', 'live'], ['w2', 'live']]), { timeout: 15_000 });
    expect(await page.getAttribute('#unowned-pill', 'data-unowned')).toBe('0');
  });
});

describe('console page against a scripted server: what the page alone decides', () => {
  let fake: ConsoleFake;
  let fb: Browser | undefined;
  let fpage: Page;
  let fproblems: PageProblems;

  beforeAll(async () => {
    fake = await ConsoleFake.start();
    fb = await launchBrowser();
  });
  afterEach(async () => {
    await fpage?.context().close();
  });
  afterAll(async () => {
    await fb?.close();
    await fake?.stop();
  });

  async function open(): Promise<void> {
    ({ page: fpage, problems: fproblems } = await openPage(fb!, `${fake.url}/console`));
  }
  async function rendered(version: number): Promise<void> {
    await fpage.waitForFunction((v) => (globalThis as unknown as PageWindow).document.body.dataset.tableVersion === String(v), version);
  }
  /** The colour a CSS value resolves to in the page, e.g. a custom property or a swatch's background. */
  async function resolvedColour(selector: string, property: string): Promise<string> {
    return fpage.evaluate(
      ({ selector, property }) => {
        const w = globalThis as unknown as PageWindow;
        const e = w.document.querySelector(selector)!;
        const probe = w.document.createElement('div');
        w.document.body.append(probe);
        probe.style.backgroundColor = w.getComputedStyle(e).getPropertyValue(property).trim();
        const c = w.getComputedStyle(probe).backgroundColor;
        probe.remove();
        return c;
      },
      { selector, property },
    );
  }

  it('draws 4096 partitions in place: one element per partition kept across snapshots, each snapshot rendered in a fraction of its second', async () => {
    const P = 4096;
    fake.push(fakeSnapshot({ partitions: P, workers: ['w1', 'w2', 'w3'], tableVersion: 1 }));
    await open();
    await rendered(1);
    await fpage.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      w.cellsBefore = [...w.document.querySelectorAll('[data-partition]')];
    });
    const renderMs: number[] = [];
    let last = fakeSnapshot({ partitions: P, workers: [], tableVersion: 1 });
    for (let v = 2; v <= 7; v++) {
      // Every snapshot moves most partitions (3 ↔ 4 workers round-robin) to a new epoch: the worst case.
      last = fakeSnapshot({ partitions: P, workers: v % 2 === 0 ? ['w1', 'w2', 'w3', 'w4'] : ['w1', 'w2', 'w3'], tableVersion: v, epochBase: 1000 * v });
      fake.push(last);
      await rendered(v);
      renderMs.push(Number(await fpage.getAttribute('body', 'data-render-ms')));
    }
    console.log(`4096 partitions, ~3000 cells changing per snapshot: rendered in ${renderMs.join(', ')} ms`);
    expect(Math.max(...renderMs)).toBeLessThan(400);
    expect(await mapView(fpage)).toEqual(last.partitions.map((p) => ({ partition: p.partition, owner: p.owner, epoch: p.epoch, phase: p.phase, next: p.next })));
    const same = await fpage.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      const now = [...w.document.querySelectorAll('[data-partition]')];
      const before = w.cellsBefore as PageElement[];
      return now.length === before.length && now.every((c, i) => c === before[i]);
    });
    expect(same).toBe(true);
    expect(fproblems.errors).toEqual([]);
  });

  it('alarms on unowned partitions, shows moving ones in their next owner\'s colour, and describes a partition on hover and click', async () => {
    const s = fakeSnapshot({ partitions: 64, workers: ['w1', 'w2'], tableVersion: 10 });
    for (const i of [5, 6, 7]) s.partitions[i] = { ...s.partitions[i]!, owner: null, phase: 'unowned', open: null, oldest_open_ms: null };
    for (const i of [10, 12]) s.partitions[i] = { ...s.partitions[i]!, owner: 'w1', phase: 'revoking', next: 'w2', open: 3, oldest_open_ms: 2500 };
    s.partitions[20] = { ...s.partitions[20]!, pinned_to: 'w1' };
    fake.push(s);
    await open();
    await rendered(10);
    expect(await fpage.getAttribute('#unowned-pill', 'data-unowned')).toBe('3');
    expect(await fpage.isVisible('#unowned-pill')).toBe(true);
    expect(await fpage.$$eval('.cell.unowned', (cs) => cs.map((c) => Number((c as unknown as PageElement).dataset.partition)))).toEqual([5, 6, 7]);
    expect(await fpage.$$eval('.cell.revoking', (cs) => cs.map((c) => Number((c as unknown as PageElement).dataset.partition)))).toEqual([10, 12]);
    expect(await resolvedColour('[data-partition="10"]', '--next')).toBe(await resolvedColour('[data-legend-worker="w2"] .swatch', 'background-color'));
    expect(await resolvedColour('[data-partition="10"]', 'background-color')).toBe(await resolvedColour('[data-legend-worker="w1"] .swatch', 'background-color'));
    await fpage.hover('[data-partition="10"]');
    const title = await fpage.getAttribute('[data-partition="10"]', 'title');
    for (const part of ['partition 10', 'owner w1', 'epoch 1010', 'phase revoking', 'next w2', 'not pinned', '3 open correlations', 'oldest open 2.5 s']) expect(title).toContain(part);
    await fpage.click('[data-partition="20"]');
    expect(await fpage.textContent('#details-text')).toContain('pinned to w1');
    // Everything owned again: the alarm goes.
    fake.push(fakeSnapshot({ partitions: 64, workers: ['w1', 'w2'], tableVersion: 11 }));
    await rendered(11);
    expect(await fpage.isVisible('#unowned-pill')).toBe(false);
    expect(await fpage.$$('.cell.unowned, .cell.revoking')).toHaveLength(0);
    expect(fproblems.errors).toEqual([]);
  });

  it('drain and move from the page send the action the confirmation named, with the token as a Bearer header only', async () => {
    fake.push(fakeSnapshot({ partitions: 64, workers: ['w1', 'w2'], tableVersion: 20 }));
    await open();
    await rendered(20);
    expect(await fpage.isDisabled('button[data-drain="w2"]')).toBe(true);
    await fpage.fill('#token-input', fake.token);
    await fpage.click('#token-set');
    // A worker that joins after the token was entered can be drained too; a draining one cannot.
    const joined = fakeSnapshot({ partitions: 64, workers: ['w1', 'w2', 'w3'], tableVersion: 21 });
    joined.workers = joined.workers.map((w) => (w.id === 'w1' ? { ...w, drain_requested: true, state: 'draining' } : w));
    fake.push(joined);
    await rendered(21);
    expect(await fpage.isDisabled('button[data-drain="w3"]')).toBe(false);
    expect(await fpage.isDisabled('button[data-drain="w1"]')).toBe(true);
    await fpage.click('button[data-drain="w2"]');
    expect(await fpage.textContent('#confirm-text')).toMatch(/Drain worker w2: its 21 partitions move/);
    await fpage.click('#confirm-ok');
    await fpage.waitForSelector('[data-action-result="ok"][data-cmd="drain"]');
    await fpage.click('[data-partition="4"]');
    await fpage.selectOption('#move-target', 'w3');
    await fpage.click('#details button[data-action="move"]');
    expect(await fpage.textContent('#confirm-text')).toMatch(/Move partition 4 from w2 to w3/);
    await fpage.click('#confirm-ok');
    await fpage.waitForSelector('[data-action-result="ok"][data-cmd="move"]');
    expect(fake.actions.slice(-2)).toEqual([
      { body: { cmd: 'drain', worker: 'w2' }, authorization: `Bearer ${fake.token}` },
      { body: { cmd: 'move', partition: 4, worker: 'w3' }, authorization: `Bearer ${fake.token}` },
    ]);
    expect(fake.urls.filter((u) => u.includes(fake.token))).toEqual([]);
    expect(fproblems.errors).toEqual([]);
  });

  it('says "no leader" when the snapshot has no leader and "disconnected" when the stream drops, then recovers by itself', async () => {
    fake.push(fakeSnapshot({ partitions: 64, workers: ['w1', 'w2'], tableVersion: 30 }));
    await open();
    await rendered(30);
    expect(await fpage.getAttribute('#banner', 'data-banner')).toBe('ok');
    fake.push({ ...fakeSnapshot({ partitions: 64, workers: [] }), leader: null, error: 'no leader answered within 2000 ms', status: null, workers: [], partitions: [] });
    await fpage.waitForSelector('#banner[data-banner="no-leader"]');
    expect(await fpage.textContent('#banner')).toContain('no leader answered within 2000 ms');
    expect(await fpage.$$('[data-partition][data-owner="w1"]')).toHaveLength(32); // the last table known stays drawn
    fake.refuseStreams = true;
    const refused = fake.refusedStreams;
    fake.dropStreams();
    await fpage.waitForSelector('#banner[data-banner="disconnected"]');
    expect(await fpage.textContent('#banner')).toContain('disconnected');
    // A refused reconnection closes an EventSource for good: the page must open a new one itself.
    await vi.waitFor(() => expect(fake.refusedStreams).toBeGreaterThan(refused), { timeout: 10_000, interval: 50 });
    await fpage.waitForSelector('#banner[data-banner="disconnected"]');
    fake.refuseStreams = false;
    fake.push(fakeSnapshot({ partitions: 64, workers: ['w1', 'w2'], tableVersion: 31 }));
    await rendered(31);
    await fpage.waitForSelector('#banner[data-banner="ok"]', { state: 'attached' });
    // The refused reconnection is the only error that may be logged.
    expect(fproblems.errors.filter((e) => !e.includes('503'))).toEqual([]);
  });
});
