// The exam page: ticket login, identity check, the timed exam, autosave
// with a journal that survives reloads and network drops, and submission.
// Talks only to the candidate API (docs/api.md). No framework, no build.

import * as J from "./journal.js";
import { RENDERERS, el, html } from "./questions.js";

const S = JSON.parse(document.getElementById("cbt-strings").textContent);
const $ = (id) => document.getElementById(id);
// Points and scores as the reader writes them (cbt.templating.DECIMAL_MARK): 0,25 in Vietnamese.
const num = (value) => String(value).replace(".", S.decimal_mark || ".");
const TOKEN = "cbt.token";
const LOADED_AT = Date.now();

const state = {
  token: sessionStorage.getItem(TOKEN),
  session: null,
  form: null,
  items: [], // flat list of questions in order, with .section
  passages: {}, // name ("p1") -> the passage's safe HTML, for questions of an item set
  passageNumber: {}, // name -> 1, 2, ... in the order the form first shows them
  passageQuestions: {}, // name -> indexes in items of the questions it serves
  passageScroll: {}, // name -> how far the student had scrolled it
  answers: {}, // ref -> {value, flagged}
  current: 0,
  offset: 0, // server clock minus ours, in ms
  deadline: null,
  sectionDeadline: null,
  sectionIndex: 0,
  sequential: false,
  sending: false,
  retryMs: 1000,
  warned: new Set(),
  submitting: false,
  offline: false, // the last request could not reach the server
  paused: false,
  pausedAt: null, // when the proctor paused, by the server's clock (ms)
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const sent = Date.now();
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", S.offline);
  }
  const data = await resp.json().catch(() => ({}));
  if (data.server_now) {
    // The server's clock is the truth: correct ours by the offset measured
    // at the middle of the round trip.
    const mid = (sent + Date.now()) / 2;
    state.offset = Date.parse(data.server_now) - mid;
  }
  if (!resp.ok) {
    const err = data.error || {};
    throw new ApiError(resp.status, err.code || "http_" + resp.status, err.message || resp.statusText, err.details);
  }
  return data;
}

const serverNow = () => Date.now() + state.offset;

// ---------------------------------------------------------------- screens

function show(name) {
  for (const id of ["login", "confirm", "exam", "done"]) $("screen-" + id).hidden = id !== name;
  document.body.dataset.screen = name;
}

function announce(text, region = "announce") {
  $(region).textContent = "";
  setTimeout(() => ($(region).textContent = text), 50);
}

function errorText(err) {
  const text = S["error_" + err.code];
  if (!text) return err.message;
  // Placeholders such as {minutes} come from the error's details.
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in err.details ? String(err.details[k]) : m));
}

async function boot() {
  $("login-form").addEventListener("submit", onLogin);
  $("start").addEventListener("click", onStart);
  $("not-me").addEventListener("click", signOut);
  $("prev").addEventListener("click", () => go(state.current - 1));
  $("next").addEventListener("click", () => go(state.current + 1));
  $("flag").addEventListener("click", toggleFlag);
  window.addEventListener("resize", fitPassage);
  $("submit").addEventListener("click", askSubmit);
  $("submit-yes").addEventListener("click", () => { $("submit-dialog").close(); submit(); });
  $("submit-no").addEventListener("click", () => $("submit-dialog").close());
  $("finish-section").addEventListener("click", finishSection);
  window.addEventListener("online", () => flush());
  window.addEventListener("offline", () => setOffline(true));
  keepFocusInside();
  if (!state.token) return showLogin();
  try {
    const session = await api("GET", "/api/v1/session");
    await enter(session);
  } catch (err) {
    if (err.code === "network") {
      // Offline at reload: resume from what this browser kept, if anything.
      setOffline(true);
      return showLogin();
    }
    signOut();
  }
}

