// The partition test's nemesis: the faults an operator's bad day brings, each with a start and an end, run one at
// a time and overlapping, each start and end in the history.
import { waitExit } from '../cluster.mjs';
import { sleep } from '../helpers.mjs';

/**
 * Each fault: `node` true when it targets one Herald node (chosen by the schedule), `shared` the back end it takes
 * down for every node (two faults on the same one never overlap).
 *   cut-redis, cut-pg, cut-clients  one node's link to Redis, to PostgreSQL or to its clients (and the API) down
 *   redis-restart-empty             redis-server killed, started again with no data
 *   pg-restart                      PostgreSQL stopped as by a power loss (-m immediate), started again
 *   kill-node                       kill -9 of a node, started again on its port, data dir and node id, as a
 *                                   supervisor does: again and again while it refuses to start (a node exits at
 *                                   start when PostgreSQL does not answer, as during pg-restart)
 *   pause-node                      SIGSTOP past the escalation lease, then SIGCONT: the paused node wakes up
 *                                   believing it still holds the steps it claimed while another node took them
 */
export const FAULTS = {
  'cut-redis': { node: true, start: (ctx, i) => ctx.net.cut(`n${i}-redis`), end: (ctx, i) => ctx.net.heal(`n${i}-redis`) },
  'cut-pg': { node: true, start: (ctx, i) => ctx.net.cut(`n${i}-pg`), end: (ctx, i) => ctx.net.heal(`n${i}-pg`) },
  'cut-clients': { node: true, start: (ctx, i) => ctx.net.cut(`n${i}-clients`), end: (ctx, i) => ctx.net.heal(`n${i}-clients`) },
  'redis-restart-empty': { shared: 'redis', start: (ctx) => ctx.redis.stop('SIGKILL'), end: (ctx) => ctx.redis.start() },
  'pg-restart': { shared: 'pg', start: (ctx) => ctx.pg.stop('immediate'), end: (ctx) => ctx.pg.start() },
  'kill-node': {
    node: true,
    start: (ctx, i) => waitExit(ctx.cluster.nodes[i].proc, 'SIGKILL'),
    end: (ctx, i) => supervise(ctx.cluster.nodes[i]),
  },
  'pause-node': {
    node: true,
    start: (ctx, i) => ctx.cluster.nodes[i].proc.kill('SIGSTOP'),
    end: (ctx, i) => ctx.cluster.nodes[i].proc.kill('SIGCONT'),
  },
};

/** Run fault `name` (on node `i` when it targets one) for `holdMs`, recording its start and end. */
export async function inject(ctx, name, i, holdMs) {
  const f = FAULTS[name];
  const detail = f.node ? { node: ctx.cluster.nodes[i].nodeId } : {};
  ctx.history.add('fault', { fault: name, phase: 'start', ...detail });
  await f.start(ctx, i);
  await sleep(holdMs);
  try {
    await f.end(ctx, i);
    ctx.history.add('fault', { fault: name, phase: 'end', ...detail });
  } catch (e) {
    ctx.history.add('fault', { fault: name, phase: 'end', ...detail, error: e.message.slice(0, 500) });
    throw e;
  }
}

/**
 * The short schedule: every fault once on its own (rotating over the nodes), then overlapping pairs on different
 * nodes and back ends. Resolves with how many faults were injected.
 */
export async function shortSchedule(ctx, { holdMs = 3500, gapMs = 1500 } = {}) {
  let injected = 0;
  const names = Object.keys(FAULTS);
  for (let k = 0; k < names.length; k++) {
    await inject(ctx, names[k], k % ctx.cluster.nodes.length, hold(ctx, names[k], holdMs));
    injected++;
    await sleep(gapMs);
  }
  const pairs = [
    [['cut-redis', 0], ['kill-node', 1]],
    [['pg-restart', 0], ['cut-clients', 2]],
    [['pause-node', 0], ['redis-restart-empty', 0]],
    [['cut-pg', 1], ['pause-node', 2]],
  ];
  for (const pair of pairs) {
    await Promise.all(pair.map(([name, i]) => inject(ctx, name, i, hold(ctx, name, holdMs))));
    injected += pair.length;
    await sleep(gapMs);
  }
  return injected;
}

/**
 * The long schedule: until `untilMs` (epoch ms), one or two random faults at a time on different nodes and back
 * ends, each held 1 to 6 s. Resolves with how many faults were injected.
 */
export async function randomSchedule(ctx, { untilMs, gapMs = 1500 }) {
  let injected = 0;
  const names = Object.keys(FAULTS);
  while (Date.now() < untilMs) {
    const picks = [];
    const width = Math.random() < 0.5 ? 1 : 2;
    const usedNodes = new Set();
    const usedShared = new Set();
    while (picks.length < width) {
      const name = names[Math.floor(Math.random() * names.length)];
      const f = FAULTS[name];
      const i = Math.floor(Math.random() * ctx.cluster.nodes.length);
      if (f.node && usedNodes.has(i)) continue;
      if (f.shared && usedShared.has(f.shared)) continue;
      if (f.node) usedNodes.add(i);
      if (f.shared) usedShared.add(f.shared);
      picks.push([name, i]);
    }
    await Promise.all(picks.map(([name, i]) => inject(ctx, name, i, hold(ctx, name, 1000 + Math.floor(Math.random() * 5000)))));
    injected += picks.length;
    await sleep(gapMs);
  }
  return injected;
}

/** A pause is held past the escalation lease, so that another node takes the paused node's claimed steps. */
function hold(ctx, name, holdMs) {
  return name === 'pause-node' ? Math.max(holdMs, ctx.pauseMs) : holdMs;
}

/** Start `node` again, retrying every second for up to a minute while it exits at start. */
async function supervise(node) {
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      await node.start();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(1000);
    }
  }
}
