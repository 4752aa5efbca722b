// Vector stores: the list, one store's files (status, errors) with a search box that
// shows each result's split scores, and a file's chunks in order around a chosen one.

import { api, listAll } from "./api.js";
import { h, link, notice, pairs, pre, score, section, table, when, yesNo } from "./dom.js";
import { fileName } from "./widgets.js";

const enc = encodeURIComponent;

export async function storesView() {
  const stores = await listAll("/vector_stores", { order: "desc" }, 500);
  return h(
    "div",
    {},
    h("h1", {}, "Vector stores"),
    stores.length
      ? table(
          "Newest first",
          ["Store", "Name", "Status", "Files (done / all)", "Embedding model", "Created"],
          stores.map((s) => [
            link(`#/stores/${enc(s.id)}`, s.id),
            s.name || "–",
            s.status,
            `${s.file_counts.completed} / ${s.file_counts.total}`,
            s.embedding_model,
            when(s.created_at),
          ]),
        )
      : notice("No vector stores."),
  );
}

export async function storeView(storeId) {
  const base = `/vector_stores/${enc(storeId)}`;
  const [store, files] = await Promise.all([api(base), listAll(`${base}/files`, { order: "asc" }, 1000)]);
  return h(
    "div",
    {},
    h("p", { class: "crumbs" }, link("#/stores", "← Vector stores")),
    h("h1", {}, `Vector store ${store.name || store.id}`),
    pairs([
      ["Id", store.id],
      ["Status", store.status],
      ["Embedding model", store.embedding_model],
      ["Size", `${store.usage_bytes} bytes`],
      ["Last active", when(store.last_active_at)],
      ["Expires", when(store.expires_at)],
    ]),
    section(
      "Files",
      files.length
        ? table(
            null,
            ["File", "Status", "Error", "Chunking", "Chunks"],
            files.map((f) => [
              fileName(f.id),
              f.status,
              f.last_error ? h("span", { class: "error" }, `${f.last_error.code}: ${f.last_error.message}`) : "",
              f.chunking_strategy.type,
              f.status === "completed" ? link(`#/stores/${enc(store.id)}/files/${enc(f.id)}`, "chunks") : "",
            ]),
          )
        : notice("No files."),
    ),
    section("Search", searchBox(store.id)),
  );
}

function searchBox(storeId) {
  const query = h("input", { id: "search-query", type: "search", required: true });
  const count = h("input", { id: "search-count", type: "number", min: 1, max: 50, value: 10 });
  const ranker = h(
    "select",
    { id: "search-ranker" },
    [
      ["auto", "hybrid (auto)"],
      ["vector", "vector only"],
      ["keyword", "keyword only"],
    ].map(([value, label]) => h("option", { value }, label)),
  );
  const out = h("div", { class: "search-results", "aria-live": "polite" });
  const form = h(
    "form",
    { role: "search", class: "search" },
    h("label", { for: "search-query" }, "Query"),
    query,
    h("label", { for: "search-count" }, "Results"),
    count,
    h("label", { for: "search-ranker" }, "Ranking"),
    ranker,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren(h("p", { "aria-busy": "true" }, "Searching…"));
    try {
      const found = await api(`/vector_stores/${enc(storeId)}/search_trace`, {
        method: "POST",
        body: {
          query: query.value,
          max_num_results: Number(count.value) || 10,
          ranking_options: { ranker: ranker.value },
        },
      });
      out.replaceChildren(searchResults(storeId, found));
    } catch (error) {
      out.replaceChildren(notice(error.message, "error"));
    }
  });
  return h(
    "div",
    {},
    h(
      "p",
      { class: "help" },
      "Runs the same search as vector_stores.search and shows why each passage ranks where it does: " +
        "its vector (meaning) and keyword (BM25) scores, their ranks, and the fused score.",
    ),
    form,
    out,
  );
}

