// The wiki: the page list, a page (kept current by its room), and the
// editor, whose save names the revision it started from: when someone
// saved first, the server answers 409 with their revision, shown beside
// ours until the writer chooses.
import { app, whoami } from "./app.js";
import { h, fill, get, send, sanitized, time, problem, preview as rendered, ApiError } from "./dom.js";

export async function list(main) {
  const [page] = await Promise.all([get("/api/v1/wiki/pages?limit=100"), whoami]);
  const slug = h("input", { name: "slug", placeholder: "new-page-slug", pattern: "[a-z0-9]+(-[a-z0-9]+)*", required: true, maxlength: 200 });
  const create = h("form", { class: "row" }, slug, h("button", { type: "submit" }, "Create page"));
  create.addEventListener("submit", (event) => {
    event.preventDefault();
    app.go(`#/wiki/${slug.value}/edit`);
  });
  fill(main,
    h("h1", {}, "Wiki"),
    page.items.length
      ? h("ul", { class: "list" }, page.items.map((p) => h("li", {},
          h("a", { class: "title grow", href: `#/wiki/${p.slug}` }, p.title),
          h("span", { class: "muted" }, `revision ${p.current_revision}`), h("span", { class: "muted" }, time(p.updated_at)))))
      : h("p", { class: "muted" }, "No pages yet."),
    app.me && h("h2", {}, "New page"), app.me && create);
}

export async function page(main, slug) {
  const room = `wiki:${slug}`;
  const show = async () => {
    const [p] = await Promise.all([get(`/api/v1/wiki/pages/${slug}`), whoami]);
    document.title = `${p.title} · veritable wiki`;
    fill(main,
      h("p", { class: "muted" }, h("a", { href: "#/wiki" }, "Wiki")),
      h("div", { class: "row" }, h("h1", { class: "grow", id: "title" }, p.title),
        app.me && h("a", { class: "button", href: `#/wiki/${slug}/edit` }, "Edit")),
      h("p", { class: "meta", id: "revision", "data-revision": p.current_revision },
        `Revision ${p.current_revision} by ${p.revision.author}, `, time(p.revision.created_at),
        p.revision.comment ? ` — ${p.revision.comment}` : ""),
      h("article", { class: "post" }, sanitized(p.revision.body_html)));
  };
  await show();
  app.join(room);
  return {
    onEvent: (event) => event.room === room && event.kind === "wiki.revised" && show().catch(() => {}),
  };
}

export async function edit(main, slug) {
  if (!(await whoami)) return app.go("#/login");
  let current = null;
  try {
    current = await get(`/api/v1/wiki/pages/${slug}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  let base = current ? current.current_revision : 0;
  const title = h("input", { name: "title", required: true, maxlength: 300, value: current?.title ?? slug.replaceAll("-", " ") });
  const body = h("textarea", { name: "body", required: true, "aria-label": "page text" });
  body.value = current?.revision.body ?? "";
  const comment = h("input", { name: "comment", maxlength: 500, placeholder: "what changed" });
  const preview = h("div", { class: "preview post", hidden: true });
  const conflict = h("section", { id: "conflict", hidden: true });
  const error = h("div");
  const save = h("button", { type: "submit" }, "Save");
  const previewButton = h("button", { type: "button", class: "secondary" }, "Preview");
  const form = h("form", { class: "stack", id: "editor" },
    h("label", {}, "Title", title), h("label", {}, "Text (Markdown)", body), h("label", {}, "Comment", comment),
    preview, conflict, error, h("div", { class: "row" }, save, previewButton, h("a", { href: current ? `#/wiki/${slug}` : "#/wiki" }, "Cancel")));
  previewButton.addEventListener("click", async () => {
    try {
      fill(preview, await rendered(body.value));
      preview.hidden = false;
    } catch (e) {
      fill(error, problem(e));
    }
  });
  // Someone saved revision `theirs.current_revision` first: their text and
  // ours side by side; saving now keeps what the editor holds on top of theirs.
  const showConflict = (theirs) => {
    base = theirs.current_revision;
    const useTheirs = h("button", { type: "button", class: "secondary" }, "Use their version");
    useTheirs.addEventListener("click", () => {
      title.value = theirs.title;
      body.value = theirs.revision.body;
      conflict.hidden = true;
    });
    fill(conflict,
      h("p", { class: "notice", role: "alert" },
        `${theirs.revision.author} saved revision ${theirs.current_revision} while you were editing. `,
        "Merge their text into yours and save, keep yours (Save), or take theirs."),
      h("div", { class: "conflict" },
        h("div", {}, h("h2", {}, `Theirs (revision ${theirs.current_revision})`), h("pre", { id: "theirs" }, theirs.revision.body)),
        h("div", {}, h("h2", {}, "Yours"), h("pre", { id: "yours" }, body.value))),
      h("div", { class: "row" }, useTheirs));
    conflict.hidden = false;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    fill(error);
    try {
      await send(`/api/v1/wiki/pages/${slug}`, { title: title.value, body: body.value, base_revision: base, comment: comment.value }, "PUT");
      app.go(`#/wiki/${slug}`);
    } catch (e) {
      if (e instanceof ApiError && e.code === "stale_revision" && e.body?.current) showConflict(e.body.current);
      else fill(error, problem(e));
    }
    save.disabled = false;
  });
  fill(main, h("h1", {}, current ? `Edit ${current.title}` : `New page ${slug}`), form);
}
