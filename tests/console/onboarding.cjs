// A failed onboarding run in the console: the operator sees the failed step's reason, retries
// the run from the page and follows it to success; then finds the retry in the audit log,
// filtered by action. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

const { given, newPage, signIn, run } = require("./support.cjs");

run(async (browser, errors, report) => {
  const { context, page } = await newPage(browser, errors);
  await signIn(page, given.operator);
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
});
