// The web page in Debian's Chromium, driven by playwright-core, against two
// real proxies (A and B) on one real database. Run by `cargo xtask test`
// (and `cargo xtask browser`), which prepares the database and sets:
//   VERITABLE_PROXY_BIN, VERITABLE_BROWSER_DATABASE_URL, VERITABLE_BROWSER_OUT,
//   VERITABLE_BROWSER_BIG_TOPIC (a topic of VERITABLE_BROWSER_BIG_REPLIES replies), CHROMIUM.
// Screenshots of each page and the measured budgets (budgets.json) go to OUT.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { gzipSync } from "node:zlib";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests with \`cargo xtask browser\``);
  return value;
};
const BIN = env("VERITABLE_PROXY_BIN");
const DATABASE_URL = env("VERITABLE_BROWSER_DATABASE_URL");
const OUT = env("VERITABLE_BROWSER_OUT");
const BIG_TOPIC = Number(env("VERITABLE_BROWSER_BIG_TOPIC"));
const BIG_REPLIES = Number(env("VERITABLE_BROWSER_BIG_REPLIES"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const client = (name) => fileURLToPath(new URL(`../../client/${name}`, import.meta.url));
mkdirSync(OUT, { recursive: true });

// Every client here comes from 127.0.0.1: per-address limits would count them as one;
// the scenes below post more than a person's per-minute allowance.
const LIFTED = {
  VERITABLE_LOGIN_PER_IP: "100000000",
  VERITABLE_LOGIN_PER_ACCOUNT: "100000000",
  VERITABLE_POSTS_PER_MINUTE: "100000000",
  VERITABLE_WRITES_PER_MINUTE: "100000000",
  VERITABLE_REGISTRATIONS_PER_HOUR: "100000000",
  VERITABLE_WS_PER_IP: "100000",
};

// Waits for `check` to return something truthy, asking every 50 ms.
async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => false);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

// A veritable-proxy of this build, started and stopped (SIGTERM: it drains).
class Proxy {
  async start() {
    this.port ??= await freePort();
    this.child = spawn(BIN, ["serve", "--addr", `127.0.0.1:${this.port}`], {
      env: { ...process.env, DATABASE_URL, RUST_LOG: "warn,deadpool=error", ...LIFTED },
      stdio: ["ignore", 2, 2],
    });
    this.exited = once(this.child, "exit");
    await until(`proxy on ${this.port}`, async () => (await fetch(`${this.base}/healthz`)).ok);
  }

  async stop() {
    this.child.kill("SIGTERM");
    await this.exited;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }
}

// The API as a client program would use it (to set the scene).
async function call(base, token, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return data;
}

const run = Date.now().toString(36).slice(-5);
async function register(base, name) {
  const username = `${name}_${run}`;
  const { token, user } = await call(base, null, "POST", "/api/v1/auth/register", {
    username, email: `${username}@example.test`, password: "correct horse battery",
  });
  return { token, id: user.id, username };
}

const A = new Proxy();
const B = new Proxy();
let browser;
let alice;
let bob;
let category;

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

// A signed-in (or, without `user`, anonymous) page, failing the test on any
// dialog, uncaught page error or CSP violation.
async function open(user, { base = A.base } = {}) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 860 } });
  if (user) await context.addCookies([{ name: "veritable_session", value: user.token, url: base }]);
  const page = await context.newPage();
  page.problems = [];
  page.on("dialog", (dialog) => {
    page.problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations = [...(window.__violations || []), `${e.violatedDirective} ${e.blockedURI}`];
    });
  });
  return page;
}

async function clean(page) {
  const violations = await page.evaluate(() => window.__violations || []);
  assert.deepEqual([...page.problems, ...violations], [], "no dialogs, page errors or CSP violations");
  await page.context().close();
}

const shot = (page, name) => page.screenshot({ path: `${OUT}/${name}.png`, fullPage: false });

before(async () => {
  await A.start();
  await B.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  alice = await register(A.base, "alice");
  bob = await register(A.base, "bob");
  category = (await call(A.base, null, "GET", "/api/v1/forums/categories")).items[0].id;
});

after(async () => {
  await browser?.close();
  await Promise.allSettled([A.stop(), B.stop()]);
});

const newTopic = (user, title, body = "What do you think?") =>
  call(A.base, user.token, "POST", "/api/v1/forums/topics", { category_id: category, title, body, tags: [] });
const reply = (user, topic, body, parent = null, base = A.base) =>
  call(base, user.token, "POST", `/api/v1/forums/topics/${topic}/replies`, { body, parent_id: parent });

