// CelerData Cloud (seed 001): an optional description (or "-"), the list
// sorted by creation time with the client ID and creation time, and a user
// who sees only the keys they created: a member signs in with their own
// credential (credentials:own) and acts on their keys only.

import {
  run, assert, signIn, createProject, addMember, createCredential, screenshot, assertNamedControls,
  assertFitsPhone, exchange,
} from './lib.mjs';

await run(async (env, { page }) => {
  await signIn(page, env, env.adminId, env.adminSecret);
  await createProject(page, 'celer');
  await addMember(page, 'celer', 'carol', ['credentials:own', 'warehouse.read']);
  await addMember(page, 'celer', 'dave', ['credentials:own', 'warehouse.read']);
  await page.getByRole('link', { name: 'Credentials', exact: true }).click();
  // Carol's own sign-in credential, and a key of Dave's she must not see.
  const carol = await createCredential(page, { owner: 'carol', name: 'carol console', apis: ['credentials:own', 'warehouse.read'] });
  const dave = await createCredential(page, { owner: 'dave', name: 'dave etl', description: 'Dave’s ETL', apis: ['warehouse.read'] });
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signIn(page, env, carol.clientId, carol.secret, 'celer');
  await page.getByRole('heading', { name: 'Project celer' }).waitFor();
  const first = await createCredential(page, { name: 'nightly load', description: 'Loads the warehouse at night', apis: ['warehouse.read'] });
  const second = await createCredential(page, { name: 'adhoc' });
  await page.getByRole('link', { name: 'adhoc' }).waitFor();

  // Newest first by default: adhoc, nightly load, carol console.
  const names = async () => (await page.getByRole('row').locator('td:first-child a').allTextContents()).map((name) => name.trim());
  assert.deepEqual(await names(), ['adhoc', 'nightly load', 'carol console']);
  const adhoc = page.getByRole('row').filter({ hasText: 'adhoc' });
  assert.equal((await adhoc.locator('td').nth(1).textContent()).trim(), '-', 'no description shows "-"');
  await page.getByRole('row').filter({ hasText: 'nightly load' }).getByText('Loads the warehouse at night').waitFor();
  await page.getByRole('row').filter({ hasText: 'nightly load' }).getByText(first.clientId).waitFor();
  await page.getByLabel('Order').selectOption('create_time');
  await page.waitForFunction(() => document.querySelector('tbody td a')?.textContent === 'carol console');
  assert.deepEqual(await names(), ['carol console', 'nightly load', 'adhoc']);
  // Dave's key is not Carol's to see.
  assert.equal(await page.getByText('dave etl').count(), 0);
  assert.equal(await page.getByText(dave.clientId).count(), 0);
  await screenshot(page, env, 'member-own-credentials');
  await assertNamedControls(page, 'member credentials');
  await assertFitsPhone(page, env, 'member-credentials');

  // Nor can she open it by its URL: the registry answers not found, in words.
  const daveId = await (async () => {
    const { status, body } = await exchange(env, dave.clientId, dave.secret);
    assert.equal(status, 200);
    return body;
  })();
  assert.ok(daveId.access_token);
  await page.goto(`${env.baseUrl}/#/credentials/not-a-credential-of-carol`);
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /\w+ \w+/);
  assert.ok(second.secret);
});
