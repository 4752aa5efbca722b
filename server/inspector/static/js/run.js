// One run: its summary, timeline, steps (tool calls with code, outputs, images and
// file_search traces) and every model call with the exact request and the raw answer.

import { api, listAll } from "./api.js";
import {
  h,
  json,
  link,
  notice,
  pairs,
  pre,
  score,
  seconds,
  section,
  table,
  tokens,
  usd,
  when,
  yesNo,
} from "./dom.js";
import { download, image } from "./widgets.js";

const enc = encodeURIComponent;
const CONTENT = "step_details.tool_calls[*].file_search.results[*].content";

export async function runView(threadId, runId) {
  const base = `/threads/${enc(threadId)}/runs/${enc(runId)}`;
  const [run, steps, calls, timeline, traces] = await Promise.all([
    api(base),
    listAll(`${base}/steps`, { order: "asc", "include[]": CONTENT }, 500),
    listAll(`${base}/model_calls`, { order: "asc" }, 200),
    api(`${base}/timeline`),
    api(`/threads/${enc(threadId)}/traces`),
  ]);
  const mine = (items) => items.filter((item) => item.run_id === run.id);
  const context = {
    searches: mine(traces.file_search),
    executions: mine(traces.code_interpreter),
  };
  return h(
    "div",
    {},
    h("p", { class: "crumbs" }, link(`#/threads/${enc(threadId)}`, `← Thread ${threadId}`)),
    h("h1", {}, `Run ${run.id}`),
    summary(run),
    section("Timeline", timelineTable(run, timeline.events)),
    section(
      "Steps",
      steps.length ? h("ol", { class: "steps" }, steps.map((s) => h("li", {}, step(s, context)))) : notice("No steps."),
    ),
    section(
      `Model calls (${calls.length})`,
      calls.length ? calls.map((c, i) => modelCall(c, i === 0)) : notice("No model calls were recorded for this run."),
    ),
  );
}

function summary(run) {
  return pairs([
    ["Status", h("span", { class: `status ${run.status}` }, run.status)],
    ["Model", run.model],
    ["Assistant", run.assistant_id],
    ["Created", when(run.created_at)],
    ["Started", when(run.started_at)],
    ["Ended", when(run.completed_at || run.failed_at || run.cancelled_at)],
    ["Last error", run.last_error ? `${run.last_error.code}: ${run.last_error.message}` : null],
    ["Incomplete", run.incomplete_details ? run.incomplete_details.reason : null],
    ["Tokens", tokens(run.usage)],
    ["Tools", run.tools.map((t) => t.type).join(", ") || "none"],
    ["Instructions", run.instructions ? pre(run.instructions) : null],
  ]);
}

function timelineTable(run, events) {
  const start = run.created_at;
  // Steps and the creation are stamped to the second; the rest to the millisecond.
  const coarse = (e) => e.type === "step" || e.type === "created";
  return table(
    "Times are seconds after the run was created (steps to the whole second)",
    ["At", "Event", "Took"],
    events.map((e) => [
      `+${(e.at - start).toFixed(coarse(e) ? 0 : 2)} s`,
      describe(e),
      coarse(e) && e.duration !== null ? `${e.duration} s` : seconds(e.duration),
    ]),
  );
}

function describe(event) {
  const d = event.detail || {};
  switch (event.type) {
    case "created":
      return "created (queued)";
    case "status":
      return `status ${d.from} → ${d.to}`;
    case "model_call": {
      const end = d.error ? `failed: ${d.error.code}` : d.cancelled ? "cancelled" : `finish: ${d.finish_reason}`;
      return `model call #${d.number} to ${d.model} (${end}, ${tokens(d.usage) || "no usage"})`;
    }
    case "tools":
      return `${d.tool} ran ${(d.calls || []).length} call(s)${d.error ? `, failed: ${d.error}` : ""}`;
    case "step":
      return `step ${event.id}: ${d.type}, ${d.status}`;
    default:
      return event.type;
  }
}

function step(s, context) {
  const end = s.completed_at || s.failed_at || s.cancelled_at || s.expired_at;
  const heading = h(
    "h3",
    {},
    `${s.type === "tool_calls" ? "Tool calls" : "Message"} · ${s.status}`,
    end ? ` · ${seconds(end - s.created_at)}` : "",
  );
  const body = [];
  if (s.type === "message_creation") {
    body.push(h("p", {}, "Wrote message ", h("code", {}, s.step_details.message_creation.message_id)));
  } else {
    for (const call of s.step_details.tool_calls) body.push(toolCall(s, call, context));
  }
  if (s.last_error) body.push(notice(`${s.last_error.code}: ${s.last_error.message}`, "error"));
  return h("article", { class: "step", "aria-label": `Step ${s.id}` }, heading, h("p", { class: "id" }, s.id), body);
}

function toolCall(s, call, context) {
  if (call.type === "function") {
    return h(
      "div",
      { class: "call" },
      h("h4", {}, `Function ${call.function.name}`, h("span", { class: "id" }, ` ${call.id}`)),
      pairs([
        ["Arguments", pre(call.function.arguments)],
        ["Output", call.function.output === null ? "(waiting for the client)" : pre(call.function.output)],
      ]),
    );
  }
  if (call.type === "code_interpreter") return codeCall(call, context);
  if (call.type === "file_search") return searchCall(s, call, context);
  return json(call);
}

