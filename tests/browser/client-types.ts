// Compiled (not run) by forum.test.mjs with `tsc --noEmit --strict`: the
// realtime and write clients used as a TypeScript app would, through their
// .d.ts files. A declaration that drifts from this use fails the test.
import { Realtime, type RealtimeEvent, type User } from "../../client/veritable-realtime.js";
import { write } from "../../client/veritable-api.js";

const seen: RealtimeEvent[] = [];
const rt = new Realtime("ws://127.0.0.1:8080/api/v1/ws", {
  onEvent: (event) => {
    seen.push(event);
    const id: number = event.id;
    const kind: string = event.kind;
    void id, kind;
  },
  onPresence: (room: string, users: User[]) => void users.map((u) => u.username.length + room.length),
  onTyping: (_room, users) => void users.length,
  onStatus: (state, code) => void (state === "open" ? 0 : code ?? 0),
  onSessionEnded: () => rt.connect(),
});
rt.subscribe("topic:1");
rt.subscribe("topic:2", 41);
rt.typing("topic:1");
const here: User[] = rt.members("topic:1");
rt.unsubscribe("topic:2");
rt.close();

async function post(): Promise<number> {
  const { status, data, replayed, key } = await write<{ id: number }>("/api/v1/forums/topics/1/replies", { body: "hi" }, { headers: { authorization: "Bearer x" } });
  void replayed, key, here;
  return status === 201 && data ? data.id : 0;
}
void post;
