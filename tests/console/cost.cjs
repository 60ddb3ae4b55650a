// A tenant's cost page in the console: its figures are the ones the REST API answered it (the
// response is captured as the page reads it), its budget thresholds and its daily chart are
// shown. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

const { given, newPage, signIn, run } = require("./support.cjs");

run(async (browser, errors, report) => {
  const { context, page } = await newPage(browser, errors);
  page.on("response", async (response) => {
    if (new URL(response.url()).pathname === `/v1/tenants/${given.tenantId}/cost`) {
      report.api = await response.json();
    }
  });
  await signIn(page, given.key);
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
});
