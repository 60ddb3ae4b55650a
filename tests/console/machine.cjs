// A machine's charts in the console: one per metric, over 15 minutes from the hot tier, with the
// rule's threshold drawn, receiving new readings while open; then over 24 hours. Run by
// tests/tests/console.rs like signin.cjs; prints a JSON report.

const { given, newPage, signIn, ingest, run } = require("./support.cjs");

run(async (browser, errors, report) => {
  const { context, page } = await newPage(browser, errors);
  await signIn(page, given.key);
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
  const narrow = await newPage(browser, errors, { width: 390, height: 844 });
  await signIn(narrow.page, given.key);
  await narrow.page.getByTestId("machine").first().waitFor();
  await narrow.page.goto(page.url());
  await narrow.page.locator('[data-metric="temp"] canvas').waitFor();
  report.narrowOverflow = await narrow.page.evaluate(
    () => document.documentElement.scrollWidth > window.innerWidth,
  );
  await narrow.page.screenshot({ path: `${given.shots}/machine-narrow.png`, fullPage: true });
  await narrow.context.close();
  await page.getByRole("button", { name: "24 h" }).click();
  await page.waitForFunction(() =>
    document.querySelector('button[aria-pressed="true"]')?.textContent === "24 h",
  );
  await temp.locator("canvas").waitFor();
  report.tiers24h = await page.locator('[data-metric="temp"] [data-testid="tiers"]').innerText();
  await context.close();
});
