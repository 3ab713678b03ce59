// One project: its credentials (list, create), members and activity, with
// the endpoints a program needs and a curl to get a token.

import { call, currentSession, loadConfig, setSessionDetails, listAll } from './api.js';
import { currentView, h, show, field, errorBox, loading, table, when, enumWord, copyButton, openDialog, announce } from './dom.js';
import { createCredentialDialog } from './dialogs.js';
import { auditSection, usageSection } from './activity.js';
import { policyFacts, quotaText } from './projects.js';
import { apiListProblem, splitList, userProblem } from './validate.js';

const PAGE_SIZE = 10;

function tabs(projectId, current) {
  const base = `#/projects/${encodeURIComponent(projectId)}`;
  const tab = (name, label) => h('a', { href: `${base}/${name}`, 'aria-current': current === name ? 'page' : undefined }, label);
  return h('nav', { class: 'tabs', 'aria-label': 'Project sections' },
    tab('credentials', 'Credentials'), tab('members', 'Members'), tab('activity', 'Audit and usage'));
}

export async function projectPage(projectId, tab) {
  show(h('h1', {}, `Project ${projectId}`), loading('the project'));
  const view = currentView();
  let project;
  try {
    project = (await call('GetProject', { projectId })).project;
  } catch (error) {
    if (view === currentView()) show(h('h1', {}, `Project ${projectId}`), errorBox(error));
    return;
  }
  // The user went elsewhere meanwhile.
  if (view !== currentView()) return;
  const content = h('div', {});
  show(h('h1', {}, project.displayName && project.displayName !== project.id ? `${project.displayName} (${project.id})` : `Project ${project.id}`),
    tabs(project.id, tab), content);
  if (tab === 'members') membersTab(project, content);
  else if (tab === 'activity') content.append(auditSection({ projectId: project.id }), usageSection({ projectId: project.id }));
  else credentialsTab(project, content);
}

/** The token endpoint, the API endpoint and a curl that gets a token. */
async function endpointsSection(project) {
  const { tokenEndpoint } = await loadConfig();
  const curl = `curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials ${tokenEndpoint}`;
  return h('section', { 'aria-labelledby': 'endpoints-heading' },
    h('h2', { id: 'endpoints-heading' }, 'Endpoints'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Token endpoint'), h('dd', {}, h('code', {}, tokenEndpoint), ' ', copyButton('Copy', () => tokenEndpoint, 'Copy token endpoint')),
      h('dt', {}, 'API endpoint'), h('dd', {}, project.apiEndpoint
        ? [h('code', {}, project.apiEndpoint), ' ', copyButton('Copy', () => project.apiEndpoint, 'Copy API endpoint')]
        : 'not set')),
    h('p', {}, 'Get an access token (set CLIENT_ID and CLIENT_SECRET to a credential’s; the secret is never shown here):'),
    h('pre', {}, h('code', {}, curl)),
    copyButton('Copy command', () => curl, 'Copy curl command'),
    h('p', {}, 'Then call the API with the header ', h('code', {}, 'Authorization: Bearer <access_token>'), '.'));
}

async function credentialsTab(project, content, order = 'create_time desc', pageToken = '', pageNumber = 1) {
  const session = currentSession();
  const quota = h('p', { class: 'quota' });
  const list = h('div', {}, loading('credentials'));
  const orderSelect = h('select', {
    id: 'credential-order',
    onchange: () => credentialsTab(project, content, orderSelect.value),
  },
  h('option', { value: 'create_time desc', selected: order === 'create_time desc' }, 'Newest first'),
  h('option', { value: 'create_time', selected: order === 'create_time' }, 'Oldest first'));
  const refresh = () => credentialsTab(project, content, order);
  content.replaceChildren(
    h('dl', { class: 'facts', 'aria-label': 'Policy' }, policyFacts(project.policy).flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    quota,
    h('h2', {}, 'Credentials'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => createCredentialDialog(project, refresh) }, 'Create credential'),
      h('label', { class: 'inline', for: 'credential-order' }, 'Order', orderSelect)),
    list);
  endpointsSection(project).then((section) => content.append(section));
  const owner = session.actingFor?.userId || '';
  // A member (or a call on one's behalf) sees only their own credentials,
  // so their count is against the per-user limit; others see the project's.
  const user = session.actingFor?.userId || (!session.admin && !session.manager ? session.user : '');
  const counted = user
    ? listAll('ListCredentials', { projectId: project.id, owner: user, kind: 'CREDENTIAL_KIND_API' }, 'credentials').then((mine) => {
      const perOwner = project.policy?.maxCredentialsPerOwner || 0;
      return perOwner ? `${user}: ${mine.length} of ${perOwner} credentials used` : `${user}: ${mine.length} credentials (no per-user limit)`;
    })
    : quotaText(project);
  counted.then((text) => {
    quota.textContent = text;
  }).catch((error) => { quota.textContent = error.message; });
  try {
    const page = await call('ListCredentials', { projectId: project.id, owner, pageSize: PAGE_SIZE, pageToken, orderBy: order });
    const credentials = page.credentials || [];
    if (credentials.length === 0 && pageNumber === 1) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No credentials yet. Create one to get a client ID and secret.'));
      return;
    }
    list.replaceChildren(
      table('Credentials', ['Name', 'Description', 'Client ID', 'Owner', 'Created', 'Last used', 'State'], credentials.map((credential) => [
        h('a', { href: `#/credentials/${encodeURIComponent(credential.id)}` }, credential.name),
        credential.description || '-',
        h('code', {}, credential.clientId),
        credential.owner,
        when(credential.createTime),
        credential.lastUsedTime ? [when(credential.lastUsedTime), ` from ${credential.lastUsedIp || 'unknown address'}`] : 'never',
        h('span', { class: `state-${enumWord(credential.state, 'CREDENTIAL_STATE_')}` }, enumWord(credential.state, 'CREDENTIAL_STATE_')),
      ])),
      h('div', { class: 'actions' },
        pageNumber > 1 ? h('button', { type: 'button', onclick: () => credentialsTab(project, content, order) }, 'First page') : null,
        page.nextPageToken
          ? h('button', { type: 'button', onclick: () => credentialsTab(project, content, order, page.nextPageToken, pageNumber + 1) }, 'Next page')
          : null,
        h('span', { class: 'hint' }, `Page ${pageNumber}`)));
  } catch (error) {
    list.replaceChildren(errorBox(error));
  }
}