// The ticket is the first thing a student types: no Tab needed to reach it.
function showLogin() {
  show("login");
  $("ticket").focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  $("login-error").hidden = true;
  try {
    const session = await api("POST", "/api/v1/login", { ticket: $("ticket").value });
    state.token = session.token;
    sessionStorage.setItem(TOKEN, session.token);
    await enter(session);
  } catch (err) {
    $("login-error").textContent = errorText(err);
    $("login-error").hidden = false;
    $("ticket").focus();
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  state.token = null;
  showLogin();
}

// SEB versions that send no request headers prove themselves through their
// JavaScript API, on the exam page loaded at a URL with a single-use nonce.
async function sebJsCheck() {
  const nonce = new URLSearchParams(location.search).get("seb_nonce");
  if (!nonce) {
    const issued = await api("POST", "/api/v1/seb/nonce", {});
    location.replace(issued.page);
    return false;
  }
  const sec = window.SafeExamBrowser.security;
  if (sec.updateKeys) await new Promise((resolve) => sec.updateKeys(resolve));
  await api("POST", "/api/v1/seb/js-check", { nonce, config_key: sec.configKey, browser_exam_key: sec.browserExamKey });
  history.replaceState(null, "", "/exam");
  return true;
}

async function enter(session) {
  state.session = session;
  if (session.exam.seb_required && window.SafeExamBrowser && window.SafeExamBrowser.security) {
    try {
      if (!(await sebJsCheck())) return;
    } catch (err) {
      $("start-error").textContent = errorText(err);
      $("start-error").hidden = false;
    }
  }
  if (session.result) return showDone(session);
  // Filled before resuming too: a resume refused (the exam is open on another
  // computer, say) comes back to this screen, which must say whose exam it is.
  const c = session.candidate;
  const e = session.exam;
  $("c-name").textContent = c.full_name;
  $("c-code").textContent = c.code;
  $("c-dob").textContent = c.date_of_birth.split("-").reverse().join("/");
  $("c-class").textContent = [c.class_name, c.room].filter(Boolean).join(" · ");
  $("c-exam").textContent = e.title;
  $("c-time").textContent = S.minutes.replace("{n}", String(Math.round(e.time_allowed_minutes)));
  $("c-instructions").textContent = e.instructions || "";
  $("access-code-wrap").hidden = !e.access_code_required || !!session.attempt;
  if (session.attempt) return onStart(); // resume straight into the exam
  show("confirm");
  $("start").focus();
}

async function onStart() {
  $("start-error").hidden = true;
  let data;
  try {
    data = await api("POST", "/api/v1/start", { access_code: $("access-code").value.trim().toUpperCase() });
  } catch (err) {
    if (err.code === "device_cookie_missing" && !state.cookieRetried) {
      // The refusal carried a new device cookie: once more with it. If this
      // browser does not keep cookies, the second refusal says so.
      state.cookieRetried = true;
      return onStart();
    }
    if (err.code === "admission_wait") {
      // In line behind others pressing Start: the clock has not started yet.
      $("start-error").textContent = S.waiting.replace("{place}", String(err.details.place));
      $("start-error").hidden = false;
      show("confirm");
      setTimeout(onStart, Math.max(500, 1000 * err.details.retry_after));
      return;
    }
    $("start-error").textContent = errorText(err);
    $("start-error").hidden = false;
    show("confirm");
    return;
  }
  state.session = data;
  if (data.result) return showDone(data);
  state.form = data.form;
  state.items = [];
  for (const section of data.form.sections) {
    for (const item of section.items) state.items.push({ ...item, section: section.index });
  }
  indexPassages(data.form.passages || {});
  state.sequential = data.form.sections.some((s) => s.time_limit_minutes);
  state.answers = data.answers || {};
  applyTimes(data.attempt);
  // Replay what this browser saved but the server has not acknowledged:
  // after a reload or a network drop, nothing the student did is lost.
  for (const entry of journal()) applyLocal(entry);
  showRefused();
  J.nextSeq(localStorage, attemptId(), data.attempt.saved_seq);
  $("x-title").textContent = data.exam.title;
  show("exam");
  buildNav();
  // After a reload: the question the student was on, if it is still open to them.
  const kept = state.items.findIndex((q) => q.ref === localStorage.getItem(currentKey()));
  const first = state.items.findIndex((q) => !state.sequential || q.section === state.sectionIndex);
  go(kept >= 0 && visible(state.items[kept]) ? kept : first < 0 ? 0 : first);
  tick();
  setInterval(tick, 500);
  // Deadline changes (extra time, a pause) reach the page within seconds
  // even when the student is not answering.
  setInterval(refreshState, 5000);
  watchIntegrity();
  watchSecondTab();
  flush();
}

// ---------------------------------------------------------------- integrity

function reportIntegrity(kind) {
  api("POST", "/api/v1/integrity", { events: [{ kind }] })
    .then((r) => { if (r.action === "pause") refreshState(); })
    .catch(() => {}); // best effort: the exam goes on
}

// The same attempt open in two tabs of this browser: each tab says hello on
// a channel named after the attempt; whoever hears another reports it.
function watchSecondTab() {
  if (!("BroadcastChannel" in window)) return;
  const channel = new BroadcastChannel("cbt-attempt-" + attemptId());
  channel.onmessage = (ev) => {
    if (ev.data === "hello") channel.postMessage("here");
    reportIntegrity("second_tab");
  };
  channel.postMessage("hello");
}

// Focus in another window for longer than this is leaving the exam; a
// moment (a system notification taking focus and giving it back) is not.
const AWAY_MS = 2000;
// The exam page gone for longer than this (another site opened in its tab,
// then back) is leaving it; a reload or the language switch takes less.
const GONE_MS = 5000;
// When this page last unloaded during the attempt (localStorage: a reload keeps it).
const goneKey = () => `cbt.gone.${attemptId()}`;

// What is reported is what leaves the exam: the page hidden (another tab, the
// window minimised), fullscreen left, focus in another window for more than a
// moment, the page gone for longer than a reload. Not a reload or the
// language switch as such (the page itself unloading: it is hidden as it
// goes), and not Tab past the last control, which keepFocusInside wraps round.
function watchIntegrity() {
  let unloading = false;
  let away = null;
  const report = (kind) => { if (!unloading) reportIntegrity(kind); };
  const cameBack = (since) => {
    const gone = Number(localStorage.getItem(goneKey()) || 0);
    localStorage.removeItem(goneKey());
    if (gone && since - gone > GONE_MS) report("visibility_hidden");
  };
  window.addEventListener("beforeunload", () => (unloading = true));
  window.addEventListener("pagehide", () => {
    unloading = true;
    if (document.body.dataset.screen === "exam") localStorage.setItem(goneKey(), String(Date.now()));
  });
  // Back from the browser's cache (Back, then Forward): the page is alive again.
  window.addEventListener("pageshow", (ev) => {
    unloading = false;
    if (ev.persisted) cameBack(Date.now());
  });
  cameBack(LOADED_AT);
  document.addEventListener("visibilitychange", () => { if (document.hidden) report("visibility_hidden"); });
  window.addEventListener("blur", () => {
    clearTimeout(away);
    away = setTimeout(() => {
      // Hidden meanwhile: reported as that already.
      if (!document.hidden && !document.hasFocus()) report("blur");
    }, AWAY_MS);
  });
  window.addEventListener("focus", () => clearTimeout(away));
  document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement) report("fullscreen_exit"); });
  for (const kind of ["copy", "paste", "contextmenu"]) {
    document.addEventListener(kind, (ev) => { ev.preventDefault(); report(kind); });
  }
}

const FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]";

function tabStops(scope) {
  return [...scope.querySelectorAll(FOCUSABLE)].filter((e) => e.tabIndex >= 0 && !e.disabled &&
    !e.closest("[inert], [hidden]") && e.getClientRects().length > 0 &&
    // Of a radio group only one is a stop: the checked one, else the first.
    !(e.type === "radio" && e.name && !e.checked &&
      (scope.querySelector(`input[type=radio][name="${CSS.escape(e.name)}"]:checked`) ||
       scope.querySelector(`input[type=radio][name="${CSS.escape(e.name)}"]`)) !== e));
}

// Tab from the last control (or Shift+Tab from the first) would move focus to
// the browser's own bar: the window loses focus as if the student had left.
// Focus wraps round within the page instead (within an open dialog, if any).
function keepFocusInside() {
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Tab" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const scope = document.querySelector("dialog[open]") || document.body;
    const stops = tabStops(scope);
    if (!stops.length) return;
    const at = document.activeElement;
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (!ev.shiftKey && (at === last || !scope.contains(at))) {
      ev.preventDefault();
      first.focus();
    } else if (ev.shiftKey && (at === first || !scope.contains(at) || at === document.body)) {
      ev.preventDefault();
      last.focus();
    }
  });
}

// ---------------------------------------------------------------- journal

const attemptId = () => state.session.attempt.id;
// The question on screen, so that a reload comes back to it.
const currentKey = () => `cbt.current.${attemptId()}`;

const journal = () => J.entries(localStorage, attemptId());

