// The partition test's history: every operation of the run, in the order it happened, with its time and result,
// as JSON lines. The checker reads nothing else, so a history file from a failed run can be checked again (and
// kept as a regression case) without the run.
import { appendFileSync, readFileSync } from 'node:fs';

/**
 * Operations (`type`), each with `at` (ms since the epoch) and:
 *   config      { escalationRole, escalationUsers, faults }   who escalation makes a recipient (for the checker)
 *   notify      { node, userId, id, severity, status }        an API call and its answer (0: no answer)
 *   user_event  { node, userId, tag, status }                  POST /users/{id}/events
 *   open        { sock, userId, sessionId, role, node }        a socket opened (its client-side key `sock`)
 *   recv        { sock, event, id?, sessionId?, tag?, redelivered?, reminder?, level?, closedBy?, to? }
 *   ack         { sock, userId, id }                           acknowledge_notification emitted
 *   ack_answer  { sock, userId, id, ok, error? }               its answer (ok false: refused or no answer)
 *   close       { sock, reason }                               the socket went away
 *   webhook     { id, level, status, delivery, repeat }         a POST the receiver took (status it answered, its
 *                                                               X-Herald-Delivery, and whether it repeats a taken one)
 *   fault       { fault, phase: 'start' | 'end', detail? }     the nemesis
 *   store       { userId, id, state }                          the final read of an acknowledged recipient
 *   timeline    { id, events: [{ type, level? }] }             the final read of a notification's timeline
 *   audit       { created: [ids], verify: { code, out } }      the final read of the audit trail
 */
export class History {
  constructor(file = null) {
    this.file = file;
    this.ops = [];
  }

  /** Append one operation, timestamped now unless `at` is given. */
  add(type, fields = {}) {
    const op = { at: Date.now(), type, ...fields };
    this.ops.push(op);
    if (this.file) appendFileSync(this.file, JSON.stringify(op) + '\n');
    return op;
  }

  /** How many operations of each type. */
  counts() {
    const c = {};
    for (const op of this.ops) c[op.type] = (c[op.type] ?? 0) + 1;
    return c;
  }
}

/** The operations of a history file. */
export function readHistory(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
