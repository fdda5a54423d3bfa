// The console page's only script: live updates and the controls, no build step, no dependencies.
// - crm-events arrive as Server-Sent Events (/events/stream) and are listed as they come;
// - the data panels ([data-fragment]) are re-rendered by the server (/fragments) after each
//   event and every REFRESH_MS, and swapped in when they changed: the page never reloads;
// - buttons with data-action and forms with data-action POST to /actions/<name>.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const MAX_EVENTS = 300;
  const shown = {};
  let refreshing = false;
  let again = false;

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const resp = await fetch("/fragments", { headers: { Accept: "application/json" } });
      if (resp.ok) {
        const parts = await resp.json();
        for (const [name, html] of Object.entries(parts)) {
          const el = document.getElementById(name);
          if (el && shown[name] !== html) {
            el.innerHTML = html;
            shown[name] = html;
          }
        }
        document.body.dataset.refreshedAt = String(Date.now());
      }
    } catch (err) {
      // the stack is stopping or restarting: the next tick tries again
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  // ---- crm-events ----------------------------------------------------------------------

  const list = document.getElementById("events");
  const live = document.getElementById("live");

  function text(tag, content, cls) {
    const el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    return el;
  }

  function showEvent(e) {
    const body = e.body || {};
    const li = document.createElement("li");
    li.dataset.type = body.type || "";
    li.dataset.eventId = body.eventId || "";
    li.dataset.messageId = body.messageId || "";
    li.append(text("span", body.type || "(no type)", "type"), " ");
    li.append(text("span", e.problems.length ? "✗ invalid" : "✓ schema", e.problems.length ? "invalid" : "valid"), " ");
    const ids = ["accountId", "userId", "contactId", "conversationId", "messageId", "status", "address"]
      .filter((k) => body[k]).map((k) => k + "=" + body[k]).join(" ");
    li.append(text("span", ids), " ", text("small", e.received.replace("T", " ").slice(0, 23)));
    const details = document.createElement("details");
    details.append(text("summary", "eventId " + (body.eventId || "–")));
    details.append(text("pre", JSON.stringify(body, null, 2)));
    if (e.problems.length) details.append(text("pre", e.problems.join("\n"), "invalid"));
    li.append(details);
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  }

  const stream = new EventSource("/events/stream");
  stream.addEventListener("open", () => { live.textContent = "live"; live.className = "badge status connected"; });
  stream.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "badge warn"; });
  stream.addEventListener("crm-event", (msg) => { showEvent(JSON.parse(msg.data)); refresh(); });

  // ---- controls ------------------------------------------------------------------------

  const toast = document.getElementById("toast");
  let toastTimer = null;

  function say(message, ok) {
    toast.textContent = message;
    toast.className = ok ? "" : "error";
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, ok ? 4000 : 10000);
  }

  async function post(action, data) {
    let ok = false;
    try {
      const resp = await fetch("/actions/" + encodeURIComponent(action), { method: "POST", body: data });
      const body = await resp.json().catch(() => ({}));
      ok = resp.ok;
      say(ok ? body.message : (body.error || resp.status) + ": " + (body.message || ""), ok);
    } catch (err) {
      say("the console did not answer: " + err, false);
    }
    refresh();
    return ok;
  }

  const compose = document.getElementById("compose");
  const composeForm = document.getElementById("compose-form");

  function openCompose(btn) {
    const mode = btn.dataset.compose;
    composeForm.dataset.action = mode;
    for (const name of ["accountId", "conversationId", "messageId"]) composeForm.elements[name].value = btn.dataset[name];
    document.getElementById("compose-title").textContent = mode === "reply" ? "Reply from Gmail" : "Forward from Gmail";
    document.getElementById("compose-about").textContent = (mode === "reply" ? "Re: " : "Fwd: ") + (btn.dataset.about || "");
    document.getElementById("compose-to").hidden = mode === "reply";
    composeForm.elements.to.required = mode === "forward";
    compose.hidden = false;
    composeForm.elements.text.focus();
  }

  function fillDeliver(btn) {
    const form = document.getElementById("deliver-form");
    for (const name of ["from", "name", "to"]) {
      if (btn.dataset[name] !== undefined && btn.dataset[name] !== "") form.elements[name].value = btn.dataset[name];
    }
    form.elements.subject.focus();
  }

  document.addEventListener("click", (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    if (!target) return;
    const btn = target.closest("button[data-action]");
    if (btn) {
      ev.preventDefault();
      const data = new FormData();
      for (const [k, v] of Object.entries(btn.dataset)) if (k !== "action") data.append(k, v);
      post(btn.dataset.action, data);
      return;
    }
    const composer = target.closest("button[data-compose]");
    if (composer) { openCompose(composer); return; }
    const filler = target.closest("button[data-fill]");
    if (filler) { fillDeliver(filler); return; }
    if (target.closest("[data-close-compose]")) { compose.hidden = true; return; }
    if (target.closest("[data-clear-faults]")) {
      const data = new FormData();
      data.append("spec", "{}");
      post("faults", data);
    }
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target instanceof HTMLFormElement ? ev.target : null;
    if (!form || !form.dataset.action) return;
    ev.preventDefault();
    const ok = await post(form.dataset.action, new FormData(form));
    if (ok && form.dataset.reset !== undefined) form.reset();
    if (ok && form.dataset.clear) for (const name of form.dataset.clear.split(" ")) form.elements[name].value = "";
    if (ok && form === composeForm) { form.reset(); compose.hidden = true; }
  });

  setInterval(refresh, REFRESH_MS);
})();
