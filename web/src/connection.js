// The WebSocket to the dashboard server: MessagePack frames, automatic reconnection with back-off.
import { Unpackr } from "msgpackr";
import { reconnectDelayMs } from "./state.js";

/**
 * @param {{url: string, onMessage: (msg: any) => void, onStatus: (status: string) => void,
 *          authorized?: () => Promise<boolean>}} options
 * @returns {{close: () => void, send: (msg: object) => void}}
 */
// Timestamps exceed 32 bits and arrive as 64-bit integers: read them as numbers, not BigInt.
const unpackr = new Unpackr({ mapsAsObjects: true, int64AsType: "number" });

export function connect({ url, onMessage, onStatus, authorized }) {
  let attempt = 0;
  let everOpened = false;
  let closed = false;
  /** @type {WebSocket | null} */
  let ws = null;
  let watchdog = 0;

  const open = () => {
    onStatus(attempt === 0 ? "connecting" : "reconnecting");
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { attempt = 0; everOpened = true; onStatus("live"); };
    ws.onmessage = (event) => {
      clearTimeout(watchdog);
      // The server sends a heartbeat at least every 5 s: silence for 12 s means the link is dead.
      watchdog = setTimeout(() => ws && ws.close(), 12_000);
      const msg = typeof event.data === "string" ? JSON.parse(event.data) : unpackr.unpack(new Uint8Array(event.data));
      onMessage(msg);
    };
    ws.onclose = async () => {
      clearTimeout(watchdog);
      if (closed) return;
      // A browser does not say why an upgrade failed: ask once whether it is the token, which no retry fixes.
      if (!everOpened && authorized && !(await authorized().catch(() => true))) {
        closed = true;
        onStatus("invalid token");
        return;
      }
      onStatus("disconnected");
      setTimeout(open, reconnectDelayMs(attempt++));
    };
  };
  open();
  return {
    close: () => { closed = true; ws && ws.close(); },
    send: (msg) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); },
  };
}
