// Alert rules in the console: a rule made through the form, refused first with the error beside
// the field that caused it, then created; a reading past it raises an alert that the alert
// history shows. Run by tests/tests/console.rs like signin.cjs; prints a JSON report.

const { given, newPage, signIn, ingest, run } = require("./support.cjs");

run(async (browser, errors, report) => {
  const { context, page } = await newPage(browser, errors);
  await signIn(page, given.key);
  await page.getByRole("link", { name: "Rules" }).first().click();
  const form = page.getByTestId("rule-form");
  await form.waitFor();

  // With the keyboard: the fields have labels, and the clear value is on the wrong side.
  await form.getByLabel("Name").fill("Too hot");
  await form.getByLabel("Metric").fill("temp");
  await form.getByLabel("Severity").selectOption({ label: "major" });
  await form.getByLabel("Comparison").first().selectOption({ label: ">" });
  await form.getByLabel("Value").fill("80");
  await form.getByLabel("Clears at (optional)").fill("85");
  await form.getByLabel("Value").press("Enter");
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
});