function searchResults(storeId, found) {
  const chunkLink = (c) => link(`#/stores/${enc(storeId)}/files/${enc(c.file_id)}?chunk=${enc(c.chunk_id)}`, c.chunk_id);
  return h(
    "div",
    {},
    found.data.length
      ? h(
          "ol",
          { class: "results" },
          found.data.map((r) =>
            h(
              "li",
              {},
              h("p", {}, h("strong", {}, r.filename), " · ", chunkLink(r)),
              h(
                "p",
                { class: "scores" },
                fused(found.ranking_options, r),
                ` · vector rank ${r.vector_rank ?? "–"} · keyword rank ${r.keyword_rank ?? "–"}`,
              ),
              pre(r.content.map((c) => c.text).join("\n"), "chunk-text"),
            ),
          ),
        )
      : notice("Nothing found."),
    h(
      "details",
      {},
      h("summary", {}, `Every candidate considered (${found.candidates.length})`),
      table(
        null,
        ["Chunk", "File", "Vector", "Keyword", "Vector rank", "Keyword rank", "Fused", "Selected"],
        found.candidates.map((c) => [
          chunkLink(c),
          c.filename,
          score(c.vector_score),
          score(c.keyword_score),
          c.vector_rank ?? "–",
          c.keyword_rank ?? "–",
          score(c.score),
          yesNo(c.selected),
        ]),
      ),
    ),
  );
}

function fused(options, r) {
  const { ranker } = options;
  const parts = `vector ${score(r.vector_score)}, keyword ${score(r.keyword_score)}`;
  if (ranker === "vector" || ranker === "keyword") return `score ${score(r.score)} (${ranker} only; ${parts})`;
  const weights = options.vector_weights || [];
  if (weights.length !== 1) return `fused ${score(r.score)} (best over the queries; ${parts})`;
  const w = weights[0];
  const k = Math.round((1 - w) * 100) / 100;
  return `fused ${score(r.score)} = ${w} × vector ${score(r.vector_score)} + ${k} × keyword ${score(r.keyword_score)}`;
}

/** A file's chunks in document order: around `chunk` (two on each side) when given. */
export async function chunksView(storeId, fileId, params) {
  const base = `/vector_stores/${enc(storeId)}/files/${enc(fileId)}/chunks`;
  const target = params.get("chunk");
  const index = target ? Number(target.slice(target.lastIndexOf(":") + 1)) : null;
  let query = { limit: 50 };
  if (index !== null && Number.isInteger(index)) {
    const first = Math.max(0, index - 2);
    query = first > 0 ? { after: `${fileId}:${first - 1}`, limit: 5 } : { limit: index + 3 };
  }
  const [page, vsFile] = await Promise.all([
    api(base, { query }),
    api(`/vector_stores/${enc(storeId)}/files/${enc(fileId)}`),
  ]);
  const list = h("ol", { class: "chunks" });
  const addChunks = (chunks) => {
    for (const c of chunks) {
      const current = c.id === target;
      list.append(
        h(
          "li",
          { class: current ? "chunk target" : "chunk", "aria-current": current ? "true" : null, value: c.index + 1 },
          h(
            "p",
            { class: "chunk-meta" },
            h("strong", {}, c.id),
            ` · ${c.tokens} tokens · characters ${c.start_index}–${c.end_index}`,
            c.page ? ` · page ${c.page}` : "",
            current ? h("span", { class: "badge" }, " the chunk you followed") : "",
          ),
          pre(c.text, "chunk-text"),
        ),
      );
    }
  };
  addChunks(page.data);
  let last = page.last_id;
  const more = h("button", { type: "button", hidden: !page.has_more }, "Later chunks");
  more.addEventListener("click", async () => {
    const next = await api(base, { query: { after: last, limit: 50 } });
    addChunks(next.data);
    last = next.last_id;
    more.hidden = !next.has_more;
  });
  const node = h(
    "div",
    {},
    h("p", { class: "crumbs" }, link(`#/stores/${enc(storeId)}`, `← Vector store ${storeId}`)),
    h("h1", {}, "Chunks of ", fileName(fileId)),
    pairs([
      ["File", fileId],
      ["Status", vsFile.status],
      ["Chunking", JSON.stringify(vsFile.chunking_strategy)],
    ]),
    target && page.data[0] && page.data[0].index > 0
      ? h("p", {}, link(`#/stores/${enc(storeId)}/files/${enc(fileId)}`, "All chunks from the start"))
      : null,
    page.data.length ? list : notice("No chunks."),
    more,
  );
  if (target) requestAnimationFrame(() => node.querySelector(".target")?.scrollIntoView({ block: "center" }));
  return node;
}
