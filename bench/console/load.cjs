// How fast the console draws its pages on a running platform, in headless Chromium:
//
//   NODE_PATH=target/test-node-*/node_modules node bench/console/load.cjs \
//     http://127.0.0.1:8080 "$(cat .mfg/admin-token)" <tenant id> [runs]
//
// (scripts/test.sh installs playwright-core there; Chromium is Debian's, at /usr/bin/chromium.)
// Signs in as the operator and times, per run: Sign in to the platform page's tenants, a
// machine (press-01) to its first chart, the tenant to its machines. Prints one JSON line per
// run; exits non-zero when a page fails or the browser logs an error.

const { chromium } = require("playwright-core");

const [base, token, tenant, runs = "3"] = process.argv.slice(2);
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function timed(work) {
  const start = Date.now();
  await work();
  return Date.now() - start;
}

(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS });
  let failed = false;
  for (let run = 0; run < Number(runs); run++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${base}/`);
    await page.getByLabel("Operator token or API key").fill(token);
    const platformMs = await timed(async () => {
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByTestId("tenant-link").first().waitFor();
    });
    const machineMs = await timed(async () => {
      await page.goto(`${base}/#/tenants/${tenant}/machines/press-01`);
      await page.locator('[data-testid="chart"] canvas').first().waitFor();
    });
    const tenantMs = await timed(async () => {
      await page.goto(`${base}/#/tenants/${tenant}`);
      await page.getByTestId("machine").first().waitFor();
    });
    console.log(JSON.stringify({ run, platformMs, machineMs, tenantMs, errors }));
    failed ||= errors.length > 0;
    await context.close();
  }
  await browser.close();
  process.exit(failed ? 1 : 0);
})().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
