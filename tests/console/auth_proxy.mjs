// Behind a sign-in proxy (SSO): `latchkey dev --auth-proxy-trusted
// 127.0.0.1 --auth-proxy-project acme`, and a browser whose every request
// carries `x-forwarded-user: alice` as the proxy would add it. The console
// opens signed in as alice with no secret, shows only her keys, and creates
// one with the secret shown once; a browser without the header gets the
// sign-in form, and the admin signs in there with a secret as ever.

import {
  run, assert, signIn, createProject, addMember, createCredential, assertSecretGone, exchange,
  screenshot, assertNamedControls, assertCleanSession, assertFitsPhone, openContext,
} from './lib.mjs';

await run(async (env, { browser, page }) => {
  // The admin's browser sends no user header: the usual sign-in.
  await page.goto(`${env.baseUrl}/`);
  await page.getByRole('heading', { name: 'Sign in to Latchkey' }).waitFor();
  await signIn(page, env, env.adminId, env.adminSecret);
  await createProject(page, 'acme');
  await addMember(page, 'acme', 'alice', ['orders.read']);
  await addMember(page, 'acme', 'bob', ['orders.read']);
  await page.getByRole('link', { name: 'Credentials', exact: true }).click();
  const bobs = await createCredential(page, { owner: 'bob', name: 'bob batch', apis: ['orders.read'] });

  // Alice's browser, through the proxy.
  const alice = await openContext(browser, env, { extraHTTPHeaders: { 'x-forwarded-user': 'alice' } });
  try {
    const mine = alice.page;
    await mine.goto(`${env.baseUrl}/`);
    await mine.getByText('Signed in as alice').waitFor();
    await mine.getByRole('heading', { name: 'Project acme' }).waitFor();
    assert.equal(await mine.getByRole('heading', { name: 'Sign in to Latchkey' }).count(), 0, 'no sign-in form');
    assert.equal(await mine.getByRole('button', { name: 'Sign out' }).count(), 0, 'signing out is the proxy’s business');
    // Bob's key is not hers to see.
    await mine.getByText('No credentials yet').waitFor();
    assert.equal(await mine.getByText('bob batch').count(), 0);
    assert.equal(await mine.getByText(bobs.clientId).count(), 0);

    // Her own key, from her API ceiling, its secret shown once.
    const created = await createCredential(mine, { name: 'alice ci', apis: ['orders.read'] });
    await mine.getByRole('link', { name: 'alice ci' }).waitFor();
    await assertSecretGone(mine, created.secret);
    assert.equal(await mine.getByText('bob batch').count(), 0);
    await screenshot(mine, env, 'proxied-member-credentials');
    await assertNamedControls(mine, 'proxied member credentials');
    await assertFitsPhone(mine, env, 'proxied-member-credentials');
    const issued = await exchange(env, created.clientId, created.secret);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));

    // The key is hers: the admin sees it owned by alice.
    await page.goto(`${env.baseUrl}/#/projects/acme`);
    const row = page.getByRole('row').filter({ hasText: 'alice ci' });
    await row.waitFor();
    await row.getByText('alice', { exact: true }).waitFor();
    await assertCleanSession(mine, alice.problems);
  } finally {
    await alice.context.close();
  }

  // Another browser without the header: the sign-in form, nobody signed in.
  const stranger = await openContext(browser, env);
  try {
    await stranger.page.goto(`${env.baseUrl}/`);
    await stranger.page.getByRole('heading', { name: 'Sign in to Latchkey' }).waitFor();
    assert.equal(await stranger.page.getByText('Signed in as').count(), 0);
    await screenshot(stranger.page, env, 'proxied-no-header-sign-in');
    await assertCleanSession(stranger.page, stranger.problems);
  } finally {
    await stranger.context.close();
  }
});
