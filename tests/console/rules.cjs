// Alert rules in the console: a rule made through the form, refused first with the error beside
// the field that caused it, then created; a reading past it raises an alert that the alert
// history shows. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

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
    await page.getByRole("link", { name: "Rules" }).first().click();
    const form = page.getByTestId("rule-form");
    await form.waitFor();

    // With the keyboard: the fields have labels, and the clear value is on the wrong side.
    await page.getByLabel("Name").fill("Too hot");
    await page.getByLabel("Metric").fill("temp");
    await page.getByLabel("Severity").selectOption({ label: "major" });
    await form.getByLabel("Comparison").first().selectOption({ label: ">" });
    await form.getByLabel("Value").fill("80");
    await form.getByLabel("Clears at (optional)").fill("85");
    await page.getByLabel("Value").press("Enter");
    await page.getByTestId("error-clear").filter({ hasText: /\S/ }).waitFor();
    report.fieldError = await page.getByTestId("error-clear").innerText();
    report.invalid = await form.getByLabel("Clears at (optional)").getAttribute("aria-invalid");
    errors.splice(0, errors.length, ...errors.filter((e) => !/\b400\b/.test(e)));
    await page.screenshot({ path: `${given.shots}/rules-error.png`, fullPage: true });

    await form.getByLabel("Clears at (optional)").fill("75");
    await form.getByRole("button", { name: "Create rule" }).click();
    await page.getByTestId("rule-name").filter({ hasText: "Too hot" }).waitFor();
    report.condition = await page.getByTestId("rule-condition").first().innerText();

    await ingest(90);
    const deadline = Date.now() + 15_000;
    for (;;) {
      await page.getByLabel("State").selectOption({ label: "open" });
      const states = await page.getByTestId("history-state").allInnerTexts();
      if (states.includes("open")) break;
      if (Date.now() > deadline) throw new Error("no alert in the history");
      await page.waitForTimeout(300);
      await page.getByLabel("State").selectOption({ label: "all" });
    }
    report.history = await page.getByTestId("history-state").allInnerTexts();
    await page.screenshot({ path: `${given.shots}/rules.png`, fullPage: true });
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
