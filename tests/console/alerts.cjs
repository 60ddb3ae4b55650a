// A tenant's open alerts in the console, live: an alert raised by ingest while the page is
// open appears without a reload, is acknowledged, then resolved from the page. Run by
// tests/tests/console.rs like signin.cjs; prints a JSON report.

const { given, newPage, signIn, ingest, run } = require("./support.cjs");

run(async (browser, errors, report) => {
  const { context, page } = await newPage(browser, errors);
  await signIn(page, given.key);
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
});
