// An API platform's "operations" (seed 004): at most 10 credentials, each
// with a name, description, allowed APIs (picked from the member's
// ceiling) and allowed IPs and CIDR blocks checked as they are typed; the
// secret shown once; disable and enable; the audit trail and usage.

import {
  run, assert, signIn, createProject, addMember, createCredential, exchange, screenshot,
  assertNamedControls, assertFitsPhone,
} from './lib.mjs';

await run(async (env, { page }) => {
  await signIn(page, env, env.adminId, env.adminSecret);
  await createProject(page, 'payments-op', { maxCredentials: 10, apiEndpoint: 'https://api.payments.example' });
  await addMember(page, 'payments-op', 'gina', ['orders.read', 'payments:write']);
  await page.getByRole('link', { name: 'Credentials', exact: true }).click();

  // A bad CIDR is named while typing; the form is not sent.
  await page.getByRole('button', { name: 'Create credential' }).click();
  let dialog = page.getByRole('dialog', { name: 'Create credential' });
  await dialog.getByLabel('Owner (user ID)').fill('gina');
  await dialog.getByLabel('Owner (user ID)').press('Tab');
  await dialog.getByRole('checkbox', { name: 'orders.read', exact: true }).waitFor();
  await dialog.getByLabel('Allowed IP addresses and CIDR blocks').fill('10.0.0.0/33');
  await dialog.getByText('the prefix length after "/" must be 0 to 32').waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  const key = await createCredential(page, {
    owner: 'gina', name: 'checkout', description: 'Checkout service', apis: ['orders.read'], ips: '127.0.0.1',
  });
  await page.getByText('1 of 10 credentials used').waitFor();
  await screenshot(page, env, 'console');
  assert.equal((await exchange(env, key.clientId, key.secret)).status, 200);

  // Edit the addresses: an invalid block shows an error, a valid list saves.
  await page.getByRole('link', { name: 'checkout' }).click();
  await page.getByRole('button', { name: 'Edit APIs and IPs' }).click();
  dialog = page.getByRole('dialog', { name: 'Edit checkout' });
  const ips = dialog.getByLabel('Allowed IP addresses and CIDR blocks');
  await ips.fill('127.0.0.1\n203.0.113.0/24\n300.1.2.3');
  await dialog.getByText('"300.1.2.3" is not an IPv4 or IPv6 address').waitFor();
  assert.equal(await ips.getAttribute('aria-invalid'), 'true');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByRole('alert').waitFor();
  await ips.fill('127.0.0.1, 203.0.113.0/24, 2001:db8::/32');
  assert.equal(await ips.getAttribute('aria-invalid'), null);
  await dialog.getByRole('checkbox', { name: 'payments:write', exact: true }).check();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByText('127.0.0.1, 203.0.113.0/24, 2001:db8::/32').waitFor();
  await page.getByText('orders.read, payments:write').waitFor();

  // Disable: the secret is refused; enable: it works again.
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('button', { name: 'Enable' }).waitFor();
  assert.equal((await exchange(env, key.clientId, key.secret)).status, 401);
  await page.getByRole('button', { name: 'Enable' }).click();
  await page.getByRole('button', { name: 'Disable' }).waitFor();
  assert.equal((await exchange(env, key.clientId, key.secret)).status, 200);

  // The credential's audit trail names every change.
  await page.reload();
  await signInAgain();
  const audit = page.getByRole('region', { name: 'Audit trail' });
  for (const action of ['create credential', 'update credential', 'disable credential', 'enable credential']) {
    await audit.getByRole('cell', { name: action, exact: true }).first().waitFor();
  }
  await assertNamedControls(page, 'credential with audit');
  await screenshot(page, env, 'credential-audit');

  // The project's audit and usage.
  await page.goto(`${env.baseUrl}/#/projects/payments-op/activity`);
  await page.getByRole('region', { name: 'Audit trail' }).getByRole('cell', { name: 'create project', exact: true }).waitFor();
  const usage = page.getByRole('region', { name: 'Usage' });
  const deadline = Date.now() + 20000;
  while (!(await usage.textContent()).includes('tokens issued in the last 7 days')) {
    assert.ok(Date.now() < deadline, `usage not shown: ${await usage.textContent()}`);
    await page.waitForTimeout(500);
    await page.getByRole('link', { name: 'Credentials', exact: true }).click();
    await page.getByRole('link', { name: 'Audit and usage' }).click();
    await usage.waitFor();
  }
  await screenshot(page, env, 'activity');
  await assertFitsPhone(page, env, 'activity');

  async function signInAgain() {
    const hash = new URL(page.url()).hash;
    await signIn(page, env, env.adminId, env.adminSecret);
    await page.goto(`${env.baseUrl}/${hash}`);
    await page.getByRole('heading', { name: 'checkout' }).waitFor();
  }
});
