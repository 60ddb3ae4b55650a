// Server-Sent Events read with `fetch`, so the credential goes in a header (`EventSource` can
// only put it in the URL). Reconnects after a dropped stream, resuming after the last event
// received (`Last-Event-ID`), until `signal` aborts.

import { credential } from "./api.js";

/** Calls `onEvent({ event, id, data })` for each event of `path`, until `signal` aborts. */
export async function listen(path, onEvent, signal) {
  let last = "";
  let backoff = 500;
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream", Authorization: `Bearer ${credential()}` };
      if (last) headers["Last-Event-ID"] = last;
      const response = await fetch(path, { headers, signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      backoff = 500;
      for await (const event of parse(response.body, signal)) {
        if (event.id) last = event.id;
        onEvent(event);
      }
    } catch (error) {
      if (signal.aborted) return;
      console.warn(`the event stream dropped (${error.message}); reconnecting`);
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

/** The events of an SSE body: `event`, `id` and `data` (JSON-parsed when it is JSON). */
async function* parse(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  let event = { event: "message", id: "", data: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (event.data) yield { ...event, data: json(event.data) };
        event = { event: "message", id: "", data: "" };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += event.data ? `\n${text}` : text;
        else if (field === "event") event.event = text;
        else if (field === "id") event.id = text;
      }
    }
  }
}

function json(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
