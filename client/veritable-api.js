// veritable API writes that happen once: every write carries an
// Idempotency-Key, and one whose answer was lost (a network error, a 503, a
// request with the same key still running) is sent again with the same key,
// so the server writes it at most once and answers every attempt alike.
// Dependency-free ES module for browsers and Node >= 20. Protocol:
// docs/ARCHITECTURE.md ("Idempotency-Key").
//
//   const { status, data } = await write("/api/v1/forums/topics/42/replies", { body: "hi" });
//
// Browsers send the session cookie; elsewhere pass `headers`, e.g.
// { authorization: "Bearer <token>" }. Resolves { status, data, replayed, key };
// rejects only when every attempt failed on the network.

const RETRY_MS = [250, 1000, 3000];

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

export async function write(url, body, { method = "POST", headers = {}, key = crypto.randomUUID() } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { ...headers, "content-type": "application/json", "idempotency-key": key },
    body: body === undefined ? undefined : JSON.stringify(body),
  };
  for (let attempt = 0; ; attempt++) {
    const last = attempt >= RETRY_MS.length;
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      if (last) throw error;
      await sleep(RETRY_MS[attempt]);
      continue;
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    const again = response.status === 503 || (response.status === 409 && data?.error?.field === "Idempotency-Key");
    if (again && !last) {
      const after = Number(response.headers.get("retry-after")) * 1000 || 0;
      await sleep(Math.max(after, RETRY_MS[attempt]));
      continue;
    }
    return { status: response.status, data, replayed: response.headers.get("idempotent-replayed") === "true", key };
  }
}
