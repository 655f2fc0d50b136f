import { existsSync } from 'node:fs';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

/**
 * Debian's Chromium (scripts/lib.sh installs it in CI), driven by playwright-core. The machine's
 * network is closed: the flags keep Chromium from reaching out on its own (component updates, sync,
 * field trials), which would otherwise stall or log errors.
 */
const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter((p): p is string => p !== undefined && p !== '');

export function chromiumPath(): string {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`no Chromium found (looked at ${CANDIDATES.join(', ')}); bash scripts/test.sh installs Debian's chromium`);
  return found;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * The few browser names the tests' page-side callbacks use. The tests' tsconfig has no DOM lib (it
 * would retype Node's timers for every test), so a callback run in the page says
 * `const w = globalThis as unknown as PageWindow` (types vanish when Playwright sends it over).
 */
export interface PageElement {
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly style: { backgroundColor: string };
  readonly disabled?: boolean;
  getAttribute(name: string): string | null;
  append(...nodes: PageElement[]): void;
  remove(): void;
}
export interface PageWindow {
  readonly document: {
    readonly body: PageElement;
    getElementById(id: string): PageElement | null;
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): Iterable<PageElement>;
    createElement(tag: string): PageElement;
  };
  readonly localStorage: { readonly length: number };
  readonly sessionStorage: { readonly length: number };
  readonly location: { readonly href: string };
  getComputedStyle(e: PageElement): { readonly backgroundColor: string; getPropertyValue(name: string): string };
  readonly MutationObserver: new (callback: (records: Array<{ target: PageElement }>) => void) => { observe(target: PageElement, options: object): void };
  [name: string]: unknown;
}

/** What a page reported that a test should fail on: uncaught errors, console errors (CSP refusals among them). */
export interface PageProblems {
  readonly errors: string[];
}

/** A new page (own context: own sessionStorage) that records its errors and console errors. */
export async function openPage(browser: Browser, url: string, viewport = { width: 1400, height: 900 }): Promise<{ page: Page; problems: PageProblems }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: PageProblems = { errors: [] };
  page.on('pageerror', (e) => problems.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') problems.errors.push(`console.error: ${m.text()}`);
  });
  await page.goto(url);
  return { page, problems };
}

/** The map as the page shows it: one entry per partition cell, from its data attributes. */
export interface CellView {
  partition: number;
  owner: string | null;
  epoch: number;
  phase: string;
  next: string | null;
}

export async function mapView(page: Page): Promise<CellView[]> {
  return page.$$eval('[data-partition]', (cells) =>
    cells.map((c) => {
      const d = (c as unknown as PageElement).dataset;
      return {
        partition: Number(d.partition),
        owner: d.owner === undefined || d.owner === '' ? null : d.owner,
        epoch: Number(d.epoch),
        phase: d.phase ?? '',
        next: d.next === undefined || d.next === '' ? null : d.next,
      };
    }),
  );
}

/** The plan as the page draws it: one entry per planned move. */
export async function planView(page: Page): Promise<Array<{ partition: number; from: string | null; to: string | null }>> {
  return page.$$eval('[data-plan-partition]', (items) =>
    items.map((i) => ({
      partition: Number(i.getAttribute('data-plan-partition')),
      from: i.getAttribute('data-plan-from') || null,
      to: i.getAttribute('data-plan-to') || null,
    })),
  );
}
