// The page's few helpers: elements built from text (user text is never
// parsed as HTML; only a post's server-sanitized body_html is), the API
// over fetch, and times.
import { write } from "./veritable-api.js";

// h("a", { href, class, onclick }, "text", child, [more]) → an element.
// Strings become text nodes; null, undefined and false are skipped.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces what `element` holds.
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A post's body: HTML the server sanitized (veritable.sanitize_html's
// allowlist), the one place markup from users reaches the page.
export function sanitized(bodyHtml, tag = "div") {
  const element = h(tag, { class: "body" });
  element.innerHTML = bodyHtml ?? "";
  return element;
}

// Markdown as the server would store it (`POST /api/v1/preview`), ready to show.
export async function preview(markdown) {
  const rendered = await send("/api/v1/preview", { body: markdown });
  return sanitized(rendered.body_html);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.field = body?.error?.field;
    this.body = body;
  }
}

// GET `path` → its JSON; an error answer throws ApiError.
export async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, null);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// A write, sent once (Idempotency-Key, retried on a lost answer) → its JSON.
export async function send(path, body, method = "POST") {
  const { status, data } = await write(path, body, { method });
  if (status >= 400) throw new ApiError(status, data);
  return data;
}

// "5 min ago", "3 h ago", "2 Dec".
export function ago(iso) {
  const when = new Date(iso);
  const seconds = (Date.now() - when.getTime()) / 1000;
  if (!(seconds >= 0)) return when.toLocaleString();
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return when.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

export function time(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
}

// An error shown where the view is; the view's other content stays.
export function problem(error) {
  return h("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}
