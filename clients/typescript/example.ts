// A small front-end client of Herald typed with herald-events.d.ts: connects with a token, shows
// notifications and acknowledges them, keeps the session alive, watches colleagues' presence, sits
// in a study room (who is here, who is typing) and answers a call. CI type-checks it
// (`tsc --noEmit`, e2e/test/typescript.test.mjs); it is an example to copy from, not a library.
import { io, Socket } from 'socket.io-client';
import type {
  ClientToServerEvents,
  Notification,
  RoomMember,
  ServerToClientEvents,
} from './herald-events';

export type HeraldSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export function connect(url: string, token: string): HeraldSocket {
  const socket: HeraldSocket = io(url, { auth: { token } });

  socket.on('connected', ({ socketId, userId, recovered }) => {
    console.log(`connected as ${userId} (socket ${socketId})${recovered ? ', recovered' : ''}`);
  });
  socket.on('connect_error', (err) => console.error('refused:', err.message));
  socket.on('critical_notification', (n) => show(n, socket));
  socket.on('notification_acknowledged', ({ notificationId }) => dismiss(notificationId));
  socket.on('notification_closed', ({ notificationId, closedBy }) => dismiss(notificationId, closedBy));
  socket.on('notification_escalated', ({ notificationId, level, to }) => {
    const whom = 'role' in to ? `role ${to.role}` : to.users.join(', ');
    console.log(`${notificationId} escalated (level ${level}) to ${whom}`);
  });
  socket.on('session_timeout_warning', ({ sessionId, timeRemaining }) => {
    if (confirm(`Your session ends in ${Math.round(timeRemaining / 1000)} s. Stay signed in?`)) {
      socket.emit('extend_session', { sessionId }, (answer) => {
        if (!answer.ok) console.error('not extended:', answer.error.code);
      });
    }
  });
  socket.on('session_expired', () => console.log('signed out for inactivity'));
  socket.on('error', ({ event, code, message }) => console.error(`${event} refused: ${code} ${message}`));
  socket.on('presence', ({ userId, status }) => console.log(`${userId} is ${status}`));
  socket.on('file_available', (f) => console.log(`file ${f.name} (${f.size} bytes) until ${f.expiresAt}`));
  socket.on('call_incoming', ({ callId, from, media }) => {
    const accept = confirm(`${from.userId} calls (${media.join(' and ')}). Answer?`);
    socket.emit('call_answer', { callId, accept });
  });
  socket.on('webrtc_signal', ({ from, type }) => console.log(`${type} from ${from.socketId}`));
  socket.on('call_ended', ({ callId, reason }) => console.log(`call ${callId} ended: ${reason}`));
  return socket;
}

function show(n: Notification, socket: HeraldSocket): void {
  const severity = n.severity ?? 'info';
  console.log(`[${severity}] ${n.title ?? n.type ?? n.id}${n.redelivered ? ' (while you were away)' : ''}`);
  socket.emit('acknowledge_notification', { notificationId: n.id }, (answer) => {
    if (answer.ok) console.log(`acknowledged at ${answer.acknowledgedAt}`);
    else console.error('not acknowledged:', answer.error.message);
  });
}

function dismiss(notificationId: string, by?: string): void {
  console.log(`${notificationId} done${by ? ` (by ${by})` : ''}`);
}

/** Opens a study's room: calls `onMembers` with who is here now and at each change. */
export async function openStudy(
  socket: HeraldSocket,
  room: string,
  onMembers: (members: RoomMember[]) => void,
): Promise<boolean> {
  socket.on('room_presence', (p) => {
    if (p.room === room) onMembers(p.members);
  });
  socket.on('typing', ({ room: r, userId, isTyping }) => {
    if (r === room) console.log(`${userId} ${isTyping ? 'is typing' : 'stopped typing'}`);
  });
  const answer = await socket.emitWithAck('join_room', { room });
  if (!answer.ok) return false;
  onMembers(answer.members);
  return true;
}

/** Tells the room's other members whether this user is typing in the report draft. */
export function setTyping(socket: HeraldSocket, room: string, isTyping: boolean): void {
  socket.emit('typing', { room, isTyping });
}

/** Watches colleagues' presence; the answer is their presence now. */
export async function watch(socket: HeraldSocket, userIds: string[]): Promise<void> {
  const answer = await socket.emitWithAck('presence_subscribe', { userIds });
  if (answer.ok) for (const p of answer.presence) console.log(`${p.userId}: ${p.status}`);
}

/** Calls a colleague; the ICE servers go to the RTCPeerConnection. */
export async function call(socket: HeraldSocket, userId: string): Promise<string | null> {
  const answer = await socket.emitWithAck('call_invite', { to: { userId }, media: ['audio', 'video'] });
  if (!answer.ok) return null;
  console.log(`ringing; ${answer.iceServers.length} ICE servers`);
  return answer.callId;
}
