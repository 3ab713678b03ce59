// The credential dialogs: create, the secret shown once, rename, edit APIs
// and addresses, regenerate the secret, delete by typing the name.

import { call, currentSession } from './api.js';
import { h, field, errorBox, openDialog, copyButton, announce, uid, loading } from './dom.js';
import { addressListProblem, apiListProblem, nameProblem, splitList, userProblem } from './validate.js';

/** The member's API ceiling, or null when `user` is no member (or unknown). */
async function ceilingOf(projectId, user) {
  if (!user) return null;
  try {
    const answer = await call('GetMember', { projectId, userId: user });
    return answer.member?.apiCeiling || [];
  } catch {
    return null;
  }
}

/**
 * Allowed APIs: a checkbox per API of the owner's ceiling, and a field for
 * any other (the registry refuses what the owner may not hold).
 */
function apiPicker(initial = []) {
  const legendId = uid('apis');
  const boxes = h('div', { class: 'checks' });
  const other = field('Other APIs', { name: 'other_apis', spellcheck: 'false' },
    'Separated by commas or spaces, e.g. orders.read, payments:write.');
  const note = h('p', { class: 'hint' });
  let offered = [];
  const picker = {
    wrapper: h('fieldset', { 'aria-labelledby': legendId },
      h('legend', { id: legendId }, 'Allowed APIs'), note, boxes, other.wrapper),
    offer(ceiling) {
      const chosen = new Set(picker.values());
      offered = ceiling || [];
      boxes.replaceChildren(...offered.map((api) => h('label', { class: 'inline' },
        h('input', { type: 'checkbox', name: 'api', value: api, checked: chosen.has(api) }), api)));
      other.input.value = [...chosen].filter((api) => !offered.includes(api)).join(', ');
      note.textContent = ceiling === null
        ? 'The owner is not a project member: type the APIs the credential may call.'
        : (offered.length ? 'Pick from the owner’s API ceiling:' : 'The owner’s API ceiling holds no API.');
    },
    values() {
      const checked = [...boxes.querySelectorAll('input:checked')].map((box) => box.value);
      return [...new Set([...checked, ...splitList(other.input.value)])];
    },
    check() {
      const problem = apiListProblem(splitList(other.input.value));
      other.setError(problem);
      return problem;
    },
  };
  other.input.value = initial.join(', ');
  other.input.addEventListener('input', () => picker.check());
  return picker;
}

/** The allowed-IPs field, checked as the user types. */
function addressField(initial = []) {
  const ips = field('Allowed IP addresses and CIDR blocks', {
    name: 'allowed_ips', multiline: true, rows: '3', spellcheck: 'false',
  }, 'One per line or separated by commas, e.g. 203.0.113.7 or 203.0.113.0/24. Empty: any address.');
  ips.input.value = initial.join('\n');
  const check = () => {
    const problem = addressListProblem(ips.input.value);
    ips.setError(problem);
    return problem;
  };
  ips.input.addEventListener('input', check);
  return { ...ips, check, values: () => splitList(ips.input.value) };
}

function formButtons(submit, close) {
  return h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: close }, 'Cancel'));
}

