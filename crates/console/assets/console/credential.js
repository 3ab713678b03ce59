// One credential: its facts (never its secret), what can be done with it,
// its audit trail and usage.

import { call, loadConfig } from './api.js';
import { currentView, h, show, errorBox, loading, when, enumWord, copyButton, announce } from './dom.js';
import { renameDialog, editDialog, regenerateDialog, deleteDialog } from './dialogs.js';
import { auditSection, usageSection } from './activity.js';

export async function credentialPage(credentialId) {
  show(h('h1', {}, 'Credential'), loading('the credential'));
  const view = currentView();
  let credential;
  try {
    credential = (await call('GetCredential', { credentialId })).credential;
  } catch (error) {
    if (view === currentView()) show(h('h1', {}, 'Credential'), errorBox(error));
    return;
  }
  if (view !== currentView()) return;
  render(credential);
}

async function render(credential) {
  const { tokenEndpoint } = await loadConfig();
  const endpoint = credential.tokenEndpoint || tokenEndpoint;
  const state = enumWord(credential.state, 'CREDENTIAL_STATE_');
  const active = credential.state === 'CREDENTIAL_STATE_ACTIVE';
  const status = h('div', { 'aria-live': 'polite' });
  const back = `#/projects/${encodeURIComponent(credential.projectId)}/credentials`;
  const fact = (term, value) => [h('dt', {}, term), h('dd', {}, value)];
  const toggle = async () => {
    try {
      const method = active ? 'DisableCredential' : 'EnableCredential';
      const answer = await call(method, { credentialId: credential.id });
      announce(active ? 'Credential disabled' : 'Credential enabled');
      render(answer.credential);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  const curl = `curl -s -u "${credential.clientId}:$CLIENT_SECRET" -d grant_type=client_credentials ${endpoint}`;
  show(
    h('p', {}, h('a', { href: back }, `← Credentials of ${credential.projectId}`)),
    h('h1', {}, credential.name),
    h('dl', { class: 'facts' },
      fact('Description', credential.description || '-'),
      fact('Client ID', [h('code', {}, credential.clientId), ' ', copyButton('Copy', () => credential.clientId, 'Copy client ID')]),
      fact('Owner', credential.owner),
      fact('Kind', enumWord(credential.kind, 'CREDENTIAL_KIND_')),
      fact('State', h('span', { class: `state-${state}` }, state)),
      fact('Allowed APIs', (credential.allowedApis || []).join(', ') || 'none'),
      fact('Allowed IPs', (credential.allowedIps || []).join(', ') || 'any address'),
      fact('Created', when(credential.createTime)),
      fact('Changed', when(credential.updateTime)),
      fact('Last used', credential.lastUsedTime ? [when(credential.lastUsedTime), ` from ${credential.lastUsedIp || 'unknown address'}`] : 'never'),
      fact('Expires', when(credential.expireTime, 'never')),
      fact('Token endpoint', h('code', {}, endpoint)),
      fact('API endpoint', credential.apiEndpoint ? h('code', {}, credential.apiEndpoint) : 'not set')),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => renameDialog(credential, render) }, 'Rename'),
      h('button', { type: 'button', onclick: () => editDialog(credential, render) }, 'Edit APIs and IPs'),
      h('button', { type: 'button', onclick: () => regenerateDialog(credential, render) }, 'Regenerate secret'),
      h('button', { type: 'button', onclick: toggle }, active ? 'Disable' : 'Enable'),
      h('button', { type: 'button', class: 'danger', onclick: () => deleteDialog(credential, () => { location.hash = back; }) }, 'Delete')),
    status,
    h('h2', {}, 'Get a token'),
    h('p', {}, 'With this credential’s secret in CLIENT_SECRET (it is never shown again here):'),
    h('pre', {}, h('code', {}, curl)),
    copyButton('Copy command', () => curl, 'Copy curl command'),
    auditSection({ projectId: credential.projectId, credentialId: credential.id }),
    usageSection({ projectId: credential.projectId, credentialId: credential.id }));
}
