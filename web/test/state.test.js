// Unit tests of the client's state handling (node's test runner).
import assert from "node:assert/strict";
import { test } from "node:test";
import { applyMessage, channelOf, depthBars, emptyState, formatUptime, reconnectDelayMs, section, signed } from "../src/state.js";

test("a snapshot replaces everything, updates patch changed paths only", () => {
  const s = emptyState();
  const changed = applyMessage(s, { type: "snapshot", seq: 5, data: { "markets.BTCUSDT": { mid: "1" }, "pnl.history": [[1, 0.5, 10]], "system.status": { mode: "live" } } });
  assert.deepEqual([...changed].sort(), ["markets", "pnl", "system"]);
  assert.equal(s.seq, 5);
  assert.deepEqual(s.history, [[1, 0.5, 10]]);
  applyMessage(s, { type: "update", seq: 6, changes: { "markets.BTCUSDT": { mid: "2" }, "pnl.point": [2, 0.7, 11] } });
  assert.equal(s.values["markets.BTCUSDT"].mid, "2");
  assert.equal(s.values["system.status"].mode, "live");
  assert.deepEqual(s.history.at(-1), [2, 0.7, 11]);
  applyMessage(s, { type: "update", seq: 7, changes: { "pnl.point": [2, 0.7, 11] } });
  assert.equal(s.history.length, 2, "the same point twice is appended once");
  applyMessage(s, { type: "update", seq: 8, removed: ["markets.BTCUSDT"] });
  assert.equal(s.values["markets.BTCUSDT"], undefined);
  applyMessage(s, { type: "heartbeat", ts: 1 });
  assert.equal(s.seq, 8);
});

test("sections and channels", () => {
  const s = emptyState();
  applyMessage(s, { type: "snapshot", seq: 1, data: { "health.risk": { ready: true }, "health.execution": { ready: false }, "healthy": 1 } });
  assert.deepEqual(Object.keys(section(s, "health")).sort(), ["execution", "risk"]);
  assert.equal(channelOf("a.b.c"), "a");
  assert.equal(channelOf("solo"), "solo");
});

test("formatting and reconnection back-off", () => {
  assert.equal(formatUptime(3723), "1h 02m 03s");
  assert.equal(formatUptime(59), "00m 59s");
  assert.equal(signed("1.234"), "+1.23");
  assert.equal(signed("-0.5"), "-0.50");
  assert.equal(signed(""), "—");
  assert.deepEqual([0, 1, 2, 3, 10].map(reconnectDelayMs), [500, 1000, 2000, 4000, 10000]);
});

test("depth bars are relative to the largest level", () => {
  const bars = depthBars([["100.0", "2"], ["99.9", "1"]], [["100.1", "4"]]);
  assert.deepEqual(bars.bids.map((b) => b.pct), [50, 25]);
  assert.equal(bars.asks[0].pct, 100);
});

test("fees are shown per asset; a fee without a price of its asset is unvalued, never added to USDT", async () => {
  const { feesText } = await import("../src/state.js");
  assert.equal(feesText({ fees: "1.2", fees_usdt: "1.2" }), "1.2000 USDT");
  assert.equal(feesText({ fees: "1.2", fees_usdt: "1.2", fees_bnb: "0.00012345", fees_bnb_usdt: "" }),
    "1.2000 USDT + 0.00012345 BNB (unvalued)");
  assert.equal(feesText({ fees: "1.261725", fees_usdt: "1.2", fees_bnb: "0.00012345", fees_bnb_usdt: "0.061725" }),
    "1.2000 USDT + 0.00012345 BNB (0.0617 USDT)");
});