async function membersTab(project, content) {
  const session = currentSession();
  const list = h('div', {}, loading('members'));
  const manages = session.admin || session.manager;
  content.replaceChildren(h('div', {},
    h('h2', {}, 'Members'),
    h('p', { class: 'hint' }, 'A member’s credentials never hold an API beyond the member’s ceiling. The role is informational.'),
    manages ? h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => createMemberDialog(project, () => membersTab(project, content)) }, 'Add member')) : null,
    list));
  try {
    const members = await listAll('ListMembers', { projectId: project.id }, 'members');
    if (members.length === 0) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No members yet.'));
      return;
    }
    list.replaceChildren(table('Members', ['User', 'Name', 'Role', 'API ceiling', 'State', 'Added', 'Actions'], members.map((member) => [
      h('code', {}, member.userId),
      member.displayName || '-',
      enumWord(member.role, 'MEMBER_ROLE_'),
      (member.apiCeiling || []).join(', ') || 'none',
      h('span', { class: `state-${enumWord(member.state, 'MEMBER_STATE_')}` }, enumWord(member.state, 'MEMBER_STATE_')),
      when(member.createTime),
      manages && member.state === 'MEMBER_STATE_ACTIVE'
        ? h('button', {
          type: 'button',
          'aria-label': `Act on behalf of ${member.userId}`,
          onclick: () => {
            setSessionDetails({ actingFor: { projectId: project.id, userId: member.userId } });
            announce(`Acting on behalf of ${member.userId}`);
            location.hash = `#/projects/${encodeURIComponent(project.id)}/credentials`;
          },
        }, 'Act on behalf')
        : '-',
    ])));
  } catch (error) {
    list.replaceChildren(errorBox(error));
  }
}

function createMemberDialog(project, done) {
  openDialog('Add member', (close) => {
    const user = field('User ID', { name: 'user_id', required: true, spellcheck: 'false' }, 'As the member’s credentials name their owner.');
    const displayName = field('Display name', { name: 'display_name' }, 'Optional.');
    const roleId = 'member-role';
    const role = h('select', { id: roleId, name: 'role' },
      h('option', { value: 'MEMBER_ROLE_MEMBER' }, 'Member'),
      h('option', { value: 'MEMBER_ROLE_OWNER' }, 'Owner'));
    const ceiling = field('API ceiling', { name: 'api_ceiling', spellcheck: 'false' },
      'The APIs the user holds, separated by commas, e.g. orders.read, credentials:own.');
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Add');
    user.input.addEventListener('input', () => user.setError(user.input.value && userProblem(user.input.value.trim())));
    ceiling.input.addEventListener('input', () => ceiling.setError(apiListProblem(splitList(ceiling.input.value))));
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const problem = userProblem(user.input.value.trim()) || apiListProblem(splitList(ceiling.input.value));
        if (problem) {
          status.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Fix the form first: ${problem}`));
          return;
        }
        submit.disabled = true;
        try {
          await call('CreateMember', {
            projectId: project.id,
            userId: user.input.value.trim(),
            displayName: displayName.input.value.trim(),
            role: role.value,
            apiCeiling: splitList(ceiling.input.value),
          });
          close();
          announce('Member added');
          done();
        } catch (error) {
          status.replaceChildren(errorBox(error));
          submit.disabled = false;
        }
      },
    },
    user.wrapper, displayName.wrapper, h('label', { for: roleId }, 'Role'), role, ceiling.wrapper, status,
    h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: close }, 'Cancel')));
  });
}