/** Create a credential in `project`, then show its secret once. */
export function createCredentialDialog(project, done) {
  const session = currentSession();
  const ownRole = !session.admin && !session.manager;
  openDialog('Create credential', (close) => {
    const owner = field('Owner (user ID)', { name: 'owner', required: true, spellcheck: 'false', value: session.user || '' },
      'The user the credential belongs to; it holds at most their API ceiling.');
    const name = field('Name', { name: 'name' }, 'Optional: a name is generated when empty. Unique in the project.');
    const description = field('Description', { name: 'description', multiline: true, rows: '2', maxlength: '256' }, 'Optional: what the credential is for.');
    const apis = apiPicker();
    const ips = addressField();
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
    const acting = session.actingFor?.userId;
    const loadCeiling = async () => {
      const user = acting || (ownRole ? session.user : owner.input.value.trim());
      apis.offer(await ceilingOf(project.id, user));
    };
    owner.input.addEventListener('change', loadCeiling);
    name.input.addEventListener('input', () => name.setError(nameProblem(name.input.value.trim())));
    loadCeiling();
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const ownerText = owner.input.value.trim();
        const problems = [
          ownRole || acting ? '' : owner.setError(userProblem(ownerText)) || userProblem(ownerText),
          name.setError(nameProblem(name.input.value.trim())) || nameProblem(name.input.value.trim()),
          apis.check(), ips.check(),
        ].filter(Boolean);
        if (problems.length) {
          status.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Fix the form first: ${problems[0]}`));
          return;
        }
        submit.disabled = true;
        status.replaceChildren(loading('— creating the credential'));
        try {
          const answer = await call('CreateCredential', {
            projectId: project.id,
            owner: ownRole || acting ? '' : ownerText,
            name: name.input.value.trim(),
            description: description.input.value.trim(),
            allowedApis: apis.values(),
            allowedIps: ips.values(),
          });
          close();
          secretDialog('Credential created', answer.credential, answer.clientSecret, done);
        } catch (error) {
          status.replaceChildren(errorBox(error));
          submit.disabled = false;
        }
      },
    },
    ownRole || acting ? null : owner.wrapper,
    name.wrapper, description.wrapper, apis.wrapper, ips.wrapper, status,
    formButtons(submit, close));
  });
}

/**
 * The client ID and secret, shown once. The dialog closes only after "I have
 * copied it" is ticked; then it leaves the document with the secret.
 */
export function secretDialog(title, credential, clientSecret, done) {
  let secret = clientSecret;
  let acknowledged = false;
  openDialog(title, (close) => {
    const secretId = uid('secret');
    const idId = uid('client-id');
    const ack = h('input', { type: 'checkbox', id: uid('ack'), name: 'acknowledge' });
    const finish = h('button', { type: 'button', class: 'primary', disabled: true, onclick: close }, 'Done');
    ack.addEventListener('change', () => {
      acknowledged = ack.checked;
      finish.disabled = !ack.checked;
    });
    return h('div', {},
      h('p', { class: 'notice', role: 'alert' },
        'Copy the secret now: it is shown only this once. Latchkey keeps only a hash of it; if it is lost, regenerate it.'),
      h('label', { for: idId }, 'Client ID'),
      h('div', { class: 'secret-box' },
        h('input', { type: 'text', id: idId, readonly: true, value: credential.clientId, spellcheck: 'false' }),
        copyButton('Copy', () => credential.clientId, 'Copy client ID')),
      h('label', { for: secretId }, 'Client secret'),
      h('div', { class: 'secret-box' },
        h('input', { type: 'text', id: secretId, readonly: true, value: secret, spellcheck: 'false', autocomplete: 'off', 'data-secret': true }),
        copyButton('Copy', () => secret, 'Copy client secret')),
      h('p', {}, 'Name: ', h('strong', {}, credential.name)),
      h('label', { class: 'inline', for: ack.id }, ack, 'I have copied the secret and stored it safely'),
      h('div', { class: 'actions' }, finish));
  }, {
    canClose: () => acknowledged,
    onClose: () => {
      secret = null;
      announce('The secret is no longer shown');
      if (done) done();
    },
  });
}

/** Rename: the etag makes it fail (ABORTED) if someone changed it meanwhile. */
export function renameDialog(credential, done) {
  openDialog(`Rename ${credential.name}`, (close) => {
    const name = field('New name', { name: 'name', required: true, value: credential.name });
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Rename');
    name.input.addEventListener('input', () => name.setError(nameProblem(name.input.value.trim(), true)));
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const problem = nameProblem(name.input.value.trim(), true);
        name.setError(problem);
        if (problem) return;
        await update(credential, { name: name.input.value.trim() }, ['name'], status, submit, close, done);
      },
    }, name.wrapper, status, formButtons(submit, close));
  });
}

/** Edit the description, allowed APIs and allowed addresses. */
export function editDialog(credential, done) {
  openDialog(`Edit ${credential.name}`, (close) => {
    const description = field('Description', { name: 'description', multiline: true, rows: '2', maxlength: '256' });
    description.input.value = credential.description || '';
    const apis = apiPicker(credential.allowedApis || []);
    const ips = addressField(credential.allowedIps || []);
    ceilingOf(credential.projectId, credential.owner).then((ceiling) => apis.offer(ceiling));
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Save');
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const problem = apis.check() || ips.check();
        if (problem) {
          status.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Fix the form first: ${problem}`));
          return;
        }
        await update(credential, {
          description: description.input.value.trim(),
          allowedApis: apis.values(),
          allowedIps: ips.values(),
        }, ['description', 'allowedApis', 'allowedIps'], status, submit, close, done);
      },
    }, description.wrapper, apis.wrapper, ips.wrapper, status, formButtons(submit, close));
  });
}

