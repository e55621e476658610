// Shared files (contract section 14, "Files"), against the real binary: the backend's upload for a user
// (20 MB, streamed), the socket's file_available, the recipient's download checked by SHA-256, a range,
// refusals that store nothing (cut-off body, wrong type, oversize, a full disk, PostgreSQL down), 404 for
// anyone else, a room member's share reaching the room's members, catch-up on the next connection until
// downloaded; on one node, on PostgreSQL, and across two nodes of a cluster.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, rid, sleep, TS_RE } from '../helpers.mjs';
import { smallDisk } from '../disk.mjs';
import { startCluster, startPrivatePostgres } from '../cluster.mjs';

const enc = encodeURIComponent;
const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const MB = 1024 * 1024;

/** `size` bytes of a PDF: the signature, then random bytes. */
function pdf(size) {
  const b = randomBytes(size);
  b.write('%PDF-1.7\n', 0, 'latin1');
  return b;
}

function form(buf, name = 'scan.pdf', type = 'application/pdf') {
  const fd = new FormData();
  fd.append('file', new Blob([buf], { type }), name);
  return fd;
}

async function upload(srv, path, fd, auth) {
  const r = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${auth ?? srv.apiKey}` },
    body: fd,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await r.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body, text, headers: r.headers };
}

async function download(srv, fileId, token, headers = {}) {
  const r = await fetch(`${srv.url}/api/v1/files/${enc(fileId)}`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    signal: AbortSignal.timeout(60_000),
  });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
}

/** What the server keeps in its files folder (kept files and staging files). */
const filesIn = (srv) => readdirSync(join(srv.dataDir, 'files'));

describe('shared files on one node', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('a 20 MB file reaches its recipient as file_available and downloads whole and by range, checked by SHA-256', async () => {
    const ann = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const buf = pdf(20 * MB);
    const up = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(buf, 'CT chest.pdf'));
    assert.equal(up.status, 201, up.text);
    assert.deepEqual(Object.keys(up.body).sort(), ['contentType', 'fileId', 'name', 'sha256', 'size']);
    assert.equal(up.body.size, buf.length);
    assert.equal(up.body.sha256, sha(buf));
    assert.equal(up.body.contentType, 'application/pdf');
    assert.equal(up.body.name, 'CT chest.pdf');

    const told = await a.waitFor('file_available', 5000);
    assert.deepEqual(told, { ...up.body, expiresAt: told.expiresAt });
    assert.match(told.expiresAt, TS_RE);
    const days = (Date.parse(told.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `expires in ${days} days`);

    const got = await download(srv, up.body.fileId, ann.token);
    assert.equal(got.status, 200);
    assert.equal(sha(got.bytes), up.body.sha256);
    assert.equal(got.headers.get('content-length'), String(buf.length));
    assert.equal(got.headers.get('accept-ranges'), 'bytes');
    assert.equal(got.headers.get('content-type'), 'application/pdf');
    assert.match(got.headers.get('content-disposition'), /^attachment; filename="CT chest.pdf"/);

    const part = await download(srv, up.body.fileId, ann.token, { range: 'bytes=1000-1999' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${buf.length}`);
    assert.equal(part.headers.get('content-length'), '1000');
    assert.ok(part.bytes.equals(buf.subarray(1000, 2000)));
    const tail = await download(srv, up.body.fileId, ann.token, { range: 'bytes=-10' });
    assert.equal(tail.status, 206);
    assert.ok(tail.bytes.equals(buf.subarray(buf.length - 10)));
    const past = await download(srv, up.body.fileId, ann.token, { range: `bytes=${buf.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${buf.length}`);
    assert.deepEqual(filesIn(srv).filter((f) => f.startsWith('incoming-')), [], 'no staging file left');
  });

  it('anyone but the recipient gets 404, without a token 401', async () => {
    const ann = srv.identity();
    const eve = srv.identity();
    const up = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(pdf(1000)));
    assert.equal(up.status, 201, up.text);
    assert.equal((await download(srv, up.body.fileId, eve.token)).status, 404);
    assert.equal((await download(srv, randomUUIDLike(), ann.token)).status, 404);
    assert.equal((await download(srv, 'not-an-id', ann.token)).status, 404);
    assert.equal((await download(srv, up.body.fileId, null)).status, 401);
    assert.equal((await download(srv, up.body.fileId, srv.apiKey)).status, 401, 'the API key is not a recipient');
    assert.equal((await download(srv, up.body.fileId, ann.token)).status, 200);
  });

  it('a wrong type, a mismatched content, oversize, a path in the name, no key: refused or made safe, nothing stored', async () => {
    const user = rid('u');
    const path = `/api/v1/users/${enc(user)}/files`;
    const before = filesIn(srv).length;
    const html = await upload(srv, path, form(Buffer.from('<html></html>'), 'x.html', 'text/html'));
    assert.equal(html.status, 415, html.text);
    assert.equal(html.body.error.code, 'unsupported_type');
    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), randomBytes(300)]);
    const lying = await upload(srv, path, form(png, 'x.pdf', 'application/pdf'));
    assert.equal(lying.status, 415, lying.text);
    assert.equal((await upload(srv, path, form(png, 'x.png', 'image/png'))).status, 201);
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), randomBytes(500)]);
    assert.equal((await upload(srv, path, form(dicom, 'x.dcm', 'application/dicom'))).status, 201);
    const notDicom = await upload(srv, path, form(randomBytes(600), 'y.dcm', 'application/dicom'));
    assert.equal(notDicom.status, 415);

    // Declared over the limit: refused before a byte of the body is read.
    const big = await rawUpload(srv, path, { declared: 25 * MB + 200_000, send: pdf(64 * 1024) });
    assert.match(big, /^HTTP\/1.1 413 /);
    assert.match(big, /payload_too_large/);
    // Sent without a length (chunked) and growing past the limit: refused at the limit.
    const chunked = await fetch(srv.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.apiKey}`, 'content-type': 'multipart/form-data; boundary=b0' },
      body: oversizeStream('b0', 25 * MB + 1),
      duplex: 'half',
    }).then((r) => r.status, (e) => `failed: ${e.cause?.code ?? e.message}`);
    assert.ok(chunked === 413 || /^failed/.test(String(chunked)), String(chunked));

    const climbing = await upload(srv, path, form(pdf(100), '../../etc/evil.pdf'));
    assert.equal(climbing.status, 201);
    assert.equal(climbing.body.name, 'evil.pdf');
    assert.equal((await upload(srv, path, form(pdf(100), '..'))).status, 400);
    // The key gate answers before the body is read (a body would be reset with it, as for any route).
    assert.equal((await srv.api('POST', path, undefined, { key: 'wrong-key' })).status, 401);
    const noFile = new FormData();
    noFile.append('other', 'x');
    assert.equal((await upload(srv, path, noFile)).status, 400);
    // Kept: the PNG, the DICOM and the renamed PDF; nothing of the refused ones.
    assert.equal(filesIn(srv).length, before + 3);
    assert.deepEqual(filesIn(srv).filter((f) => f.startsWith('incoming-')), []);
  });

  it('an upload cut off mid-body stores nothing and tells nobody', async () => {
    const ann = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const before = filesIn(srv).length;
    const boundary = 'cutcutcut';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.pdf"\r\n` +
        'Content-Type: application/pdf\r\n\r\n',
    );
    const body = pdf(2 * MB);
    const total = head.length + body.length + `\r\n--${boundary}--\r\n`.length;
    const status = await new Promise((resolve, reject) => {
      const s = tcpConnect(srv.port, '127.0.0.1', () => {
        s.write(
          `POST /api/v1/users/${enc(ann.userId)}/files HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
            `Authorization: Bearer ${srv.apiKey}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
            `Content-Length: ${total}\r\n\r\n`,
        );
        s.write(head);
        s.write(body.subarray(0, MB), () => setTimeout(() => s.end(), 200));
      });
      let answer = '';
      s.on('data', (d) => (answer += d));
      s.on('error', reject);
      s.on('close', () => resolve(answer.split(' ')[1] ?? 'closed'));
    });
    assert.ok(status === 'closed' || /^4\d\d$/.test(status), `answered ${status}`);
    await sleep(300);
    assert.equal(filesIn(srv).length, before, 'nothing kept, no staging file left');
    assert.deepEqual(await a.none('file_available', 300), []);
  });

  it('a room member shares with the room\'s members; others cannot share or download', async () => {
    const room = `study:${rid('1.2.840')}`.replace(/[^A-Za-z0-9._:-]/g, '.');
    const ann = srv.identity({ rooms: ['study:*'] });
    const bob = srv.identity({ rooms: ['study:*'] });
    const cat = srv.identity({ rooms: ['study:*'] });
    const a = await srv.connect({ token: ann.token });
    const b = await srv.connect({ token: bob.token });
    await srv.connect({ token: cat.token });
    for (const c of [a, b]) assert.equal((await c.emitAck('join_room', { room })).ok, true);

    const outsider = await upload(srv, `/api/v1/rooms/${enc(room)}/files`, form(pdf(500)), cat.token);
    assert.equal(outsider.status, 403, outsider.text);
    assert.equal((await upload(srv, `/api/v1/rooms/${enc(room)}/files`, form(pdf(500)))).status, 401, 'not the API key');

    const buf = pdf(300_000);
    const up = await upload(srv, `/api/v1/rooms/${enc(room)}/files`, form(buf, 'key image.pdf'), ann.token);
    assert.equal(up.status, 201, up.text);
    assert.equal(up.body.room, room);
    const toBob = await b.waitFor('file_available', 5000);
    assert.equal(toBob.room, room);
    assert.equal(toBob.fileId, up.body.fileId);
    assert.equal(toBob.sha256, sha(buf));
    assert.equal((await a.waitFor('file_available', 5000)).fileId, up.body.fileId);
    const got = await download(srv, up.body.fileId, bob.token);
    assert.equal(got.status, 200);
    assert.equal(sha(got.bytes), sha(buf));
    assert.equal((await download(srv, up.body.fileId, cat.token)).status, 404);
  });

  it('a file is caught up at each connection until downloaded, and the audit trail records share and download', async () => {
    const ann = srv.identity();
    const buf = pdf(4000);
    const up = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(buf));
    assert.equal(up.status, 201);
    const first = await srv.connect({ token: ann.token });
    assert.equal((await first.waitFor('file_available', 5000)).fileId, up.body.fileId);
    first.close();
    const second = await srv.connect({ token: ann.token });
    assert.equal((await second.waitFor('file_available', 5000)).fileId, up.body.fileId, 'not yet downloaded');
    assert.equal((await download(srv, up.body.fileId, ann.token)).status, 200);
    second.close();
    const third = await srv.connect({ token: ann.token });
    assert.deepEqual(await third.none('file_available', 500), [], 'downloaded: not offered again');

    const audit = await srv.api('GET', '/api/v1/audit?format=jsonl');
    const lines = audit.text.trim().split('\n').map((l) => JSON.parse(l));
    const mine = lines.filter((r) => JSON.stringify(r).includes(up.body.fileId));
    const types = mine.map((r) => r.type);
    assert.ok(types.includes('file_shared') && types.includes('file_downloaded'), audit.text.slice(-2000));
    assert.ok(!audit.text.includes('"name"') || !audit.text.includes('scan.pdf'), 'no file name in the trail');
  });
});

