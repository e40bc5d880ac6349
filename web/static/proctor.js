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

async function act(action, extra, question) {
  if (question && !confirm(question)) return;
  $("action-error").hidden = true;
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
  }
}

function button(label, action, extra, question) {
  const b = el("button", { type: "button", text: label });
  b.addEventListener("click", () => act(action, extra, question));
  return b;
}

function render(state) {
  const rooms = $("rooms");
  rooms.textContent = "";
  for (const r of state.rooms) {
    rooms.append(el("p", {},
      el("strong", { text: `${S.room} ${r.room}: ` }),
      el("span", { class: "access-code", text: r.access_code }), " ",
      button(S.rotate, "rotate_code", { room: r.room }, S.confirm_rotate),
      button(S.extend_room, "extend", { room: r.room, minutes: 5 }, S.confirm_extend_room.replace("{room}", r.room)),
      button(S.clear_lock, "clear_sign_in_lock", { room: r.room }, S.confirm_clear_lock.replace("{room}", r.room))));
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
    if (c.state === "not_started") actions.append(button(S.admit, "admit", { ...who, minutes: 15 }, S.confirm_admit));
    if (c.state === "in_progress") actions.append(button(S.pause, "pause", who, S.confirm_pause));
    if (c.state === "paused") actions.append(button(S.resume, "resume", who));
    if (c.state === "in_progress" || c.state === "paused") {
      actions.append(button(S.extend, "extend", { ...who, minutes: 5 }, S.confirm_extend));
      actions.append(button(S.terminate, "terminate", who, S.confirm_terminate));
    }
    if (c.device_requests) actions.append(button(S.unlock, "unlock", who, S.confirm_unlock));
    if (c.policy_refusals) {
      actions.append(button(S.allow_network, "allow_network", who, S.confirm_allow_network));
      actions.append(button(S.allow_without_seb, "allow_without_seb", who, S.confirm_allow_without_seb));
    }
    if (c.state !== "not_started" && c.state !== "voided") actions.append(button(S.void, "void", who, S.confirm_void));
    const row = el("tr", { "data-code": c.code, "data-state": c.state },
      el("td", {}, el("strong", { text: c.full_name }), el("br"), el("span", { class: "muted", text: c.code })),
      el("td", { text: c.room }),
      el("td", { text: S["state_" + c.state] || c.state }),
      el("td", { text: c.total ? `${c.answered}/${c.total}` : "" }),
      el("td", { text: fmt(c.seconds_left) }),
      el("td", { class: alerts.length ? "alerting" : "", text: alerts.join(" · ") }),
      actions);
    body.append(row);
  }
  $("live").textContent = S.live.replace("{time}", new Date(state.server_now).toLocaleTimeString());
}

const source = new EventSource(`${base}/events${q}`);
source.onmessage = (ev) => render(JSON.parse(ev.data));
source.onerror = () => ($("live").textContent = S.reconnecting);
