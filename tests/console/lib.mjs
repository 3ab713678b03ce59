// Shared steps of the console's browser stories: start Debian's chromium
// headless, sign in, find things by their accessible names, and the checks
// every story ends with (accessible names, no CSP violation, nothing kept
// in browser storage, no horizontal overflow at 375 px).

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export { assert };

/** What the Rust test passes: the console's URL, the admin, where screenshots go. */
export function environment() {
  const baseUrl = process.argv[2];
  assert.ok(baseUrl, 'usage: node <story>.mjs <console base URL>');
  const adminId = process.env.LATCHKEY_ADMIN_ID;
  const adminSecret = process.env.LATCHKEY_ADMIN_SECRET;
  assert.ok(adminId && adminSecret, 'LATCHKEY_ADMIN_ID and LATCHKEY_ADMIN_SECRET must be set');
  const screenshots = process.env.LATCHKEY_SCREENSHOTS || 'console-screenshots';
  mkdirSync(screenshots, { recursive: true });
  return { baseUrl: baseUrl.replace(/\/$/, ''), adminId, adminSecret, screenshots };
}

/** A browser with one page; `problems` collects CSP violations and page errors. */
export async function openBrowser(env, { width = 1280, height = 900 } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Root in a container has no user namespaces for chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  return { browser, ...(await openContext(browser, env, { width, height })) };
}

/**
 * Another browser context (its own session, like another person's
 * browser) with one page; `extraHTTPHeaders` go on every request it makes,
 * as a sign-in proxy in front of the console adds them.
 */
export async function openContext(browser, env, { width = 1280, height = 900, extraHTTPHeaders = {} } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, extraHTTPHeaders });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.baseUrl });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return { context, page, problems };
}

