// Intel Tiber AI Cloud (seed 002): at most two credentials per user (the
// third is refused with a clear message), the owner and members each have
// their own, a named secret shown once, regenerate (the old secret then
// refused), delete by typing the name. The admin acts on a member's behalf.

import {
  run, assert, signIn, createProject, addMember, createCredential, readSecretDialog, exchange,
  screenshot, assertSecretGone, assertNamedControls,
} from './lib.mjs';

await run(async (env, { page }) => {
  await signIn(page, env, env.adminId, env.adminSecret);
  await createProject(page, 'tiber', { perOwner: 2, maxCredentials: 0 });
  await page.getByText('Credentials per user').waitFor();
  await addMember(page, 'tiber', 'erin', ['compute.run']);
  await addMember(page, 'tiber', 'frank', ['compute.run']);
  await assertNamedControls(page, 'members');
  await screenshot(page, env, 'members');

  // Acting on Erin's behalf: her ceiling is offered, her quota counted.
  await page.getByRole('button', { name: 'Act on behalf of erin' }).click();
  await page.locator('#session').getByText('Acting on behalf of erin').waitFor();
  const one = await createCredential(page, { name: 'training', apis: ['compute.run'] });
  await createCredential(page, { name: 'inference', apis: ['compute.run'] });
  await page.getByText('erin: 2 of 2').waitFor();

  // The third is refused with the registry's message, and nothing is made.
  await page.getByRole('button', { name: 'Create credential' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create credential' });
  await dialog.getByLabel('Name').fill('third');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const alert = dialog.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /quota|at most|limit/i);
  await screenshot(page, env, 'quota-reached');
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // Frank (another member) still has his own two.
  await page.getByRole('button', { name: 'Stop acting on behalf' }).click();
  await createCredential(page, { owner: 'frank', name: 'frank notebook', apis: ['compute.run'] });

  // Regenerate: a new secret, shown once; the old one is refused at once.
  await page.getByRole('link', { name: 'training' }).click();
  await page.getByRole('heading', { name: 'training' }).waitFor();
  await page.getByRole('button', { name: 'Regenerate secret' }).click();
  const regenerate = page.getByRole('dialog', { name: 'Regenerate the secret of training' });
  await regenerate.getByLabel('Old secret keeps working for').selectOption('0');
  await regenerate.getByRole('button', { name: 'Regenerate' }).click();
  const rotated = await readSecretDialog(page, 'New secret');
  assert.equal(rotated.clientId, one.clientId);
  assert.notEqual(rotated.secret, one.secret);
  await assertSecretGone(page, rotated.secret);
  assert.equal((await exchange(env, one.clientId, one.secret)).status, 401, 'the old secret is refused');
  assert.equal((await exchange(env, one.clientId, rotated.secret)).status, 200, 'the new secret works');
});