test("the realtime client is typed (tsc --strict on its .d.ts) and stays within 5 KB gzipped", () => {
  const gzipped = gzipSync(readFileSync(client("veritable-realtime.js")), { level: 9 }).length;
  assert.ok(gzipped <= 5 * 1024, `veritable-realtime.js is ${gzipped} bytes gzipped, over 5 KB`);
  execFileSync("node_modules/.bin/tsc", ["-p", "tsconfig.json"], { stdio: "inherit" });
});

test("a visitor registers and signs in through the page's forms", async () => {
  const page = await open(null);
  await page.goto(`${A.base}/#/register`);
  const username = `carol_${run}`;
  // The server's refusal is shown (the name breaks its rule; the form's own checks pass).
  await page.fill("#sign-in input[name=username]", "no spaces allowed");
  await page.fill("#sign-in input[name=email]", `${username}@example.test`);
  await page.fill("#sign-in input[name=password]", "long enough password");
  await page.click("#sign-in button[type=submit]");
  await page.locator("#sign-in .error", { hasText: "letters, digits" }).waitFor();
  await page.fill("#sign-in input[name=username]", username);
  await shot(page, "register");
  await page.click("#sign-in button[type=submit]");
  await page.locator("#me", { hasText: `@${username}` }).waitFor();
  await page.locator("#topics li").first().waitFor();
  await shot(page, "topics");
  await page.click("text=Sign out");
  await page.locator("#user a", { hasText: "Sign in" }).waitFor();
  await page.click("#user a:has-text('Sign in')");
  await page.fill("#sign-in input[name=username]", username);
  await page.fill("#sign-in input[name=password]", "long enough password");
  await page.click("#sign-in button[type=submit]");
  await page.locator("#me", { hasText: `@${username}` }).waitFor();
  await clean(page);
});

test("two users: a reply appears for the other without a reload; typing shows and expires; presence lists both", async () => {
  const topic = await newTopic(alice, `Live ${run}`);
  const pa = await open(alice);
  const pb = await open(bob);
  await pa.goto(`${A.base}/#/t/${topic.id}`);
  await pb.goto(`${A.base}/#/t/${topic.id}`);
  const both = `Here now: ${[alice.username, bob.username].sort().join(", ")}`;
  await pa.locator("#here", { hasText: both }).waitFor();
  await pb.locator("#here", { hasText: both }).waitFor();
  await pa.evaluate(() => (window.__samePage = true));

  await pb.fill("#composer textarea", "Hello from **Bob**");
  await pa.locator("#typing", { hasText: `${bob.username} is typing` }).waitFor();
  await shot(pa, "topic-typing");
  await until("typing to expire", () => pa.evaluate(() => document.getElementById("typing").textContent === ""));

  await pb.click("#composer button[type=submit]");
  const arrived = pa.locator("#replies .reply", { hasText: "Hello from Bob" });
  await arrived.waitFor();
  assert.equal(await arrived.locator(".body strong").textContent(), "Bob", "the body is the server's HTML");
  assert.equal(await pa.evaluate(() => window.__samePage), true, "the page was not reloaded");
  assert.equal(await pb.locator("#replies .reply", { hasText: "Hello from Bob" }).count(), 1, "the writer sees it once");

  // Replying to a reply puts the answer under it.
  await pa.locator("#replies .reply", { hasText: "Hello from Bob" }).locator("button", { hasText: "Reply" }).click();
  await pa.fill("#composer textarea", "Hi Bob, welcome");
  await pa.click("#composer button[type=submit]");
  const answer = pb.locator("#replies .reply", { hasText: "Hi Bob, welcome" });
  await answer.waitFor();
  assert.equal(await answer.getAttribute("data-depth"), "1", "one level under Bob's (depth 0)");
  const order = await pb.locator("#replies .reply").evaluateAll((all) => all.map((r) => r.textContent));
  assert.match(order[0], /Hello from Bob/);
  assert.match(order[1], /Hi Bob, welcome/);
  await shot(pb, "topic");
  await clean(pa);
  await clean(pb);
});

