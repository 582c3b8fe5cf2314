// Forums: the topic list of a category, a topic with its reply tree (pages
// and cut threads continued on demand), replies arriving live, who is here
// and who is typing, and the reply box with a server-rendered preview.
import { app, whoami } from "./app.js";
import { h, fill, get, send, sanitized, time, problem, preview as rendered, ApiError } from "./dom.js";

const PAGE = 20;
const TREE_ROWS = 100;

let categories = null;
async function allCategories() {
  categories ??= (await get("/api/v1/forums/categories")).items;
  return categories;
}

export async function topics(main, { category = null, cursor = null }) {
  const query = new URLSearchParams({ limit: PAGE });
  if (category) query.set("category", category);
  if (cursor) query.set("cursor", cursor);
  const [cats, page] = await Promise.all([allCategories(), get(`/api/v1/forums/topics?${query}`), whoami]);
  const here = category ? `#/c/${category}` : "#/";
  const current = cats.find((c) => c.id === category);
  const fresh = h("p", { class: "notice", hidden: true }, "New topics were posted. ", h("a", { href: here }, "Show them"));
  fill(
    main,
    h("div", { class: "row" }, h("h1", { class: "grow" }, current ? current.name : "All topics"),
      app.me && h("a", { class: "button", href: `#/new${category ? `?category=${category}` : ""}` }, "New topic")),
    current?.description && h("p", { class: "muted" }, current.description),
    h("nav", { class: "tabs" },
      h("a", { href: "#/", "aria-current": category ? null : "page" }, "All"),
      cats.map((c) => h("a", { href: `#/c/${c.id}`, "aria-current": c.id === category ? "page" : null }, c.name))),
    fresh,
    page.items.length ? h("ul", { class: "list", id: "topics" }, page.items.map(topicRow)) : h("p", { class: "muted" }, "No topics yet."),
    h("div", { class: "pager" },
      cursor ? h("a", { href: here }, "← Newest") : h("span"),
      page.next_cursor ? h("a", { href: `${here}?${new URLSearchParams({ cursor: page.next_cursor })}` }, "Older →") : h("span")),
  );
  if (category) app.join(`category:${category}`);
  return {
    onEvent: (event) => {
      if (event.kind === "topic.created") fresh.hidden = false;
    },
  };
}

function topicRow(t) {
  return h("li", { "data-id": t.id },
    h("div", { class: "grow" },
      t.is_pinned && h("span", { class: "tag" }, "pinned"),
      t.is_locked && h("span", { class: "tag" }, "locked"),
      h("a", { class: "title", href: `#/t/${t.id}` }, t.title),
      h("div", { class: "meta" }, h("span", {}, t.author_display_name || t.author_name), h("span", {}, t.category_name),
        (t.tags || []).map((tag) => h("span", { class: "tag" }, tag)))),
    h("span", { class: "muted", title: "replies" }, `${t.reply_count} replies`),
    h("span", { class: "muted" }, time(t.last_activity_at)));
}

export async function newTopic(main, category) {
  if (!(await whoami)) return app.go("#/login");
  const cats = await allCategories();
  const error = h("div");
  const form = h("form", { class: "stack" },
    h("label", {}, "Category", h("select", { name: "category_id" },
      cats.map((c) => h("option", { value: c.id, selected: String(c.id) === category }, c.name)))),
    h("label", {}, "Title", h("input", { name: "title", required: true, maxlength: 300 })),
    h("label", {}, "Text (Markdown)", h("textarea", { name: "body", required: true })),
    h("label", {}, "Tags, comma-separated", h("input", { name: "tags" })),
    error,
    h("div", {}, h("button", { type: "submit" }, "Post topic")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const tags = String(data.get("tags")).split(",").map((t) => t.trim()).filter(Boolean);
    try {
      const topic = await send("/api/v1/forums/topics", {
        category_id: Number(data.get("category_id")), title: data.get("title"), body: data.get("body"), tags,
      });
      app.go(`#/t/${topic.id}`);
    } catch (e) {
      fill(error, problem(e));
    }
  });
  fill(main, h("h1", {}, "New topic"), form);
}

