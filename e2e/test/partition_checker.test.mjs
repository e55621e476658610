// The partition test's checker can fail: a clean history passes, and each planted violation (a delivery after the
// socket's acknowledgement, a lost acknowledgement, a missed 202, a step fired twice, an expiry heard twice, an event
// on another user's socket, a 202 without a created record, a broken chain) is named by its invariant.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check } from '../partition/checker.mjs';

/** A small clean history: two users, one notification each, one acknowledged, the trail read back. */
function clean() {
  return [
    { at: 1, type: 'config', escalationRole: 'attending', escalationUsers: ['chief'] },
    { at: 2, type: 'open', sock: 's1', userId: 'u1', sessionId: 'a', role: 'radiologist', node: 0 },
    { at: 3, type: 'open', sock: 's2', userId: 'u2', sessionId: 'b', role: 'radiologist', node: 1 },
    { at: 4, type: 'open', sock: 's3', userId: 'm1', sessionId: 'c', role: 'attending', node: 2 },
    { at: 10, type: 'notify', node: 0, userId: 'u1', id: 'n1', severity: 'critical', status: 202 },
    { at: 11, type: 'notify', node: 1, userId: 'u2', id: 'n2', severity: 'routine', status: 202 },
    { at: 12, type: 'notify', node: 2, userId: 'u2', id: 'n3', severity: 'routine', status: 0 },
    { at: 13, type: 'recv', sock: 's1', event: 'critical_notification', id: 'n1' },
    { at: 14, type: 'recv', sock: 's2', event: 'critical_notification', id: 'n2' },
    { at: 15, type: 'recv', sock: 's1', event: 'critical_notification', id: 'n1', reminder: 1 },
    { at: 16, type: 'recv', sock: 's3', event: 'critical_notification', id: 'n1', level: 2 },
    { at: 17, type: 'ack', sock: 's1', userId: 'u1', id: 'n1' },
    { at: 18, type: 'ack_answer', sock: 's1', userId: 'u1', id: 'n1', ok: true },
    { at: 19, type: 'recv', sock: 's3', event: 'notification_closed', id: 'n1', closedBy: 'u1' },
    { at: 20, type: 'user_event', node: 0, userId: 'u2', tag: 't1', status: 202 },
    { at: 21, type: 'recv', sock: 's2', event: 'partition_ping', tag: 't1' },
    { at: 22, type: 'recv', sock: 's2', event: 'session_expired', sessionId: 'b' },
    { at: 23, type: 'webhook', id: 'n1', level: 3, status: 500, delivery: 'n1:3' },
    { at: 24, type: 'webhook', id: 'n1', level: 3, status: 200, delivery: 'n1:3' },
    { at: 30, type: 'store', userId: 'u1', id: 'n1', state: 'acknowledged' },
    { at: 31, type: 'timeline', id: 'n1', events: [{ type: 'created' }, { type: 'reminded', level: 1 }, { type: 'escalated', level: 2 }] },
    { at: 32, type: 'audit', created: ['n1', 'n2'], verify: { code: 0, out: 'audit trail intact' } },
  ];
}

/** The invariants `ops` breaks, sorted. */
const broken = (ops) => [...new Set(check(ops).violations.map((v) => v.invariant))].sort();

