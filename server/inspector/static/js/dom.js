// DOM building without markup: every string becomes a text node or an attribute value,
// never HTML, so message text, file names and chunk text (all attacker-controlled) can
// only ever show as text. Nothing in the inspector uses innerHTML.

const SAFE_HREF = /^(#\/|blob:)/;

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === "href") {
      if (!SAFE_HREF.test(value)) throw new TypeError(`refusing link ${value}`);
      el.setAttribute("href", value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  add(el, children);
  return el;
}

export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const link = (href, ...children) => h("a", { href }, ...children);
export const code = (text) => h("code", {}, text);
export const pre = (text, cls) => h("pre", { class: cls }, text);
export const json = (value) => pre(JSON.stringify(value, null, 2), "json");

export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

export function pairs(entries) {
  const dl = h("dl", { class: "pairs" });
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(h("dt", {}, name), h("dd", {}, value));
  }
  return dl;
}

export function table(caption, headers, rows) {
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
  );
}

export function when(unix) {
  if (unix === null || unix === undefined) return "";
  const date = new Date(unix * 1000);
  return h("time", { datetime: date.toISOString() }, date.toLocaleString());
}

export function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

export const score = (value) => (value === null || value === undefined ? "–" : value.toFixed(3));
export const yesNo = (value) => (value ? "yes" : "no");
export const usd = (value) => (value ? `$${value.toFixed(6)}` : "$0");

export function tokens(usage) {
  if (!usage) return "";
  return `${usage.total_tokens} (${usage.prompt_tokens} in, ${usage.completion_tokens} out)`;
}

export function notice(text, cls = "notice") {
  return h("p", { class: cls }, text);
}