// A topic: its post, the reply tree in display order (a flat list indented
// by depth), the reply box, and the room's live events.
export async function topic(main, id) {
  const [t, tree] = await Promise.all([
    get(`/api/v1/forums/topics/${id}`),
    get(`/api/v1/forums/topics/${id}/replies?limit=${TREE_ROWS}`),
    whoami,
  ]);
  const room = `topic:${id}`;
  const list = h("div", { id: "replies" });
  const more = h("button", { class: "secondary", id: "more" }, "More replies");
  const here = h("span", { id: "here" });
  const typing = h("span", { id: "typing" });
  // `after`: the last row the tree's pages walked (live replies may follow it).
  const view = { list, id, done: !tree.has_more, after: tree.items.at(-1)?.id };
  document.title = `${t.title} · veritable`;
  fill(
    main,
    h("p", { class: "muted" }, h("a", { href: `#/c/${t.category.id}` }, t.category.name)),
    h("h1", { id: "title" }, t.title),
    h("article", { class: "post" },
      h("div", { class: "meta" }, h("strong", {}, t.author.display_name || t.author.username), time(t.created_at),
        (t.tags || []).map((tag) => h("span", { class: "tag" }, tag)), t.is_locked && h("span", { class: "tag" }, "locked")),
      sanitized(t.body_html)),
    h("p", { class: "muted" }, h("span", { id: "count" }, `${t.reply_count} replies`)),
    h("div", { class: "who" }, here, typing),
    list,
    more,
    composer(view, room, t.is_locked),
  );
  addRows(view, tree.items);
  more.hidden = view.done;
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await get(`/api/v1/forums/topics/${id}/replies?limit=${TREE_ROWS}&after=${view.after}`);
      addRows(view, page.items);
      view.after = page.items.at(-1)?.id ?? view.after;
      view.done = !page.has_more;
      more.hidden = view.done;
    } catch (error) {
      more.after(problem(error));
    }
    more.disabled = false;
  });
  app.join(room);
  return {
    onEvent: (event) => {
      if (event.room !== room) return;
      if (event.kind === "reply.created") retried(() => showReply(view, event.data.id));
      else if (event.kind.startsWith("reply.")) retried(() => refreshReply(view, event.data.id));
    },
    onPresence: (r, users) => r === room && fill(here, users.length ? `Here now: ${users.map((u) => u.username).sort().join(", ")}` : ""),
    onTyping: (r, users) => {
      if (r !== room) return;
      const others = users.filter((u) => u.id !== app.me?.id).map((u) => u.username);
      fill(typing, others.length ? `${others.join(", ")} ${others.length > 1 ? "are" : "is"} typing…` : "");
    },
    // Too much was missed while away: read the topic again.
    onResync: (r) => r === room && app.go(`#/t/${id}`),
  };
}

function replyElement(view, r) {
  const element = h("article", { class: `reply${r.is_deleted ? " deleted" : ""}`, id: `r-${r.id}`, "data-id": r.id, "data-depth": r.depth },
    h("div", { class: "meta" }, h("strong", {}, r.author_name), time(r.created_at),
      app.me && !r.is_deleted && h("button", { class: "quiet", onclick: () => view.replyTo(r) }, "Reply")),
    r.is_deleted ? h("div", { class: "body" }, "(deleted)") : sanitized(r.body_html));
  // Set through the CSSOM: the policy refuses style attributes in markup.
  element.style.setProperty("--depth", r.depth);
  if (r.children_cut) {
    const button = h("button", { class: "quiet" }, `Continue this thread (${r.child_count} ${r.child_count === 1 ? "reply" : "replies"})`);
    button.addEventListener("click", () => continueThread(view, r, button));
    element.append(button);
  }
  return element;
}

// Rows in display order, after what is shown; rows shown already are skipped
// (a reply that arrived live before its page).
function addRows(view, rows) {
  for (const r of rows) {
    if (document.getElementById(`r-${r.id}`)) continue;
    view.list.append(replyElement(view, r));
  }
}

// A thread cut at the depth cap: its subtree, page by page, under it.
async function continueThread(view, r, button) {
  button.disabled = true;
  try {
    let after = null;
    let anchor = document.getElementById(`r-${r.id}`);
    for (;;) {
      const page = await get(`/api/v1/forums/replies/${r.id}/replies?limit=${TREE_ROWS}${after ? `&after=${after}` : ""}`);
      for (const row of page.items) {
        if (row.id === r.id || document.getElementById(`r-${row.id}`)) continue;
        const element = replyElement(view, row);
        anchor.after(element);
        anchor = element;
      }
      if (!page.has_more || !page.items.length) break;
      after = page.items[page.items.length - 1].id;
    }
    button.remove();
  } catch (error) {
    button.disabled = false;
    button.after(problem(error));
  }
}

