// End-to-end check of the web dashboard in headless Chromium (Debian's package, driven by playwright-core).
// usage: node e2e/dashboard.e2e.mjs URL_WITH_TOKEN SCREENSHOT_DIR   -> prints one JSON object
import { chromium } from "playwright-core";

const [url, shots = "/tmp"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("connection").textContent === "live", null, { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById("card-equity").textContent !== "—", null, { timeout: 15000 });
  result.mode = await page.textContent("#mode");
  const read = () => page.evaluate(() => ({
    equity: document.getElementById("card-equity").textContent,
    book: document.getElementById("book").textContent,
    orders: document.querySelectorAll("#orders tbody tr").length,
    uptime: document.getElementById("uptime").textContent,
  }));
  const first = await read();
  let later = first;
  for (let i = 0; i < 40 && (later.book === first.book || later.uptime === first.uptime); i++) {
    await page.waitForTimeout(250);
    later = await read();
  }
  result.first = first;
  result.later = later;
  result.changed = later.book !== first.book && later.uptime !== first.uptime;
  result.bookLevels = await page.locator("#book .level").count();
  result.healthItems = await page.locator("#health li").count();
  await page.screenshot({ path: `${shots}/dashboard-desktop.png`, fullPage: true });

  await page.click("#halt");
  await page.waitForSelector("#confirm-halt[open]");
  await page.click("#confirm-halt-yes");
  await page.waitForSelector("#halted:not(.hidden)", { timeout: 15000 });
  result.haltedBadge = await page.isVisible("#halted");
  result.resumeVisible = await page.isVisible("#resume");
  await page.screenshot({ path: `${shots}/dashboard-halted.png` });

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.goto(url);
  await phone.waitForFunction(() => document.getElementById("connection").textContent === "live", null, { timeout: 15000 });
  await phone.waitForTimeout(500);
  result.phoneOverflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await phone.screenshot({ path: `${shots}/dashboard-phone.png`, fullPage: true });
  // Layout at the widths people use: no table clipped, no empty column in the top row.
  result.layout = {};
  for (const width of [1280, 1920]) {
    const wide = await browser.newPage({ viewport: { width, height: 1000 } });
    await wide.goto(url);
    await wide.waitForFunction(() => document.querySelectorAll("#book .level").length > 0, null, { timeout: 15000 });
    result.layout[width] = await wide.evaluate(() => {
      const box = (el) => el.getBoundingClientRect();
      const positions = document.getElementById("positions").closest(".panel");
      const book = document.getElementById("book").closest(".panel");
      const grid = positions.parentElement;
      const clipped = [...document.querySelectorAll(".panel")].filter((p) => p.scrollWidth > p.clientWidth + 1).length;
      return { clipped, topRowGap: Math.round(box(grid).right - box(book).right),
               sameRow: Math.round(box(positions).top) === Math.round(box(book).top),
               latencyLabel: document.getElementById("card-latency").previousElementSibling.textContent };
    });
    await wide.screenshot({ path: `${shots}/dashboard-${width}.png`, fullPage: true });
    await wide.close();
  }

  // A wrong token: the page says so and stops, instead of reconnecting forever with blank panels.
  const intruder = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const bad = new URL(url);
  bad.searchParams.set("token", "wrong-token");
  await intruder.goto(bad.toString());
  await intruder.waitForFunction(() => document.getElementById("connection").textContent.startsWith("invalid token"),
                                 null, { timeout: 15000 });
  result.badToken = await intruder.textContent("#connection");
  result.errors = errors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