async function update(credential, changes, paths, status, submit, close, done) {
  submit.disabled = true;
  status.replaceChildren(loading('— saving'));
  try {
    const answer = await call('UpdateCredential', {
      credential: { id: credential.id, etag: credential.etag, ...changes },
      updateMask: paths.join(','),
    });
    close();
    announce('Saved');
    done(answer.credential);
  } catch (error) {
    const stale = error.code === 'aborted' ? ' Someone changed it meanwhile: close, reload and try again.' : '';
    status.replaceChildren(h('p', { class: 'error', role: 'alert' }, error.message + stale));
    submit.disabled = false;
  }
}

/** A new secret, with an optional grace period for the old one. */
export function regenerateDialog(credential, done) {
  openDialog(`Regenerate the secret of ${credential.name}`, (close) => {
    const graceId = uid('grace');
    const grace = h('select', { id: graceId, name: 'grace_period' },
      h('option', { value: '0' }, 'None: the old secret stops now'),
      h('option', { value: '3600' }, '1 hour'),
      h('option', { value: '86400' }, '1 day'),
      h('option', { value: '604800' }, '7 days'));
    const revokeId = uid('revoke');
    const revoke = h('input', { type: 'checkbox', id: revokeId, name: 'revoke_tokens' });
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Regenerate');
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        status.replaceChildren(loading('— regenerating'));
        try {
          const answer = await call('RotateCredentialSecret', {
            credentialId: credential.id,
            gracePeriodSeconds: Number(grace.value),
            revokeTokens: revoke.checked,
          });
          close();
          secretDialog('New secret', answer.credential, answer.clientSecret, () => done(answer.credential));
        } catch (error) {
          status.replaceChildren(errorBox(error));
          submit.disabled = false;
        }
      },
    },
    h('p', {}, 'A new secret is made and shown once. Programs using the old one must switch to it.'),
    h('label', { for: graceId }, 'Old secret keeps working for'), grace,
    h('label', { class: 'inline', for: revokeId }, revoke, 'Also revoke the access tokens issued so far'),
    status, formButtons(submit, close));
  });
}

/** Delete: the button works only once the credential's name is typed. */
export function deleteDialog(credential, done) {
  openDialog(`Delete ${credential.name}`, (close) => {
    const confirm = field(`Type the name "${credential.name}" to confirm`, { name: 'confirm_name', autocomplete: 'off', spellcheck: 'false' });
    const mark = h('span', { class: 'match', 'aria-live': 'polite' });
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete credential');
    confirm.input.addEventListener('input', () => {
      const matches = confirm.input.value === credential.name;
      submit.disabled = !matches;
      mark.textContent = matches ? '✓ Name matches' : '';
    });
    return h('form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        if (confirm.input.value !== credential.name) return;
        submit.disabled = true;
        status.replaceChildren(loading('— deleting'));
        try {
          await call('DeleteCredential', { credentialId: credential.id, confirmName: confirm.input.value });
          close();
          announce(`Credential ${credential.name} deleted`);
          done();
        } catch (error) {
          status.replaceChildren(errorBox(error));
          submit.disabled = false;
        }
      },
    },
    h('p', {}, 'Its secret and every access token issued to it stop working at once. This cannot be undone.'),
    confirm.wrapper, mark, status, formButtons(submit, close));
  });
}
