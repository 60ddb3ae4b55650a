// A machine's charts in the console: one per metric, over 15 minutes from the hot tier, with the
// rule's threshold drawn, receiving new readings while open; then over 24 hours. Run by
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
    await page.getByTestId("machine").filter({ hasText: "press-1" }).click();
    const temp = page.locator('[data-testid="chart"][data-metric="temp"]');
    await temp.locator("canvas").waitFor();
    report.metrics = await page.getByTestId("chart").evaluateAll((f) => f.map((e) => e.dataset.metric));
    report.tiers15m = await temp.getByTestId("tiers").innerText();
    report.thresholds = await temp.getAttribute("data-thresholds");
    report.pointsBefore = Number(await temp.getAttribute("data-points"));
    await ingest(77.25);
    await page.waitForFunction(
      (before) => Number(document.querySelector('[data-metric="temp"]').dataset.points) > before,
      report.pointsBefore,
      { timeout: 10_000 },
    );
    report.pointsAfter = Number(await temp.getAttribute("data-points"));
    await page.screenshot({ path: `${given.shots}/machine.png`, fullPage: true });
    await page.getByRole("button", { name: "24 h" }).click();
    await page.waitForFunction(() =>
      document.querySelector('button[aria-pressed="true"]')?.textContent === "24 h",
    );
    await temp.locator("canvas").waitFor();
    report.tiers24h = await page.locator('[data-metric="temp"] [data-testid="tiers"]').innerText();
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
