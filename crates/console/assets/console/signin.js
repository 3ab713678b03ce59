// Sign-in: a management credential's client ID and secret, exchanged for a
// token at the issuer. The secret field is cleared as soon as it is sent.

import { signIn, call, setSessionDetails, loadConfig, listAll, discardSession } from './api.js';
import { h, field, errorBox, messageOf } from './dom.js';
import { projectIdProblem } from './validate.js';

/** Finds the project and user a non-admin session acts for. */
async function findWhoAmI(session) {
  if (session.admin) {
    return {};
  }
  // The token says the scopes, not the owner: the caller's own management
  // credential (listed to it) does.
  const mine = await listAll('ListCredentials', { projectId: session.projectId }, 'credentials');
  const me = mine.find((credential) => credential.clientId === session.clientId);
  return { user: me ? me.owner : '' };
}

export function signInPage(reason, done) {
  const clientId = field('Client ID', { name: 'client_id', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = field('Client secret', { name: 'client_secret', type: 'password', autocomplete: 'current-password', required: true });
  const project = field('Project', { name: 'project', spellcheck: 'false' },
    'Your project’s ID. Not needed for a platform admin (registry:admin).');
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const endpoint = h('p', { class: 'hint' });
  loadConfig().then((config) => {
    endpoint.textContent = `Signs in at ${config.tokenEndpoint}. The secret is sent once and not kept; the session lives in this tab only and ends on reload.`;
  }).catch((error) => status.replaceChildren(errorBox(error)));

  const form = h('form', {
    class: 'signin',
    'aria-label': 'Sign in',
    novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const id = clientId.input.value.trim();
      const secretText = secret.input.value;
      const projectId = project.input.value.trim();
      clientId.setError(id ? '' : 'Enter the client ID');
      secret.setError(secretText ? '' : 'Enter the client secret');
      project.setError(projectId && projectIdProblem(projectId));
      if (!id || !secretText || (projectId && projectIdProblem(projectId))) return;
      // The secret leaves the page's fields before the request is even sent.
      secret.input.value = '';
      button.disabled = true;
      status.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Signing in…'));
      try {
        const session = await signIn(id, secretText, projectId);
        if (!session.admin && !session.manager && !session.scopes.includes('credentials:own')) {
          throw new Error('This credential holds no management scope (registry:admin, credentials:manage or credentials:own).');
        }
        if (!session.admin && !projectId) {
          throw new Error('Enter your project: only a platform admin can sign in without one.');
        }
        if (!session.admin) {
          await call('GetProject', { projectId });
        }
        setSessionDetails(await findWhoAmI(session));
        done();
      } catch (error) {
        discardSession();
        status.replaceChildren(h('p', { class: 'error', role: 'alert' }, messageOf(error)));
        button.disabled = false;
        secret.input.focus();
      }
    },
  },
  h('h1', {}, 'Sign in to Latchkey'),
  reason ? h('p', { class: 'notice', role: 'status' }, reason) : null,
  h('p', {}, 'Use a management credential: one holding registry:admin, credentials:manage or credentials:own.'),
  clientId.wrapper, secret.wrapper, project.wrapper,
  h('div', { class: 'actions' }, button),
  status, endpoint);
  return form;
}
