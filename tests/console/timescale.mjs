// Timescale Cloud (seed 000): create client credentials in a project, the
// secret shown once with a generated default name, rename, delete by typing
// the name. Also: the admin signs in with what `latchkey dev` printed, the
// secret is in no page after its dialog (nor after a reload), a reload
// signs out, and a deleted key's secret is refused with 401.

import {
  run, assert, signIn, createProject, createCredential, assertSecretGone, domText, exchange,
  screenshot, assertNamedControls, assertFitsPhone,
} from './lib.mjs';

await run(async (env, { page }) => {
  await signIn(page, env, env.adminId, env.adminSecret);
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await assertNamedControls(page, 'projects');
  await createProject(page, 'timescale-demo');
  await screenshot(page, env, 'timescale-empty-project');
  await page.getByText('No credentials yet').waitFor();

  // No name given: one is generated.
  const { clientId, secret } = await createCredential(page, { owner: 'tsdbadmin', otherApis: 'tsdb:read' });
  await assertSecretGone(page, secret);
  const row = page.getByRole('row').filter({ hasText: clientId });
  await row.waitFor();
  const generated = (await row.getByRole('link').textContent()).trim();
  assert.match(generated, /^credential-/, 'a default name is generated');
  await assertNamedControls(page, 'credentials list');
  await assertFitsPhone(page, env, 'credentials-list');

  // The secret works, as a program would use it.
  const issued = await exchange(env, clientId, secret);
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  assert.match(issued.body.access_token, /^lkt_/);

  // A reload forgets the session (the token lived in memory only) and
  // never brings the secret back.
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in to Latchkey' }).waitFor();
  await signIn(page, env, env.adminId, env.adminSecret);
  await page.goto(`${env.baseUrl}/#/projects/timescale-demo`);
  await page.getByRole('link', { name: generated }).waitFor();
  assert.ok(!(await domText(page)).includes(secret), 'the secret came back after a reload');

  // Rename.
  await page.getByRole('link', { name: generated }).click();
  await page.getByRole('heading', { name: generated }).waitFor();
  await assertNamedControls(page, 'credential page');
  await assertFitsPhone(page, env, 'credential-page');
  await page.getByRole('button', { name: 'Rename' }).click();
  const rename = page.getByRole('dialog', { name: `Rename ${generated}` });
  await rename.getByLabel('New name').fill('prod ingest');
  await rename.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('heading', { name: 'prod ingest' }).waitFor();

  // Delete: a wrong name cannot; the right one shows a check mark.
  await page.getByRole('button', { name: 'Delete' }).click();
  const remove = page.getByRole('dialog', { name: 'Delete prod ingest' });
  const confirm = remove.getByLabel('Type the name "prod ingest" to confirm');
  const button = remove.getByRole('button', { name: 'Delete credential' });
  assert.equal(await button.isDisabled(), true);
  await confirm.fill('prod ingest!');
  assert.equal(await button.isDisabled(), true, 'a wrong name must not enable Delete');
  assert.equal(await remove.getByText('✓ Name matches').count(), 0);
  await confirm.fill('prod ingest');
  await remove.getByText('✓ Name matches').waitFor();
  assert.equal(await button.isDisabled(), false);
  await screenshot(page, env, 'delete-dialog');
  await button.click();
  await page.getByRole('heading', { name: 'Project timescale-demo' }).waitFor();
  await page.getByText('No credentials yet').waitFor();
  assert.equal(await page.getByText(clientId).count(), 0, 'the deleted credential is gone');

  // A deleted key's secret no longer gets a token.
  const refused = await exchange(env, clientId, secret);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error, 'invalid_client');
});