function record(item, kind, value) {
  applyLocal(J.record(localStorage, attemptId(), item, kind, value));
  updateNav();
  setSaveState("pending");
  scheduleFlush();
}

function applyLocal(entry) {
  const a = (state.answers[entry.item] ||= { value: null, flagged: false });
  if (entry.kind === "flag") a.flagged = entry.value;
  else a.value = entry.value;
}

// The server refused changes as malformed: they leave the journal, kept aside and shown.
function withdraw(batch, err) {
  J.withdraw(localStorage, attemptId(), batch, err, (ref) => state.items.some((q) => q.ref === ref));
  showRefused();
}

function showRefused() {
  const numbers = [...new Set(J.refused(localStorage, attemptId()).map((e) => state.items.findIndex((q) => q.ref === e.item) + 1))]
    .filter((n) => n > 0).sort((a, b) => a - b);
  $("refused").textContent = numbers.length ? S.refused.replace("{list}", numbers.join(", ")) : "";
  $("refused").hidden = !numbers.length;
}

let flushTimer = null;
function scheduleFlush() {
  clearTimeout(flushTimer);
  flushTimer = setTimeout(flush, 400);
}

async function flush() {
  if (state.sending || !state.session || !state.session.attempt) return;
  const entries = journal();
  if (!entries.length) return setSaveState("saved");
  state.sending = true;
  const batch = J.batchOf(entries);
  try {
    const data = await api("POST", "/api/v1/changes", { attempt_id: attemptId(), changes: batch });
    const left = J.acknowledge(localStorage, attemptId(), data.saved_seq);
    applyTimes(data);
    setOffline(false);
    // Saved: nothing holds this attempt back any more (a pause, another computer).
    if (state.paused) refreshState(); // and the deadline the resume moved is a read away
    else $("paused").hidden = true;
    state.retryMs = 1000;
    setSaveState(left.length ? "pending" : "saved");
    // More to send goes at once; but if none of what was sent was acknowledged
    // (a change before it never reached the server), not in a tight loop.
    if (left.length) setTimeout(flush, batch.some((e) => e.seq <= data.saved_seq) ? 50 : 5000);
  } catch (err) {
    if (err.code === "bad_change" || err.code === "bad_json" || err.status === 413) {
      // The server will never take this batch as it is: take the bad change
      // out, and the changes queued behind it go on.
      withdraw(batch, err);
      setTimeout(flush, 50);
    } else if (err.code === "network" || err.status >= 500) {
      setOffline(err.code === "network");
      setTimeout(flush, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 10000);
    } else if (err.code === "attempt_closed") {
      await finishUp(err);
    } else if (err.code === "section_closed") {
      // Answers to a section that has ended cannot count: withdrawn, keeping
      // their seq, and shown as not saved. Flags and withdrawals go on.
      await refreshState();
      const sectionOf = (ref) => state.items.find((q) => q.ref === ref)?.section;
      J.withdrawWhere(localStorage, attemptId(), (e) => e.kind === "answer" && sectionOf(e.item) !== state.sectionIndex, err);
      showRefused();
      scheduleFlush();
    } else if (err.status === 401) {
      setSaveState("pending");
      signOut(); // the journal stays in this browser and is sent after signing in again
    } else if (err.code === "paused") {
      // Kept in the journal: sent once the proctor resumes.
      setPaused(true);
      refreshState(); // when the pause began, to stop the clock at the right time
      setSaveState("pending");
      setTimeout(flush, 5000);
    } else if (["device_locked", "device_cookie_missing", "network_refused"].includes(err.code)) {
      // Kept in the journal: sent once the proctor unlocks.
      $("paused").textContent = errorText(err);
      $("paused").hidden = false;
      setSaveState("pending");
      setTimeout(flush, 5000);
    } else {
      setSaveState("error");
    }
  } finally {
    state.sending = false;
  }
}

function setOffline(off) {
  state.offline = off;
  $("offline").hidden = !off;
  const now = $("save-state").dataset.state;
  if (off && now === "pending") setSaveState("offline");
  if (!off && now === "offline") setSaveState("pending");
}

// Unsaved while the server cannot be reached is said as it is: kept here,
// sent when the network is back; not "saving..." for as long as that takes.
function setSaveState(kind) {
  if (kind === "pending" && state.offline) kind = "offline";
  $("save-state").textContent = S["save_" + kind];
  $("save-state").dataset.state = kind;
}

