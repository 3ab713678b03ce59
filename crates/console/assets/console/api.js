// The session and the JSON API. The access token lives in this module's
// memory only: never in web storage, a cookie or a URL.
// A reload signs out. The client secret is used for the exchange and
// dropped.

let config = null;
let session = null;
let expiryTimer = null;
const listeners = new Set();

/** An API failure: `message` is the server's, in words a user can read. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The server's configuration (token endpoint), fetched once. */
export async function loadConfig() {
  if (config) return config;
  const response = await fetch('/console/config.json', { credentials: 'omit' });
  if (!response.ok) throw new Error(`the console's configuration could not be read (HTTP ${response.status})`);
  config = await response.json();
  return config;
}

/** Calls `listener(reason)` whenever the session ends. */
export function onSignOut(listener) {
  listeners.add(listener);
}

/** The signed-in session (read only), or null. */
export function currentSession() {
  return session;
}

/**
 * Exchanges a management credential's client ID and secret for an access
 * token at the issuer (client-credentials grant, HTTP Basic).
 */
export async function signIn(clientId, clientSecret, projectId) {
  const { tokenEndpoint } = await loadConfig();
  let response;
  try {
    response = await fetch(tokenEndpoint, {
      method: 'POST',
      credentials: 'omit',
      cache: 'no-store',
      headers: {
        Authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
  } catch {
    throw new ApiError(0, 'unavailable', `The token endpoint ${tokenEndpoint} cannot be reached.`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const words = response.status === 401
      ? 'The client ID or secret is wrong, or the credential is disabled.'
      : (body.error_description || body.error || `Sign-in failed (HTTP ${response.status}).`);
    throw new ApiError(response.status, body.error || 'sign_in_failed', words);
  }
  const scopes = (body.scope || '').split(' ').filter(Boolean);
  const expiresIn = Number(body.expires_in) || 3600;
  session = {
    token: body.access_token,
    clientId,
    scopes,
    admin: scopes.includes('registry:admin'),
    manager: scopes.includes('credentials:manage'),
    projectId: projectId || '',
    // The member the admin or manager acts for ({ projectId, userId }), or null.
    actingFor: null,
    user: '',
    expiresAt: Date.now() + expiresIn * 1000,
  };
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(() => signOut('Your session expired: sign in again.'), expiresIn * 1000);
  return session;
}

/** Fills in who the session acts for (found after sign-in). */
export function setSessionDetails(details) {
  if (session) Object.assign(session, details);
}

/** Forgets a half-made session (a sign-in that failed after the exchange). */
export function discardSession() {
  clearTimeout(expiryTimer);
  session = null;
}

/** Ends the session: the token is forgotten. */
export function signOut(reason = '') {
  clearTimeout(expiryTimer);
  session = null;
  for (const listener of listeners) listener(reason);
}

/**
 * Calls CredentialRegistry.`method` with `request` (proto3 JSON) and
 * returns the answer. A 401 ends the session.
 */
export async function call(method, request = {}) {
  if (!session) throw new ApiError(401, 'unauthenticated', 'Sign in first.');
  const { apiPrefix } = await loadConfig();
  const headers = {
    Authorization: `Bearer ${session.token}`,
    'Content-Type': 'application/json',
  };
  const acting = session.actingFor;
  if (acting) {
    // Another project's member is named with its project (platform admins).
    headers['x-latchkey-on-behalf-of'] = acting.projectId === session.projectId
      ? acting.userId : `${acting.projectId}/${acting.userId}`;
  }
  let response;
  try {
    response = await fetch(`${apiPrefix}${method}`, {
      method: 'POST',
      credentials: 'omit',
      cache: 'no-store',
      headers,
      body: JSON.stringify(request),
    });
  } catch {
    throw new ApiError(0, 'unavailable', 'The registry cannot be reached: check that Latchkey is running.');
  }
  const text = await response.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { message: text }; }
  if (!response.ok) {
    const message = body.message || `The registry answered HTTP ${response.status}.`;
    if (response.status === 401) {
      signOut(`Signed out: ${message}`);
    }
    throw new ApiError(response.status, body.code || 'unknown', message);
  }
  return body;
}

/** Every page of a list call, concatenated (for counts and pickers). */
export async function listAll(method, request, field, limit = 5000) {
  const items = [];
  let pageToken = '';
  do {
    const page = await call(method, { ...request, pageSize: 1000, pageToken });
    items.push(...(page[field] || []));
    pageToken = page.nextPageToken || '';
  } while (pageToken && items.length < limit);
  return items;
}
