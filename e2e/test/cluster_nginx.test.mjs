// The nginx example of docs/cluster.md (docs/nginx/herald.conf), run for real: the file is rendered with
// the three nodes' ports and a spare listen port, nginx runs as a child (daemon off, pid/logs/temp in a temp
// dir), and socket.io-client connects through it (polling with upgrade, websocket only, polling only) and
// receives notifications posted through nginx's /api/v1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeraldServer, REPO, freePort, rid, sleep, eventually } from '../helpers.mjs';
import { startCluster, track, waitExit } from '../cluster.mjs';

const CONF = join(REPO, 'docs', 'nginx', 'herald.conf');
const nginxProbe = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
const NO_NGINX = nginxProbe.error ? `nginx binary not found (${nginxProbe.error.code}): install the Debian package nginx-light (scripts/setup.sh does)` : false;

/** docs/nginx/herald.conf with the upstream servers and the listen address replaced; fails if the file changed shape. */
function renderConf(ports, listenPort) {
  const src = readFileSync(CONF, 'utf8');
  const seen = { 1: 0, 2: 0, 3: 0 };
  let out = src.replace(/\b127\.0\.0\.1:800([123])\b/g, (_, i) => {
    seen[i]++;
    return `127.0.0.1:${ports[Number(i) - 1]}`;
  });
  for (const i of [1, 2, 3]) assert.equal(seen[i], 2, `${CONF}: 127.0.0.1:800${i} appears in both upstreams`);
  const listens = out.match(/^\s*listen 80;$/gm) ?? [];
  assert.equal(listens.length, 1, `${CONF}: one "listen 80;" line`);
  out = out.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${listenPort};`);
  return out;
}

describe('nginx in front of three nodes (docs/nginx/herald.conf)', { skip: NO_NGINX }, () => {
  let cl;
  let dir;
  let nginx;
  let nginxLog = '';
  let edge; // a HeraldServer handle pointed at nginx: api() and connect() go through it
  before(async () => {
    cl = await startCluster({ nodes: 3, env: { HERALD_PING_INTERVAL: '500ms', HERALD_PING_TIMEOUT: '2s' } });
    dir = mkdtempSync(join(tmpdir(), 'herald-e2e-nginx-'));
    chmodSync(dir, 0o755); // nginx's workers drop root and must reach the temp paths
    const port = await freePort();
    writeFileSync(join(dir, 'herald.conf'), renderConf(cl.nodes.map((n) => n.port), port));
    const main = join(dir, 'nginx.conf');
    writeFileSync(
      main,
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 512; }
http {
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log ${dir}/access.log upstream;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/herald.conf;
}
`,
    );
    const check = spawnSync('nginx', ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', main], { encoding: 'utf8' });
    assert.equal(check.status, 0, `nginx -t refused the rendered docs/nginx/herald.conf:\n${check.stderr}`);
    nginx = track(spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', main, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    nginx.stdout.on('data', (d) => (nginxLog += d));
    nginx.stderr.on('data', (d) => (nginxLog += d));
    edge = new HeraldServer({ port, dataDir: null, secret: cl.secret, apiKeys: cl.apiKeys, extraEnv: {} });
    await eventually(
      async () => {
        if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode}: ${nginxLog}${errorLog()}`);
        return (await fetch(`${edge.url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
      },
      10_000,
    );
  });
  after(async () => {
    edge?.closeClients();
    await waitExit(nginx, 'SIGQUIT');
    await cl?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function errorLog() {
    const f = join(dir, 'error.log');
    return existsSync(f) ? `\n--- nginx error.log ---\n${readFileSync(f, 'utf8').slice(-3000)}` : '';
  }
  function accessLog() {
    const f = join(dir, 'access.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
  }

  it('polling with upgrade, websocket only and polling only all connect through nginx and get notifications posted through it', async () => {
    const userId = rid('u');
    const tok = () => cl.token({ userId, sessionId: rid('s'), role: 'radiologist' });
    const upgraded = await edge.connect({ token: tok() });
    const wsOnly = await edge.connect({ token: tok(), transports: ['websocket'] });
    const pollOnly = await edge.connect({ token: tok(), transports: ['polling'] });
    const socks = [upgraded, wsOnly, pollOnly];
    try {
      await eventually(() => upgraded.socket.io.engine.transport.name === 'websocket', 5000).catch(() => {
        throw new Error(`the polling client was not upgraded to websocket through nginx${errorLog()}`);
      });
      assert.equal(wsOnly.socket.io.engine.transport.name, 'websocket');
      // a few ping rounds (500 ms) of long-polling, every request sticky to the node that opened the session
      await sleep(2000);
      for (const s of socks) assert.equal(s.connected, true, `${JSON.stringify(s.summary())}${errorLog()}`);
      assert.equal(pollOnly.socket.io.engine.transport.name, 'polling');

      const sessions = await edge.api('GET', `/api/v1/users/${userId}/sessions`);
      assert.equal(sessions.status, 200, sessions.text);
      assert.deepEqual(
        sessions.body.sessions.map((x) => x.transport).sort(),
        ['polling', 'websocket', 'websocket'],
        sessions.text,
      );

      const sent = [];
      for (let i = 0; i < 6; i++) {
        const r = await edge.notify(userId, { id: rid(`via-nginx-${i}`), title: `through nginx ${i}` });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 3, `notification ${i}: ${r.text}`);
        sent.push(r.body.notification.id);
      }
      for (const s of socks) {
        const got = await s.waitForN('critical_notification', sent.length, 5000);
        assert.deepEqual(got.map((n) => n.id).sort(), [...sent].sort());
      }
      for (const s of socks) assert.deepEqual(await s.none('critical_notification', 300), []);

      // the API calls were spread over the nodes, so delivery crossed nodes
      const apiUpstreams = new Set(
        accessLog()
          .filter((l) => l.startsWith('POST /api/v1/users/'))
          .map((l) => l.split(' ')[3]),
      );
      assert.ok(apiUpstreams.size >= 2, `least_conn spread the API calls: ${[...apiUpstreams].join(', ')}`);

      // an acknowledgement over the websocket-only socket is heard on the polling one
      const ack = await wsOnly.emitAck('acknowledge_notification', { notificationId: sent[0] });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal((await pollOnly.waitFor('notification_acknowledged', 5000)).notificationId, sent[0]);
    } finally {
      socks.forEach((s) => s.close());
    }
  });

  it('the event API and /readyz work through nginx', async () => {
    const role = rid('role');
    const c = await edge.connect({ token: cl.token({ userId: rid('u'), sessionId: rid('s'), role }), transports: ['websocket'] });
    try {
      const r = await edge.api('POST', `/api/v1/roles/${role}/events`, { event: 'worklist_updated', data: { n: 1 } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.deepEqual(await c.waitFor('worklist_updated'), { n: 1 });
      const ready = await fetch(`${edge.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal((await ready.json()).redis, 'ok');
    } finally {
      c.close();
    }
  });
});
