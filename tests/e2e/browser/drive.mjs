// tests/e2e/browser/drive.mjs: drives Debian's chromium (headless, through npm playwright-core)
// for test_browser.sh.
//
//   node drive.mjs CONFIG.json RESULT.json
//
// CONFIG: {chromium, profileDir, pageUrl, deniedPageUrl, lfsServerUrl, org, dataset, token,
//          badToken, readOnlyToken, uploads: [{name, size, filename, type}], screenshot, deniedScreenshot,
//          timeoutMs}
// On the page at pageUrl (an origin lfsgate allows), for each upload: window.lfsE2E.upload
// then .download of the same object; then upload batches with badToken (401) and
// readOnlyToken (403), whose errors the page must be able to read;
// then a screenshot. On the page at deniedPageUrl (an origin lfsgate does not allow): one batch,
// which the browser must refuse, and a screenshot. RESULT gets everything the page returned plus what chromium
// saw on the network (method, url, request headers, batch bodies), console lines and page
// errors; the test asserts on it. Exit status: 0 when RESULT was written, 3 when chromium
// could not be started, 1 on any other failure of the driver itself.
import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [configFile, resultFile] = process.argv.slice(2);
const cfg = JSON.parse(readFileSync(configFile, 'utf8'));
const timer = setTimeout(() => {
  console.error(`drive.mjs: gave up after ${cfg.timeoutMs} ms`);
  process.exit(1);
}, cfg.timeoutMs || 240000);

const result = { uploads: {}, network: [], console: [], page_errors: [], failed_requests: [] };

function watch(page, label) {
  const pending = [];
  page.on('console', (m) => result.console.push(`${label}: ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.page_errors.push(`${label}: ${e.message}`));
  page.on('requestfailed', (r) => result.failed_requests.push({ page: label, method: r.method(), url: r.url(), error: r.failure() && r.failure().errorText }));
  page.on('request', (r) => {
    pending.push((async () => {
      const entry = { page: label, method: r.method(), url: r.url(), headers: await r.allHeaders() };
      if (r.method() === 'POST' && /\/objects\/(batch|storage\/verify)$/.test(new URL(r.url()).pathname)) {
        entry.body = r.postData();
      }
      result.network.push(entry);
    })());
  });
  return pending;
}

let context;
try {
  context = await chromium.launchPersistentContext(cfg.profileDir, {
    executablePath: cfg.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    viewport: { width: 1100, height: 900 },
  });
} catch (e) {
  console.error(`drive.mjs: chromium (${cfg.chromium}) could not be started: ${e.message}`);
  process.exit(3);
}

try {
  result.browser_version = context.browser() ? context.browser().version() : null;
  const page = context.pages()[0] || await context.newPage();
  const pending = watch(page, 'allowed');
  await page.goto(cfg.pageUrl, { waitUntil: 'load' });
  const base = { lfsServerUrl: cfg.lfsServerUrl, org: cfg.org, dataset: cfg.dataset, token: cfg.token };
  for (const u of cfg.uploads) {
    const up = await page.evaluate((c) => window.lfsE2E.upload(c), { ...base, size: u.size, filename: u.filename, type: u.type });
    let down = null;
    if (up.oid && !up.error) {
      down = await page.evaluate(([c, oid]) => window.lfsE2E.download(c, oid), [base, up.oid]);
    }
    result.uploads[u.name] = { upload: up, download: down };
  }
  result.error401 = await page.evaluate((c) => window.lfsE2E.tryBatch(c), { ...base, token: cfg.badToken });
  result.error403 = await page.evaluate((c) => window.lfsE2E.tryBatch(c), { ...base, token: cfg.readOnlyToken });
  await page.evaluate(() => window.lfsE2E.log('done'));
  await page.screenshot({ path: cfg.screenshot, fullPage: true });
  await Promise.all(pending);

  const denied = await context.newPage();
  const pendingDenied = watch(denied, 'denied');
  await denied.goto(cfg.deniedPageUrl, { waitUntil: 'load' });
  result.denied = await denied.evaluate((c) => window.lfsE2E.tryBatch(c), base);
  await denied.evaluate(() => window.lfsE2E.log('done'));
  await denied.screenshot({ path: cfg.deniedScreenshot, fullPage: true });
  await Promise.all(pendingDenied);

  writeFileSync(resultFile, JSON.stringify(result, null, 1));
  await context.close();
  clearTimeout(timer);
} catch (e) {
  console.error(`drive.mjs: ${e.stack || e}`);
  try {
    writeFileSync(resultFile, JSON.stringify({ ...result, driver_error: String(e) }, null, 1));
  } catch (_) {
    // nothing more to do
  }
  process.exit(1);
}
