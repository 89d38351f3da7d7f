// The viewer of bench/glass-to-glass.sh: headless Debian chromium driven by playwright-core (as
// tests/web does) opens index.html with hls.js, both served from the playlist's own origin by
// intercepting /__glass/* (nothing is added to the server under test, and the page reads its
// video into a canvas without CORS), waits for the page's measurement and writes it as JSON.
//
//   node viewer.mjs PLAYLIST_URL SECONDS OUT.json [JOIN_AT_MS [SCREENSHOT.png [MODE]]]
// JOIN_AT_MS: wall-clock time (epoch ms) at which the page (loaded ahead) opens the playlist
// (default: at once). MODE: `ll` plays with hls.js's low-latency mode on (its defaults otherwise),
// `app` as the viewer app does (low-latency mode, catching up with the live edge at up to
// APP_CATCH_UP_RATE), `app-lowest` the same pinned to the lowest rendition, anything else with
// hls.js's defaults.
// Environment: CHROMIUM (default /usr/bin/chromium).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [url, secondsArg, out, joinAt, screenshot, mode] = process.argv.slice(2);
// The viewer app's fastest catch-up playback rate (web/src/player.js).
const APP_CATCH_UP_RATE = 1.25;
if (!url || !secondsArg || !out) {
  console.error('usage: node viewer.mjs PLAYLIST_URL SECONDS OUT.json [JOIN_AT_MS [SCREENSHOT.png [MODE]]]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const here = path.dirname(fileURLToPath(import.meta.url));
const files = {
  'index.html': ['text/html', await readFile(path.join(here, 'index.html'))],
  'hls.min.js': ['text/javascript', await readFile(path.join(here, 'node_modules/hls.js/dist/hls.min.js'))],
};
const origin = new URL(url).origin;

const profile = await mkdtemp(path.join(os.tmpdir(), 'livecast-glass-'));
const consoleErrors = [];
let context;
let result;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
    ],
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  await page.route(`${origin}/__glass/**`, (route) => {
    const file = files[new URL(route.request().url()).pathname.slice('/__glass/'.length)];
    return file
      ? route.fulfill({ status: 200, contentType: file[0], body: file[1] })
      : route.fulfill({ status: 404, body: 'not found' });
  });
  const at = Number(joinAt || 0) || Date.now();
  await page.goto(`${origin}/__glass/index.html?src=${encodeURIComponent(url)}&seconds=${seconds}&joinAt=${at}&ll=${['ll', 'app', 'app-lowest'].includes(mode) ? 1 : 0}&sync=${mode?.startsWith('app') ? APP_CATCH_UP_RATE : 1}&level=${mode === 'app-lowest' ? 'lowest' : 'auto'}`);
  // The page ends by itself: SECONDS after its first frame, or 60 s without one.
  const timeout = Math.max(0, at - Date.now()) + (seconds + 75) * 1000;
  await page.waitForFunction(() => window.__glass?.done, null, { timeout, polling: 500 })
    .catch(() => {});
  result = await page.evaluate(() => window.__glass);
  if (!result.done) result.error = result.error ?? 'the page did not finish in time';
  if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
} catch (e) {
  result = { ...(result ?? {}), error: `viewer: ${e.message}` };
} finally {
  await context?.close().catch(() => {});
  await rm(profile, { recursive: true, force: true });
}
result.consoleErrors = consoleErrors;
await writeFile(out, JSON.stringify(result));
process.exit(result.error ? 1 : 0);
