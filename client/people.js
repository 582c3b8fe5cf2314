// Signing in and registering, one's notifications, and search.
import { app, whoami, showUnread } from "./app.js";
import { h, fill, get, send, time, problem } from "./dom.js";

export function signIn(main, mode) {
  const registering = mode === "register";
  const error = h("div");
  const form = h("form", { class: "stack", id: "sign-in" },
    h("label", {}, "Username", h("input", { name: "username", required: true, autocomplete: "username", minlength: 3, maxlength: 32 })),
    registering && h("label", {}, "Email", h("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", required: true, minlength: 8,
      autocomplete: registering ? "new-password" : "current-password" })),
    error,
    h("div", { class: "row" }, h("button", { type: "submit" }, registering ? "Register" : "Sign in"),
      registering ? h("a", { href: "#/login" }, "I have an account") : h("a", { href: "#/register" }, "Create an account")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    try {
      await send(registering ? "/api/v1/auth/register" : "/api/v1/auth/login", data);
      // A new session: the socket and every view start again with it.
      location.hash = "#/";
      location.reload();
    } catch (e) {
      fill(error, problem(e));
    }
  });
  fill(main, h("h1", {}, registering ? "Register" : "Sign in"), form);
}

function describe(n) {
  const who = n.actor?.username ?? "someone";
  const what = { mention: `${who} mentioned you`, reply: `${who} replied to you` }[n.kind] ?? `${who}: ${n.kind}`;
  return n.topic_id ? h("a", { href: `#/t/${n.topic_id}` }, what) : h("span", {}, what);
}

export async function notifications(main) {
  if (!(await whoami)) return app.go("#/login");
  const page = await get("/api/v1/notifications?limit=50");
  const markAll = h("button", { class: "secondary", id: "mark-read" }, "Mark all read");
  markAll.addEventListener("click", async () => {
    try {
      await send("/api/v1/notifications/read", { all: true });
      showUnread(0);
      notifications(main);
    } catch (e) {
      markAll.after(problem(e));
    }
  });
  fill(main,
    h("div", { class: "row" }, h("h1", { class: "grow" }, "Notifications"), markAll),
    page.items.length
      ? h("ul", { class: "list", id: "notifications" }, page.items.map((n) =>
          h("li", { class: n.read_at ? "" : "unread" }, h("span", { class: "grow" }, n.read_at ? "" : "● ", describe(n)),
            h("span", { class: "muted" }, time(n.created_at)))))
      : h("p", { class: "muted" }, "Nothing yet."));
  return {
    onEvent: (event) => event.kind === "notification.created" && notifications(main),
  };
}

export async function search(main, q) {
  document.querySelector("#search input").value = q;
  if (!q) return fill(main, h("h1", {}, "Search"));
  const page = await get(`/api/v1/search?${new URLSearchParams({ q, limit: 30 })}`);
  const link = (item) => {
    if (item.kind === "wiki") return h("a", { href: `#/wiki/${item.slug}` }, item.title);
    return h("a", { href: `#/t/${item.topic_id ?? item.id}` }, item.title);
  };
  fill(main,
    h("h1", {}, "Search: ", q),
    page.items.length
      ? h("ul", { class: "list", id: "results" }, page.items.map((item) =>
          h("li", {}, h("span", { class: "tag" }, item.kind), h("span", { class: "grow" }, link(item)), h("span", { class: "muted" }, time(item.created_at)))))
      : h("p", { class: "muted" }, "No matches."));
}
