// A failed onboarding run in the console: the operator sees the failed step's reason, retries
// the run from the page and follows it to success; then finds the retry in the audit log,
// filtered by action. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

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
    await page.getByLabel("Operator token or API key").fill(given.operator);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("tenant-link").first().waitFor();
    await page.goto(`${given.base}/#/tenants/${given.tenantId}/onboarding`);
    const run = page.getByTestId("run").first();
    await run.waitFor();
    report.failedState = await run.getByTestId("run-state").innerText();
    report.reasons = (await run.getByTestId("step-error").allInnerTexts()).filter(Boolean);
    await page.screenshot({ path: `${given.shots}/onboarding.png`, fullPage: true });
    await run.getByRole("button", { name: "Retry" }).click();
    await page
      .locator('[data-testid="run"][data-state="succeeded"]')
      .first()
      .waitFor({ timeout: 60_000 });
    report.retriedState = await page.getByTestId("run-state").first().innerText();

    await page.getByRole("link", { name: "Audit" }).first().click();
    await page.getByLabel("Action").fill("provisioning_run");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByTestId("audit-action").filter({ hasText: "provisioning_run.retry" }).first().waitFor();
    report.auditActions = [...new Set(await page.getByTestId("audit-action").allInnerTexts())].sort();
    await page.screenshot({ path: `${given.shots}/audit.png`, fullPage: true });
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