test("a proxy restart mid-session: the page resumes and shows the reply posted meanwhile, once", async () => {
  const topic = await newTopic(alice, `Restart ${run}`);
  const page = await open(alice);
  await page.goto(`${A.base}/#/t/${topic.id}`);
  await page.locator("#live[data-state=open]").waitFor();
  await page.locator("#here", { hasText: alice.username }).waitFor();
  await page.evaluate(() => (window.__samePage = true));

  await A.stop();
  await page.locator("#live[data-state=closed]").waitFor();
  const meanwhile = await reply(bob, topic.id, `Posted through B while A was down ${run}`, null, B.base);
  await A.start();

  const shown = page.locator(`#r-${meanwhile.id}`);
  await shown.waitFor({ timeout: 30000 });
  await page.locator("#live[data-state=open]").waitFor();
  // Once: the event, the live resume and any page read cannot show it twice.
  const again = await reply(bob, topic.id, `After the restart ${run}`, null, A.base);
  await page.locator(`#r-${again.id}`).waitFor();
  assert.equal(await page.locator("#replies .reply", { hasText: "while A was down" }).count(), 1);
  assert.equal(await page.evaluate(() => window.__samePage), true, "the page was not reloaded");
  await clean(page);
});

const XSS = [
  "<script>window.__xss = 1</script>",
  '<img src=x onerror="window.__xss = 2">',
  "[click me](javascript:window.__xss=3)",
  '<a href="javascript:window.__xss = 4">link four</a>',
  '<a href="  JaVaScRiPt:window.__xss = 5">link five</a>',
  '<svg onload="window.__xss = 6"><circle r="5"/></svg>',
  '<iframe src="javascript:window.__xss = 7"></iframe>',
  '<details open ontoggle="window.__xss = 8">details</details>',
  '"><script>window.__xss = 9</script>',
  '<form action="javascript:window.__xss = 10"><button>go</button></form>',
  '<a href="data:text/html,<script>window.__xss = 11</script>">link eleven</a>',
  "<style>body { display: none }</style>",
  '<p style="background:url(javascript:window.__xss=12)">styled</p>',
  "<object data=\"javascript:window.__xss = 13\"></object>",
  '<math><mtext><table><mglyph><style><img src=x onerror="window.__xss = 14">',
];

