// The console in headless Chromium, driven by playwright-core: signing in with each kind of
// credential, what each may see, and no console error on the way. Run by tests/tests/console.rs
// with a JSON of the platform's URL and credentials as its argument; prints a JSON report, and
// exits non-zero (saying why) when a step fails. Screenshots go to `shots`.

const { given, newPage, signIn, run } = require("./support.cjs");

const texts = (page, testId) => page.getByTestId(testId).allInnerTexts();

run(async (browser, errors, report) => {
  // A credential that is not one is refused, beside the field.
  let { context, page } = await newPage(browser, errors);
  await signIn(page, "mfg_not-a-key");
  const refused = page.locator("#signin-error").filter({ hasText: /\S/ });
  await refused.waitFor();
  report.refused = await refused.innerText();
  errors.length = 0; // The refused call's 401, logged by the browser.

  // The operator sees the platform: every tenant.
  await signIn(page, given.operator);
  await page.getByTestId("tenant-link").first().waitFor();
  report.operatorTenants = await texts(page, "tenant-link");
  report.machinesOnline = await page.getByTestId("machines-online").locator(".value").innerText();
  report.tenantMachines = await texts(page, "tenant-machines");
  await page.screenshot({ path: `${given.shots}/platform.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  report.platformNarrowOverflow = await page.evaluate(
    () => document.documentElement.scrollWidth > window.innerWidth,
  );
  await page.screenshot({ path: `${given.shots}/platform-narrow.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByTestId("tenant-link").filter({ hasText: given.tenantName }).click();
  await page.getByTestId("machine").first().waitFor();
  report.operatorMachines = await texts(page, "machine");
  report.operatorUrl = page.url();
  await page.screenshot({ path: `${given.shots}/tenant.png`, fullPage: true });
  await context.close();

  // A tenant's key starts at its tenant, sees its machines, and not another tenant's page.
  ({ context, page } = await newPage(browser, errors, { width: 390, height: 844 }));
  await signIn(page, given.key);
  await page.getByTestId("machine").first().waitFor();
  report.keyTitle = await page.getByTestId("tenant-name").innerText();
  report.keyNav = await page.locator("#nav a").allInnerTexts();
  report.keyMachines = await texts(page, "machine");
  report.online = await page.getByTestId("online-count").locator(".value").innerText();
  report.latest = await texts(page, "latest");
  await page.screenshot({ path: `${given.shots}/tenant-narrow.png`, fullPage: true });
  report.narrowOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await page.goto(`${given.base}/#/tenants/${given.otherTenant}`);
  await page.getByTestId("page-error").waitFor();
  report.otherTenant = await page.getByTestId("page-error").innerText();
  errors.splice(0, errors.length, ...errors.filter((e) => !/\b(403|404)\b/.test(e)));
  await page.goto(`${given.base}/#/`);
  await page.getByTestId("tenant-name").waitFor();
  report.keyHome = await page.getByTestId("tenant-name").innerText();
  report.credentialInUrl = page.url().includes(given.key);
  await context.close();
});
