// The test builder's live matrix: after each change (debounced), ask
// blueprint.json what every cell's release has, mark the cells that cannot
// be filled, and update the totals. The form works without this script.

const form = document.getElementById("builder");
const statusUrl = form && form.dataset.blueprintUrl;
let timer = null;
let latest = 0;

function query() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    // Only what the counts depend on; never the CSRF token in a URL.
    if (name === "release" || name === "section_count" || /^s\d+\./.test(name)) params.append(name, value);
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
    if (!event.target.name || !/^s\d+\./.test(event.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  form.addEventListener("change", (event) => {
    if (event.target.name && /^s\d+\.type$/.test(event.target.name)) refresh();
  });
}