test("a reply and a title carrying XSS shapes render inert: no dialog, no script, no navigation", async () => {
  const title = `<img src=x onerror="window.__xss = 'title'"> Sneaky <b>title</b> ${run}`;
  const topic = await call(A.base, alice.token, "POST", "/api/v1/forums/topics", {
    category_id: category, title, body: "Look <script>window.__xss = 'topic'</script> here", tags: [],
  });
  await reply(bob, topic.id, XSS.join("\n\n"));
  const page = await open(alice);
  const response = await page.goto(`${A.base}/#/t/${topic.id}`);
  const csp = response.headers()["content-security-policy"];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.locator("#replies .reply").first().waitFor();
  assert.equal(await page.locator("#title").textContent(), title, "the title is shown as text");
  await shot(page, "topic-xss");
  for (const text of ["link four", "link five", "link eleven", "click me"]) {
    const link = page.locator("#replies a", { hasText: text });
    if (await link.count()) await link.first().click();
  }
  const formButton = page.locator("#replies button", { hasText: "go" });
  if (await formButton.count()) await formButton.click();
  assert.equal(page.url(), `${A.base}/#/t/${topic.id}`, "no navigation");
  const found = await page.evaluate(() => ({
    xss: window.__xss,
    scripts: document.querySelectorAll(["script", "iframe", "object", "svg", "style", "img", "form", "math"].map((t) => `#view .body ${t}`).join()).length,
    handlers: [...document.querySelectorAll("#view *")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
    javascriptUrls: [...document.querySelectorAll("#view [href], #view [src], #view [action]")]
      .filter((e) => /^\s*(javascript|data):/i.test(e.getAttribute("href") ?? e.getAttribute("src") ?? e.getAttribute("action"))).length,
  }));
  assert.deepEqual(found, { xss: undefined, scripts: 0, handlers: 0, javascriptUrls: 0 });
  await clean(page);
});

test("a wiki edit conflict between two users is shown and resolved", async () => {
  const slug = `conflict-${run}`;
  await call(A.base, alice.token, "PUT", `/api/v1/wiki/pages/${slug}`, { title: "Shared page", body: "The original text.", base_revision: 0 });
  const pa = await open(alice);
  const pb = await open(bob);
  await pa.goto(`${A.base}/#/wiki/${slug}/edit`);
  await pb.goto(`${A.base}/#/wiki/${slug}/edit`);
  await pa.locator("#editor textarea").waitFor();
  await pb.locator("#editor textarea").waitFor();

  await pa.fill("#editor textarea", "Alice's version of the text.");
  await pa.click("#editor button[type=submit]");
  await pa.locator("#revision[data-revision='2']").waitFor();

  await pb.fill("#editor textarea", "Bob's version of the text.");
  await pb.click("#editor button[type=submit]");
  await pb.locator("#conflict", { hasText: `${alice.username} saved revision 2` }).waitFor();
  assert.equal(await pb.locator("#theirs").textContent(), "Alice's version of the text.");
  assert.equal(await pb.locator("#yours").textContent(), "Bob's version of the text.");
  await shot(pb, "wiki-conflict");

  // Bob merges both texts and saves on top of Alice's revision.
  await pb.fill("#editor textarea", "Alice's version of the text. And Bob's addition.");
  await pb.click("#editor button[type=submit]");
  await pb.locator("#revision[data-revision='3']").waitFor();
  assert.match(await pb.locator("article.post").textContent(), /And Bob's addition/);
  // Alice, on the page she saved, sees Bob's revision arrive.
  await pa.locator("#revision[data-revision='3']").waitFor();
  await shot(pa, "wiki-page");
  await clean(pa);
  await clean(pb);
});

test("a deep thread continues on demand; the preview is the server's rendering; mentions notify; search finds", async () => {
  const topic = await newTopic(alice, `Deep thread about zeppelins ${run}`);
  let parent = null;
  for (let level = 1; level <= 13; level++) parent = (await reply(bob, topic.id, `Level ${level} deep`, parent)).id;
  const page = await open(bob);
  await page.goto(`${A.base}/#/t/${topic.id}`);
  await page.locator("#replies .reply", { hasText: "Level 10 deep" }).waitFor();
  assert.equal(await page.locator("#replies .reply", { hasText: "Level 11 deep" }).count(), 0, "cut at the depth cap");
  await page.locator("#replies button", { hasText: "Continue this thread" }).click();
  await page.locator("#replies .reply", { hasText: "Level 13 deep" }).waitFor();

  await page.fill("#composer textarea", "Some **bold** words <script>window.__xss = 'preview'</script>");
  await page.click("#composer button:has-text('Preview')");
  await page.locator("#composer .preview strong", { hasText: "bold" }).waitFor();
  assert.equal(await page.locator("#composer .preview script").count(), 0);

  // A mention from Alice: Bob's unread count goes up without a reload.
  await page.locator("#unread[data-count='0']").waitFor({ state: "attached" });
  await reply(alice, topic.id, `Thanks @${bob.username}, see above`);
  await page.locator("#unread[data-count='1']").waitFor();
  await page.click("#user a[href='#/notifications']");
  await page.locator("#notifications li", { hasText: `${alice.username} mentioned you` }).waitFor();
  await shot(page, "notifications");
  await page.click("#mark-read");
  await page.locator("#unread[data-count='0']").waitFor({ state: "attached" });

  await page.fill("#search input", "zeppelins");
  await page.press("#search input", "Enter");
  await page.locator("#results a", { hasText: `Deep thread about zeppelins ${run}` }).first().waitFor();
  await shot(page, "search");
  await clean(page);
});

test("topic lists page by category, and a long topic's tree loads page after page", async () => {
  const page = await open(null);
  await page.goto(`${A.base}/#/c/${category}`);
  await page.locator("#topics li").first().waitFor();
  const first = await page.locator("#topics li .title").allTextContents();
  assert.equal(first.length, 20, "a page of 20 topics");
  assert.equal(await page.locator(".tabs a[aria-current=page]").count(), 1, "its category marked");
  await page.click("text=Older →");
  await page.locator("text=← Newest").waitFor();
  const older = await page.locator("#topics li .title").allTextContents();
  assert.ok(older.length > 0 && older.every((t) => !first.includes(t)), "the next page holds other topics");
  await page.click("text=← Newest");
  await page.locator("#topics li .title", { hasText: first[0] }).first().waitFor();

  await page.goto(`${A.base}/#/t/${BIG_TOPIC}`);
  await page.locator("#replies .reply").nth(99).waitFor();
  assert.equal(await page.locator("#replies .reply").count(), 100, "the first page of the tree");
  await page.click("#more");
  await page.locator("#replies .reply").nth(199).waitFor();
  const ids = await page.locator("#replies .reply").evaluateAll((all) => all.map((r) => r.dataset.id));
  assert.equal(new Set(ids).size, ids.length, "no reply twice");
  await clean(page);
});

// The seed's budgets, in the browser, on the page of a topic of 50,000
// replies: TTFB ≤ 200 ms, FCP ≤ 1 s, TTI ≤ 3 s, script ≤ 200 KB, total ≤ 1 MB.
test(`the page budgets on a topic of ${BIG_REPLIES} replies`, async () => {
  const runs = [];
  for (let n = 0; n < 5; n++) {
    const page = await open(null); // a new context: a first visit, nothing cached
    await page.goto(`${A.base}/#/t/${BIG_TOPIC}`);
    runs.push(await measure(page, "cold"));
    await page.reload();
    runs.push(await measure(page, "warm"));
    if (n === 0) await shot(page, "topic-50000");
    await clean(page);
  }
  // Reported, not asserted: the same first visit over Lighthouse's mobile
  // profile (150 ms round trips, 1.6 Mbps down, 750 kbps up, CPU 4× slower).
  for (let n = 0; n < 3; n++) {
    const page = await open(null);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 150, downloadThroughput: (1.6e6 / 8), uploadThroughput: (750e3 / 8),
    });
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    await page.goto(`${A.base}/#/t/${BIG_TOPIC}`);
    runs.push(await measure(page, "throttled"));
    await clean(page);
  }
  const KEYS = ["ttfb_ms", "document_ms", "fcp_ms", "tti_ms", "script_bytes", "css_bytes", "document_bytes", "api_bytes", "total_bytes"];
  const median = (visit) => {
    const these = runs.filter((r) => r.visit === visit);
    return Object.fromEntries(KEYS.map((k) => [k, these.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(these.length / 2)]]));
  };
  const summary = {
    topic: BIG_TOPIC,
    replies: BIG_REPLIES,
    proxy: BIN,
    median_cold: median("cold"),
    median_warm: median("warm"),
    median_throttled: median("throttled"),
    runs,
  };
  writeFileSync(`${OUT}/budgets.json`, JSON.stringify(summary, null, 2));
  console.log(`# budgets cold ${JSON.stringify(summary.median_cold)}`);
  console.log(`# budgets throttled ${JSON.stringify(summary.median_throttled)}`);
  const cold = runs.filter((r) => r.visit === "cold");
  for (const r of cold) {
    assert.ok(r.ttfb_ms <= 200, `TTFB ${r.ttfb_ms} ms`);
    assert.ok(r.fcp_ms <= 1000, `FCP ${r.fcp_ms} ms`);
    assert.ok(r.tti_ms <= 3000, `TTI ${r.tti_ms} ms`);
    assert.ok(r.script_bytes <= 200 * 1024, `script ${r.script_bytes} bytes`);
    assert.ok(r.total_bytes <= 1024 * 1024, `total ${r.total_bytes} bytes`);
  }
});

