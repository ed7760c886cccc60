// Drives the dashboard in headless Chromium and prints what it saw as one
// JSON object, for tests/it/dashboard.rs to check (with the journal).
//
//   node drive.mjs BASE_URL TOKEN
//
// Steps: open the page without a token (the login form), try a wrong
// token, open the board with the right one, read every table, click the
// first dead letter's Replay button, wait for the board to show it gone,
// run the dry run of the live rules, filter the events by outcome.
import puppeteer from "puppeteer-core";

const [base, token] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Root in a container has no user namespace for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const seen = { console: [], errors: [] };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  page.on("console", (m) => seen.console.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("dialog", (d) => d.accept());

  await page.goto(base + "/", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#login:not([hidden])");
  // Shown means laid out: a display rule must not override `hidden`.
  const shown = (sel) => page.$eval(sel, (e) => e.offsetParent !== null || getComputedStyle(e).position === "fixed");
  seen.board_shown_without_token = await shown("#board");
  seen.login_shown_without_token = await shown("#login");

  await page.type("#token", "wrong-token-wrong-token");
  await page.click("#login button[type=submit]");
  await page.waitForFunction(() => document.getElementById("login-error").textContent !== "");
  seen.wrong_token_message = await page.$eval("#login-error", (p) => p.textContent);

  await page.type("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForFunction(() => Number(document.body.dataset.refreshed || 0) >= 1);
  const text = (sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent));
  seen.board_shown_with_token = await shown("#board");
  seen.login_shown_with_token = await shown("#login");
  seen.health = await page.$eval("#health", (e) => e.textContent);
  seen.rules_version = await page.$eval("#rules-version", (e) => e.textContent);
  seen.rule_files = await text("#rule-files tr td:first-child");
  seen.rule_errors = await text("#rule-errors li");
  seen.targets = await page.$$eval("#targets tr[data-name]", (rs) =>
    rs.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent).join("|"))
  );
  seen.dead_ids = await page.$$eval("#dead tr[data-id]", (rs) => rs.map((r) => r.dataset.id));
  seen.dead_errors = await text("#dead tr[data-id] td.wrap");
  seen.event_types = await text("#events tr[data-id] td:nth-child(4)");
  seen.event_outcomes = await text("#events tr[data-id] td:nth-child(6)");
  seen.quarantine_codes = await text("#quarantine tr td:nth-child(4)");
  // Markup from an event must stay text: no element, no script run.
  seen.injected_elements = await page.$$eval("#events img, #events script", (e) => e.length);
  seen.injected_script_ran = await page.evaluate(() => window.__injected === 1);
  seen.token_in_address_bar = page.url().includes(token);

  await page.click("#dead tr[data-id] button.replay");
  await page.waitForFunction(() => document.getElementById("replay-result").textContent !== "");
  seen.replay_result = await page.$eval("#replay-result", (e) => e.textContent);
  await page.waitForFunction(() => document.querySelectorAll("#dead tr[data-id]").length === 0);
  seen.dead_after_replay = await page.$$eval("#dead tr[data-id]", (rs) => rs.length);

  // A dry run of the live rules over every stored event.
  await page.select("#dry-span", "0");
  await page.click("#dry-run");
  await page.waitForFunction(() => /changed/.test(document.getElementById("dry-summary").textContent));
  seen.dry_summary = await page.$eval("#dry-summary", (e) => e.textContent);
  seen.dry_events = await page.$$eval("#dry-changes tr[data-id]", (rs) => rs.map((r) => r.dataset.id));
  seen.dry_removed = await text("#dry-changes tr[data-id] td:nth-child(4)");
  seen.dry_added = await text("#dry-changes tr[data-id] td:nth-child(5)");

  // The outcome filter narrows the events table.
  await page.select("#outcome", "routed");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#events tr[data-id] td:nth-child(6)")].every((td) => td.textContent === "routed")
  );
  seen.routed_only = await text("#events tr[data-id] td:nth-child(6)");
} catch (e) {
  seen.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
