// Rendering the state into the page. Each function owns one panel and only touches its own elements.
import uPlot from "uplot";
import { depthBars, feesText, formatUptime, section, signed } from "./state.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

/** @param {import("./state.js").ClientState} state */
export function renderHeader(state) {
  const status = state.values["system.status"] ?? {};
  $("mode").textContent = status.mode ?? "—";
  $("mode").className = `badge mode-${status.mode ?? "unknown"}`;
  $("halted").classList.toggle("hidden", !status.halted);
  $("halted").title = status.halt_reason ?? "";
  $("uptime").textContent = status.uptime_s !== undefined ? `uptime ${formatUptime(status.uptime_s)}` : "uptime —";
  $("halt").classList.toggle("hidden", !!status.halted);
  $("resume").classList.toggle("hidden", !status.halted);
}

/** @param {import("./state.js").ClientState} state */
export function renderCards(state) {
  const account = state.values["account.summary"] ?? {};
  const pnl = state.values["pnl.summary"] ?? {};
  const latency = state.values["system.latency"] ?? {};
  $("card-equity").textContent = account.equity ? `${Number(account.equity).toFixed(2)} USDT` : "—";
  $("card-daily").textContent = signed(pnl.daily);
  $("card-daily").className = `value ${Number(pnl.daily) < 0 ? "neg" : "pos"}`;
  $("card-orders").textContent = account.open_orders ?? "—";
  $("card-latency").textContent = latency.decision_p99_us !== undefined ? `${latency.decision_p99_us} µs` : "—";
  $("pnl-summary").textContent = pnl.total !== undefined
    ? `total ${signed(pnl.total)} · realized ${signed(pnl.realized)} · unrealized ${signed(pnl.unrealized)} · funding ${signed(pnl.funding)} · fees ${feesText(pnl)} · win rate ${pnl.win_rate_pct}%`
    : "";
}

/** @param {import("./state.js").ClientState} state */
export function renderPositions(state) {
  const positions = state.values["positions.all"] ?? {};
  const rows = Object.entries(positions).map(([symbol, p]) =>
    `<tr><td>${esc(symbol)}</td><td class="${Number(p.qty) < 0 ? "neg" : "pos"}">${esc(p.qty)}</td><td>${esc(p.entry)}</td>` +
    `<td>${esc(p.mark)}</td><td class="${Number(p.unrealized) < 0 ? "neg" : "pos"}">${esc(p.unrealized)}</td><td>${esc(p.liquidation)}</td></tr>`);
  $("positions").querySelector("tbody").innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">flat</td></tr>`;
}

/** @param {import("./state.js").ClientState} state */
export function renderBook(state) {
  const markets = section(state, "markets");
  const select = /** @type {HTMLSelectElement} */ ($("book-symbol"));
  const symbols = Object.keys(markets).sort();
  if (select.options.length !== symbols.length) {
    const current = select.value;
    select.innerHTML = symbols.map((s) => `<option>${esc(s)}</option>`).join("");
    if (symbols.includes(current)) select.value = current;
  }
  const market = markets[select.value];
  if (!market) { $("book").innerHTML = ""; return; }
  if (market.state !== "live") { $("book").innerHTML = `<div class="stale">book ${esc(market.state)}: resynchronising</div>`; return; }
  const { bids, asks } = depthBars(market.bids, market.asks);
  const row = (l, side) => `<div class="level ${side}"><span class="bar" style="width:${l.pct}%"></span><span>${esc(l.price)}</span><span>${esc(l.qty)}</span></div>`;
  $("book").innerHTML = `<div class="asks">${asks.slice().reverse().map((l) => row(l, "ask")).join("")}</div>` +
    `<div class="mid">mid ${esc(market.mid)} · spread ${market.spread_ticks} tick(s)</div>` +
    `<div class="bids">${bids.map((l) => row(l, "bid")).join("")}</div>`;
}

/** @param {number} seconds epoch seconds */
function clockLabel(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** @type {uPlot | null} */
let chart = null;

/** @param {import("./state.js").ClientState} state */
export function renderChart(state) {
  const el = $("pnl-chart");
  const xs = state.history.map((p) => p[0] / 1000);
  const ys = state.history.map((p) => p[1]);
  const width = Math.max(280, el.clientWidth || 600);
  if (!chart) {
    chart = new uPlot({ width, height: 180, series: [{}, { label: "PnL (USDT)", stroke: "#3fb950", width: 2 }],
      // Time axis as wall-clock HH:MM:SS (uPlot's default second ticks read ":13.500"); PnL in USDT.
      axes: [{ stroke: "#8b949e", values: (_u, ticks) => ticks.map(clockLabel) },
             { stroke: "#8b949e", label: "USDT", values: (_u, ticks) => ticks.map((v) => v.toFixed(2)) }],
      legend: { show: false } }, [xs, ys], el);
  } else {
    if (chart.width !== width) chart.setSize({ width, height: 180 });
    chart.setData([xs, ys]);
  }
}

/** @param {import("./state.js").ClientState} state */
export function renderOrdersAndFills(state) {
  const orders = state.values["orders.recent"] ?? [];
  $("orders").querySelector("tbody").innerHTML = orders.slice(0, 15).map((o) =>
    `<tr><td>${time(o.ts)}</td><td>${esc(o.symbol)}</td><td class="${o.side === "BUY" ? "pos" : "neg"}">${esc(o.side)}</td>` +
    `<td>${esc(o.price)}</td><td>${esc(o.filled)}/${esc(o.qty)}</td><td>${esc(o.status)}</td></tr>`).join("");
  const fills = state.values["fills.recent"] ?? [];
  $("fills").querySelector("tbody").innerHTML = fills.slice(0, 15).map((f) =>
    `<tr><td>${time(f.ts)}</td><td>${esc(f.symbol)}</td><td class="${f.side === "BUY" ? "pos" : "neg"}">${esc(f.side)}</td>` +
    `<td>${esc(f.price)}</td><td>${esc(f.qty)}</td><td>${esc(f.fee)} ${esc(f.fee_asset ?? "USDT")}</td></tr>`).join("");
}

/** @param {import("./state.js").ClientState} state @param {(id: string) => void} onAck */
export function renderAlerts(state, onAck) {
  const alerts = state.values["alerts.list"] ?? [];
  const list = $("alerts");
  list.innerHTML = alerts.slice(0, 20).map((a) =>
    `<li class="alert sev-${esc(a.severity)} ${a.acknowledged ? "acked" : ""}"><span>${time(a.ts)} <b>${esc(a.severity)}</b> ${esc(a.message)}</span>` +
    (a.acknowledged ? "" : `<button data-ack="${esc(a.id)}">ack</button>`) + "</li>").join("") || `<li class="muted">no alerts</li>`;
  list.querySelectorAll("button[data-ack]").forEach((b) => b.addEventListener("click", () => onAck(b.getAttribute("data-ack"))));
}

/** @param {import("./state.js").ClientState} state */
export function renderHealth(state) {
  const health = section(state, "health");
  $("health").innerHTML = Object.entries(health).sort().map(([name, h]) =>
    `<li><span class="dot ${h.ready ? "ok" : "bad"}"></span><b>${esc(name)}</b> <span class="muted">${esc(h.detail)}</span></li>`).join("");
}
