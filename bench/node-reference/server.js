// The Node.js reference server for Herald's benchmarks: the old service's
// WebSocketService on socket.io 4.8 (with bufferutil), reduced to what the
// benchmark scenarios use. In memory, not durable: a baseline, not a product.
//
// Env: PORT (8001), JWT_SECRET (required), API_KEY (required).
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');
const { Server } = require('socket.io');

const PORT = Number(process.env.PORT || 8001);
const JWT_SECRET = process.env.JWT_SECRET;
const API_KEY = process.env.API_KEY;
if (!JWT_SECRET || !API_KEY) {
  console.error('JWT_SECRET and API_KEY must be set');
  process.exit(2);
}

// notificationId -> { notification, recipients: Map<userId, acknowledgedAt|null> }
const notifications = new Map();

const httpServer = http.createServer(handleApi);
const io = new Server(httpServer, {
  pingInterval: 25000,
  pingTimeout: 60000,
  maxHttpBufferSize: 1e6,
});

// ---- authentication at connect (the three contract messages) ----

function tokenOf(handshake) {
  if (handshake.auth && typeof handshake.auth.token === 'string') return handshake.auth.token;
  if (typeof handshake.query.token === 'string') return handshake.query.token;
  const header = handshake.headers.authorization || '';
  return header.startsWith('Bearer ') ? header.slice(7) : undefined;
}

io.use((socket, next) => {
  const token = tokenOf(socket.handshake);
  if (!token) return next(new Error('Authentication token required'));
  let claims;
  try {
    claims = jwt.verify(token, JWT_SECRET, { algorithms: ['HS256'] });
  } catch {
    return next(new Error('Invalid authentication token'));
  }
  const userId = claims.userId ?? claims.sub;
  if (userId === undefined || !claims.sessionId || !claims.role) {
    return next(new Error('Authentication failed'));
  }
  socket.data.user = { userId: String(userId), sessionId: String(claims.sessionId), role: String(claims.role) };
  next();
});

// ---- connections and client events ----

io.on('connection', (socket) => {
  const { userId, role } = socket.data.user;
  socket.emit('connected', { socketId: socket.id, userId, timestamp: new Date().toISOString() });
  socket.join([`user:${userId}`, `role:${role}`]);

  socket.on('activity', (...args) => {
    const ack = args.find((a) => typeof a === 'function');
    if (ack) ack({ ok: true });
  });

  socket.on('acknowledge_notification', (payload, ack) => {
    const reply = typeof ack === 'function' ? ack : (body) => socket.emit('error', body.error);
    const id = payload && payload.notificationId;
    if (typeof id !== 'string' || (payload.userId !== undefined && typeof payload.userId !== 'string')) {
      return reply({ ok: false, error: { code: 'invalid_payload', message: 'notificationId required' } });
    }
    if (payload.userId !== undefined && payload.userId !== userId) {
      return reply({ ok: false, error: { code: 'forbidden', message: 'not your notification' } });
    }
    const entry = notifications.get(id);
    if (!entry || !entry.recipients.has(userId)) {
      return reply({ ok: false, error: { code: 'not_found', message: 'unknown notification' } });
    }
    let acknowledgedAt = entry.recipients.get(userId);
    if (!acknowledgedAt) {
      acknowledgedAt = new Date().toISOString();
      entry.recipients.set(userId, acknowledgedAt);
      io.to(`user:${userId}`).emit('notification_acknowledged', { notificationId: id, acknowledgedAt });
    }
    reply({ ok: true, notificationId: id, acknowledgedAt });
  });
});

function roomSize(room) {
  const sockets = io.of('/').adapter.rooms.get(room);
  return sockets ? sockets.size : 0;
}

// ---- backend HTTP API (the subset the benchmark scenarios use) ----

const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener',
  'removeListener', 'connected', 'critical_notification', 'notification_acknowledged',
  'session_timeout_warning', 'session_expired', 'session_extended', 'error']);
const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function badRequest(res, message) {
  send(res, 400, { error: { code: 'invalid_payload', message } });
}

function authorized(req) {
  const header = req.headers.authorization || '';
  if (!header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(API_KEY);
  return given.length === want.length && crypto.timingSafeEqual(given, want);
}

function readJson(req, res, then) {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > 1e6) { send(res, 413, { error: { code: 'payload_too_large', message: 'body over 1 MB' } }); req.destroy(); return; }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { return badRequest(res, 'invalid JSON'); }
    then(body);
  });
}

function sendNotificationToUser(res, userId, notification) {
  if (!notification || typeof notification !== 'object' || Array.isArray(notification)) {
    return badRequest(res, 'notification must be an object');
  }
  if (notification.id !== undefined && (typeof notification.id !== 'string' || !ID_RE.test(notification.id))) {
    return badRequest(res, 'invalid notification id');
  }
  const id = notification.id || crypto.randomUUID();
  let entry = notifications.get(id);
  if (entry && entry.recipients.has(userId)) {
    return send(res, 202, { notification: entry.notification, deliveredTo: 0 });
  }
  if (!entry) {
    entry = { notification: { ...notification, id, createdAt: new Date().toISOString() }, recipients: new Map() };
    notifications.set(id, entry);
  }
  entry.recipients.set(userId, null);
  const room = `user:${userId}`;
  io.to(room).emit('critical_notification', entry.notification);
  send(res, 202, { notification: entry.notification, deliveredTo: roomSize(room) });
}

function broadcastToRole(res, role, body) {
  if (!body || typeof body.event !== 'string' || body.event === '' || RESERVED.has(body.event)) {
    return badRequest(res, 'event must be a non-reserved name');
  }
  const room = `role:${role}`;
  if (body.data === undefined) io.to(room).emit(body.event);
  else io.to(room).emit(body.event, body.data);
  send(res, 202, { deliveredTo: roomSize(room) });
}

function handleApi(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  if (!url.pathname.startsWith('/api/v1/')) return send(res, 404, { error: { code: 'not_found', message: 'no such route' } });
  if (!authorized(req)) return send(res, 401, { error: { code: 'unauthorized', message: 'API key required' } });

  let m;
  if (req.method === 'POST' && (m = url.pathname.match(/^\/api\/v1\/users\/([^/]+)\/notifications$/))) {
    const userId = decodeURIComponent(m[1]);
    return readJson(req, res, (body) => sendNotificationToUser(res, userId, body));
  }
  if (req.method === 'POST' && (m = url.pathname.match(/^\/api\/v1\/roles\/([^/]+)\/events$/))) {
    const role = decodeURIComponent(m[1]);
    return readJson(req, res, (body) => broadcastToRole(res, role, body));
  }
  send(res, 404, { error: { code: 'not_found', message: 'no such route' } });
}

httpServer.listen(PORT, '127.0.0.1', () => {
  console.log(`node reference listening on 127.0.0.1:${PORT}`);
});

process.on('SIGTERM', () => { io.close(); httpServer.close(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); });
