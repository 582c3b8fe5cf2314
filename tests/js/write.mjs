// Drives client/veritable-api.js for tests/tests/realtime/presence.rs: posts
// one reply with write(), then sends it again with the same key; one JSON
// line per answer.
//   node tests/js/write.mjs http://127.0.0.1:PORT TOKEN TOPIC
import { write } from "../../client/veritable-api.js";

const [base, token, topic] = process.argv.slice(2);
const headers = { authorization: `Bearer ${token}` };
const url = `${base}/api/v1/forums/topics/${topic}/replies`;
const first = await write(url, { body: "written once by the JS client" }, { headers });
const again = await write(url, { body: "written once by the JS client" }, { headers, key: first.key });
for (const answer of [first, again]) process.stdout.write(JSON.stringify(answer) + "\n");
