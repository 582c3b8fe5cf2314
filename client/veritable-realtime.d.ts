// Types of veritable-realtime.js (the protocol: docs/ARCHITECTURE.md, "WebSocket").

/** A room: `topic:{id}`, `category:{id}`, `wiki:{slug}` or `user:{id}` (one's own). */
export type Room = string;

export interface User {
  id: number;
  username: string;
}

/** One change, from the events outbox; `id` is its place in the room's order. */
export interface RealtimeEvent {
  type: "event";
  room: Room;
  id: number;
  /** e.g. "reply.created", "topic.updated", "wiki.revised", "notification.created". */
  kind: string;
  data: Record<string, unknown>;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
}

export interface RealtimeOptions {
  /** Node only: headers of the upgrade, e.g. `{ authorization: "Bearer <token>" }`. Browsers send the cookie. */
  headers?: Record<string, string>;
  onEvent?(event: RealtimeEvent): void;
  /** Joined; events after the cursor follow. */
  onSubscribed?(room: Room): void;
  /** Too much was missed: reload the room over HTTP. */
  onResync?(room: Room): void;
  /** Who is in the room now. */
  onPresence?(room: Room, users: User[]): void;
  /** Who is typing in the room now (each expires by itself). */
  onTyping?(room: Room, users: User[]): void;
  /** "open" or "closed" (with the close code); the client reconnects by itself. */
  onStatus?(state: "open" | "closed", code?: number): void;
  /** The session ended (close code 4401): sign in again, or call connect() to go on anonymously. */
  onSessionEnded?(): void;
  onError?(frame: ErrorFrame): void;
}

export class Realtime {
  constructor(url: string, options?: RealtimeOptions);
  readonly url: string;
  /** Joins `room`; events after `since` (an event id) come first, then live ones. */
  subscribe(room: Room, since?: number | null): void;
  unsubscribe(room: Room): void;
  /** Tells the room this user is typing (sent at most once per 2 s per room). */
  typing(room: Room): void;
  /** Who is in `room` now. */
  members(room: Room): User[];
  /** Opens the socket (again, after close()). */
  connect(): void;
  /** Closes for good, until connect(); subscriptions are kept. */
  close(): void;
}