// Where a new reply goes: after its parent's last descendant shown, or at
// the end for a reply to the topic.
function insertionPoint(view, parentId) {
  const parent = parentId && document.getElementById(`r-${parentId}`);
  if (!parent) return null;
  const depth = Number(parent.dataset.depth);
  let last = parent;
  while (last.nextElementSibling && Number(last.nextElementSibling.dataset.depth) > depth) last = last.nextElementSibling;
  return last;
}

async function fetchReply(id) {
  const page = await get(`/api/v1/forums/replies/${id}/replies?depth=1&limit=1`);
  return page.items.find((r) => r.id === id);
}

// An event's read, tried again 1 and 3 s later if it fails (a 503 while a
// proxy restarts, say); after that the reply waits for the next visit.
async function retried(read) {
  for (const wait of [1000, 3000, null]) {
    try {
      return await read();
    } catch (error) {
      if (wait === null) return console.warn("could not show a live change:", error);
      await new Promise((done) => setTimeout(done, wait));
    }
  }
}

// A reply named by an event or just posted: shown once, where it belongs.
export async function showReply(view, id) {
  if (document.getElementById(`r-${id}`)) return;
  let r;
  try {
    r = await fetchReply(id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return;
    throw error;
  }
  if (!r || document.getElementById(`r-${id}`)) return;
  const element = replyElement(view, { ...r, children_cut: false });
  element.classList.add("fresh");
  const after = insertionPoint(view, r.parent_id);
  if (after) after.after(element);
  else view.list.append(element);
  const count = document.getElementById("count");
  const n = Number.parseInt(count.textContent, 10);
  if (Number.isFinite(n)) count.textContent = `${n + 1} replies`;
}

async function refreshReply(view, id) {
  const shown = document.getElementById(`r-${id}`);
  if (!shown) return;
  const r = await fetchReply(id).catch(() => null);
  if (r) shown.replaceWith(replyElement(view, { ...r, children_cut: false }));
  else shown.remove();
}

// The reply box: Markdown, a preview rendered by the server (the HTML the
// reply will be stored with), typing sent to the room.
function composer(view, room, locked) {
  if (!app.me) return h("p", { class: "muted" }, h("a", { href: "#/login" }, "Sign in"), " to reply.");
  if (locked) return h("p", { class: "muted" }, "This topic is locked.");
  let parent = null;
  const to = h("span", { class: "muted" });
  const text = h("textarea", { name: "body", placeholder: "Write a reply (Markdown)", "aria-label": "reply" });
  const preview = h("div", { class: "preview", hidden: true });
  const error = h("div");
  const submit = h("button", { type: "submit" }, "Post reply");
  const previewButton = h("button", { type: "button", class: "secondary" }, "Preview");
  const form = h("form", { class: "composer", id: "composer" }, to, text, preview, error, h("div", { class: "row" }, submit, previewButton));
  view.replyTo = (r) => {
    parent = r.id;
    fill(to, `Replying to ${r.author_name} `, h("button", { type: "button", class: "quiet", onclick: () => { parent = null; fill(to); } }, "cancel"));
    text.focus();
  };
  text.addEventListener("input", () => app.rt.typing(room));
  previewButton.addEventListener("click", async () => {
    if (!preview.hidden) {
      preview.hidden = true;
      previewButton.textContent = "Preview";
      return;
    }
    try {
      fill(preview, await rendered(text.value));
      preview.hidden = false;
      previewButton.textContent = "Edit";
      fill(error);
    } catch (e) {
      fill(error, problem(e));
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    submit.disabled = true;
    try {
      const reply = await send(`/api/v1/forums/topics/${view.id}/replies`, { body: text.value, parent_id: parent });
      text.value = "";
      parent = null;
      fill(to);
      fill(preview);
      preview.hidden = true;
      previewButton.textContent = "Preview";
      fill(error);
      await showReply(view, reply.id);
    } catch (e) {
      fill(error, problem(e));
    }
    submit.disabled = false;
  });
  return form;
}
