// Drives client/veritable-realtime.js for tests/tests/client.rs: commands as
// JSON lines on stdin, every callback as a JSON line on stdout.
//   node --experimental-websocket tests/js/drive.mjs ws://127.0.0.1:PORT/api/v1/ws [token]
import { createInterface } from "node:readline";
import { Realtime } from "../../client/veritable-realtime.js";

if (typeof WebSocket === "undefined") {
  console.error(`Node ${process.version} has no WebSocket: the client tests need Node >= 20.10`);
  process.exit(2);
}
const [url, token] = process.argv.slice(2);
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const rt = new Realtime(url, {
  headers: token ? { authorization: `Bearer ${token}` } : undefined,
  onStatus: (state, code) => say({ on: "status", state, code }),
  onSubscribed: (room) => say({ on: "subscribed", room, since: rt.rooms.get(room)?.since }),
  onEvent: (event) => say({ on: "event", event }),
  onResync: (room) => say({ on: "resync", room }),
  onPresence: (room, users) => say({ on: "presence", room, users: users.map((u) => u.username).sort() }),
  onTyping: (room, users) => say({ on: "typing", room, users: users.map((u) => u.username).sort() }),
  onError: (frame) => say({ on: "error", frame }),
});

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  switch (command.do) {
    case "subscribe": rt.subscribe(command.room); break;
    case "unsubscribe": rt.unsubscribe(command.room); break;
    case "typing": rt.typing(command.room); break;
    case "close": rt.close(); break;
    case "connect": rt.connect(); break;
    case "drop": rt.socket?.close(); break; // as if the network dropped: the client reconnects by itself
    case "exit": rt.close(); process.exit(0);
  }
}
