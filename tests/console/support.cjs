// What the console's browser scenarios share: Chromium launched as this machine needs it, a
// page whose console errors are collected, signing in, ingesting a reading, and the JSON report
// that tests/tests/console.rs reads (or a non-zero exit saying why).

const { chromium } = require("playwright-core");

/** Headless Chromium's flags here: no sandbox as root, nothing that calls out. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The scenario's input: the JSON the Rust test passes as the first argument. */
const given = JSON.parse(process.argv[2]);

/** A new page of its own context at `viewport`, its errors pushed to `errors`. */
async function newPage(browser, errors, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page };
}

/** Opens the console and signs in with `credential`. */
async function signIn(page, credential) {
  await page.goto(`${given.base}/`);
  await page.getByLabel("Operator token or API key").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Sends one reading of press-1's `metric` now, with the scenario's key. */
async function ingest(value, metric = "temp") {
  const response = await fetch(`${given.base}/v1/tenants/${given.tenantId}/telemetry`, {
    method: "POST",
    headers: { Authorization: `Bearer ${given.key}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      readings: [{ machineId: "press-1", metric, ts: new Date().toISOString(), value }],
    }),
  });
  if (!response.ok) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
}

/** Runs `scenario(browser, errors, report)` and prints the report with the console's errors. */
function run(scenario) {
  (async () => {
    const browser = await chromium.launch({ executablePath: given.browser, args: ARGS });
    const errors = [];
    const report = {};
    try {
      await scenario(browser, errors, report);
    } finally {
      await browser.close();
    }
    report.consoleErrors = errors;
    console.log(JSON.stringify(report));
  })().catch((error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  });
}

module.exports = { given, newPage, signIn, ingest, run };