function codeCall(call, context) {
  const run = context.executions.find((e) => e.call_id === call.id);
  const outputs = call.code_interpreter.outputs || [];
  return h(
    "div",
    { class: "call" },
    h("h4", {}, "code_interpreter", h("span", { class: "id" }, ` ${call.id}`)),
    pairs([
      ["Session", run ? sessionText(run.session) : "not recorded"],
      ["Ran for", run ? seconds(run.seconds) : null],
      ["Timed out", run && run.timed_out ? "yes" : null],
      ["Error", run && run.error ? pre(run.error, "error") : null],
    ]),
    h("h5", {}, "Code"),
    pre(call.code_interpreter.input, "code"),
    h("h5", {}, "Outputs"),
    outputs.length
      ? outputs.map((o) => (o.type === "logs" ? pre(o.logs, "logs") : image(o.image.file_id)))
      : notice("No output."),
    run && Object.keys(run.files).length
      ? [
          h("h5", {}, "Files written"),
          h("ul", {}, Object.entries(run.files).map(([path, id]) => h("li", {}, download(id, path)))),
        ]
      : null,
  );
}

function sessionText(state) {
  return (
    {
      new: "new (no earlier variables)",
      reused: "reused (the thread's live session and its variables)",
      reset: "reset (the session died during this call; its variables are gone)",
    }[state] || state || "unknown"
  );
}

function searchCall(s, call, context) {
  const trace = context.searches.find((t) => t.step_id === s.id && t.id === call.id);
  const fs = call.file_search;
  return h(
    "div",
    { class: "call" },
    h("h4", {}, "file_search", h("span", { class: "id" }, ` ${call.id}`)),
    pairs([
      ["Queries", h("ul", {}, (fs.queries || []).map((q) => h("li", {}, q)))],
      ["Ranking", `${fs.ranking_options.ranker}, score threshold ${fs.ranking_options.score_threshold}`],
      ["Results", String((fs.results || []).length)],
    ]),
    trace ? candidates(trace) : notice("No trace was kept for this call."),
  );
}

function candidates(trace) {
  const rows = trace.candidates.map((c, i) => [
    String(i + 1),
    c.filename,
    link(`#/stores/${enc(c.store_id)}/files/${enc(c.file_id)}?chunk=${enc(c.chunk_id)}`, c.chunk_id),
    score(c.vector_score),
    score(c.keyword_score),
    c.vector_rank ?? "–",
    c.keyword_rank ?? "–",
    score(c.score),
    yesNo(c.selected),
    c.cited ? h("strong", {}, "cited") : "",
  ]);
  return h(
    "div",
    { class: "scroll" },
    table(
      `Every candidate of ${trace.vector_store_ids.join(", ")}, best first`,
      ["#", "File", "Chunk", "Vector", "Keyword", "Vector rank", "Keyword rank", "Fused", "Selected", "Cited"],
      rows,
    ),
  );
}

function modelCall(call, open) {
  const answer = call.response;
  const outcome = call.error ? `failed: ${call.error.code}` : call.cancelled ? "cancelled" : answer.finish_reason;
  const { messages = [], tools = [], model, ...params } = call.request;
  return h(
    "details",
    { class: "model-call", open },
    h(
      "summary",
      {},
      `Call #${call.number} · ${call.model} · ${seconds(call.latency)} · ${tokens(call.usage) || "no usage"} · ${usd(call.cost)} · ${outcome}`,
    ),
    call.truncated ? notice("This record was cut to fit its size cap; cuts are marked in the text.") : null,
    h("h3", {}, "Request"),
    pairs([
      ["Model", model],
      ["Route", call.route],
      ...Object.entries(params).map(([name, value]) => [name, typeof value === "object" ? json(value) : String(value)]),
    ]),
    h("h4", {}, `Messages (${messages.length})`),
    h("ol", { class: "prompt" }, messages.map((m) => h("li", {}, promptMessage(m)))),
    h("h4", {}, `Tools (${tools.length})`),
    tools.length
      ? h(
          "ul",
          {},
          tools.map((t) =>
            h("li", {}, h("details", {}, h("summary", {}, (t.function && t.function.name) || t.type), json(t))),
          ),
        )
      : notice("No tools."),
    h("h3", {}, "Answer"),
    pairs([
      ["Finish reason", answer.finish_reason || "–"],
      ["Tokens", tokens(call.usage)],
      ["Latency", seconds(call.latency)],
      ["First token after", call.first_token_at ? seconds(call.first_token_at - call.started_at) : null],
      ["Cost", usd(call.cost)],
      ["Error", call.error ? `${call.error.code}: ${call.error.message}` : null],
    ]),
    answer.text ? [h("h4", {}, "Text"), pre(answer.text, "answer")] : null,
    answer.tool_calls.length
      ? [
          h("h4", {}, "Tool calls"),
          answer.tool_calls.map((t) => h("div", {}, h("p", {}, h("code", {}, t.name), " ", h("span", { class: "id" }, t.id)), pre(t.arguments))),
        ]
      : null,
  );
}

function promptMessage(m) {
  const content =
    typeof m.content === "string"
      ? pre(m.content)
      : Array.isArray(m.content)
        ? m.content.map((part) => (part.type === "text" ? pre(part.text) : json(part)))
        : null;
  return h(
    "div",
    { class: `prompt-message ${m.role}` },
    h("p", { class: "role" }, m.role, m.tool_call_id ? ` (answer to ${m.tool_call_id})` : ""),
    content,
    m.tool_calls ? json(m.tool_calls) : null,
  );
}
