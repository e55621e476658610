/**
 * Herald's Socket.IO events, typed for socket.io-client 4.x:
 *
 *   import { io, Socket } from 'socket.io-client';
 *   import type { ServerToClientEvents, ClientToServerEvents } from './herald-events';
 *   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { auth: { token } });
 *
 * Every event of docs/api.md ("Socket.IO events"), in both directions, with its payload and the
 * answer its acknowledgement callback gets. A test (e2e/test/typescript.test.mjs) holds this file to
 * the names the server knows (src/protocol.rs), both ways, and CI type-checks an example client
 * (clients/typescript/example.ts) against it.
 *
 * Times are RFC 3339 UTC strings with milliseconds ("2026-11-25T10:00:00.000Z"); durations are
 * milliseconds; ids are strings.
 */

/** An RFC 3339 UTC time with milliseconds, such as "2026-11-25T10:00:00.000Z". */
export type Timestamp = string;

// ---------------------------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------------------------

/** `connected`: the first event of an authenticated socket. */
export interface Connected {
  socketId: string;
  userId: string;
  timestamp: Timestamp;
  /** Present (true) when connection state recovery restored this socket. */
  recovered?: true;
}

/** The escalation step that made this socket's user a recipient. */
export interface EscalationReason {
  level: number;
  reason: string;
}

/**
 * `critical_notification`: any JSON object the backend sent, with `id` and `createdAt` filled in.
 * Fields Herald does not know are delivered untouched.
 */
export interface Notification {
  id: string;
  createdAt: Timestamp;
  type?: string;
  severity?: string;
  title?: string;
  message?: string;
  /** Sent again at connect (catch-up) rather than live. */
  redelivered?: true;
  /** A reminder of an escalation policy: 1, 2, ... */
  reminder?: number;
  /** The user or role was added as a recipient by an escalation step. */
  escalation?: EscalationReason;
  [field: string]: unknown;
}

/** `notification_acknowledged`: to every socket of the acknowledging user. */
export interface NotificationAcknowledged {
  notificationId: string;
  acknowledgedAt: Timestamp;
}

/** `notification_escalated`: an escalation step added a role or users as recipients. */
export interface NotificationEscalated {
  notificationId: string;
  level: number;
  to: { role: string } | { users: string[] };
  at: Timestamp;
}

/** `notification_closed`: the first acknowledgement by any recipient closed the notification. */
export interface NotificationClosed {
  notificationId: string;
  closedAt: Timestamp;
  /** The acknowledging user. */
  closedBy: string;
}

/** `session_timeout_warning`: the session's idle timeout is near. */
export interface SessionTimeoutWarning {
  /** Milliseconds left. */
  timeRemaining: number;
  sessionId: string;
  timestamp: Timestamp;
}

/** `session_expired`: the session ended; its sockets are disconnected after this. */
export interface SessionExpired {
  sessionId: string;
  timestamp: Timestamp;
}

/** `session_extended`: the session's idle clock was reset. */
export interface SessionExtended {
  sessionId: string;
  extendedAt: Timestamp;
}

/** Why a client event was refused. */
export type ErrorCode =
  | 'invalid_payload'
  | 'forbidden'
  | 'not_found'
  | 'token_invalid'
  | 'token_expired'
  | 'rate_limited'
  | 'internal_error';

/**
 * `error`: a client event sent without a callback was refused (`event` names it), or the token
 * expired (`event: "token"`, `code: "token_expired"`; the socket is disconnected after this).
 */
export interface HeraldError {
  event: string;
  code: ErrorCode;
  message: string;
}

export type PresenceStatus = 'online' | 'offline';

/** A user's presence now, as `presence_subscribe` and `GET /api/v1/presence` answer it. */
export interface PresenceInfo {
  userId: string;
  status: PresenceStatus;
  /** The last change; null for a user never seen. */
  since: Timestamp | null;
  connections: number;
}

/** `presence`: a user this socket subscribed to came online or went offline. */
export interface PresenceChange {
  userId: string;
  status: PresenceStatus;
  at: Timestamp;
}

/** `presence_batch`: a wide audience's changes of one batch window (`presence.audience`). */
export interface PresenceBatch {
  changes: PresenceChange[];
}

/** One user in a study room: a user with two tabs in it is one member with two connections. */
export interface RoomMember {
  userId: string;
  /** When the user's earliest socket still in the room joined it. */
  since: Timestamp;
  connections: number;
}

/** `room_presence`: who is in a room now, at most once per `rooms.presence_window`. */
export interface RoomPresence {
  room: string;
  members: RoomMember[];
}

/** `typing` as the room's other sockets hear it. */
export interface TypingNews {
  room: string;
  userId: string;
  isTyping: boolean;
  at: Timestamp;
}

/** `file_available`: a file shared with the user, downloadable at `GET /api/v1/files/{fileId}`. */
export interface FileAvailable {
  fileId: string;
  name: string;
  size: number;
  contentType: string;
  /** Lowercase hex SHA-256 of the content. */
  sha256: string;
  expiresAt: Timestamp;
  /** The room a member shared it with. */
  room?: string;
}

/** A socket in a call, as the other side addresses it. */
export interface CallPeer {
  userId: string;
  socketId: string;
}