// ---------------------------------------------------------------- time

function applyTimes(t) {
  if (t.deadline) state.deadline = Date.parse(t.deadline);
  if ("paused" in t) setPaused(t.paused, t.paused_at);
  if ("section_deadline" in t) state.sectionDeadline = t.section_deadline ? Date.parse(t.section_deadline) : null;
  if (typeof t.section_index === "number" && t.section_index !== state.sectionIndex) {
    state.sectionIndex = t.section_index;
    if (state.items.length) {
      buildNav();
      const first = state.items.findIndex((q) => q.section === state.sectionIndex);
      if (first >= 0) go(first);
    }
  }
}

function fmt(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
}

// While paused the server's clock stops for this attempt (its deadline moves
// by the paused time on resume): so does the page's.
const attemptNow = () => (state.paused ? state.pausedAt : serverNow());

function setPaused(paused, pausedAt) {
  const was = state.paused;
  state.pausedAt = !paused ? null : pausedAt ? Date.parse(pausedAt) : was ? state.pausedAt : serverNow();
  state.paused = !!paused;
  if (paused) {
    $("paused").textContent = S.paused;
    $("paused").hidden = false;
  } else if (was) {
    $("paused").hidden = true;
  }
  document.body.classList.toggle("is-paused", !!paused);
  // Nothing to answer or press until the proctor resumes, by mouse or keyboard.
  for (const part of document.querySelectorAll("#screen-exam .exam-body, #screen-exam .qfoot")) part.inert = !!paused;
  tick();
}

function tick() {
  if (!state.deadline || document.body.dataset.screen !== "exam") return;
  const now = attemptNow();
  const left = state.deadline - now;
  $("timer").textContent = fmt(left);
  for (const mins of [5, 1]) {
    if (left <= mins * 60000 && left > 0 && !state.warned.has(mins)) {
      state.warned.add(mins);
      $("timer").classList.add("warn");
      announce(S["warn_" + mins]);
    }
  }
  if (state.sequential && state.sectionDeadline) {
    $("section-timer-wrap").hidden = false;
    const sl = state.sectionDeadline - now;
    $("section-timer").textContent = fmt(sl);
    if (sl <= 0 && !state.paused && !state.sectionClosing) {
      state.sectionClosing = true;
      finishSection(true).finally(() => (state.sectionClosing = false));
    }
  } else {
    $("section-timer-wrap").hidden = true;
  }
  if (left <= 0 && !state.paused && !state.submitting) timeIsUp();
}

// The page's clock says the time is up: the server's says whether it is (a
// pause or extra time the page has not heard of yet moves the deadline).
async function timeIsUp() {
  if (state.checkingTime) return;
  state.checkingTime = true;
  try {
    await refreshState();
    if (document.body.dataset.screen === "exam" && !state.paused && state.deadline <= serverNow()) await submit(true);
  } finally {
    // While the server does not take the submission, ask again every few seconds, not every tick.
    setTimeout(() => (state.checkingTime = false), 3000);
  }
}

// ---------------------------------------------------------------- questions

function visible(q) {
  return !state.sequential || q.section === state.sectionIndex;
}

