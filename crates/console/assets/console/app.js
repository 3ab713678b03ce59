// The console's entry point: a hash router (no secret ever goes into a URL;
// the hash holds only project and credential IDs) and the header.

import { currentSession, onSignOut, signOut, setSessionDetails } from './api.js';
import { h, show, announce, nextView } from './dom.js';
import { signInPage } from './signin.js';
import { projectsPage } from './projects.js';
import { projectPage } from './project.js';
import { credentialPage } from './credential.js';

let signOutReason = '';

function homeOf(session) {
  if (session.admin) return '#/projects';
  return `#/projects/${encodeURIComponent(session.projectId)}`;
}

function renderHeader() {
  const nav = document.getElementById('nav');
  const box = document.getElementById('session');
  const session = currentSession();
  nav.replaceChildren();
  box.replaceChildren();
  if (!session) return;
  if (session.admin) nav.append(h('a', { href: '#/projects' }, 'Projects'));
  if (session.projectId) {
    nav.append(h('a', { href: `#/projects/${encodeURIComponent(session.projectId)}` },
      `Project ${session.projectId}`));
  }
  if (session.actingFor) {
    box.append(h('span', { class: 'notice' }, `Acting on behalf of ${session.actingFor.userId}`),
      h('button', {
        type: 'button',
        onclick: () => {
          setSessionDetails({ actingFor: null });
          announce('Acting as yourself again');
          route();
        },
      }, 'Stop acting on behalf'));
  }
  box.append(h('span', {}, `Signed in as ${session.clientId}`),
    h('button', { type: 'button', onclick: () => signOut('You signed out.') }, 'Sign out'));
}

/** Parses the hash into a page and shows it. */
export function route() {
  nextView();
  renderHeader();
  const session = currentSession();
  const path = (location.hash || '#/').slice(1).split('/').filter(Boolean).map(decodeURIComponent);
  if (!session) {
    const reason = signOutReason;
    signOutReason = '';
    show(signInPage(reason, () => {
      renderHeader();
      const wanted = location.hash;
      if (!wanted || wanted === '#/' || wanted === '#/signin') location.hash = homeOf(currentSession());
      else route();
    }));
    return;
  }
  const [section, id, tab] = path;
  if (section === 'projects' && id) {
    projectPage(id, tab || 'credentials');
  } else if (section === 'projects' && session.admin) {
    projectsPage();
  } else if (section === 'credentials' && id) {
    credentialPage(id);
  } else {
    location.hash = homeOf(session);
  }
}

onSignOut((reason) => {
  signOutReason = reason;
  // Anything the signed-in pages showed goes with the session.
  for (const dialog of document.querySelectorAll('dialog')) dialog.remove();
  // The hash stays: after signing in again the user is back where they were.
  route();
  if (reason) announce(reason);
});

window.addEventListener('hashchange', route);
route();
