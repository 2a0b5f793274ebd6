// Entry point: connect to the dashboard server and keep the page in step with its state.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { connect } from "./connection.js";
import { applyMessage, emptyState } from "./state.js";
import { renderAlerts, renderBook, renderCards, renderChart, renderHeader, renderHealth, renderOrdersAndFills, renderPositions } from "./render.js";

const params = new URLSearchParams(location.search);
const token = params.get("token") ?? sessionStorage.getItem("celeris-token") ?? "";
if (token) sessionStorage.setItem("celeris-token", token);
const state = emptyState();
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?client=web&token=${encodeURIComponent(token)}`;

async function post(path, body) {
  const resp = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (!resp.ok) alert(`${path}: ${resp.status} ${await resp.text()}`);
  return resp.ok ? resp.json() : null;
}

const ack = (id) => post(`/api/alerts/${encodeURIComponent(id)}/ack`, { by: "web dashboard" });

let scheduled = false;
/** @type {Set<string>} */
const dirty = new Set();
/** One panel failing to render must not blank the others. @param {() => void} fn */
function guarded(fn) {
  try { fn(); } catch (err) { console.error(err); }
}

function render() {
  scheduled = false;
  const all = dirty.size === 0;
  const has = (c) => all || dirty.has(c);
  if (has("system") || has("account") || has("pnl")) { guarded(() => renderHeader(state)); guarded(() => renderCards(state)); }
  if (has("positions")) guarded(() => renderPositions(state));
  if (has("markets")) guarded(() => renderBook(state));
  if (has("pnl")) guarded(() => renderChart(state));
  if (has("orders") || has("fills")) guarded(() => renderOrdersAndFills(state));
  if (has("alerts")) guarded(() => renderAlerts(state, ack));
  if (has("health")) guarded(() => renderHealth(state));
  dirty.clear();
}

connect({
  url: wsUrl,
  authorized: async () => (await fetch("/api/state", { headers: { Authorization: `Bearer ${token}` } })).status !== 401,
  onMessage: (msg) => {
    for (const channel of applyMessage(state, msg)) dirty.add(channel);
    if (!scheduled && dirty.size) { scheduled = true; requestAnimationFrame(render); }
  },
  onStatus: (status) => {
    const el = document.getElementById("connection");
    el.textContent = status === "invalid token" ? "invalid token: open the URL celeris up printed (?token=...)" : status;
    el.className = `badge ${status === "live" ? "conn-up" : "conn-down"}`;
  },
});

const dialog = /** @type {HTMLDialogElement} */ (document.getElementById("confirm-halt"));
document.getElementById("halt").addEventListener("click", () => dialog.showModal());
dialog.addEventListener("close", async () => {
  if (dialog.returnValue === "halt") {
    const reason = /** @type {HTMLInputElement} */ (document.getElementById("halt-reason")).value;
    await post("/api/halt", { reason, by: "web dashboard" });
  }
});
document.getElementById("resume").addEventListener("click", async () => {
  const by = prompt("Who is re-enabling trading? (recorded)");
  if (by) await post("/api/resume", { by });
});
document.getElementById("book-symbol").addEventListener("change", () => renderBook(state));
window.addEventListener("resize", () => renderChart(state));
