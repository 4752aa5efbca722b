// Threads: the list (newest first, searchable by id or metadata) and one thread with
// its messages (annotations linked to the chunks they cite) and its runs.

import { api, listAll } from "./api.js";
import { h, json, link, notice, pairs, section, seconds, table, tokens, when } from "./dom.js";
import { download, fileName, image } from "./widgets.js";

const enc = encodeURIComponent;

export async function threadsView(params) {
  const query = params.get("q") || "";
  const input = h("input", { id: "q", type: "search", value: query });
  const form = h(
    "form",
    { role: "search", class: "inline" },
    h("label", { for: "q" }, "Search threads by id or metadata"),
    input,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    location.hash = q ? `#/threads?q=${enc(q)}` : "#/threads";
  });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let after;
  const load = async () => {
    const page = await api("/threads", { query: { q: query, limit: 50, after } });
    for (const thread of page.data) {
      body.append(
        h(
          "tr",
          {},
          h("td", {}, link(`#/threads/${enc(thread.id)}`, thread.id)),
          h("td", {}, when(thread.created_at)),
          h("td", {}, metadataText(thread.metadata)),
        ),
      );
    }
    after = page.last_id;
    more.hidden = !page.has_more;
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 3 }, "No threads.")));
  };
  more.addEventListener("click", load);
  await load();
  return h(
    "div",
    {},
    h("h1", {}, "Threads"),
    form,
    h(
      "table",
      {},
      h("caption", {}, query ? `Threads matching “${query}”, newest first` : "Newest first"),
      h(
        "thead",
        {},
        h("tr", {}, ["Thread", "Created", "Metadata"].map((t) => h("th", { scope: "col" }, t))),
      ),
      body,
    ),
    more,
  );
}

function metadataText(metadata) {
  const entries = Object.entries(metadata || {});
  return entries.length ? entries.map(([k, v]) => `${k}: ${v}`).join(", ") : "–";
}

export async function threadView(threadId) {
  const base = `/threads/${enc(threadId)}`;
  const [thread, messages, runs, traces] = await Promise.all([
    api(base),
    listAll(`${base}/messages`, { order: "asc" }, 500),
    listAll(`${base}/runs`, { order: "desc" }, 200),
    api(`${base}/traces`),
  ]);
  const citations = new Map(
    traces.citations.map((c) => [`${c.message_id}:${c.start_index}:${c.text}`, c]),
  );
  return h(
    "div",
    {},
    h("h1", {}, `Thread ${thread.id}`),
    pairs([
      ["Created", when(thread.created_at)],
      ["Metadata", Object.keys(thread.metadata || {}).length ? json(thread.metadata) : "–"],
      ["Tool resources", json(thread.tool_resources || {})],
    ]),
    section(
      "Runs",
      runs.length
        ? table(
            "Newest first",
            ["Run", "Status", "Model", "Created", "Took", "Tokens"],
            runs.map((run) => [
              link(`#/threads/${enc(thread.id)}/runs/${enc(run.id)}`, run.id),
              h("span", { class: `status ${run.status}` }, run.status),
              run.model,
              when(run.created_at),
              took(run),
              tokens(run.usage),
            ]),
          )
        : notice("No runs."),
    ),
    section(
      "Messages",
      messages.length
        ? h("ol", { class: "messages" }, messages.map((m) => h("li", {}, message(m, citations))))
        : notice("No messages."),
    ),
  );
}

function took(run) {
  const end = run.completed_at || run.failed_at || run.cancelled_at || run.expires_at;
  return run.started_at && end && end >= run.started_at ? seconds(end - run.started_at) : "";
}

function message(m, citations) {
  return h(
    "article",
    { class: `message ${m.role}`, "aria-label": `${m.role} message ${m.id}` },
    h(
      "header",
      {},
      h("strong", {}, m.role),
      " · ",
      when(m.created_at),
      " · ",
      h("span", { class: "id" }, m.id),
      m.run_id ? [" · ", link(`#/threads/${enc(m.thread_id)}/runs/${enc(m.run_id)}`, m.run_id)] : null,
      m.status !== "completed" ? [" · ", h("span", { class: "status" }, m.status)] : null,
    ),
    m.content.map((part) => contentPart(m, part, citations)),
    m.attachments && m.attachments.length
      ? h(
          "ul",
          { class: "attachments", "aria-label": "Attachments" },
          m.attachments.map((a) =>
            h(
              "li",
              {},
              download(a.file_id, fileName(a.file_id)),
              ` for ${(a.tools || []).map((t) => t.type).join(", ") || "no tool"}`,
            ),
          ),
        )
      : null,
  );
}

function contentPart(m, part, citations) {
  if (part.type === "text") return annotatedText(m, part.text, citations);
  if (part.type === "image_file") return image(part.image_file.file_id);
  if (part.type === "image_url") {
    // Never loaded: the page fetches nothing from outside this server.
    return h("p", { class: "notice" }, "Image by URL (not loaded): ", h("code", {}, part.image_url.url));
  }
  return json(part);
}

/** The text with each annotation made a link: a citation to the chunk it cites, a
 * file_path to a download. Offsets index the text as the API sends it. */
function annotatedText(m, text, citations) {
  const out = h("div", { class: "text" });
  const chars = Array.from(text.value); // offsets count code points, as the server's do
  const slice = (start, end) => chars.slice(start, end).join("");
  const notes = [...(text.annotations || [])].sort((a, b) => a.start_index - b.start_index);
  let at = 0;
  for (const note of notes) {
    if (note.start_index < at) continue;
    out.append(slice(at, note.start_index));
    const shown = slice(note.start_index, note.end_index);
    if (note.type === "file_citation") {
      const found = citations.get(`${m.id}:${note.start_index}:${note.text}`);
      out.append(
        found && found.chunk_id
          ? link(
              `#/stores/${enc(found.vector_store_id)}/files/${enc(found.file_id)}?chunk=${enc(found.chunk_id)}`,
              h("span", { class: "citation", title: `Cites chunk ${found.chunk_id}` }, shown),
            )
          : h("span", { class: "citation", title: `Cites file ${note.file_citation.file_id}` }, shown),
      );
    } else if (note.type === "file_path") {
      out.append(download(note.file_path.file_id, shown));
    } else {
      out.append(shown);
    }
    at = note.end_index;
  }
  out.append(slice(at));
  return out;
}