describe('shared files on a full disk', () => {
  it('answers 507 and leaves no staging file', async (t) => {
    const disk = smallDisk('16m');
    if (disk.skip) {
      disk.remove();
      return t.skip(disk.skip);
    }
    const srv = await startServer({}, { dataDir: disk.dir });
    try {
      const filler = disk.fill();
      const up = await upload(srv, `/api/v1/users/${enc(rid('u'))}/files`, form(pdf(2 * MB)));
      assert.ok(up.status === 507 || up.status === 503, up.text);
      assert.deepEqual(filesIn(srv).filter((f) => f.startsWith('incoming-')), []);
      unlinkSync(filler);
      const ok = await upload(srv, `/api/v1/users/${enc(rid('u'))}/files`, form(pdf(2 * MB)));
      assert.equal(ok.status, 201, ok.text);
    } finally {
      await srv.stop({ keepData: true });
      disk.remove();
    }
  });
});

describe('shared files on PostgreSQL', () => {
  it('are served from the database; with PostgreSQL down an upload is 503 and leaves nothing', async (t) => {
    const pg = await startPrivatePostgres();
    if (pg.skip) return t.skip(pg.skip);
    const srv = await startServer({ DATABASE_URL: pg.url });
    try {
      const ann = srv.identity();
      const buf = pdf(3 * MB);
      const up = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(buf));
      assert.equal(up.status, 201, up.text);
      assert.deepEqual(filesIn(srv), [], 'the bytes are in the database, not the data directory');
      const got = await download(srv, up.body.fileId, ann.token);
      assert.equal(sha(got.bytes), up.body.sha256);
      const part = await download(srv, up.body.fileId, ann.token, { range: 'bytes=262000-600000' });
      assert.equal(part.status, 206);
      assert.ok(part.bytes.equals(buf.subarray(262000, 600001)), 'a range across chunks');

      await pg.stop();
      const down = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(pdf(MB)));
      assert.equal(down.status, 503, down.text);
      assert.equal(down.body.error.code, 'store_unavailable');
      assert.deepEqual(filesIn(srv), [], 'no staging file left');
      assert.ok([503, 401].includes((await download(srv, up.body.fileId, ann.token)).status));

      await pg.start();
      let again;
      for (let i = 0; i < 50; i++) {
        again = await upload(srv, `/api/v1/users/${enc(ann.userId)}/files`, form(pdf(MB)));
        if (again.status === 201) break;
        await sleep(200);
      }
      assert.equal(again.status, 201, again.text);
    } finally {
      await srv.stop();
      await pg.remove();
    }
  });
});

