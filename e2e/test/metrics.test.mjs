// /metrics after a scripted scenario: names, labels and exact values, parsed from the Prometheus text.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, eventually, parseMetrics, metricValue } from '../helpers.mjs';

describe('Prometheus metrics after a scripted scenario', () => {
  let srv;
  const scrape = async () => {
    const r = await srv.api('GET', '/metrics', undefined, { key: null });
    assert.equal(r.status, 200);
    return parseMetrics(r.text);
  };
  /** Waits until `name{labels}` reads `want` (the event that moves it may be handled a moment later). */
  const reaches = (name, labels, want) =>
    eventually(async () => {
      const got = metricValue(await scrape(), name, labels);
      if (got !== want) throw new Error(`${name}${JSON.stringify(labels)} = ${got}, want ${want}`);
      return true;
    }, 5000);

  before(async () => {
    // Short idle clocks for the scenario's two users; the late one's role keeps a long one.
    srv = await startServer({
      // Long enough that the steps before the idle clocks' part finish
      // inside it on a loaded machine; the warnings are compared with what
      // the clients received, since activity after a warning earns another.
      HERALD_SESSION_IDLE_TIMEOUT: '4s',
      HERALD_SESSION_WARNING_BEFORE: '1s',
      HERALD_SESSION_ROLES: 'archivist=10m/1m',
    });
  });
  after(async () => {
    await srv?.stop();
  });

  it('counts sockets, events, notifications, sessions and API calls as they happen', async () => {
    const a = srv.identity();
    const b = srv.identity({ role: 'technologist' });
    const offline = rid('offline');
    const ws = await srv.connect({ token: a.token, transports: ['websocket'] });
    const polling = await srv.connect({ token: b.token, transports: ['polling'] });
    assert.match(await srv.connectError({ token: srv.token({ userId: 'x', sessionId: 's', role: 'r' }, { secret: 'not-the-secret-at-all' }) }), /./);

    let m = await scrape();
    assert.equal(metricValue(m, 'herald_connected_sockets', { transport: 'websocket' }), 1);
    assert.equal(metricValue(m, 'herald_connected_sockets', { transport: 'polling' }), 1);
    assert.equal(metricValue(m, 'herald_connected_users'), 2);
    assert.equal(metricValue(m, 'herald_active_sessions'), 2);
    assert.equal(metricValue(m, 'herald_connections_accepted_total'), 2);
    assert.equal(metricValue(m, 'herald_auth_refused_total', { reason: 'bad_signature' }), 1);
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'connected' }), 2);
    assert.equal(metricValue(m, 'herald_build_info'), 1);

    // One live notification, acknowledged; one for a user who is not connected.
    const sent = await srv.notify(a.userId, { type: 'critical_finding', title: 'CT head' });
    assert.equal(sent.status, 202, sent.text);
    const n = await ws.waitFor('critical_notification');
    const ack = await ws.emitAck('acknowledge_notification', { notificationId: n.id });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await ws.waitFor('notification_acknowledged');
    assert.equal((await srv.notify(offline, { title: 'waiting' })).status, 202);
    const broadcast = await srv.api('POST', '/api/v1/notifications', { userIds: [a.userId, b.userId, a.userId], notification: { title: 'all' } });
    assert.equal(broadcast.status, 202, broadcast.text);
    await polling.waitFor('critical_notification');
    ws.emit('not_an_event_herald_knows', {});
    await srv.api('POST', `/api/v1/roles/technologist/events`, { event: 'study_ready', data: { x: 1 } });
    await polling.waitFor('study_ready');

    await reaches('herald_client_events_total', { event: 'other', result: 'ignored' }, 1);
    m = await scrape();
    assert.equal(metricValue(m, 'herald_notifications_total'), 3, 'two sends and one broadcast');
    assert.equal(metricValue(m, 'herald_notification_recipients_total'), 4, 'a, offline, then a and b once each');
    assert.equal(metricValue(m, 'herald_deliveries_total', { kind: 'live' }), 3);
    assert.equal(metricValue(m, 'herald_deliveries_total', { kind: 'event' }), 3, 'notification_acknowledged, notification_closed and study_ready');
    assert.equal(metricValue(m, 'herald_notifications_closed_total'), 1, 'the first acknowledgement closed it');
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'notification_closed' }), 1);
    assert.equal(metricValue(m, 'herald_acknowledgements_total'), 1);
    assert.equal(metricValue(m, 'herald_notifications_pending'), 3, "offline's, and the broadcast's two");
    assert.equal(metricValue(m, 'herald_notification_delivery_seconds_count'), 3);
    assert.equal(metricValue(m, 'herald_notification_acknowledge_seconds_count'), 1);
    assert.equal(metricValue(m, 'herald_client_events_total', { event: 'acknowledge_notification', result: 'ok' }), 1);
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'critical_notification' }), 3);
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'notification_acknowledged' }), 1);
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'custom' }), 1, 'a caller-named event');
    assert.ok(!m.some((s) => Object.values(s.labels).includes('study_ready')), 'caller names never become labels');
    assert.equal(metricValue(m, 'herald_store_operation_seconds_count', { operation: 'insert' }), 3);
    assert.equal(metricValue(m, 'herald_store_operation_seconds_count', { operation: 'acknowledge' }), 1);
    assert.equal(metricValue(m, 'herald_store_errors_total'), 0);

    // The catch-up on connect is a first delivery too.
    const late = await srv.connect({ token: srv.token({ userId: offline, sessionId: rid('s'), role: 'archivist' }) });
    await late.waitFor('critical_notification');
    await reaches('herald_deliveries_total', { kind: 'catch_up' }, 1);
    assert.equal(metricValue(await scrape(), 'herald_notification_delivery_seconds_count'), 4);
    late.close();
    await reaches('herald_disconnects_total', { reason: 'client_disconnect' }, 1);

    // API requests by route template (never the raw path) and status.
    const user = await srv.api('GET', `/api/v1/users/${a.userId}`);
    assert.equal(user.status, 200);
    assert.match(user.headers.get('x-request-id') || '', /^[0-9a-f]{16}$/);
    assert.equal((await srv.api('GET', '/api/v1/users', undefined, { key: 'wrong-key-0123456789' })).status, 401);
    assert.equal((await srv.api('GET', '/nowhere', undefined, { key: null })).status, 404);
    m = await scrape();
    const route = '/api/v1/users/{user_id}';
    assert.equal(metricValue(m, 'herald_http_requests_total', { method: 'GET', route, status: '200' }), 1);
    assert.equal(metricValue(m, 'herald_http_request_duration_seconds_count', { method: 'GET', route }), 1);
    assert.equal(metricValue(m, 'herald_http_requests_total', { route: 'unmatched', status: '401' }), 1);
    assert.equal(metricValue(m, 'herald_http_requests_total', { route: 'unmatched', status: '404' }), 1);
    assert.equal(metricValue(m, 'herald_http_requests_total', { route: '/api/v1/users/{user_id}/notifications', status: '202' }), 2);
    assert.ok(metricValue(m, 'herald_http_requests_total', { route: '/metrics', status: '200' }) >= 3);
    assert.ok(!m.some((s) => s.labels.route?.includes(a.userId)), 'no raw path as a label');
    const buckets = m.filter((s) => s.name === 'herald_http_request_duration_seconds_bucket' && s.labels.route === route);
    assert.ok(buckets.length > 5 && buckets.some((s) => s.labels.le === '+Inf' && s.value === 1), 'a histogram, not a summary');

    // The idle clocks: a warning, then expiry, on both sessions.
    await ws.waitFor('session_timeout_warning', 4000);
    await ws.waitFor('session_expired', 4000);
    await polling.waitFor('session_expired', 4000);
    await reaches('herald_session_expiries_total', { cause: 'idle_timeout' }, 2);
    m = await scrape();
    const warned = ws.all('session_timeout_warning').length + polling.all('session_timeout_warning').length;
    assert.ok(warned >= 2, `each session was warned: ${warned}`);
    assert.equal(metricValue(m, 'herald_session_warnings_total'), warned);
    assert.equal(metricValue(m, 'herald_server_events_total', { event: 'session_expired' }), 2);

    for (const s of m) {
      assert.match(s.name, /^herald_/, `only Herald's own series: ${s.name}`);
      if (/_total$/.test(s.name)) assert.ok(s.value >= 0);
    }
  });
});