describe('partition checker', () => {
  it('passes a clean history and counts what it checked', () => {
    const { violations, checked } = check(clean());
    assert.deepEqual(violations, []);
    assert.equal(checked.delivered, 2);
    assert.equal(checked.ack_durable, 1);
    assert.equal(checked.none_after_ack, 2);
    assert.ok(checked.step_once >= 4);
  });

  it('catches a notification delivered to a socket after it acknowledged it', () => {
    const ops = [...clean(), { at: 25, type: 'recv', sock: 's1', event: 'critical_notification', id: 'n1', redelivered: true }];
    assert.deepEqual(broken(ops), ['none_after_ack', 'once_per_socket']);
    const v = check(ops).violations.find((x) => x.invariant === 'none_after_ack');
    assert.match(v.message, /socket s1 got n1 7ms after its acknowledgement/);
  });

  it('catches the reminder that a short run saw 39 ms after the acknowledgement was answered ok', () => {
    // The history's shape, from the short form on the debug build (docs/reliability.md, "The partition test"): the
    // escalation engine had committed the reminder step just before the acknowledgement closed the notification,
    // and told the sockets after the acknowledgement had been answered.
    const ops = [
      { at: 1, type: 'config', escalationRole: 'attending', escalationUsers: [] },
      { at: 2, type: 'open', sock: 's', userId: 'rad-fast-2', sessionId: 'a', role: 'radiologist', node: 'node-b' },
      { at: 55182, type: 'notify', node: 'node-c', userId: 'rad-fast-2', id: 'pn-4d60488850', severity: 'critical', status: 202 },
      { at: 55610, type: 'recv', sock: 's', event: 'critical_notification', id: 'pn-4d60488850', redelivered: true },
      { at: 55726, type: 'ack', sock: 's', userId: 'rad-fast-2', id: 'pn-4d60488850' },
      { at: 56003, type: 'recv', sock: 's', event: 'notification_acknowledged', id: 'pn-4d60488850' },
      { at: 56003, type: 'recv', sock: 's', event: 'notification_closed', id: 'pn-4d60488850', closedBy: 'rad-fast-2' },
      { at: 56003, type: 'ack_answer', sock: 's', userId: 'rad-fast-2', id: 'pn-4d60488850', ok: true },
      { at: 56042, type: 'recv', sock: 's', event: 'critical_notification', id: 'pn-4d60488850', reminder: 1 },
      { at: 80523, type: 'store', userId: 'rad-fast-2', id: 'pn-4d60488850', state: 'acknowledged' },
      {
        at: 81843,
        type: 'timeline',
        id: 'pn-4d60488850',
        events: [{ type: 'created' }, { type: 'redelivered' }, { type: 'acknowledged' }, { type: 'closed' }, { type: 'reminded', level: 1 }],
      },
      { at: 82000, type: 'audit', created: ['pn-4d60488850'], verify: { code: 0, out: 'audit trail intact' } },
    ];
    assert.deepEqual(broken(ops), ['none_after_ack']);
    assert.match(check(ops).violations[0].message, /got pn-4d60488850 39ms after its acknowledgement/);
  });

  it('catches an acknowledgement answered ok that the store lost', () => {
    const ops = clean().map((o) => (o.type === 'store' ? { ...o, state: 'delivered' } : o));
    assert.deepEqual(broken(ops), ['ack_durable']);
  });

  it('catches a 202 that never reached its recipient, and one without a created record', () => {
    const ops = clean().filter((o) => !(o.type === 'recv' && o.id === 'n2'));
    assert.deepEqual(broken(ops), ['delivered']);
    const noRecord = clean().map((o) => (o.type === 'audit' ? { ...o, created: ['n1'] } : o));
    assert.deepEqual(broken(noRecord), ['audit']);
  });

  it('catches an escalation step fired twice: in the trail, on a socket, at the webhook', () => {
    const trail = clean().map((o) => (o.type === 'timeline' ? { ...o, events: [...o.events, { type: 'reminded', level: 1 }] } : o));
    assert.deepEqual(broken(trail), ['step_once']);
    const socket = [...clean(), { at: 16, type: 'recv', sock: 's3', event: 'critical_notification', id: 'n1', level: 2 }];
    assert.deepEqual(broken(socket), ['step_once']);
    const hook = [...clean(), { at: 26, type: 'webhook', id: 'n1', level: 3, status: 204, delivery: 'n1:3b' }];
    assert.deepEqual(broken(hook), ['step_once']);
    const unnamed = [...clean(), { at: 26, type: 'webhook', id: 'n1', level: 3, status: 204 }];
    assert.deepEqual(broken(unnamed), ['step_once']);
  });

  it('takes a re-post of the same webhook delivery as the one step a receiver deduplicates', () => {
    const repost = [...clean(), { at: 26, type: 'webhook', id: 'n1', level: 3, status: 200, delivery: 'n1:3', repeat: true }];
    assert.deepEqual(broken(repost), []);
  });

  it('catches a session expiry heard twice', () => {
    const ops = [...clean(), { at: 23, type: 'recv', sock: 's2', event: 'session_expired', sessionId: 'b' }];
    assert.deepEqual(broken(ops), ['expiry_once']);
  });

  it("catches an event on another user's socket", () => {
    const note = [...clean(), { at: 26, type: 'recv', sock: 's2', event: 'critical_notification', id: 'n1' }];
    assert.deepEqual(broken(note), ['no_cross_user']);
    const ping = [...clean(), { at: 26, type: 'recv', sock: 's1', event: 'partition_ping', tag: 't1' }];
    assert.deepEqual(broken(ping), ['no_cross_user']);
    const session = [...clean(), { at: 26, type: 'recv', sock: 's1', event: 'session_timeout_warning', sessionId: 'b' }];
    assert.deepEqual(broken(session), ['no_cross_user']);
  });

  it('catches a broken audit chain and a trail never read', () => {
    const ops = clean().map((o) => (o.type === 'audit' ? { ...o, verify: { code: 1, out: 'record 7 altered' } } : o));
    assert.deepEqual(broken(ops), ['audit']);
    assert.deepEqual(broken(clean().filter((o) => o.type !== 'audit')), ['audit']);
  });
});
