// CloudOps (seed 003): the list shows the name, last-used IP and time; the
// API endpoint URL is shown with a curl to get a token (a placeholder,
// never the secret); an API error is shown in the registry's words; a
// deleted key gets 401 with a body saying the credentials are invalid.

import {
  run, assert, signIn, createProject, createCredential, exchange, screenshot, assertNamedControls,
  assertFitsPhone, domText,
} from './lib.mjs';

await run(async (env, { page }) => {
  await signIn(page, env, env.adminId, env.adminSecret);
  await createProject(page, 'cloudops', { apiEndpoint: 'https://api.cloudops.example/v1' });
  const key = await createCredential(page, { owner: 'ops', name: 'backup script', otherApis: 'servers:read' });

  // The endpoints, and a curl with a placeholder, never the secret.
  await page.getByText('https://api.cloudops.example/v1').first().waitFor();
  const curl = await page.locator('pre code').first().textContent();
  assert.match(curl, /curl -s -u "\$CLIENT_ID:\$CLIENT_SECRET" -d grant_type=client_credentials http:\/\/127\.0\.0\.1:\d+\/oauth2\/token/);
  assert.ok(!(await domText(page)).includes(key.secret));

  // Used once from this machine: the list shows when and from where.
  assert.equal((await exchange(env, key.clientId, key.secret)).status, 200);
  const row = page.getByRole('row').filter({ hasText: 'backup script' });
  const deadline = Date.now() + 20000;
  while (!(await row.textContent()).includes('from 127.0.0.1')) {
    assert.ok(Date.now() < deadline, `last use not shown: ${await row.textContent()}`);
    await page.waitForTimeout(250);
    await page.getByLabel('Order').selectOption('create_time');
    await page.getByLabel('Order').selectOption('create_time desc');
    await page.getByRole('row').filter({ hasText: 'backup script' }).waitFor();
  }
  await screenshot(page, env, 'last-used');
  await assertFitsPhone(page, env, 'cloudops-list');

  // An API error in words: a project that already exists.
  await page.getByRole('link', { name: 'Projects', exact: true }).click();
  await page.getByRole('button', { name: 'Create project' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create project' });
  await dialog.getByLabel('Project ID').fill('cloudops');
  await dialog.getByRole('button', { name: 'Create' }).click();
  const alert = dialog.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /exists/i);
  // Typed as you go: a bad ID is named before anything is sent.
  await dialog.getByLabel('Project ID').fill('No Caps');
  await dialog.getByText('3 to 63 lowercase letters').last().waitFor();
  await assertNamedControls(page, 'create project dialog');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  // Deleted: the next login is a 401 whose body says the credentials are invalid.
  await page.goto(`${env.baseUrl}/#/projects/cloudops`);
  await page.getByRole('link', { name: 'backup script' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  const remove = page.getByRole('dialog', { name: 'Delete backup script' });
  await remove.getByLabel('Type the name "backup script" to confirm').fill('backup script');
  await remove.getByRole('button', { name: 'Delete credential' }).click();
  await page.getByText('No credentials yet').waitFor();
  const refused = await exchange(env, key.clientId, key.secret);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error, 'invalid_client');
});
