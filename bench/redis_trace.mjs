// What Redis does for one connect, one notification (sent to node-a, delivered to a socket on node-b and
// acknowledged there), a second socket of the user, one disconnect and one reconnect on a two-node cluster: every command Redis ran in each step,
// read with MONITOR (commands run by scripts included, as INFO commandstats counts them), less the
// background that runs whatever the clients do (each node's heartbeat and reap, its claims of due
// session deadlines and offline changes, its look at the next deadline: ~8 commands a second a node),
// told apart by the keys it names. Needs HERALD_BIN (a built herald), redis-server and PostgreSQL, as the e2e cluster tests.
//
//   HERALD_BIN=$CARGO_TARGET_DIR/release/herald node bench/redis_trace.mjs [--verbose]
import net from 'node:net';
import { startCluster } from '../e2e/cluster.mjs';
import { rid, sleep } from '../e2e/helpers.mjs';

const verbose = process.argv.includes('--verbose');

/** A MONITOR connection: the commands Redis ran since `mark()`, as [name, line]. */
function monitor(port) {
  const lines = [];
  let buf = '';
  const sock = net.connect(port, '127.0.0.1', () => sock.write('MONITOR\r\n'));
  sock.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const m = line.match(/^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/);
      if (m && !/^(monitor|info)$/i.test(m[2])) lines.push([m[2].toLowerCase(), line, m[1]]);
    }
  });
  return {
    take() {
      return lines.splice(0);
    },
    close() {
      sock.destroy();
    },
  };
}

function tally(cmds) {
  const by = {};
  for (const [name] of cmds) by[name] = (by[name] ?? 0) + 1;
  return by;
}

/** The polling every node does on its own, by the keys it names (see the head of this file). */
const BACKGROUND = [
  /"herald:clock-leased"/,
  /"herald:presence-leased"/,
  /"herald:nodes"/,
  /"ZRANGEBYSCORE" "herald:(clock|presence)-due" "-inf"/,
  /"ZRANGE" "herald:clock-due" "0" "0"/,
];

/** `step`'s commands, less the background. */
async function measure(mon, name, step) {
  await sleep(300);
  mon.take();
  await step();
  await sleep(300);
  const all = mon.take();
  const cmds = all.filter(([, line]) => !BACKGROUND.some((re) => re.test(line)));
  const by = tally(cmds);
  console.log(`${name}: ${cmds.length} commands ${JSON.stringify(by)} (background left out: ${all.length - cmds.length})`);
  if (verbose) for (const [, line] of cmds) console.log(`    ${line.slice(0, 300)}`);
  return cmds.length;
}

const cl = await startCluster({ nodes: 2, env: { HERALD_PRESENCE_AUDIENCE: 'none' } });
const mon = monitor(cl.redis.port);
try {
  const [a, b] = cl.nodes;
  const userId = rid('u');
  const token = cl.token({ userId, sessionId: rid('s'), role: 'radiologist' });
  let c;
  await measure(mon, 'connect (new session, first socket) on node-b', async () => {
    c = b.open({ token, transports: ['websocket'] });
    await c.waitFor('connected');
  });
  for (let i = 0; i < 2; i++) {
    await measure(mon, `notification ${i + 1} to node-a, delivered on node-b, acknowledged there`, async () => {
      const r = await a.notify(userId, { id: rid('n'), title: 'trace' });
      if (r.status !== 202 || r.body.deliveredTo !== 1) throw new Error(`notify: ${r.status} ${r.text}`);
      const n = await c.waitFor('critical_notification');
      await c.emitAck('acknowledge_notification', { notificationId: n.id });
      await c.waitFor('notification_acknowledged');
    });
  }
  let tab;
  await measure(mon, "the user's second socket (another tab, new session) on node-a", async () => {
    tab = a.open({ token: cl.token({ userId, sessionId: rid('s'), role: 'radiologist' }), transports: ['websocket'] });
    await tab.waitFor('connected');
  });
  tab.close();
  await sleep(300);
  await measure(mon, 'disconnect on node-b', async () => {
    c.close();
  });
  let again;
  await measure(mon, 'reconnect (known session) on node-b', async () => {
    again = b.open({ token, transports: ['websocket'] });
    await again.waitFor('connected');
  });
  again.close();
} finally {
  mon.close();
  await cl.stop();
}
