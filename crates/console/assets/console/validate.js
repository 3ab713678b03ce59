// Checks done as the user types, mirroring the registry's rules so a
// mistake is named before anything is sent (the registry checks again).

function ipv4(text) {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  return parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part) && Number(part) <= 255);
}

function ipv6(text) {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (half) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const all = [...head, ...tail];
  let count = 0;
  for (const [index, group] of all.entries()) {
    const last = index === all.length - 1;
    if (last && group.includes('.')) {
      if (!ipv4(group)) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(group)) {
      count += 1;
    } else {
      return false;
    }
  }
  return halves.length === 2 ? count < 8 : count === 8;
}

/**
 * Why `entry` is not an IP address or CIDR block, or '' when it is one.
 */
export function addressProblem(entry) {
  const [address, prefix, extra] = entry.split('/');
  if (extra !== undefined) return `"${entry}" has more than one "/"`;
  const v4 = ipv4(address);
  const v6 = !v4 && ipv6(address);
  if (!v4 && !v6) return `"${address}" is not an IPv4 or IPv6 address`;
  if (prefix === undefined) return '';
  const max = v4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > max) {
    return `"${entry}": the prefix length after "/" must be 0 to ${max}`;
  }
  return '';
}

/** Splits a list typed with commas, spaces or new lines. */
export function splitList(text) {
  return text.split(/[\s,]+/).map((entry) => entry.trim()).filter(Boolean);
}

/** The first problem of an allowed-IPs list, or ''. At most 64 entries. */
export function addressListProblem(text) {
  const entries = splitList(text);
  if (entries.length > 64) return 'At most 64 addresses or CIDR blocks';
  for (const entry of entries) {
    const problem = addressProblem(entry);
    if (problem) return `${problem} (write e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)`;
  }
  return '';
}

/** Why `name` cannot be a credential's name, or '' (empty means generated). */
export function nameProblem(name, required = false) {
  if (name === '') return required ? 'A name is required' : '';
  if (name.length > 64) return 'At most 64 characters';
  if (!/^[A-Za-z0-9]([A-Za-z0-9 ._-]*[A-Za-z0-9])?$/.test(name)) {
    return 'Letters, digits, spaces and . _ - only, starting and ending with a letter or digit';
  }
  return '';
}

/** The first API (scope) that breaks the registry's rules, or ''. */
export function apiListProblem(apis) {
  if (apis.length > 64) return 'At most 64 APIs';
  for (const api of apis) {
    if (!/^[A-Za-z][A-Za-z0-9._:/-]{0,127}$/.test(api)) {
      return `"${api}" is not an API name: 1 to 128 letters, digits and . _ : / - starting with a letter`;
    }
  }
  return '';
}

/** Why `id` cannot be a project ID, or ''. */
export function projectIdProblem(id) {
  if (!/^[a-z][a-z0-9-]{2,62}$/.test(id)) {
    return '3 to 63 lowercase letters, digits and hyphens, starting with a letter';
  }
  return '';
}

/** Why `user` cannot be a user ID (an owner), or ''. */
export function userProblem(user) {
  if (!/^[A-Za-z0-9._@:+-]{1,128}$/.test(user)) {
    return '1 to 128 letters, digits and . _ @ : + -';
  }
  return '';
}
