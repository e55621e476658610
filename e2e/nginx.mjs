// nginx in front of a cluster, as docs/cluster.md deploys it: docs/nginx/herald.conf rendered with the nodes'
// ports and a spare listen port, run as a child (daemon off, pid/logs/temp in a temp dir). Used by the nginx
// test, the failover tests and the failover benchmark, so that clients reconnect through the same balancer a
// deployment has.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeraldServer, REPO, eventually, freePort } from './helpers.mjs';
import { track, waitExit } from './cluster.mjs';

const CONF = join(REPO, 'docs', 'nginx', 'herald.conf');
const probe = spawnSync('nginx', ['-v'], { encoding: 'utf8' });

/** Why nginx cannot run here (a skip reason), or false. */
export const NO_NGINX = probe.error
  ? `nginx binary not found (${probe.error.code}): install the Debian package nginx-light (scripts/setup.sh does)`
  : false;

/** docs/nginx/herald.conf with the upstream servers and the listen address replaced; fails if the file changed shape. */
export function renderConf(ports, listenPort) {
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

/**
 * Start nginx in front of the cluster's three nodes. Returns { edge, dir, proc, accessLog(), errorLog(), stop() }:
 * `edge` is a HeraldServer handle pointed at nginx (api(), connect() go through it).
 * `workerConnections` bounds the connections each of `workerProcesses` holds (a proxied socket is two: client
 * and upstream).
 */
export async function startNginx(cl, { workerConnections = 512, workerProcesses = 1 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-nginx-'));
  chmodSync(dir, 0o755); // nginx's workers drop root and must reach the temp paths
  const port = await freePort();
  writeFileSync(join(dir, 'herald.conf'), renderConf(cl.nodes.map((n) => n.port), port));
  const main = join(dir, 'nginx.conf');
  writeFileSync(
    main,
    `worker_processes ${workerProcesses};
worker_rlimit_nofile ${workerConnections * 2 + 64};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections ${workerConnections}; }
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
  const errorLog = (tail = 3000) => {
    const f = join(dir, 'error.log');
    return existsSync(f) ? `\n--- nginx error.log ---\n${readFileSync(f, 'utf8').slice(-tail)}` : '';
  };
  const accessLog = () => {
    const f = join(dir, 'access.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
  };
  const check = spawnSync('nginx', ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', main], { encoding: 'utf8' });
  assert.equal(check.status, 0, `nginx -t refused the rendered docs/nginx/herald.conf:\n${check.stderr}`);
  let output = '';
  const proc = track(spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', main, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const edge = new HeraldServer({ port, dataDir: null, secret: cl.secret, apiKeys: cl.apiKeys, extraEnv: {} });
  const stop = async () => {
    edge.closeClients();
    await waitExit(proc, 'SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}: ${output}${errorLog()}`);
      return (await fetch(`${edge.url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
    }, 10_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { edge, dir, proc, accessLog, errorLog, stop };
}
