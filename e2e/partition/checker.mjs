// The partition test's checker: reads a history (history.mjs) after the run and proves the issue's invariants, or
// names each operation that breaks one. Pure: no server, no clock, so a planted history shows it can fail.
//
// Invariants (each counted in `checked` with how many cases it covered):
//   delivered            every notification answered 202 reached a socket of its recipient (live or caught up)
//   ack_durable          every acknowledgement answered ok is acknowledged in the store afterwards
//   expiry_once          no socket heard its session expire twice
//   step_once            no escalation step fired twice: one timeline record per (step type, level), one copy of
//                        each reminder or escalation per socket, one delivery (X-Herald-Delivery) taken per
//                        (notification, level): a receiver deduplicates a re-post of the same delivery (the contract's
//                        at-least-once webhook with its idempotency key), so only a second delivery id is a step
//                        fired twice
//   once_per_socket      no socket got the same notification (same reminder, same escalation level) twice
//   none_after_ack       no notification reached a socket after that socket's acknowledgement of it was answered ok
//   no_cross_user        no event reached a socket of a user it was not for
//   audit                `herald audit verify` exit 0, and a `created` record for every 202

/** Event names that carry a notification id in `id` (the notification) or `notificationId`. */
const ABOUT_NOTIFICATION = ['critical_notification', 'notification_acknowledged', 'notification_closed', 'notification_escalated'];
const SESSION_EVENTS = ['session_timeout_warning', 'session_expired', 'session_extended'];
/** Timeline types that are escalation steps: each fires once per level. */
const STEP_TYPES = ['reminded', 'escalated', 'webhook_sent'];