describe('shared files across two nodes', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 2 });
  });
  after(async () => {
    await cl?.stop();
  });

  it('a file uploaded through one node reaches sockets on the other and downloads from either', async () => {
    const ann = cl.identity({ rooms: ['study:*'] });
    const bob = cl.identity({ rooms: ['study:*'] });
    const onB = await cl.b.connect({ token: ann.token });
    const buf = pdf(2 * MB);
    const up = await upload(cl.a, `/api/v1/users/${enc(ann.userId)}/files`, form(buf));
    assert.equal(up.status, 201, up.text);
    assert.equal((await onB.waitFor('file_available', 5000)).fileId, up.body.fileId);
    for (const node of [cl.a, cl.b]) {
      const got = await download(node, up.body.fileId, ann.token);
      assert.equal(got.status, 200);
      assert.equal(sha(got.bytes), sha(buf));
    }

    // A room whose members sit on different nodes.
    const room = `study:${rid('f')}`.replace(/[^A-Za-z0-9._:-]/g, '.');
    const annA = await cl.a.connect({ token: ann.token });
    const bobB = await cl.b.connect({ token: bob.token });
    for (const c of [annA, bobB]) assert.equal((await c.emitAck('join_room', { room })).ok, true);
    const shared = await upload(cl.a, `/api/v1/rooms/${enc(room)}/files`, form(pdf(1000)), ann.token);
    assert.equal(shared.status, 201, shared.text);
    const told = await bobB.waitFor('file_available', 5000);
    assert.deepEqual([told.fileId, told.room], [shared.body.fileId, room]);
    assert.equal((await download(cl.b, shared.body.fileId, bob.token)).status, 200);
  });
});

