// veritable realtime client: one WebSocket, rooms that resume where they left
// off after any reconnect, presence and typing. Dependency-free ES module for
// browsers and Node >= 20 (global WebSocket). Protocol: docs/ARCHITECTURE.md.
//
//   const rt = new Realtime("wss://forum.example/api/v1/ws", {
//     onEvent: (e) => ..., onPresence: (room, users) => ..., onResync: (room) => ...,
//   });
//   rt.subscribe("topic:42");
//
// Browsers send the session cookie; elsewhere pass `headers` (Node only),
// e.g. { authorization: "Bearer <token>" }.

const PING_MS = 25000;
const BACKOFF_MS = [250, 500, 1000, 2000, 5000, 10000, 30000];
const TYPING_EVERY_MS = 2000;

export class Realtime {
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    // room -> { since, members: Map(id -> user), typing: Map(id -> {user, timer}) }
    this.rooms = new Map();
    this.typedAt = new Map();
    this.attempt = 0;
    this.socket = null;
    this.wanted = false;
    this.connect();
  }

  // Joins `room`; events after `since` (an event id) come first, then live ones.
  subscribe(room, since = null) {
    if (!this.rooms.has(room)) {
      this.rooms.set(room, { since, members: new Map(), typing: new Map() });
    }
    this.send({ op: "subscribe", room, since: this.rooms.get(room).since });
  }

  unsubscribe(room) {
    const state = this.rooms.get(room);
    if (!state) return;
    state.typing.forEach((t) => clearTimeout(t.timer));
    this.rooms.delete(room);
    this.send({ op: "unsubscribe", room });
  }

  // Tells the room this user is typing (at most once per 2 s per room).
  typing(room) {
    const now = Date.now();
    if (now - (this.typedAt.get(room) || 0) < TYPING_EVERY_MS) return;
    this.typedAt.set(room, now);
    this.send({ op: "typing", room });
  }

  // Who is in `room` now: [{id, username}].
  members(room) {
    const state = this.rooms.get(room);
    return state ? [...state.members.values()] : [];
  }

  connect() {
    this.wanted = true;
    if (this.socket) return;
    const init = this.options.headers ? [{ headers: this.options.headers }] : [];
    const socket = new WebSocket(this.url, ...init);
    this.socket = socket;
    let heard = Date.now();
    let keepalive = null;
    socket.onopen = () => {
      this.status("open");
      for (const [room, state] of this.rooms) this.send({ op: "subscribe", room, since: state.since });
      keepalive = setInterval(() => {
        // Two intervals without a word (our pings get pongs): the link is dead.
        if (Date.now() - heard > 2 * PING_MS) socket.close();
        else this.send({ op: "ping" });
      }, PING_MS);
    };
    socket.onmessage = (message) => {
      heard = Date.now();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.receive(frame);
    };
    socket.onclose = (close) => {
      clearInterval(keepalive);
      this.socket = null;
      for (const state of this.rooms.values()) {
        state.typing.forEach((t) => clearTimeout(t.timer));
        state.typing.clear();
      }
      this.status("closed", close.code);
      // 4401: the session ended (logout, expiry, a changed role): the app
      // signs in again, or calls connect() to go on without it.
      if (close.code === 4401) {
        this.wanted = false;
        this.call("onSessionEnded");
      }
      if (!this.wanted) return;
      // 1008: we broke a rule; wait longer. Others (1001 restart, 1013 too slow, drops): back off.
      const step = Math.min(this.attempt++ + (close.code === 1008 ? 4 : 0), BACKOFF_MS.length - 1);
      const delay = BACKOFF_MS[step] * (0.5 + Math.random() / 2);
      this.retry = setTimeout(() => this.wanted && this.connect(), delay);
    };
    socket.onerror = () => {};
  }

  // Closes for good (until connect() is called again); subscriptions are kept.
  close() {
    this.wanted = false;
    clearTimeout(this.retry);
    if (this.socket) this.socket.close(1000);
  }

  send(op) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(op));
  }

  status(state, code) {
    this.call("onStatus", state, code);
  }

  call(name, ...args) {
    const handler = this.options[name];
    if (handler) handler(...args);
  }

  receive(frame) {
    const state = this.rooms.get(frame.room);
    switch (frame.type) {
      case "event":
        if (!state || (state.since !== null && frame.id <= state.since)) return;
        state.since = frame.id;
        return this.call("onEvent", frame);
      case "subscribed":
        this.attempt = 0;
        if (state && (state.since === null || state.since < frame.cursor)) state.since = frame.cursor;
        return this.call("onSubscribed", frame.room);
      case "resync":
        // Too much was missed: the app reloads the room over HTTP.
        if (state) state.since = null;
        return this.call("onResync", frame.room);
      case "presence":
        if (!state) return;
        if (frame.users) state.members = new Map(frame.users.map((u) => [u.id, u]));
        (frame.joined || []).forEach((u) => state.members.set(u.id, u));
        (frame.left || []).forEach((u) => state.members.delete(u.id));
        return this.call("onPresence", frame.room, this.members(frame.room));
      case "typing":
        return state && this.typingSeen(frame.room, state, frame.user, frame.expires_in_ms);
      case "error":
        return this.call("onError", frame);
    }
  }

  typingSeen(room, state, user, ms) {
    const shown = () => [...state.typing.values()].map((t) => t.user);
    clearTimeout(state.typing.get(user.id)?.timer);
    const timer = setTimeout(() => {
      state.typing.delete(user.id);
      this.call("onTyping", room, shown());
    }, ms);
    state.typing.set(user.id, { user, timer });
    this.call("onTyping", room, shown());
  }
}
