/**
 * The inspector's page in headless Chromium (Debian's `chromium`, driven by playwright-core): every
 * plot is drawn (not blank) and the plots update (two screenshots seconds apart differ). Chromium is
 * closed and its fresh profile directory removed afterwards.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import { checkNoLeftovers, fileTag } from './helpers/groups.js';
import { startBusy } from './helpers/inspect.js';
import { changedPixels, decodePng, inkedPixels } from './helpers/png.js';
import { waitFor } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const tag = fileTag('browser');
checkNoLeftovers(test, tag);

test('the page draws every plot and they update every second', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
    return;
  }
  const busy = await startBusy(t, `${tag}-page`);
  const { url } = await busy.server.inspect();
  await waitFor(() => busy.server.stats.ticks > 50, 10_000, 'ticks');
  const profile = mkdtempSync(join(tmpdir(), 'tsage-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1500, height: 1100 },
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  await page.waitForFunction("document.getElementById('status').textContent.startsWith('updated')", null, {
    timeout: 10_000,
  });
  // Let a few samples arrive so that every plot has lines: counted in the page's own `samples`, not
  // timed, since a loaded machine samples and draws late.
  await page.waitForFunction('samples.length >= 3', null, { timeout: 30_000 });
  const shots = async (): Promise<Record<string, ReturnType<typeof decodePng>>> => {
    const out: Record<string, ReturnType<typeof decodePng>> = {};
    for (const id of ['types', 'queue', 'tick', 'groups', 'rtt', 'loss', 'resent']) {
      out[id] = decodePng(await page.locator(`#${id}`).screenshot());
    }
    return out;
  };
  const first = await shots();
  const drawn = (await page.evaluate('samples.length')) as number;
  // The page fetches every second and draws what it got at once: three more samples, three more drawings.
  await page.waitForFunction(`samples.length >= ${drawn + 3}`, null, { timeout: 30_000 });
  const second = await shots();
  for (const id of Object.keys(first)) {
    const ink = inkedPixels(second[id]!);
    const area = second[id]!.width * second[id]!.height;
    t.true(ink > area * 0.01, `plot ${id} is blank (${ink} of ${area} pixels inked)`);
  }
  for (const id of ['types', 'tick', 'rtt', 'loss', 'resent']) {
    const changed = changedPixels(first[id]!, second[id]!);
    t.true(changed > 50, `plot ${id} did not update (${changed} pixels changed over 3 samples)`);
  }
  // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, not hidden nodes' text, is what is checked
  t.regex(await page.locator('#peer-rows').innerText(), /127\.0\.0\.1:\d+/);
  // biome-ignore lint/performance/useDomNodeTextContent: as above
  t.regex(await page.locator('#types-legend').innerText(), /Position/);
});