// One visit's figures from the Performance API. TTI: the replies are in the
// page and the main thread has had no long task (> 50 ms) for 50 ms since.
async function measure(page, visit) {
  await page.locator("#replies .reply").nth(99).waitFor();
  const tti = await page.evaluate(async () => {
    const shown = performance.now();
    const longTasks = [];
    const observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries()));
    try {
      observer.observe({ type: "longtask", buffered: true });
    } catch {
      // No long task API: the replies' time stands.
    }
    await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 50)));
    observer.disconnect();
    const lastLong = longTasks.reduce((end, t) => Math.max(end, t.startTime + t.duration), 0);
    return Math.max(shown, lastLong);
  });
  return page.evaluate(({ visit, tti }) => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    const resources = performance.getEntriesByType("resource");
    const sum = (test) => resources.filter((r) => test(new URL(r.name))).reduce((n, r) => n + r.transferSize, 0);
    const figures = {
      visit,
      ttfb_ms: Math.round(nav.responseStart - nav.startTime),
      // Chromium's emulated latency falls on the body, not the first byte:
      // under throttling, the document's last byte is the telling figure.
      document_ms: Math.round(nav.responseEnd - nav.startTime),
      fcp_ms: Math.round(fcp ? fcp.startTime : -1),
      tti_ms: Math.round(tti),
      dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd),
      document_bytes: nav.transferSize,
      script_bytes: sum((u) => u.pathname.endsWith(".js")),
      css_bytes: sum((u) => u.pathname.endsWith(".css")),
      api_bytes: sum((u) => u.pathname.startsWith("/api/")),
      replies_shown: document.querySelectorAll("#replies .reply").length,
      // [path, start, end] of each request after the document, in ms.
      waterfall: resources.map((r) => [new URL(r.name).pathname.replace(/^\/assets\/\w+\//, ""), Math.round(r.startTime), Math.round(r.responseEnd)]),
      requests: resources.length + 1,
    };
    figures.total_bytes = figures.document_bytes + sum(() => true);
    return figures;
  }, { visit, tti });
}
