// The web UI in a real browser (Debian's chromium, driven by playwright-core), against a running
// job. Run by tests/e2e/ui.rs:
//
//   node tests/ui/ui.test.mjs CHECKPOINT NEW_PLUGIN.wasm OUTDIR
//
// Reads the job's address and token from CHECKPOINT (the token never goes on a command line or
// into the output), logs in through the login page, waits until every chart has points from at
// least 3 batches, swaps operator 1's plugin for NEW_PLUGIN.wasm through the API (with the bearer
// token, as `weir plugin swap` does) and waits for the swap on the page's timeline. Saves
// OUTDIR/ui-screenshot.png and prints one JSON line of what the page showed, which the Rust test
// compares with the progress records in the checkpoint. Exits non-zero on any failure.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [checkpoint, plugin, outdir] = process.argv.slice(2);
if (!checkpoint || !plugin || !outdir) {
  console.error("usage: node ui.test.mjs CHECKPOINT NEW_PLUGIN.wasm OUTDIR");
  process.exit(2);
}
const address = readFileSync(join(checkpoint, "admin-address"), "utf8").trim();
const token = readFileSync(join(checkpoint, "admin-token"), "utf8").trim();
const base = `http://${address}`;
// Long enough for a loaded machine; these are limits on waiting, not assertions on speed.
const WAIT = 90_000;

const browser = await chromium.launch({
  executablePath: process.env.WEIR_CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  // Playwright gives the browser a new, empty profile of its own.
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });

  // No session: the login page. A wrong token is refused; the right one opens the UI.
  await page.goto(base + "/");
  await page.waitForSelector("form[action='/ui/session']");
  await page.fill("#token", "not-the-token");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  const refused = await page.textContent("#login-message");
  if (!/not this job's token/.test(refused || "")) throw new Error(`a wrong token was not refused: ${refused}`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(base + "/"), page.click("button[type=submit]")]);
  await page.waitForSelector("#charts [data-chart]", { timeout: WAIT });
  // The refused login answered 401, which the browser logs; from here on, nothing may fail.
  problems.length = 0;
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.startsWith("weir_session_"));
  if (!session || !session.httpOnly || session.sameSite !== "Strict") {
    throw new Error(`the session cookie is not HttpOnly and SameSite=Strict: ${JSON.stringify({ ...session, value: undefined })}`);
  }

  // Every shown chart has points from at least 3 batches.
  await page.waitForFunction(() => {
    const cards = [...document.querySelectorAll("#charts [data-chart]:not(.hidden)")];
    return cards.length > 0 && cards.every((c) => Number(c.dataset.points) >= 3);
  }, null, { timeout: WAIT });
  const charts = await page.$$eval("#charts [data-chart]", (cs) =>
    cs.map((c) => ({ key: c.dataset.chart, points: Number(c.dataset.points), hidden: c.classList.contains("hidden"),
      title: c.querySelector("h2").textContent, plot: !!c.querySelector("canvas"), bars: c.querySelectorAll(".hist .bar").length })));
  // The numbers shown for the last batch, all from one redraw.
  const shown = await page.evaluate(() => ({
    batchId: Number(document.getElementById("last-batch-id").textContent),
    inputRows: Number(document.getElementById("last-input-rows").textContent),
    json: JSON.parse(document.getElementById("last-progress-json").textContent),
    name: document.getElementById("q-name").textContent,
    id: document.getElementById("q-id").textContent,
    runId: document.getElementById("q-runid").textContent,
    trigger: document.getElementById("q-trigger").textContent,
    graph: document.getElementById("q-graph").textContent,
  }));

  // A swap through the API (the bearer token, no Origin: as `weir plugin swap` does it).
  const answer = await fetch(`${base}/operators/1/plugin`, {
    method: "POST", headers: { Authorization: `Bearer ${token}` }, body: readFileSync(plugin),
  });
  const swap = await answer.json();
  if (answer.status !== 200) throw new Error(`the swap was refused: ${answer.status} ${JSON.stringify(swap)}`);
  await page.waitForSelector(`#timeline li[data-event=swap][data-digest="${swap.digest}"]`, { timeout: WAIT });
  const timeline = await page.$$eval("#timeline li[data-event]", (ls) =>
    ls.map((l) => ({ event: l.dataset.event, digest: l.dataset.digest, batch: Number(l.dataset.batch), text: l.textContent })));
  const versions = await page.$$eval("#plugin-versions tr[data-operator]", (rs) =>
    rs.map((r) => ({ operator: Number(r.dataset.operator), version: r.children[1].getAttribute("title") })));

  // From the UI itself: roll the swap back with the operator's button, then swap the new version
  // in again by choosing its file.
  await page.click(`button[data-rollback="1"]`);
  await page.waitForSelector(`#plugin-message[data-ok=true]`, { timeout: WAIT });
  const rolledBack = await page.textContent("#plugin-message");
  await page.waitForSelector(`#timeline li[data-event=rollback][data-digest="${swap.replaced}"]`, { timeout: WAIT });
  await page.evaluate(() => { const m = document.getElementById("plugin-message"); delete m.dataset.ok; });
  await page.setInputFiles(`input[data-swap="1"]`, plugin);
  await page.waitForSelector(`#plugin-message[data-ok=true]`, { timeout: WAIT });
  const swappedAgain = await page.textContent("#plugin-message");
  await page.waitForFunction((d) => document.querySelectorAll(`#timeline li[data-event=swap][data-digest="${d}"]`).length >= 2,
    swap.digest, { timeout: WAIT });

  await page.screenshot({ path: join(outdir, "ui-screenshot.png"), fullPage: true });
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(JSON.stringify({ charts, shown, swap, timeline, versions, rolledBack, swappedAgain }));
} catch (e) {
  failed = true;
  console.error(`ui test failed: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
