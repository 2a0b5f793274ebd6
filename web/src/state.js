// The client's copy of the dashboard state: a flat map of dotted paths, patched by server messages.
// Pure functions only (no DOM, no network) so they run under node's test runner.

/**
 * @typedef {{values: Record<string, any>, history: number[][], seq: number, lastMessageAt: number}} ClientState
 * @typedef {{type: string, seq?: number, ts?: number, data?: Record<string, any>, changes?: Record<string, any>, removed?: string[]}} ServerMessage
 */

/** @returns {ClientState} */
export function emptyState() {
  return { values: {}, history: [], seq: 0, lastMessageAt: 0 };
}

/**
 * Apply one server message; returns the set of top-level channels that changed.
 * @param {ClientState} state
 * @param {ServerMessage} msg
 * @param {number} [now]
 * @returns {Set<string>}
 */
export function applyMessage(state, msg, now = Date.now()) {
  state.lastMessageAt = now;
  const changed = new Set();
  if (msg.type === "snapshot") {
    state.values = {};
    state.history = Array.isArray(msg.data?.["pnl.history"]) ? msg.data["pnl.history"].slice() : [];
    for (const [path, value] of Object.entries(msg.data ?? {})) {
      if (path === "pnl.history") continue;
      state.values[path] = value;
      changed.add(channelOf(path));
    }
    changed.add("pnl");
    state.seq = msg.seq ?? 0;
  } else if (msg.type === "update") {
    for (const [path, value] of Object.entries(msg.changes ?? {})) {
      if (path === "pnl.point") {
        const last = state.history[state.history.length - 1];
        if (!last || last[0] !== value[0]) state.history.push(value);
        if (state.history.length > 3600) state.history.splice(0, state.history.length - 3600);
      }
      state.values[path] = value;
      changed.add(channelOf(path));
    }
    for (const path of msg.removed ?? []) {
      delete state.values[path];
      changed.add(channelOf(path));
    }
    state.seq = msg.seq ?? state.seq;
  }
  return changed;
}

/** @param {string} path */
export function channelOf(path) {
  const dot = path.indexOf(".");
  return dot < 0 ? path : path.slice(0, dot);
}

/**
 * Entries whose path starts with `prefix.`, keyed by the rest of the path.
 * @param {ClientState} state
 * @param {string} prefix
 */
export function section(state, prefix) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [path, value] of Object.entries(state.values)) {
    if (path.startsWith(prefix + ".")) out[path.slice(prefix.length + 1)] = value;
  }
  return out;
}

/** Seconds -> "1h 02m 03s". @param {number} seconds */
export function formatUptime(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  return (h ? `${h}h ` : "") + `${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`;
}

/** A signed amount for display ("+1.23", "-0.50"). Display only: the value arrives as a decimal string. */
export function signed(text) {
  if (text === undefined || text === null || text === "") return "—";
  const n = Number(text);
  if (Number.isNaN(n)) return String(text);
  return (n > 0 ? "+" : "") + n.toFixed(2);
}

/** Reconnect delays: 0.5 s doubling to 10 s. @param {number} attempt */
export function reconnectDelayMs(attempt) {
  return Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));
}

/**
 * Depth bars: each level's share of the largest quantity shown.
 * @param {string[][]} bids @param {string[][]} asks
 */
export function depthBars(bids, asks) {
  const max = Math.max(1e-12, ...bids.map((l) => Number(l[1])), ...asks.map((l) => Number(l[1])));
  const bar = (l) => ({ price: l[0], qty: l[1], pct: Math.round((Number(l[1]) / max) * 100) });
  return { bids: bids.map(bar), asks: asks.map(bar) };
}

/**
 * The fees of a PnL summary per asset: USDT (valued total), then each other asset in its own units with its
 * USDT value, or "unvalued" when no price of it is known (never added to the USDT figure).
 * @param {Record<string, string>} pnl
 */
export function feesText(pnl) {
  const parts = [`${Number(pnl.fees_usdt ?? pnl.fees ?? 0).toFixed(4)} USDT`];
  for (const key of Object.keys(pnl).sort()) {
    const m = /^fees_([a-z0-9]+)$/.exec(key);
    if (!m || m[1] === "usdt") continue;
    const value = pnl[`${key}_usdt`];
    parts.push(`${pnl[key]} ${m[1].toUpperCase()} (${value ? `${Number(value).toFixed(4)} USDT` : "unvalued"})`);
  }
  return parts.join(" + ");
}