export type CallMedia = 'audio' | 'video';

/** An `RTCIceServer`, with time-limited TURN credentials when a TURN secret is configured. */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** `call_incoming`: an invitation to a call. */
export interface CallIncoming {
  callId: string;
  from: CallPeer;
  media: CallMedia[];
  iceServers: IceServer[];
}

/** `call_answer` as the call's other sockets hear it. */
export interface CallAnswerNews {
  callId: string;
  from: CallPeer;
  accept: boolean;
}

export type SignalType = 'offer' | 'answer' | 'candidate';

/** `webrtc_signal` as its addressee hears it. */
export interface WebrtcSignalNews {
  callId: string;
  from: CallPeer;
  type: SignalType;
  /** The SDP or ICE candidate, as the sender gave it. */
  payload: unknown;
}

/** `call_ended`: the call is over for everyone. */
export interface CallEnded {
  callId: string;
  /** The user who ended it, or whose socket left; for `timeout`, the caller. */
  by: string;
  /**
   * `ended`: a participant sent `call_end`; `disconnected`: a participant's socket went;
   * `timeout`: nobody invited accepted within `webrtc.ring_timeout`.
   */
  reason: 'ended' | 'disconnected' | 'timeout';
}

/**
 * The events Herald sends. The backend's event API (`POST /api/v1/.../events`) may send any other
 * name with any data; declare those in an interface of your own and intersect it with this one.
 */
export interface ServerToClientEvents {
  connected: (data: Connected) => void;
  critical_notification: (notification: Notification) => void;
  notification_acknowledged: (data: NotificationAcknowledged) => void;
  notification_escalated: (data: NotificationEscalated) => void;
  notification_closed: (data: NotificationClosed) => void;
  session_timeout_warning: (data: SessionTimeoutWarning) => void;
  session_expired: (data: SessionExpired) => void;
  session_extended: (data: SessionExtended) => void;
  error: (data: HeraldError) => void;
  presence: (data: PresenceChange) => void;
  presence_batch: (data: PresenceBatch) => void;
  room_presence: (data: RoomPresence) => void;
  typing: (data: TypingNews) => void;
  file_available: (data: FileAvailable) => void;
  call_incoming: (data: CallIncoming) => void;
  call_answer: (data: CallAnswerNews) => void;
  webrtc_signal: (data: WebrtcSignalNews) => void;
  call_ended: (data: CallEnded) => void;
}

// ---------------------------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------------------------

/** The answer to a refused client event; nothing changed and the socket stays connected. */
export interface Refused {
  ok: false;
  error: { code: ErrorCode; message: string };
}

/** What an acknowledgement callback gets: the event's answer, or a refusal. */
export type Answer<T extends object = {}> = ({ ok: true } & T) | Refused;

/** An acknowledgement callback (optional on every client event). */
export type Ack<T extends object = {}> = (answer: Answer<T>) => void;

/** Answers that list sockets on every node carry `partial: true` when a node did not answer. */
export interface MaybePartial {
  partial?: true;
}

export interface AcknowledgeNotification {
  notificationId: string;
  /** If given, the socket's own user. */
  userId?: string;
}

export interface CallInvite {
  to: { userId: string } | { room: string };
  media: CallMedia[];
}

export interface WebrtcSignal {
  callId: string;
  /** The socket id of the call participant the signal is for. */
  to: string;
  type: SignalType;
  /** At most 64 KiB as JSON. */
  payload: unknown;
}

/** The events Herald accepts, each with an optional acknowledgement callback. */
export interface ClientToServerEvents {
  /** Marks the socket's session active. */
  activity: (ack?: Ack) => void;
  acknowledge_notification: (
    data: AcknowledgeNotification,
    ack?: Ack<{ notificationId: string; acknowledgedAt: Timestamp }>,
  ) => void;
  /** Only the socket's own session; resets its idle clock. */
  extend_session: (data: { sessionId: string }, ack?: Ack<{ sessionId: string; extendedAt: Timestamp }>) => void;
  /** A fresh token for the same user and session: moves the socket's expiry. */
  refresh_token: (data: { token: string }, ack?: Ack<{ expiresAt: Timestamp }>) => void;
  presence_subscribe: (data: { userIds: string[] }, ack?: Ack<{ presence: PresenceInfo[] } & MaybePartial>) => void;
  presence_unsubscribe: (data: { userIds: string[] }, ack?: Ack) => void;
  join_room: (data: { room: string }, ack?: Ack<{ room: string; members: RoomMember[] } & MaybePartial>) => void;
  leave_room: (data: { room: string }, ack?: Ack<{ room: string }>) => void;
  /** Only in a room the socket joined; others hear it at most once a second per user and room. */
  typing: (data: { room: string; isTyping: boolean }, ack?: Ack) => void;
  call_invite: (data: CallInvite, ack?: Ack<{ callId: string; iceServers: IceServer[] }>) => void;
  call_answer: (data: { callId: string; accept: boolean }, ack?: Ack) => void;
  webrtc_signal: (data: WebrtcSignal, ack?: Ack) => void;
  call_end: (data: { callId: string }, ack?: Ack) => void;
}
