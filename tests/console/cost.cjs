// A tenant's cost page in the console: its figures are the ones the REST API answered it (the
// response is captured as the page reads it), its budget thresholds and its daily chart are
// shown. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

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
    page.on("response", async (response) => {
      if (new URL(response.url()).pathname === `/v1/tenants/${given.tenantId}/cost`) {
        report.api = await response.json();
      }
    });
    await page.goto(`${given.base}/`);
    await page.getByLabel("Operator token or API key").fill(given.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("link", { name: "Cost" }).first().click();
    await page.getByTestId("month-to-date").waitFor();
    const value = (testId) => page.getByTestId(testId).getAttribute("data-value").then(Number);
    report.page = {
      monthToDate: await value("month-to-date"),
      forecast: await value("forecast"),
      budget: await value("budget"),
      total: await value("total"),
      lines: (await page.getByTestId("line-amount").evaluateAll((e) => e.map((x) => Number(x.dataset.value)))),
      monthToDateText: await page.getByTestId("month-to-date").locator(".value").innerText(),
    };
    report.thresholds = await page.getByTestId("thresholds").innerText();
    report.chart = await page.getByTestId("daily-chart").locator("canvas").count();
    await page.screenshot({ path: `${given.shots}/cost.png`, fullPage: true });
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