/** Signs in with a client ID and secret (and a project for non-admins). */
export async function signIn(page, env, clientId, clientSecret, project = '') {
  await page.goto(`${env.baseUrl}/`);
  await page.getByRole('heading', { name: 'Sign in to Latchkey' }).waitFor();
  await page.getByLabel('Client ID').fill(clientId);
  await page.getByLabel('Client secret').fill(clientSecret);
  if (project) await page.getByLabel('Project').fill(project);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Screenshot of the page as it is now, named after the step. */
export async function screenshot(page, env, name) {
  await page.screenshot({ path: join(env.screenshots, `${name}.png`), fullPage: true });
}

/** Creates a project through the dialog and lands on its page. */
export async function createProject(page, id, { perOwner = '', maxCredentials = '', apiEndpoint = '' } = {}) {
  await page.getByRole('link', { name: 'Projects', exact: true }).click();
  await page.getByRole('button', { name: 'Create project' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create project' });
  await dialog.getByLabel('Project ID').fill(id);
  if (apiEndpoint) await dialog.getByLabel('API endpoint').fill(apiEndpoint);
  if (maxCredentials !== '') await dialog.getByLabel('Most credentials in the project').fill(String(maxCredentials));
  if (perOwner !== '') await dialog.getByLabel('Most credentials per user').fill(String(perOwner));
  await dialog.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: `Project ${id}` }).waitFor();
}

/** Adds a member through the Members tab. */
export async function addMember(page, projectId, userId, ceiling) {
  await page.goto(`${new URL(page.url()).origin}/#/projects/${projectId}/members`);
  await page.getByRole('button', { name: 'Add member' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add member' });
  await dialog.getByLabel('User ID').fill(userId);
  await dialog.getByLabel('API ceiling').fill(ceiling.join(', '));
  await dialog.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('cell', { name: userId, exact: true }).waitFor();
}

/**
 * Creates a credential through the dialog; returns the client ID and the
 * secret read from the once-only dialog, which the story then closes by
 * copying and acknowledging.
 */
export async function createCredential(page, { owner = '', name = '', description = '', apis = [], otherApis = '', ips = '' } = {}) {
  await page.getByRole('button', { name: 'Create credential' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create credential' });
  if (owner) {
    await dialog.getByLabel('Owner (user ID)').fill(owner);
    await dialog.getByLabel('Owner (user ID)').press('Tab');
  }
  if (name) await dialog.getByLabel('Name').fill(name);
  if (description) await dialog.getByLabel('Description').fill(description);
  for (const api of apis) await dialog.getByRole('checkbox', { name: api, exact: true }).check();
  if (otherApis) await dialog.getByLabel('Other APIs').fill(otherApis);
  if (ips) await dialog.getByLabel('Allowed IP addresses and CIDR blocks').fill(ips);
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  return readSecretDialog(page, 'Credential created');
}

/**
 * The once-only dialog: reads the client ID and secret, copies the secret
 * with its button (checking the clipboard), shows that Done is disabled and
 * Escape does not close it until "I have copied" is ticked, then closes it.
 */
export async function readSecretDialog(page, title) {
  const dialog = page.getByRole('dialog', { name: title });
  await dialog.waitFor();
  const clientId = await dialog.getByLabel('Client ID', { exact: true }).inputValue();
  const secret = await dialog.getByLabel('Client secret', { exact: true }).inputValue();
  assert.match(clientId, /^lkc_/);
  assert.match(secret, /^lks_/);
  await dialog.getByRole('button', { name: 'Copy client secret' }).click();
  await dialog.getByText('Copied').first().waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'the copy button copies the secret');
  const done = dialog.getByRole('button', { name: 'Done' });
  assert.equal(await done.isDisabled(), true, 'Done is disabled before the acknowledgement');
  // Twice: a browser may force a modal dialog shut on a second Escape.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.waitForTimeout(100);
  assert.equal(await dialog.isVisible(), true, 'Escape does not close the secret before the acknowledgement');
  await dialog.getByLabel('I have copied the secret and stored it safely').check();
  await done.click();
  await dialog.waitFor({ state: 'detached' });
  return { clientId, secret };
}

/** The page's whole DOM, values of inputs included, as text. */
export async function domText(page) {
  return page.evaluate(() => {
    const values = [...document.querySelectorAll('input, textarea')].map((input) => input.value);
    return `${document.documentElement.outerHTML}\n${values.join('\n')}\n${document.body.innerText}`;
  });
}

/** Asserts `secret` appears nowhere in the page, nor after a reload and a new sign-in. */
export async function assertSecretGone(page, secret) {
  assert.ok(!(await domText(page)).includes(secret), 'the secret is still in the DOM after its dialog closed');
}

/** Exchanges a client ID and secret at the token endpoint (as a program would). */
export async function exchange(env, clientId, clientSecret) {
  const config = await (await fetch(`${env.baseUrl}/console/config.json`)).json();
  const response = await fetch(config.tokenEndpoint, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  return { status: response.status, body: await response.json().catch(() => ({})) };
}

/** Every control in the accessibility tree has a name a screen reader reads. */
export async function assertNamedControls(page, where) {
  const session = await page.context().newCDPSession(page);
  const { nodes } = await session.send('Accessibility.getFullAXTree');
  await session.detach();
  const controls = new Set(['button', 'textbox', 'checkbox', 'combobox', 'link', 'spinbutton', 'radio', 'searchbox', 'listbox']);
  const unnamed = nodes.filter((node) => !node.ignored && controls.has(node.role?.value) && !(node.name?.value || '').trim());
  assert.deepEqual(unnamed.map((node) => node.role.value), [], `unnamed controls on ${where}`);
  // And the same from the DOM side: every input, select, textarea and button.
  const missing = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((element) => element.getAttribute('aria-hidden') !== 'true')
    .filter((element) => !(element.labels?.length || element.getAttribute('aria-label') || element.textContent.trim()))
    .map((element) => element.outerHTML));
  assert.deepEqual(missing, [], `controls without a label on ${where}`);
}

/** Nothing in localStorage, sessionStorage or cookies; no CSP violation. */
export async function assertCleanSession(page, problems) {
  const stored = await page.evaluate(() => ({
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
  }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: '' }, 'browser storage must stay empty');
  assert.deepEqual(await page.context().cookies(), [], 'no cookies');
  assert.deepEqual(problems, [], 'CSP violations or page errors');
}

/** At 375 px wide nothing scrolls sideways. */
export async function assertFitsPhone(page, env, name) {
  await page.setViewportSize({ width: 375, height: 800 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await screenshot(page, env, `${name}-375px`);
  assert.ok(width <= 375, `${name} is ${width}px wide at a 375px viewport`);
  await page.setViewportSize({ width: 1280, height: 900 });
}

/** Runs `story`, closing the browser whatever happens; exits non-zero on failure. */
export async function run(story) {
  const env = environment();
  const opened = await openBrowser(env);
  try {
    await story(env, opened);
    await assertCleanSession(opened.page, opened.problems);
    console.log('story passed');
  } catch (error) {
    await screenshot(opened.page, env, 'failure').catch(() => {});
    console.error(error);
    process.exitCode = 1;
  } finally {
    await opened.browser.close();
  }
}
