// The TypeScript declaration of Herald's events (clients/typescript/herald-events.d.ts) cannot drift
// from the server: every event name the server knows (src/protocol.rs: its name constants and the
// reserved list) is declared, and every declared name is one the server knows. And the example client
// type-checks against it with the pinned socket.io-client (`tsc --noEmit`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const declarationFile = path.join(root, 'clients/typescript/herald-events.d.ts');

// Socket.IO's own names: socket.io-client types these itself (`connect`, `connect_error`,
// `disconnect`), and a server never emits the rest.
const SOCKET_IO_OWN = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);
// Constants of src/protocol.rs that are not event names: the `event` an `error` names when the
// socket's token expired.
const NOT_EVENTS = new Set(['TOKEN_EXPIRY_EVENT']);
// Events the contract defines whose server side lands on another branch (calls, issue 23 item 5):
// declared ahead. The test fails once the server knows one, so this list empties as they land.
const DECLARED_AHEAD = new Set([]);

/** The event names src/protocol.rs knows: each `&str` constant and each literal of the reserved list. */
function serverNames() {
  const src = readFileSync(path.join(root, 'src/protocol.rs'), 'utf8').replace(/#\[cfg\(test\)\][\s\S]*$/, '');
  const constants = new Map();
  for (const m of src.matchAll(/pub const ([A-Z_]+): &str = "([^"]+)";/g)) constants.set(m[1], m[2]);
  const reserved = src.match(/pub const RESERVED_EVENTS: \[&str; \d+\] = \[([\s\S]*?)\];/);
  assert.ok(reserved, 'src/protocol.rs has RESERVED_EVENTS');
  const names = new Set();
  for (const [constant, name] of constants) if (!NOT_EVENTS.has(constant)) names.add(name);
  for (const item of reserved[1].split(',').map((s) => s.trim()).filter(Boolean)) {
    const literal = item.match(/^"([^"]+)"$/);
    if (literal) names.add(literal[1]);
    else {
      assert.ok(constants.has(item), `RESERVED_EVENTS names ${item}, a constant of src/protocol.rs`);
      names.add(constants.get(item));
    }
  }
  for (const own of SOCKET_IO_OWN) names.delete(own);
  assert.ok(names.size > 15, `read ${names.size} names from src/protocol.rs`);
  return names;
}

/** The member names of `interface <name> { ... }` in the declaration. */
function declared(text, name) {
  const body = text.match(new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`));
  assert.ok(body, `the declaration has ${name}`);
  const code = body[1].replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return new Set([...code.matchAll(/^\s{2}([a-z_][a-z0-9_]*)\s*:/gim)].map((m) => m[1]));
}

test('typescript: every event the server knows is declared, and only those', () => {
  const server = serverNames();
  const text = readFileSync(declarationFile, 'utf8');
  const toClient = declared(text, 'ServerToClientEvents');
  const toServer = declared(text, 'ClientToServerEvents');
  const all = new Set([...toClient, ...toServer]);
  const missing = [...server].filter((n) => !all.has(n));
  assert.deepEqual(missing, [], 'names src/protocol.rs knows that clients/typescript/herald-events.d.ts does not declare');
  const unknown = [...all].filter((n) => !server.has(n) && !DECLARED_AHEAD.has(n));
  assert.deepEqual(unknown, [], 'declared names src/protocol.rs does not know');
  const landed = [...DECLARED_AHEAD].filter((n) => server.has(n));
  assert.deepEqual(landed, [], 'the server knows these now: take them out of DECLARED_AHEAD in this test');
  // Both directions are where the contract puts them.
  for (const n of ['connected', 'critical_notification', 'room_presence', 'typing', 'error']) assert.ok(toClient.has(n), n);
  for (const n of ['activity', 'acknowledge_notification', 'join_room', 'typing']) assert.ok(toServer.has(n), n);
});

test('typescript: the example client type-checks against the declaration (tsc --noEmit)', () => {
  const tsc = path.join(root, 'e2e/node_modules/typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(root, 'clients/typescript')], { encoding: 'utf8' });
  assert.equal(run.status, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
});
