// Drives the admin console in Debian's chromium through what an operator does first: a
// refused non-admin sign-in, sign-in, the dashboard, a user search, a user's detail, revoking an
// access token, accepting an address change request, creating an API token, the plugins page.
// Run by tests/tests/it/admin_console.rs, which prepares the data and checks the state after.
// Inputs come from the environment; a screenshot of each step goes to SCREENSHOTS.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('BASE_URL');
const SHOTS = env('SCREENSHOTS');
const USER_ID = env('USER_ID');
const USER_EMAIL = env('USER_EMAIL');
const TOKEN_ID = env('TOKEN_ID');
const REQUEST_ID = env('REQUEST_ID');
mkdirSync(SHOTS, { recursive: true });

const steps = [];
const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('dialog', (d) => d.accept());
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const shot = async (name) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    steps.push(name);
  };
  const expectText = async (selector, text) => {
    await page.locator(selector).filter({ hasText: text }).first().waitFor();
  };

  await page.goto(`${BASE}/admin`);
  await page.locator('#sign-in-form').waitFor();
  await page.fill('input[name=email]', USER_EMAIL);
  await page.fill('input[name=password]', env('USER_PASSWORD'));
  await page.click('#sign-in-form button[type=submit]');
  await expectText('#sign-in-error', 'not an administrator');
  await shot('01-non-admin-refused');

  await page.fill('input[name=email]', env('ADMIN_EMAIL'));
  await page.fill('input[name=password]', env('ADMIN_PASSWORD'));
  await page.click('#sign-in-form button[type=submit]');
  await page.locator('#stat-today .value').waitFor();
  const today = (await page.textContent('#stat-today .value')).trim();
  if (today !== env('EXPECT_TODAY')) problems.push(`dashboard today shows ${today}, expected ${env('EXPECT_TODAY')}`);
  const bars = await page.locator('svg.chart rect.bar').count();
  if (bars !== 31) problems.push(`chart has ${bars} bars, expected 31`);
  await shot('02-dashboard');

  await page.click('header nav a[href="#/users"]');
  await page.locator('#user-search').waitFor();
  await expectText('#page-info', 'Page 1 of 2');
  await page.click('#next-page');
  await expectText('#page-info', 'Page 2 of 2');
  const secondPage = await page.locator('main tbody tr').count();
  if (secondPage !== 2) problems.push(`page 2 lists ${secondPage} users, expected 2`);
  await page.fill('#user-search input[name=q]', env('SEARCH'));
  await page.click('#user-search button');
  await page.locator(`main a[href="#/users/${USER_ID}"]`).waitFor();
  const rows = await page.locator('main tbody tr').count();
  if (rows !== 1) problems.push(`search for ${env('SEARCH')} listed ${rows} users, expected 1`);
  await shot('03-user-search');

  await page.click(`main a[href="#/users/${USER_ID}"]`);
  await expectText('main h1', USER_EMAIL);
  await expectText('[data-panel="Addresses"] td', env('EXPECT_ADDRESS'));
  await expectText('[data-panel="Login attempts"] td', 'wrong_pass');
  await expectText('[data-panel="Password changes"] td', 'force');
  await expectText('[data-panel="Meta"] td', 'newsletter');
  await expectText('[data-panel="Groups"] td', 'Subscribers');
  await page.locator(`[data-revoke-token="${TOKEN_ID}"]`).waitFor();
  await page.locator(`[data-accept="${REQUEST_ID}"]`).waitFor();
  await shot('04-user-detail');

  await page.click(`[data-revoke-token="${TOKEN_ID}"]`);
  await expectText('#flash', `Access token ${TOKEN_ID} revoked`);
  await page.locator(`[data-revoke-token="${TOKEN_ID}"]`).waitFor({ state: 'detached' });
  await shot('05-token-revoked');

  await page.click(`[data-accept="${REQUEST_ID}"]`);
  await expectText('#flash', `Change request ${REQUEST_ID} accepted`);
  await expectText('[data-panel="Address change requests"] td', 'accepted');
  await expectText('[data-panel="Addresses"] td', env('EXPECT_ACCEPTED_ADDRESS'));
  await shot('06-change-request-accepted');

  await page.click('header nav a[href="#/api-tokens"]');
  await page.locator('#create-token').waitFor();
  await page.fill('#create-token input[name=name]', 'console-made');
  await page.fill('#create-token input[name=routes]', 'users/index, users/show');
  await page.click('#create-token button');
  await page.locator('#new-token-value').waitFor();
  const created = (await page.textContent('#new-token-value')).trim();
  await shot('07-api-token-created');

  await page.click('header nav a[href="#/plugins"]');
  await expectText('main td', env('EXPECT_PLUGIN'));
  await page.click('#reload-plugins');
  await expectText('#flash', 'Plugins reloaded');
  await shot('08-plugins');

  await page.click('#sign-out');
  await page.locator('#sign-in-form').waitFor();
  console.log(JSON.stringify({ ok: problems.length === 0, steps, problems, created_token: created }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, steps, problems: [...problems, String(e && e.stack || e)] }));
} finally {
  await browser.close();
}
