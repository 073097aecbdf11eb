// veo-relay console (edges/console.py): one client's jobs, live, with its month's spend.
//
// The API key is asked once and kept in sessionStorage (this tab only). It travels only in the
// Authorization header of fetch() calls to this same API: never in a URL, so no access log,
// history entry or Referer carries it. That is why live updates read GET /jobs/{id}/events with
// fetch() and a ReadableStream (EventSource cannot send a header), and why posters and videos are
// fetched from GET /v1/videos/{id}/content and played from blob: URLs.
"use strict";

(() => {
  // The API's root: the page is <root>/console, whatever prefix a gateway or URL puts before it.
  const BASE = location.pathname.replace(/\/console\/?$/, "");
  const KEY_SLOT = "veorelay.console.key";
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const PAGE_SIZE = 20;
  // Over HTTP/1.1 a browser opens at most 6 connections to an origin; each event stream holds
  // one for as long as its job runs. Follow at most 3 at once (the rest wait their turn and
  // the periodic refresh updates them), so the listing, posters and videos always get through.
  const MAX_STREAMS = 3;
  const REFRESH_MS = 15000;
  const MAX_STREAM_FAILURES = 5;

  // Error codes (core/errors.py) in plain words.
  const PLAIN_ERRORS = {
    rai_filtered: "The provider's safety filter blocked this video. Try rewording the prompt.",
    quota_exceeded: "The provider had no capacity (quota) left for this job. Try again later.",
    budget_exceeded: "Your spending cap was reached, so this job was not run.",
    provider_unavailable: "The video provider was unavailable. Try again in a few minutes.",
    provider_timeout: "The video provider did not answer in time.",
    provider_error: "The video provider failed while making this video.",
    download_expired: "The video was made, but its download link expired before it could be saved.",
    download_invalid: "The provider's file was not a playable video.",
    access_denied: "The provider refused access: the deployment's provider credentials need checking.",
    deadline_exceeded: "The job ran past its deadline and was stopped.",
    cancelled: "The job was cancelled.",
    invalid_request: "The provider refused the request as invalid.",
    unsupported_option: "The chosen model cannot do what was asked.",
    unavailable: "The veo-relay backend did not answer in time. Try again.",
    internal: "Something went wrong inside veo-relay.",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    login: $("login"), keyForm: $("key-form"), key: $("key"), loginError: $("login-error"),
    app: $("app"), who: $("who"), client: $("client"), forget: $("forget"),
    spendText: $("spend-text"), spendBar: $("spend-bar"), spendFill: $("spend-fill"), spendDetail: $("spend-detail"),
    filter: $("status-filter"), refresh: $("refresh"), notice: $("notice"),
    jobs: $("jobs"), empty: $("empty"), more: $("more"), template: $("job-template"),
  };

  let key = sessionStorage.getItem(KEY_SLOT);
  const shown = new Map(); // job id -> {view, el, urls: [object URLs], mediaBuilt}
  const streams = new Map(); // job id -> AbortController
  const waiting = []; // job ids to follow once a stream slot is free
  let cursor = null;
  let generation = 0; // bumped when the list is reset: late answers for the old list are dropped
  let refreshTimer = null;
  let usageTimer = null;

  class AuthError extends Error {}
  class ApiProblem extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.code = error.code;
    }
  }

  // ------------------------------------------------------------------ talking to the API

  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    headers.set("Authorization", `Bearer ${key}`);
    const resp = await fetch(BASE + path, {
      ...init, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
    });
    if (resp.status === 401) {
      signOut("That API key was not accepted. Enter it again.");
      throw new AuthError("unauthenticated");
    }
    return resp;
  }

  async function getJson(path) {
    const resp = await api(path);
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiProblem(resp.status, body);
    return body;
  }

  async function blobUrl(path, entry) {
    const resp = await api(path);
    if (!resp.ok) throw new ApiProblem(resp.status, await resp.json().catch(() => null));
    const url = URL.createObjectURL(await resp.blob());
    entry.urls.push(url);
    return url;
  }

  // ------------------------------------------------------------------ key, sign in and out

  function showLogin(message) {
    ui.app.hidden = true;
    ui.who.hidden = true;
    ui.login.hidden = false;
    ui.loginError.hidden = !message;
    ui.loginError.textContent = message || "";
    ui.key.focus();
  }

  function signOut(message) {
    key = null;
    sessionStorage.removeItem(KEY_SLOT);
    clearJobs();
    clearInterval(refreshTimer);
    refreshTimer = null;
    showLogin(message);
  }

  ui.keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const typed = ui.key.value.trim();
    if (!typed) return;
    key = typed;
    ui.loginError.hidden = true;
    try {
      const usage = await getJson("/usage"); // proves the key before anything is kept
      sessionStorage.setItem(KEY_SLOT, key);
      ui.key.value = "";
      openApp(usage);
    } catch (err) {
      if (!(err instanceof AuthError)) showLogin(`Could not reach the API: ${err.message}`);
    }
  });

  ui.forget.addEventListener("click", () => signOut(""));

  function openApp(usage) {
    ui.login.hidden = true;
    ui.app.hidden = false;
    ui.who.hidden = false;
    if (usage) renderUsage(usage);
    else loadUsage();
    loadJobs(true);
    clearInterval(refreshTimer);
    refreshTimer = setInterval(() => {
      if (document.visibilityState === "visible") {
        refreshFirstPage();
        loadUsage();
      }
    }, REFRESH_MS);
  }

  // ------------------------------------------------------------------ spend (GET /usage)

  function money(usd) {
    if (usd === null || usd === undefined) return "—";
    const value = Number(usd);
    return `$${value > 0 && value < 0.01 ? value.toFixed(4) : value.toFixed(2)}`;
  }

  async function loadUsage() {
    try {
      renderUsage(await getJson("/usage"));
    } catch (err) {
      if (!(err instanceof AuthError)) ui.spendDetail.textContent = `Spend could not be loaded: ${err.message}`;
    }
  }

  function loadUsageSoon() {
    clearTimeout(usageTimer);
    usageTimer = setTimeout(loadUsage, 500);
  }

  function renderUsage(usage) {
    const budget = usage.budget || {};
    const total = usage.total || {};
    ui.client.textContent = usage.client_id || "";
    const cap = budget.monthly_usd;
    const counted = Number(budget.month_usd || 0);
    if (cap !== null && cap !== undefined) {
      ui.spendText.textContent = `${money(counted)} of ${money(cap)} monthly budget`;
      const share = cap > 0 ? counted / cap : 1;
      ui.spendBar.hidden = false;
      ui.spendBar.classList.toggle("high", share >= 0.8 && share < 1);
      ui.spendBar.classList.toggle("over", share >= 1);
      ui.spendFill.style.width = `${Math.min(100, Math.round(share * 100))}%`;
      ui.spendBar.title = `${Math.round(share * 100)}% of the monthly budget`;
    } else {
      ui.spendText.textContent = `${money(total.usd)} spent this month (no monthly budget set)`;
      ui.spendBar.hidden = true;
    }
    const parts = [`${money(total.usd)} billed for ${total.billed_jobs || 0} of ${total.jobs || 0} jobs ended since ${usage.from}`];
    if (cap !== null && cap !== undefined) parts.push(`${money(counted)} counted against the budget, jobs in progress included`);
    if (budget.daily_usd !== null && budget.daily_usd !== undefined) parts.push(`today ${money(budget.day_usd)} of ${money(budget.daily_usd)}`);
    if (budget.max_in_flight) parts.push(`${budget.in_flight || 0} of at most ${budget.max_in_flight} jobs in progress`);
    ui.spendDetail.textContent = parts.join(" · ");
  }

  // ------------------------------------------------------------------ the jobs (GET /jobs)

  function clearJobs() {
    generation += 1;
    for (const controller of streams.values()) controller.abort();
    streams.clear();
    waiting.length = 0;
    for (const entry of shown.values()) entry.urls.forEach((url) => URL.revokeObjectURL(url));
    shown.clear();
    ui.jobs.replaceChildren();
    cursor = null;
    ui.more.hidden = true;
  }

  async function loadJobs(reset) {
    if (reset) clearJobs();
    const mine = generation;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (ui.filter.value) params.set("status", ui.filter.value);
    if (!reset && cursor) params.set("cursor", cursor);
    try {
      const page = await getJson(`/jobs?${params}`);
      if (mine !== generation) return;
      page.jobs.forEach((view) => upsert(view));
      cursor = page.next_cursor;
      ui.more.hidden = !cursor;
      ui.empty.hidden = shown.size > 0;
      ui.notice.textContent = "";
    } catch (err) {
      if (!(err instanceof AuthError)) ui.notice.textContent = `Jobs could not be loaded: ${err.message}`;
    }
  }

  async function refreshFirstPage() {
    const mine = generation;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (ui.filter.value) params.set("status", ui.filter.value);
    try {
      const page = await getJson(`/jobs?${params}`);
      if (mine !== generation) return;
      page.jobs.forEach((view) => upsert(view));
      ui.empty.hidden = shown.size > 0;
    } catch (err) {
      if (!(err instanceof AuthError)) ui.notice.textContent = `Jobs could not be refreshed: ${err.message}`;
    }
  }

  ui.filter.addEventListener("change", () => loadJobs(true));
  ui.refresh.addEventListener("click", () => { refreshFirstPage(); loadUsage(); });
  ui.more.addEventListener("click", () => loadJobs(false));

  function newer(a, b) {
    // (created_at, id) descending: the listing's order.
    const ta = Date.parse(a.created_at);
    const tb = Date.parse(b.created_at);
    if (ta !== tb) return ta > tb;
    return a.id > b.id;
  }

  // A timestamp of the API (microseconds, or none when zero) in an order strings can compare.
  const stamp = (iso) => (iso || "").replace(/(\.\d*)?Z$/, (m, frac) => `${(frac || ".").padEnd(7, "0")}Z`);

  // `source`: "events" (the job's event stream) or "listing" (GET /jobs), kept on the row.
  function upsert(view, source = "listing") {
    let entry = shown.get(view.id);
    if (!entry) {
      const el = ui.template.content.firstElementChild.cloneNode(true);
      el.dataset.id = view.id;
      entry = { view: null, el, urls: [], mediaBuilt: false };
      shown.set(view.id, entry);
      // In order: before the first row (as displayed) of a job it is newer than.
      const before = [...ui.jobs.children].find((row) => {
        const other = shown.get(row.dataset.id);
        return other && other !== entry && other.view && newer(view, other.view);
      });
      ui.jobs.insertBefore(el, before || null);
    } else if (entry.view && stamp(entry.view.updated_at) >= stamp(view.updated_at)) {
      return; // nothing newer (a listing read before the stream's last message)
    }
    const was = entry.view && entry.view.status;
    entry.view = view;
    entry.el.dataset.source = source;
    fill(entry);
    if (!TERMINAL.has(view.status)) follow(view.id);
    else if (was && was !== view.status) loadUsageSoon(); // it ended: its cost is settled
    ui.empty.hidden = true;
  }

  function text(el, selector, value) {
    el.querySelector(selector).textContent = value;
  }

  function fill(entry) {
    const { view, el } = entry;
    const request = view.request || {};
    const cost = view.cost || {};
    const firstMedia = (view.outputs || []).map((o) => o.media).find(Boolean);
    el.dataset.status = view.status;
    text(el, ".status", view.status);
    const created = el.querySelector(".created");
    created.dateTime = view.created_at || "";
    created.textContent = view.created_at ? new Date(view.created_at).toLocaleString() : "";
    text(el, ".prompt", request.prompt || "");
    text(el, ".provider", view.provider || "—");
    text(el, ".model", view.model || "—");
    const asked = request.duration_seconds || (cost.basis && cost.basis.seconds);
    text(el, ".duration", firstMedia && firstMedia.duration_seconds
      ? `${Number(firstMedia.duration_seconds).toFixed(1)} s` : asked ? `${asked} s` : "—");
    let costText = cost.estimated_usd === null || cost.estimated_usd === undefined ? "no list price" : money(cost.estimated_usd);
    if (cost.billed === false) costText += " · not billed";
    else if (cost.billed === null || cost.billed === undefined) costText += " (estimate)";
    text(el, ".cost", costText);

    const progress = el.querySelector(".progress");
    const p = view.progress;
    progress.hidden = TERMINAL.has(view.status) || !p;
    if (p) progress.textContent = `${p.stage || view.status}${p.percent !== null && p.percent !== undefined ? ` · ${p.percent}%` : ""}`;

    const problem = el.querySelector(".problem");
    problem.hidden = !view.error;
    if (view.error) {
      text(el, ".error-text", PLAIN_ERRORS[view.error.code] || `The job failed (${view.error.code}).`);
      text(el, ".error-detail", `${view.error.code}: ${view.error.message || ""}`);
    }
    const warnings = el.querySelector(".warnings");
    warnings.replaceChildren(...(view.warnings || []).map((w) => {
      const li = document.createElement("li");
      li.textContent = w.message || w.code;
      return li;
    }));
    warnings.hidden = !(view.warnings || []).length;
    text(el, ".id", `id ${view.id}`);
    if (view.status === "succeeded" && !entry.mediaBuilt) buildMedia(entry);
  }

  // ------------------------------------------------------------------ players (GET /v1/videos/{id}/content)

  function buildMedia(entry) {
    entry.mediaBuilt = true;
    const { view, el } = entry;
    const box = el.querySelector(".media");
    el.classList.add("has-media");
    for (const output of view.outputs || []) {
      const index = output.index;
      const media = output.media || {};
      const wrap = document.createElement("figure");
      wrap.className = "output";
      const player = document.createElement("div");
      player.className = "player";
      if (media.width && media.height && media.height > media.width) player.classList.add("portrait");
      const video = document.createElement("video");
      video.playsInline = true;
      video.preload = "none";
      video.dataset.index = String(index);
      const play = document.createElement("button");
      play.type = "button";
      play.className = "play";
      play.textContent = "▶ Play";
      player.append(video, play);
      const caption = document.createElement("figcaption");
      caption.className = "caption";
      const facts = [];
      if (media.width && media.height) facts.push(`${media.width}×${media.height}`);
      if (media.duration_seconds) facts.push(`${Number(media.duration_seconds).toFixed(1)} s`);
      if (media.has_audio !== undefined) facts.push(media.has_audio ? "sound" : "no sound");
      if (output.size) facts.push(output.size >= 1048576 ? `${(output.size / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(output.size / 1024))} KB`);
      caption.textContent = facts.join(" · ");
      wrap.append(player, caption);
      box.append(wrap);
      const base = `/v1/videos/${view.id}/content?index=${encodeURIComponent(index)}`;
      if (output.poster) {
        blobUrl(`${base}&variant=thumbnail`, entry)
          .then((url) => { video.poster = url; player.dataset.poster = "loaded"; })
          .catch(() => { player.dataset.poster = "failed"; });
      }
      play.addEventListener("click", async () => {
        play.disabled = true;
        play.textContent = "Loading…";
        try {
          const url = await blobUrl(base, entry); // the whole MP4, with the key in the header
          video.src = url;
          video.controls = true;
          play.remove();
          const save = document.createElement("a");
          save.href = url;
          save.download = `${view.id}-${index}.mp4`;
          save.textContent = "Download";
          caption.append(" · ", save);
          await video.play().catch(() => {}); // a browser that refuses autoplay leaves the controls
        } catch (err) {
          if (err instanceof AuthError) return;
          play.disabled = false;
          play.textContent = err.status === 404 ? "Video no longer stored" : "Could not load: retry";
        }
      });
    }
  }

  // ------------------------------------------------------------------ live (GET /jobs/{id}/events)

  function follow(id) {
    if (streams.has(id)) return;
    if (streams.size >= MAX_STREAMS) {
      if (!waiting.includes(id)) waiting.push(id);
      return;
    }
    stream(id);
  }

  function setLive(id, live) {
    const entry = shown.get(id);
    if (entry) entry.el.querySelector(".live").hidden = !live;
  }

  function nextWaiting() {
    while (streams.size < MAX_STREAMS && waiting.length) {
      const id = waiting.shift();
      const entry = shown.get(id);
      if (entry && !TERMINAL.has(entry.view.status)) stream(id);
    }
    ui.notice.textContent = streams.size ? `live: following ${streams.size} job${streams.size > 1 ? "s" : ""}` : "";
  }

  const sleep = (ms, signal) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

  async function stream(id) {
    const controller = new AbortController();
    const { signal } = controller;
    streams.set(id, controller);
    setLive(id, true);
    nextWaiting();
    let lastEventId = null;
    let retryMs = 1000;
    let failures = 0;
    try {
      while (!signal.aborted && failures < MAX_STREAM_FAILURES) {
        const headers = { Accept: "text/event-stream" };
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        let resp;
        try {
          resp = await api(`/jobs/${id}/events`, { headers, signal });
        } catch (err) {
          if (err instanceof AuthError || signal.aborted) return;
          failures += 1;
          await sleep(retryMs * 2 ** failures, signal);
          continue;
        }
        if (resp.status === 204 || resp.status === 404) return; // nothing more to tell, or gone
        if (!resp.ok || !resp.body) {
          failures += 1;
          await sleep(retryMs * 2 ** failures, signal);
          continue;
        }
        let ended = false;
        try {
          ended = await readEvents(resp.body, (message) => {
            if (signal.aborted) return true; // the list was reset (filter, sign-out): this row is gone
            if (message.retry) retryMs = message.retry;
            if (message.id) lastEventId = message.id;
            if (message.event && message.data) {
              upsert(JSON.parse(message.data), "events");
              if (TERMINAL.has(message.event.replace(/^job\./, ""))) return true;
            }
            return false;
          });
        } catch (err) {
          if (signal.aborted) return;
          failures += 1; // cut off mid-stream: resume from the last event
        }
        if (ended) return;
        await sleep(retryMs, signal); // the server renews a long stream: reconnect with Last-Event-ID
      }
    } finally {
      if (streams.get(id) === controller) streams.delete(id);
      setLive(id, false);
      nextWaiting();
    }
  }

  // Server-Sent Events read from a fetch() body (the format EventSource parses: fields up to
  // a blank line; a line starting with ":" is a comment). `onMessage` returns true to stop.
  async function readEvents(body, onMessage) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = {};
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (Object.keys(message).length && onMessage(message)) return true;
            message = {};
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") message.data = message.data === undefined ? value : `${message.data}\n${value}`;
          else if (field === "event") message.event = value;
          else if (field === "id") message.id = value;
          else if (field === "retry" && /^\d+$/.test(value)) message.retry = Number(value);
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  // ------------------------------------------------------------------ start

  if (key) openApp(null);
  else showLogin("");
})();
