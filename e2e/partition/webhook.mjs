// The partition test's pager gateway: takes the escalation webhook's POSTs in the root namespace, refuses the first
// attempt for each (notification, level) with a 500 so that retries happen under the faults too, takes the later
// ones with a 200, and puts each attempt, its `X-Herald-Delivery` and its answer in the history. An unsigned POST gets
// a 401. Like the pager gateway the contract describes, it recognises a repeat of a delivery it already took (a node
// that posted and could not record it, then another node posting again) by that header: answered 200 again, recorded
// as a repeat, and paged once.
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';

export function startWebhookReceiver({ history, host, secret }) {
  const tried = new Set();
  const taken = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const signed = req.headers['x-herald-signature'] === `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
      let body = null;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        /* unreadable: refused below */
      }
      const id = body?.notification?.id;
      const key = `${id}\0${body?.level}`;
      const status = !signed || !id ? 401 : tried.has(key) ? 200 : 500;
      tried.add(key);
      const delivery = req.headers['x-herald-delivery'];
      const repeat = status === 200 && taken.has(delivery);
      if (status === 200) taken.add(delivery);
      history.add('webhook', { id, level: body?.level, status, delivery, repeat });
      res.writeHead(status).end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve({ url: `http://${host}:${server.address().port}/hook`, close: () => server.close() }));
  });
}
