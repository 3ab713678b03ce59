// The audit trail and token usage, of a project or of one credential.

import { call } from './api.js';
import { h, errorBox, loading, table, when, enumWord } from './dom.js';

const PAGE_SIZE = 25;

/** The audit events (newest first), with a "More" button. */
export function auditSection(filter) {
  const body = h('div', {}, loading('the audit trail'));
  const rows = [];
  const load = async (pageToken = '') => {
    try {
      const page = await call('ListAuditEvents', { ...filter, pageSize: PAGE_SIZE, pageToken });
      rows.push(...(page.events || []).map((event) => [
        when(event.time),
        enumWord(event.action, 'AUDIT_ACTION_'),
        event.onBehalfOf ? `${event.actor || '-'} for ${event.onBehalfOf}` : (event.actor || '-'),
        event.credentialId || '-',
        event.sourceIp || '-',
        h('span', { class: event.outcome === 'AUDIT_OUTCOME_FAILED' ? 'field-error' : 'ok' }, enumWord(event.outcome, 'AUDIT_OUTCOME_')),
        event.detail || '-',
      ]));
      if (rows.length === 0) {
        body.replaceChildren(h('p', { class: 'empty' }, 'No audit events yet.'));
        return;
      }
      body.replaceChildren(table('Audit events', ['Time', 'Action', 'Actor', 'Credential', 'From', 'Outcome', 'Detail'], rows));
      if (page.nextPageToken) {
        body.append(h('button', { type: 'button', onclick: () => load(page.nextPageToken) }, 'More events'));
      }
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  };
  load();
  return h('section', { 'aria-labelledby': 'audit-heading' }, h('h2', { id: 'audit-heading' }, 'Audit trail'), body);
}

/** Token usage per hour over the last 7 days. */
export function usageSection(filter) {
  const body = h('div', {}, loading('usage'));
  const end = new Date();
  const start = new Date(end.getTime() - 7 * 24 * 3600 * 1000);
  call('ListUsage', {
    ...filter,
    granularity: 'USAGE_GRANULARITY_HOUR',
    startTime: start.toISOString(),
    endTime: end.toISOString(),
    pageSize: 200,
  }).then((page) => {
    const buckets = page.buckets || [];
    if (buckets.length === 0) {
      body.replaceChildren(h('p', { class: 'empty' }, 'No tokens issued in the last 7 days.'));
      return;
    }
    const total = buckets.reduce((sum, bucket) => sum + Number(bucket.tokensIssued || 0), 0);
    body.replaceChildren(
      h('p', {}, `${total} tokens issued in the last 7 days.`),
      table('Token usage by hour', ['Hour', 'Credential', 'Issued', 'Revoked', 'From', 'Last'], buckets.map((bucket) => [
        when(bucket.startTime),
        bucket.credentialId,
        String(bucket.tokensIssued || 0),
        String(bucket.tokensRevoked || 0),
        (bucket.addresses || []).join(', ') + (bucket.moreAddresses ? ' and more' : ''),
        when(bucket.lastTime, '-'),
      ])));
  }).catch((error) => body.replaceChildren(errorBox(error)));
  return h('section', { 'aria-labelledby': 'usage-heading' }, h('h2', { id: 'usage-heading' }, 'Usage'), body);
}
