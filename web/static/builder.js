// The test builder's live matrix: after each change (debounced), ask
// blueprint.json what every cell's release has, mark the cells that cannot
// be filled, and update the totals, the summary as the 2025 template reads
// it (the server's own fragment) and what it says of the level targets. The
// form works without this script.

const form = document.getElementById("builder");
const statusUrl = form && form.dataset.blueprintUrl;
let timer = null;
let latest = 0;

// A field the counts, the summary or the level targets depend on.
function counted(name) {
  return /^s\d+\./.test(name) || /^target\.\d+$/.test(name);
}

function query() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    // Only what the counts depend on; never the CSRF token in a URL.
    if (name === "release" || name === "section_count" || counted(name)) params.append(name, value);
  }
  return params;
}

function show(body) {
  document.getElementById("total-items").textContent = body.total_items;
  const points = document.getElementById("total-points");
  // Written as the page writes it (the templates' num(): 0,25 in Vietnamese).
  points.textContent = String(body.total_points).replace(".", points.dataset.decimalMark || ".");
  document.getElementById("points-approx").hidden = body.points_exact;
  const shortCount = document.getElementById("short-count");
  shortCount.textContent = shortCount.textContent.replace(/\d+/, String(body.shortfalls.length));
  shortCount.classList.toggle("warn-text", body.shortfalls.length > 0);
  const summary = document.getElementById("matrix-summary");
  // The server's own rendering (escaped by its templates), so the page and this update agree.
  if (summary && typeof body.matrix_html === "string") summary.innerHTML = body.matrix_html;
  const notes = document.getElementById("target-status");
  // Replaced only when they change: the region is read out on every change.
  const said = notes ? Array.from(notes.children, (p) => p.textContent).join("\n") : "";
  if (notes && Array.isArray(body.target_notes) && body.target_notes.join("\n") !== said) {
    notes.replaceChildren(...body.target_notes.map((text) => {
      const p = document.createElement("p");
      p.className = "warn-text";
      p.textContent = text;
      return p;
    }));
  }
  body.sections.forEach((section, si) => {
    const box = form.querySelector(`.bp-section[data-section="${si}"]`);
    if (!box) return;
    for (const td of box.querySelectorAll("td[data-cell]")) {
      const cell = section.cells[td.dataset.cell];
      if (!cell) continue;
      const avail = td.querySelector(".avail");
      avail.textContent = avail.textContent.replace(/\d+/, String(cell.available));
      td.classList.toggle("short", cell.short);
      td.querySelector(".cell-warn").hidden = !cell.short;
    }
  });
}

async function refresh() {
  const mine = ++latest;
  try {
    const resp = await fetch(`${statusUrl}?${query()}`, {headers: {Accept: "application/json"}});
    if (!resp.ok || mine !== latest) return;
    show(await resp.json());
  } catch (e) {
    // Offline for a moment: the counts stay as they were; saving checks again.
  }
}

if (form && statusUrl) {
  form.addEventListener("input", (event) => {
    if (!event.target.name || !counted(event.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  form.addEventListener("change", (event) => {
    if (event.target.name && /^s\d+\.type$/.test(event.target.name)) refresh();
  });
}
