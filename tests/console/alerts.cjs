// A tenant's open alerts in the console, live: an alert raised by ingest while the page is
// open appears without a reload, is acknowledged, then resolved from the page. Run by
// tests/tests/console.rs like signin.cjs; prints a JSON report.

const { chromium } = require("playwright-core");

const given = JSON.parse(process.argv[2]);
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

async function ingest(value) {
  const response = await fetch(`${given.base}/v1/tenants/${given.tenantId}/telemetry`, {
    method: "POST",
    headers: { Authorization: `Bearer ${given.key}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      readings: [{ machineId: "press-1", metric: "temp", ts: new Date().toISOString(), value }],
    }),
  });
  if (!response.ok) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
}

async function main() {
  const browser = await chromium.launch({ executablePath: given.browser, args: ARGS });
  const errors = [];
  const report = {};
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${given.base}/`);
    await page.getByLabel("Operator token or API key").fill(given.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    const alerts = page.getByTestId("alerts");
    await alerts.getByText("No open alerts.").waitFor();
    const loaded = page.url();

    const sent = Date.now();
    await ingest(95.5);
    const state = alerts.getByTestId("alert-state");
    await state.filter({ hasText: "open" }).waitFor({ timeout: 15_000 });
    report.appearedMs = Date.now() - sent;
    report.reloaded = page.url() !== loaded;
    report.row = await alerts.locator("tbody tr").first().innerText();
    await alerts.getByRole("button", { name: "Acknowledge" }).click();
    await state.filter({ hasText: "acknowledged" }).waitFor();
    report.acknowledged = true;
    await page.screenshot({ path: `${given.shots}/alerts.png`, fullPage: true });
    await alerts.getByRole("button", { name: "Resolve" }).click();
    await alerts.getByText("No open alerts.").waitFor();
    report.resolved = true;
    await context.close();
  } finally {
    await browser.close();
  }
  report.consoleErrors = errors;
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
