// The page's shell: who is signed in, the realtime connection, the header
// and a router over location.hash (#/t/42, #/wiki/home, ...). Each view is a
// function that fills <main> and may return handlers for the realtime
// callbacks of the rooms it joined, and `leave` for when it is left.
import { h, fill, get, send, problem, ApiError } from "./dom.js";
import { Realtime } from "./veritable-realtime.js";
import * as forum from "./forum.js";

export const app = {
  me: null,
  rt: null,
  view: null,
  unread: 0,
  // Joins a room for the current view; left with the view.
  join(room) {
    this.rt.subscribe(room);
    this.view.rooms.push(room);
  },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

// Who is signed in (null: nobody), asked once at load, in parallel with the
// view's own reads: a view that shows what only a signed-in user can do
// awaits this together with its data.
export const whoami = get("/api/v1/me").then(
  (me) => (app.me = me),
  (error) => {
    if (!(error instanceof ApiError && error.status === 401)) console.warn("who am I:", error);
    return (app.me = null);
  },
);

const main = document.getElementById("view");
const live = document.getElementById("live");
const userArea = document.getElementById("user");

const ROUTES = [
  [/^#?\/?$/, (q) => forum.topics(main, { cursor: q.get("cursor") })],
  [/^#\/c\/(\d+)$/, (q, id) => forum.topics(main, { category: Number(id), cursor: q.get("cursor") })],
  [/^#\/t\/(\d+)$/, (q, id) => forum.topic(main, Number(id))],
  [/^#\/new$/, (q) => forum.newTopic(main, q.get("category"))],
  [/^#\/wiki$/, () => import("./wiki.js").then((w) => w.list(main))],
  [/^#\/wiki\/([a-z0-9-]+)$/, (q, slug) => import("./wiki.js").then((w) => w.page(main, slug))],
  [/^#\/wiki\/([a-z0-9-]+)\/edit$/, (q, slug) => import("./wiki.js").then((w) => w.edit(main, slug))],
  [/^#\/search$/, (q) => import("./people.js").then((p) => p.search(main, q.get("q") || ""))],
  [/^#\/notifications$/, () => import("./people.js").then((p) => p.notifications(main))],
  [/^#\/(login|register)$/, (q, mode) => import("./people.js").then((p) => p.signIn(main, mode))],
];

async function route() {
  const [path, query = ""] = location.hash.split("?");
  if (app.view) {
    app.view.leave?.();
    for (const room of app.view.rooms) app.rt.unsubscribe(room);
  }
  app.view = { rooms: [] };
  const view = app.view;
  window.scrollTo(0, 0);
  for (const [pattern, show] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    try {
      const handlers = await show(new URLSearchParams(query), ...match.slice(1));
      if (app.view === view) Object.assign(view, handlers);
    } catch (error) {
      if (app.view !== view) return;
      if (error instanceof ApiError && error.status === 404) fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the forums")));
      else fill(main, problem(error));
    }
    return;
  }
  fill(main, h("h1", {}, "Not found"));
}

// The unread count beside the user's name: read once, then kept by the
// user's own room (notification.created) and by the notifications view.
export async function countUnread() {
  if (!app.me) return;
  try {
    const page = await get("/api/v1/notifications?unread=true&limit=100");
    showUnread(page.items.length, page.next_cursor !== null);
  } catch {
    // The badge is a convenience: it waits for the next event.
  }
}

export function showUnread(count, more = false) {
  app.unread = count;
  const badge = document.getElementById("unread");
  if (!badge) return;
  badge.dataset.count = String(count);
  badge.textContent = more ? `${count}+` : String(count);
}

function header() {
  if (!app.me) {
    fill(userArea, h("a", { href: "#/login" }, "Sign in"), h("a", { href: "#/register" }, "Register"));
    return;
  }
  fill(
    userArea,
    h("a", { href: "#/notifications", title: "notifications" }, "Notifications ", h("span", { id: "unread", class: "badge", "data-count": "0" }, "0")),
    h("span", { class: "muted", id: "me" }, `@${app.me.username}`),
    h("button", { class: "secondary", onclick: signOut }, "Sign out"),
  );
}

async function signOut() {
  try {
    await send("/api/v1/auth/logout", undefined);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) return alert(error.message);
  }
  location.hash = "#/";
  location.reload();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const call = (name) => (...args) => app.view?.[name]?.(...args);
  app.rt = new Realtime(`${scheme}://${location.host}/api/v1/ws`, {
    onStatus: (state) => {
      live.dataset.state = state;
      live.textContent = state === "open" ? "live" : "reconnecting…";
    },
    onEvent: (event) => {
      if (event.kind === "notification.created" && event.room === `user:${app.me?.id}`) {
        showUnread(app.unread + 1);
      }
      call("onEvent")(event);
    },
    onPresence: call("onPresence"),
    onTyping: call("onTyping"),
    onResync: call("onResync"),
    // Signed out elsewhere, or the session expired: the page starts again anonymous.
    onSessionEnded: () => location.reload(),
  });
}

async function boot() {
  connect();
  whoami.then((me) => {
    header();
    if (!me) return;
    app.rt.subscribe(`user:${me.id}`);
    countUnread();
  });
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new FormData(event.target).get("q").trim();
    if (q) app.go(`#/search?${new URLSearchParams({ q })}`);
  });
  window.addEventListener("hashchange", route);
  await route();
}

boot();