function answered(ref) {
  const v = (state.answers[ref] || {}).value;
  if (v === null || v === undefined || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.values(v).some((x) => x !== null && x !== undefined);
  return true;
}

function buildNav() {
  const nav = $("qnav");
  nav.textContent = "";
  let lastSection = -1;
  let group = null; // the questions of one passage, marked together in the map
  state.items.forEach((q, i) => {
    if (!visible(q)) return;
    if (q.section !== lastSection) {
      lastSection = q.section;
      group = null;
      const h = document.createElement("p");
      h.className = "qnav-section";
      h.textContent = state.form.sections[q.section].title;
      nav.append(h);
    }
    const name = passageOf(q);
    if (name && (!group || group.dataset.passage !== name)) {
      group = el("div", { class: "qnav-set", "data-passage": name },
        el("p", { class: "qnav-set-label", text: passageTitle(name) }));
      nav.append(group);
    } else if (!name) {
      group = null;
    }
    const b = document.createElement("button");
    b.type = "button";
    b.className = "qbtn";
    b.dataset.index = String(i);
    b.textContent = String(i + 1);
    b.addEventListener("click", () => go(i));
    (group || nav).append(b);
  });
  $("finish-section").hidden = !(state.sequential && state.sectionIndex < state.form.sections.length - 1);
  updateNav();
}

function updateNav() {
  for (const b of $("qnav").querySelectorAll(".qbtn")) {
    const q = state.items[Number(b.dataset.index)];
    const a = state.answers[q.ref] || {};
    b.classList.toggle("answered", answered(q.ref));
    b.classList.toggle("flagged", !!a.flagged);
    b.classList.toggle("current", Number(b.dataset.index) === state.current);
    const label = [S.question + " " + b.textContent];
    if (passageOf(q)) label.push(S.passage_of.replace("{n}", String(state.passageNumber[q.passage])));
    label.push(answered(q.ref) ? S.legend_answered : S.not_answered);
    if (a.flagged) label.push(S.legend_flagged);
    b.setAttribute("aria-label", label.join(", "));
    if (Number(b.dataset.index) === state.current) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

function go(i) {
  if (i < 0 || i >= state.items.length || !visible(state.items[i])) return;
  state.current = i;
  localStorage.setItem(currentKey(), state.items[i].ref);
  renderQuestion(state.items[i], i);
  showPassage(state.items[i]);
  updateNav();
  $("prev").disabled = !state.items[i - 1] || !visible(state.items[i - 1]);
  $("next").disabled = !state.items[i + 1] || !visible(state.items[i + 1]);
}

function renderQuestion(q, i) {
  const box = $("question");
  box.textContent = "";
  const a = state.answers[q.ref] || { value: null, flagged: false };
  box.append(el("h2", { class: "qtitle", text: `${S.question} ${i + 1} · ${num(q.points)} ${S.points}` }));
  box.append(html(el("div", { class: "stem", id: "stem-" + q.ref }), q.stem));
  const group = el("fieldset", { class: "answer", "aria-describedby": "stem-" + q.ref });
  group.append(el("legend", { class: "visually-hidden", text: S["type_" + q.type] }));
  const render = RENDERERS[q.type];
  if (render) {
    render(group, q, a.value, {
      S,
      answer: (value) => record(q.ref, "answer", value),
      now: () => (state.answers[q.ref] || {}).value,
    });
  }
  box.append(group);
  $("flag").setAttribute("aria-pressed", String(!!a.flagged));
  $("flag").textContent = a.flagged ? S.unflag : S.flag;
}

// ---------------------------------------------------------------- passages

// A form's passages are numbered as the student meets them; each knows the
// questions it serves (side by side, as forms keep a set's children).
function indexPassages(passages) {
  state.passages = passages;
  state.passageNumber = Object.create(null);
  state.passageQuestions = Object.create(null);
  state.items.forEach((q, i) => {
    if (!passageOf(q)) return;
    if (!(q.passage in state.passageNumber)) {
      state.passageNumber[q.passage] = Object.keys(state.passageNumber).length + 1;
      state.passageQuestions[q.passage] = [];
    }
    state.passageQuestions[q.passage].push(i);
  });
}

const passageOf = (q) => (q.passage && typeof state.passages[q.passage] === "string" ? q.passage : null);
const passageTitle = (name) => S.passage.replace("{n}", String(state.passageNumber[name]));

// "3–7" for questions side by side, else "3, 5, 8".
function questionList(indexes) {
  const numbers = indexes.map((i) => i + 1);
  const run = numbers.every((n, k) => k === 0 || n === numbers[k - 1] + 1);
  return run && numbers.length > 1 ? `${numbers[0]}–${numbers[numbers.length - 1]}` : numbers.join(", ");
}

// The passage beside (or, on a narrow screen, above) the question it serves.
// Moving between questions of one passage leaves the panel alone, so the
// student's place in the text stays; a change of passage is said once, politely.
function showPassage(q) {
  const panel = $("passage");
  const name = passageOf(q);
  const was = panel.hidden ? null : panel.dataset.passage;
  if (name === was) return fitPassage();
  if (was) state.passageScroll[was] = panel.scrollTop;
  $("stage").classList.toggle("with-passage", !!name);
  panel.hidden = !name;
  if (!name) return;
  const serves = S.passage_serves.replace("{list}", questionList(state.passageQuestions[name]));
  if (panel.dataset.passage !== name) {
    $("passage-title").textContent = passageTitle(name);
    $("passage-serves").textContent = serves;
    html($("passage-text"), state.passages[name]);
    panel.dataset.passage = name;
  }
  fitPassage();
  panel.scrollTop = state.passageScroll[name] || 0;
  announce(`${passageTitle(name)}: ${serves}.`, "announce-polite");
}

// Beside the question, the panel reaches down to just above the Previous/Next
// bar: on a lab screen the question, its answer controls and that bar stay in
// view however far the passage is scrolled.
function fitPassage() {
  const panel = $("passage");
  if (panel.hidden) return;
  const foot = document.querySelector("#screen-exam .qfoot");
  const top = $("stage").getBoundingClientRect().top + window.scrollY;
  const below = foot.offsetHeight + parseFloat(getComputedStyle(foot).marginTop) + 12;
  panel.style.setProperty("--passage-max", `${Math.max(240, Math.floor(window.innerHeight - top - below))}px`);
}

function toggleFlag() {
  const q = state.items[state.current];
  const flagged = !(state.answers[q.ref] || {}).flagged;
  record(q.ref, "flag", flagged);
  $("flag").setAttribute("aria-pressed", String(flagged));
  $("flag").textContent = flagged ? S.unflag : S.flag;
}

// ---------------------------------------------------------------- sections and submit

async function refreshState() {
  try {
    const data = await api("GET", "/api/v1/state");
    // Read from this computer, so it is not locked out: only a pause is left to show.
    if (!data.attempt.paused) $("paused").hidden = true;
    applyTimes(data.attempt);
    if (data.result) showDone(data);
  } catch {
    /* the next flush will try again */
  }
}

async function finishSection(timeUp) {
  if (!timeUp && !confirm(S.finish_section_confirm)) return;
  await flush();
  try {
    const data = await api("POST", "/api/v1/sections/next", { attempt_id: attemptId(), from_section: state.sectionIndex });
    applyTimes(data.attempt);
  } catch (err) {
    if (err.code === "network") setTimeout(() => finishSection(true), 2000);
  }
}

function askSubmit() {
  const missing = state.items.map((q, i) => (answered(q.ref) ? null : i + 1)).filter(Boolean);
  $("unanswered").textContent = missing.length ? S.unanswered.replace("{list}", missing.join(", ")) : S.all_answered;
  $("submit-dialog").showModal();
}

async function submit(timeUp) {
  if (state.submitting) return;
  state.submitting = true;
  try {
    // Send the journal first; then submit (idempotent), retrying until it lands.
    for (let i = 0; i < 120; i++) {
      await flush();
      if (!journal().length || state.paused) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (;;) {
      try {
        const data = await api("POST", "/api/v1/submit", { attempt_id: attemptId() });
        if (timeUp) announce(S.time_up);
        return showDone(data);
      } catch (err) {
        // Refused (paused, on another computer, already handed in): the server says which.
        if (err.code !== "network" && err.status < 500) return await finishUp(err);
        setOffline(true);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  } finally {
    state.submitting = false;
  }
}

// A submit or a save was refused: "submitted" is shown only if the server
// says the attempt is; otherwise the exam goes on as the server has it.
async function finishUp(err) {
  try {
    const data = await api("GET", "/api/v1/session");
    if (data.result) return showDone(data);
    if (data.attempt) applyTimes(data.attempt);
    if (err && err.code !== "paused" && err.code !== "attempt_closed") {
      $("paused").textContent = errorText(err);
      $("paused").hidden = false;
    }
  } catch {
    setSaveState("error");
  }
}

function showDone(data) {
  const r = data.result || {};
  $("d-receipt").textContent = r.receipt || "";
  if (r.receipt_token) {
    $("d-verify").href = "/receipt?token=" + encodeURIComponent(r.receipt_token);
    $("d-verify").hidden = false;
    $("d-qr").src = "/receipt/qr.svg?token=" + encodeURIComponent(r.receipt_token);
    $("d-qr").hidden = false;
  }
  if (r.score) {
    $("d-score").hidden = false;
    $("d-score").textContent = S.score.replace("{total}", num(r.score.total)).replace("{max}", num(r.score.max)) +
      (r.score.provisional ? " " + S.provisional : "");
  }
  if (state.session && state.session.attempt) {
    // A lab computer serves the next student too: nothing of these answers stays.
    J.forget(localStorage, attemptId());
    localStorage.removeItem(currentKey());
    localStorage.removeItem(goneKey());
  }
  show("done");
}

boot();