/** A multipart body of one PDF of `size` bytes, streamed (no Content-Length). */
function oversizeStream(boundary, size) {
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n` +
      'Content-Type: application/pdf\r\n\r\n%PDF-1.7\n',
  );
  let left = size;
  let sentHead = false;
  return new ReadableStream({
    pull(c) {
      if (!sentHead) {
        sentHead = true;
        return c.enqueue(head);
      }
      if (left <= 0) {
        c.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
        return c.close();
      }
      const n = Math.min(left, 256 * 1024);
      left -= n;
      c.enqueue(Buffer.alloc(n, 7));
    },
  });
}

/** Sends an upload's head declaring `declared` bytes, then `send`; the raw answer (or 'closed'). */
function rawUpload(srv, path, { declared, send }) {
  const boundary = 'rawraw';
  return new Promise((resolve, reject) => {
    const s = tcpConnect(srv.port, '127.0.0.1', () => {
      s.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${srv.apiKey}\r\n` +
          `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${declared}\r\n\r\n`,
      );
      s.write(send);
    });
    let answer = '';
    s.on('data', (d) => {
      answer += d;
      if (answer.includes('}}')) s.destroy();
    });
    s.on('error', () => resolve(answer || 'closed'));
    s.on('close', () => resolve(answer || 'closed'));
    setTimeout(() => s.destroy(), 10_000);
  });
}

/** A well-formed file id that names no file. */
function randomUUIDLike() {
  return '00000000-0000-4000-8000-000000000000';
}