export function check(ops) {
  const violations = [];
  const checked = {};
  const count = (name, n = 1) => (checked[name] = (checked[name] ?? 0) + n);
  const fail = (invariant, message, evidence) => violations.push({ invariant, message, evidence });

  const config = ops.find((o) => o.type === 'config') ?? {};
  const escalationUsers = new Set(config.escalationUsers ?? []);
  const socks = new Map();
  const notified = new Map(); // id -> userId, for every attempt (an unanswered call may still have been stored)
  const accepted = [];
  const eventTag = new Map(); // user event tag -> userId
  const ackOk = new Map(); // sock \0 id -> the answer op
  const recvBySock = new Map();
  const stored = new Map(); // userId \0 id -> store op
  const timelines = [];
  const webhooks = [];
  let audit = null;
  for (const op of ops) {
    switch (op.type) {
      case 'open':
        socks.set(op.sock, op);
        recvBySock.set(op.sock, []);
        break;
      case 'notify':
        notified.set(op.id, op.userId);
        if (op.status === 202) accepted.push(op);
        break;
      case 'user_event':
        eventTag.set(op.tag, op.userId);
        break;
      case 'recv':
        if (!recvBySock.has(op.sock)) recvBySock.set(op.sock, []);
        recvBySock.get(op.sock).push(op);
        break;
      case 'ack_answer':
        if (op.ok) ackOk.set(`${op.sock}\0${op.id}`, op);
        break;
      case 'store':
        stored.set(`${op.userId}\0${op.id}`, op);
        break;
      case 'timeline':
        timelines.push(op);
        break;
      case 'webhook':
        webhooks.push(op);
        break;
      case 'audit':
        audit = op;
        break;
      default:
    }
  }
  const userOf = (sock) => socks.get(sock)?.userId;

  // delivered
  const reached = new Set();
  for (const [sock, recvs] of recvBySock) {
    for (const r of recvs) if (r.event === 'critical_notification') reached.add(`${userOf(sock)}\0${r.id}`);
  }
  for (const op of accepted) {
    count('delivered');
    if (!reached.has(`${op.userId}\0${op.id}`)) fail('delivered', `${op.id} answered 202 never reached ${op.userId}`, [op]);
  }

  // ack_durable
  for (const op of ackOk.values()) {
    count('ack_durable');
    const s = stored.get(`${op.userId}\0${op.id}`);
    if (!s) fail('ack_durable', `acknowledgement of ${op.id} by ${op.userId} answered ok was never read back`, [op]);
    else if (s.state !== 'acknowledged') fail('ack_durable', `acknowledgement of ${op.id} by ${op.userId} answered ok is lost: the store says ${s.state}`, [op, s]);
  }

  for (const [sock, recvs] of recvBySock) {
    const open = socks.get(sock);
    const user = open?.userId;
    // expiry_once
    const expiries = recvs.filter((r) => r.event === 'session_expired');
    if (expiries.length) count('expiry_once');
    if (expiries.length > 1) fail('expiry_once', `socket ${sock} heard its session expire ${expiries.length} times`, expiries);

    // once_per_socket and step_once (client side)
    const copies = new Map();
    for (const r of recvs.filter((x) => x.event === 'critical_notification')) {
      const key = `${r.id}\0${r.reminder ?? 0}\0${r.level ?? 0}`;
      copies.set(key, [...(copies.get(key) ?? []), r]);
    }
    for (const list of copies.values()) {
      const step = list[0].reminder || list[0].level;
      count(step ? 'step_once' : 'once_per_socket');
      if (list.length > 1) {
        fail(
          step ? 'step_once' : 'once_per_socket',
          `socket ${sock} got ${list[0].id}${list[0].reminder ? ` reminder ${list[0].reminder}` : ''}${list[0].level ? ` escalation level ${list[0].level}` : ''} ${list.length} times`,
          list,
        );
      }
    }

    // none_after_ack
    for (const r of recvs) {
      if (r.event !== 'critical_notification') continue;
      const ack = ackOk.get(`${sock}\0${r.id}`);
      if (ack) count('none_after_ack');
      if (ack && r.at > ack.at) fail('none_after_ack', `socket ${sock} got ${r.id} ${r.at - ack.at}ms after its acknowledgement was answered ok`, [ack, r]);
    }

    // no_cross_user
    for (const r of recvs) {
      count('no_cross_user');
      let wrong = null;
      if (ABOUT_NOTIFICATION.includes(r.event)) {
        const owner = notified.get(r.id);
        const escalatedHere = open && (open.role === config.escalationRole || escalationUsers.has(user));
        if (owner !== user && !escalatedHere) wrong = `${r.event} of ${r.id} (for ${owner ?? 'no known user'})`;
      } else if (SESSION_EVENTS.includes(r.event)) {
        if (r.sessionId !== open?.sessionId) wrong = `${r.event} of session ${r.sessionId}`;
      } else if (r.tag !== undefined) {
        if (eventTag.get(r.tag) !== user) wrong = `${r.event} ${r.tag} (for ${eventTag.get(r.tag) ?? 'no known user'})`;
      }
      if (wrong) fail('no_cross_user', `socket ${sock} of ${user} got ${wrong}`, [open, r]);
    }
  }

  // step_once (server side): the trail's step records and the webhook receiver's 2xx answers
  for (const t of timelines) {
    const seen = new Map();
    for (const e of t.events) {
      if (!STEP_TYPES.includes(e.type)) continue;
      const key = `${e.type} level ${e.level}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    for (const [key, n] of seen) {
      count('step_once');
      if (n > 1) fail('step_once', `${t.id}: ${key} recorded ${n} times`, [t]);
    }
  }
  const taken = new Map();
  for (const w of webhooks.filter((x) => x.status >= 200 && x.status < 300)) {
    const key = `${w.id}\0${w.level}`;
    taken.set(key, [...(taken.get(key) ?? []), w]);
  }
  for (const list of taken.values()) {
    count('step_once');
    const deliveries = new Set(list.map((w) => w.delivery));
    if (deliveries.size > 1 || list.some((w) => !w.delivery)) {
      fail('step_once', `webhook of ${list[0].id} level ${list[0].level} taken as ${deliveries.size} deliveries`, list);
    }
  }

  // audit
  if (!audit) fail('audit', 'the audit trail was never read', []);
  else {
    count('audit');
    if (audit.verify?.code !== 0) fail('audit', `herald audit verify exited ${audit.verify?.code}: ${audit.verify?.out}`, [audit.verify]);
    const created = new Set(audit.created);
    for (const op of accepted) {
      count('audit');
      if (!created.has(op.id)) fail('audit', `no created record for ${op.id}, answered 202`, [op]);
    }
  }
  return { violations, checked };
}
