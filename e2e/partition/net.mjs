// The partition test's network: one network namespace for each Herald node, for Redis and for PostgreSQL, wired
// by veth pairs so that each link a fault cuts is its own cable.
//
// Links (each a /30 of 10.213.K.0/24, K chosen free in the root namespace):
//   node-i <-> redis, node-i <-> postgres   the node's back end; cut one and only that node loses it
//   node-i <-> root                         the node's clients, the API caller and the webhook receiver
//   root <-> redis, root <-> postgres       the run's own control plane (never cut): readiness, audit verify
// The root namespace does not route between links, so a cut link has no way around. Cutting is
// `ip link set ... down` on both ends (this kernel has no netem): packets are dropped, connections hang until
// a timeout notices, as on a pulled cable.
import { execFileSync } from 'node:child_process';

/** `ip args...`; throws with ip's own message. */
function ip(...args) {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** null when this process may create network namespaces, else why not (for a skip message). */
export function netnsUnsupported() {
  const probe = `hjprobe${process.pid}`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    return `ip netns is not permitted here (${String(e.stderr || e.message).trim().split('\n')[0]}): the partition test needs root and network namespaces`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    /* gone */
  }
  return null;
}

/** A third octet K such that no address of 10.213.K.0/24 is on this machine's root namespace. */
function freeBlock() {
  const used = ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 250; i++) {
    const k = (process.pid + i) % 250;
    if (!used.includes(`10.213.${k}.`)) return k;
  }
  throw new Error('partition net: no free 10.213.K.0/24 block in the root namespace');
}

/**
 * Build the namespaces and links for `nodes` Herald nodes. Returns a Net with the addresses each party uses,
 * cut(link)/heal(link) and teardown() (idempotent; also run on process exit).
 */
export function createNet(nodes = 3) {
  const tag = process.pid.toString(36);
  const k = freeBlock();
  const net = new Net(tag, k);
  try {
    net.build(nodes);
  } catch (e) {
    net.teardown();
    throw e;
  }
  return net;
}

export class Net {
  constructor(tag, k) {
    this.tag = tag;
    this.k = k;
    this.namespaces = [];
    this.links = new Map(); // name -> { a: { ns, dev, addr }, b: { ns, dev, addr } }
    this.next = 0;
    this.torn = false;
    this.onExit = () => this.teardown();
    process.once('exit', this.onExit);
  }

  ns(name) {
    return `hj-${this.tag}-${name}`;
  }

  /** The command prefix that runs a program inside namespace `name`. */
  exec(name) {
    return ['ip', 'netns', 'exec', this.ns(name)];
  }

  addNs(name) {
    ip('netns', 'add', this.ns(name));
    this.namespaces.push(this.ns(name));
    ip('-n', this.ns(name), 'link', 'set', 'lo', 'up');
  }

  /** A veth pair `name` between namespace `a` and `b` (null: the root namespace), on the next /30. */
  link(name, a, b) {
    const j = this.next++;
    if (j >= 63) throw new Error('partition net: more than 63 links');
    const base = j * 4;
    const ends = [
      { ns: a && this.ns(a), dev: `hj${this.tag}${j}a`, addr: `10.213.${this.k}.${base + 1}` },
      { ns: b && this.ns(b), dev: `hj${this.tag}${j}b`, addr: `10.213.${this.k}.${base + 2}` },
    ];
    ip('link', 'add', ends[0].dev, 'type', 'veth', 'peer', 'name', ends[1].dev);
    for (const e of ends) {
      if (e.ns) ip('link', 'set', e.dev, 'netns', e.ns);
      const on = e.ns ? ['-n', e.ns] : [];
      ip(...on, 'addr', 'add', `${e.addr}/30`, 'dev', e.dev);
      ip(...on, 'link', 'set', e.dev, 'up');
    }
    this.links.set(name, { a: ends[0], b: ends[1] });
    return { a: ends[0].addr, b: ends[1].addr };
  }

  build(nodes) {
    this.addNs('redis');
    this.addNs('pg');
    this.redisControl = this.link('redis-control', null, 'redis').b;
    this.pgControl = this.link('pg-control', null, 'pg').b;
    // the webhook receiver listens in the root namespace on the root end of the Redis control link; each node
    // has a host route to it through its own client link (and so loses it with its clients)
    this.webhookHost = this.links.get('redis-control').a.addr;
    this.nodes = [];
    for (let i = 0; i < nodes; i++) {
      const n = `n${i}`;
      this.addNs(n);
      const redis = this.link(`${n}-redis`, n, 'redis');
      const pg = this.link(`${n}-pg`, n, 'pg');
      const clients = this.link(`${n}-clients`, n, null);
      ip('-n', this.ns(n), 'route', 'add', `${this.webhookHost}/32`, 'via', clients.b);
      this.nodes.push({ ns: n, wrap: this.exec(n), redisHost: redis.b, pgHost: pg.b, host: clients.a });
    }
  }

  /** Cut link `name` (e.g. `n0-redis`): both ends down. */
  cut(name) {
    this.setLink(name, 'down');
  }

  heal(name) {
    this.setLink(name, 'up');
  }

  setLink(name, state) {
    const l = this.links.get(name);
    if (!l) throw new Error(`partition net: no link ${name}`);
    for (const e of [l.a, l.b]) ip(...(e.ns ? ['-n', e.ns] : []), 'link', 'set', e.dev, state);
  }

  /** Remove every namespace and root-side veth end this run made; safe to call twice. */
  teardown() {
    if (this.torn) return;
    this.torn = true;
    process.removeListener('exit', this.onExit);
    for (const l of this.links.values()) {
      for (const e of [l.a, l.b]) {
        if (e.ns) continue;
        try {
          ip('link', 'del', e.dev);
        } catch {
          /* went with its peer's namespace */
        }
      }
    }
    for (const ns of this.namespaces) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  }
}
