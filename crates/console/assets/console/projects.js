// Projects (platform admins): each with its policy and how much of its
// quota is used; a dialog creates one.

import { call, listAll } from './api.js';
import { h, show, field, errorBox, loading, table, when, openDialog, announce, enumWord } from './dom.js';
import { projectIdProblem } from './validate.js';

const PAGE_SIZE = 20;

/** "2 of 10 credentials used" (API keys only: management ones never count). */
export async function quotaText(project) {
  const keys = await listAll('ListCredentials', { projectId: project.id, kind: 'CREDENTIAL_KIND_API' }, 'credentials');
  const max = project.policy?.maxCredentials || 0;
  return max ? `${keys.length} of ${max} credentials used` : `${keys.length} credentials (no limit)`;
}

/** The policy in words. */
export function policyFacts(policy = {}) {
  const perOwner = policy.maxCredentialsPerOwner || 0;
  return [
    ['Credentials per project', policy.maxCredentials ? String(policy.maxCredentials) : 'unlimited'],
    ['Credentials per user', perOwner ? String(perOwner) : 'unlimited'],
    ['Live tokens per credential', String(policy.maxTokensPerCredential ?? '')],
    ['Token lifetime', policy.tokenTtlSeconds ? `${policy.tokenTtlSeconds} s` : ''],
    ['At the token limit', enumWord(policy.onTokenLimit, 'ON_TOKEN_LIMIT_')],
  ];
}

export async function projectsPage(order = 'create_time desc', pageToken = '', pageNumber = 1) {
  const list = h('div', {}, loading('projects'));
  const orderSelect = h('select', {
    id: 'project-order',
    onchange: () => projectsPage(orderSelect.value),
  },
  h('option', { value: 'create_time desc', selected: order === 'create_time desc' }, 'Newest first'),
  h('option', { value: 'create_time', selected: order === 'create_time' }, 'Oldest first'));
  show(h('h1', {}, 'Projects'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => createProjectDialog() }, 'Create project'),
      h('label', { class: 'inline', for: 'project-order' }, 'Order', orderSelect)),
    list);
  try {
    const page = await call('ListProjects', { pageSize: PAGE_SIZE, pageToken, orderBy: order });
    const projects = page.projects || [];
    if (projects.length === 0) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No projects yet. Create one to hand out credentials.'));
      return;
    }
    const rows = projects.map((project) => {
      const quota = h('span', { class: 'quota' }, '…');
      quotaText(project).then((text) => { quota.textContent = text; })
        .catch((error) => { quota.textContent = error.message; });
      const policy = project.policy || {};
      return [
        h('a', { href: `#/projects/${encodeURIComponent(project.id)}` }, project.displayName || project.id),
        h('code', {}, project.id),
        quota,
        policy.maxCredentialsPerOwner ? `${policy.maxCredentialsPerOwner} per user` : 'no per-user limit',
        `${policy.tokenTtlSeconds || ''} s tokens, ${policy.maxTokensPerCredential || ''} live per credential`,
        when(project.createTime),
      ];
    });
    list.replaceChildren(
      table('Projects', ['Name', 'ID', 'Credentials', 'Per user', 'Tokens', 'Created'], rows),
      h('div', { class: 'actions' },
        pageNumber > 1 ? h('button', { type: 'button', onclick: () => projectsPage(order) }, 'First page') : null,
        page.nextPageToken
          ? h('button', { type: 'button', onclick: () => projectsPage(order, page.nextPageToken, pageNumber + 1) }, 'Next page')
          : null,
        h('span', { class: 'hint' }, `Page ${pageNumber}`)));
  } catch (error) {
    list.replaceChildren(errorBox(error));
  }
}

function numberField(label, name, hint) {
  return field(label, { name, type: 'number', min: '0', inputmode: 'numeric' }, hint);
}

function createProjectDialog() {
  openDialog('Create project', (close) => {
    const id = field('Project ID', { name: 'project_id', required: true, spellcheck: 'false' },
      '3 to 63 lowercase letters, digits and hyphens, starting with a letter.');
    const displayName = field('Display name', { name: 'display_name' }, 'Optional.');
    const apiEndpoint = field('API endpoint', { name: 'api_endpoint', type: 'url' },
      'Optional: the base URL of your API, shown with the project’s credentials.');
    const maxCredentials = numberField('Most credentials in the project', 'max_credentials', 'Empty: the default. 0: unlimited.');
    const perOwner = numberField('Most credentials per user', 'max_credentials_per_owner', 'Empty: the default. 0: unlimited.');
    const ttl = numberField('Token lifetime (seconds)', 'token_ttl_seconds', 'Empty: the default (1 to 86400).');
    const status = h('div', { 'aria-live': 'polite' });
    id.input.addEventListener('input', () => id.setError(id.input.value && projectIdProblem(id.input.value)));
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const problem = projectIdProblem(id.input.value.trim());
        id.setError(problem);
        if (problem) { id.input.focus(); return; }
        const policy = {};
        if (maxCredentials.input.value !== '') policy.maxCredentials = Number(maxCredentials.input.value);
        if (perOwner.input.value !== '') policy.maxCredentialsPerOwner = Number(perOwner.input.value);
        if (ttl.input.value !== '') policy.tokenTtlSeconds = Number(ttl.input.value);
        submit.disabled = true;
        status.replaceChildren(loading('— creating the project'));
        try {
          const answer = await call('CreateProject', {
            projectId: id.input.value.trim(),
            displayName: displayName.input.value.trim(),
            apiEndpoint: apiEndpoint.input.value.trim(),
            policy,
          });
          close();
          announce(`Project ${answer.project.id} created`);
          location.hash = `#/projects/${encodeURIComponent(answer.project.id)}`;
        } catch (error) {
          status.replaceChildren(errorBox(error));
          submit.disabled = false;
        }
      },
    },
    id.wrapper, displayName.wrapper, apiEndpoint.wrapper, maxCredentials.wrapper, perOwner.wrapper, ttl.wrapper,
    status,
    h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: close }, 'Cancel')));
  });
}
