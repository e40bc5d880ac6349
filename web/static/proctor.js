// The proctor's live room view: Server-Sent Events from /events, actions
// posted as JSON with the CSRF token, each confirmed first.

const cfg = JSON.parse(document.getElementById("proctor-config").textContent);
const S = cfg.strings;
const base = `/proctor/exams/${encodeURIComponent(cfg.exam)}`;
const q = cfg.room ? `?room=${encodeURIComponent(cfg.room)}` : "";
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...kids);
  return e;
}

function fmt(s) {
  if (s === null || s === undefined) return "";
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// Times in the exam's time zone, as the server names it, with its offset
// ("07:30:05 (GMT+7)"): not the proctor's computer's zone, nor UTC.
let zone = { name: "Asia/Ho_Chi_Minh", label: "GMT+7" };
function clock(iso, seconds = true) {
  const parts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone.name };
  if (seconds) parts.second = "2-digit";
  const text = new Intl.DateTimeFormat(document.documentElement.lang || "vi", parts).format(new Date(iso));
  return `${text} (${zone.label})`;
}

// "Còn lại" counts down between the server's updates: each row holds the
// seconds left when the state was read, and the tick takes off the seconds
// since. A paused attempt's row does not tick (the server stopped its clock).
let readAt = performance.now();
function tick() {
  const gone = Math.floor((performance.now() - readAt) / 1000);
  for (const td of document.querySelectorAll("#candidates td[data-left]")) {
    td.textContent = fmt(Math.max(0, Number(td.dataset.left) - gone));
  }
}
setInterval(tick, 1000);

// Who a per-candidate button acts on, for its accessible name and the result line.
const whoText = (c) => `${c.full_name} (${c.code})`;

async function act(action, extra, question, label, target) {
  if (question && !confirm(question)) return;
  $("action-error").hidden = true;
  $("action-status").textContent = "";
  const resp = await fetch(`${base}/actions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf, Accept: "application/json" },
    body: JSON.stringify({ action, ...extra }),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    $("action-error").textContent = (data.error || {}).message || resp.statusText;
    $("action-error").hidden = false;
  } else {
    if (data.access_code) alert(S.new_code.replace("{code}", data.access_code));
    if (action === "clear_sign_in_lock") {
      alert(S.lock_cleared.replace("{n}", data.cleared).replace("{addrs}", data.addresses.join(", ")));
    }
    // The stream sends a room every few seconds at most: show the action's effect now.
    const now = await fetch(`${base}/state${q}`, { headers: { Accept: "application/json" } });
    if (now.ok) render(await now.json());
    // Then a line that says what was done and to whom (read out: role=status),
    // as some actions (a late admission) change little else on the page.
    $("action-status").textContent = action === "admit" && data.admitted_until
      ? S.admitted.replace("{who}", target).replace("{time}", clock(data.admitted_until, false))
      : S.done.replace("{action}", label).replace("{who}", target);
  }
}

// `target`: whom or what it acts on, in its accessible name ("Tạm dừng — Nguyễn Văn An (0000000001)"),
// as a screen reader reaching the button in a table of thirty rows hears no row.
function button(label, action, extra, question, target) {
  const b = el("button", { type: "button", text: label, "aria-label": `${label} — ${target}` });
  b.addEventListener("click", () => act(action, extra, question, label, target));
  return b;
}

function render(state) {
  if (state.time_zone) zone = state.time_zone;
  readAt = performance.now();
  const rooms = $("rooms");
  rooms.textContent = "";
  for (const r of state.rooms) {
    const where = `${S.room} ${r.room}`;
    rooms.append(el("p", {},
      el("strong", { text: `${where}: ` }),
      el("span", { class: "access-code", text: r.access_code }), " ",
      button(S.rotate, "rotate_code", { room: r.room }, S.confirm_rotate, where),
      button(S.extend_room, "extend", { room: r.room, minutes: 5 }, S.confirm_extend_room.replace("{room}", r.room),
             where),
      button(S.clear_lock, "clear_sign_in_lock", { room: r.room }, S.confirm_clear_lock.replace("{room}", r.room),
             where)));
  }
  const body = $("candidates").querySelector("tbody");
  body.textContent = "";
  for (const c of state.candidates) {
    const who = { candidate: c.code };
    const alerts = [];
    if (c.integrity_events) {
      // Each kind by name: leaving the page is one thing, a paste another.
      const kinds = Object.entries(c.integrity_kinds)
        .map(([kind, n]) => (S["kind_" + kind] || kind + ": {n}").replace("{n}", n));
      if (c.integrity_not_recorded) kinds.push(S.integrity_not_recorded.replace("{n}", c.integrity_not_recorded));
      alerts.push(kinds.join(", "));
    }
    if (c.device_requests) alerts.push(S.device_request);
    if (c.addr_changes) alerts.push(S.addr_changes.replace("{n}", c.addr_changes).replace("{addr}", c.addr));
    if (c.policy_refusals) alerts.push(S.policy_refusals.replace("{n}", c.policy_refusals));
    const actions = el("td", { class: "actions-cell" });
    const name = whoText(c);
    const add = (label, action, extra, question) => actions.append(button(label, action, extra, question, name));
    if (c.state === "not_started") add(S.admit, "admit", { ...who, minutes: 15 }, S.confirm_admit);
    if (c.state === "in_progress") add(S.pause, "pause", who, S.confirm_pause);
    if (c.state === "paused") add(S.resume, "resume", who);
    if (c.state === "in_progress" || c.state === "paused") {
      add(S.extend, "extend", { ...who, minutes: 5 }, S.confirm_extend);
      add(S.terminate, "terminate", who, S.confirm_terminate);
    }
    if (c.device_requests) add(S.unlock, "unlock", who, S.confirm_unlock);
    if (c.policy_refusals) {
      add(S.allow_network, "allow_network", who, S.confirm_allow_network);
      add(S.allow_without_seb, "allow_without_seb", who, S.confirm_allow_without_seb);
    }
    if (c.state !== "not_started" && c.state !== "voided") add(S.void, "void", who, S.confirm_void);
    const stateCell = el("td", { class: "state", text: S["state_" + c.state] || c.state });
    if (c.admitted_until) {
      stateCell.append(el("br"), el("span", { class: "admitted", text: S.admitted_until.replace("{time}",
        clock(c.admitted_until, false)) }));
    }
    // Only a running clock ticks: paused, the time left stands still.
    const left = el("td", { class: "time-left", text: fmt(c.seconds_left) });
    if (c.state === "in_progress" && c.seconds_left !== null) left.dataset.left = c.seconds_left;
    const row = el("tr", { "data-code": c.code, "data-state": c.state },
      el("td", {}, el("strong", { text: c.full_name }), el("br"), el("span", { class: "muted", text: c.code })),
      el("td", { text: c.room }),
      stateCell,
      el("td", { text: c.total ? `${c.answered}/${c.total}` : "" }),
      left,
      el("td", { class: alerts.length ? "alerting" : "", text: alerts.join(" · ") }),
      actions);
    body.append(row);
  }
  $("live").textContent = S.live.replace("{time}", clock(state.server_now));
}

const source = new EventSource(`${base}/events${q}`);
source.onmessage = (ev) => render(JSON.parse(ev.data));
source.onerror = () => ($("live").textContent = S.reconnecting);
