// A real Chromium (Debian's /usr/bin/chromium) driven by playwright-core for the page tests: a fresh
// profile per browser, every console error and page error recorded, and screenshots of each state at a
// laptop (1280x800) and a wide-screen (1920x1080) size in e2e/output/.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './helpers.mjs';

export const CHROMIUM = process.env.HERALD_E2E_CHROMIUM || '/usr/bin/chromium';
export const OUTPUT = join(REPO, 'e2e', 'output');
export const SIZES = { laptop: { width: 1280, height: 800 }, wide: { width: 1920, height: 1080 } };

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export class Browser {
  /** Launch Chromium with a fresh user-data-dir; `name` prefixes the screenshots; `args` are added to Chromium's. */
  static async open(name, { args = [] } = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
    let context;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...ARGS, ...args],
        viewport: SIZES.laptop,
      });
    } catch (e) {
      rmSync(profile, { recursive: true, force: true });
      throw new Error(`cannot start ${CHROMIUM} (scripts/setup.sh installs Debian's chromium): ${e.message}`);
    }
    const b = new Browser(name, profile, context);
    b.page = context.pages()[0] ?? (await context.newPage());
    // Each wait is for something a working page shows within a second or two.
    b.page.setDefaultTimeout(10_000);
    b.page.on('console', (m) => {
      if (m.type() === 'error') b.errors.push(`console: ${m.text()}`);
    });
    b.page.on('pageerror', (e) => b.errors.push(`page error: ${e.message}`));
    return b;
  }

  constructor(name, profile, context) {
    this.name = name;
    this.profile = profile;
    this.context = context;
    this.errors = [];
    this.shots = 0;
    mkdirSync(OUTPUT, { recursive: true });
  }

  /** Screenshots of what the page shows now, at both sizes; ends at the laptop size. */
  async shot(state) {
    this.shots += 1;
    const n = String(this.shots).padStart(2, '0');
    for (const [size, viewport] of Object.entries(SIZES)) {
      await this.page.setViewportSize(viewport);
      await this.page.screenshot({ path: join(OUTPUT, `${this.name}-${n}-${state}-${size}.png`) });
    }
    await this.page.setViewportSize(SIZES.laptop);
  }

  /** Console and page errors so far, less those matching one of `expected`. */
  unexpectedErrors(expected = []) {
    return this.errors.filter((e) => !expected.some((re) => re.test(e)));
  }

  async close() {
    await this.context.close().catch(() => {});
    rmSync(this.profile, { recursive: true, force: true });
  }
}
