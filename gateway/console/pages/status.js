// A machine's status from its newest reading: online within a minute, stale within 15 minutes,
// offline after, `no data` before its first (decision 0015).

const ONLINE_MS = 60_000;
const STALE_MS = 15 * 60_000;

/** The status of a machine whose latest values are `values`, at `now` (ms). */
export function machineStatus(values, now = Date.now()) {
  const times = (values || []).map((v) => Date.parse(v.ts)).filter(Number.isFinite);
  if (times.length === 0) return "no data";
  const age = now - Math.max(...times);
  if (age <= ONLINE_MS) return "online";
  return age <= STALE_MS ? "stale" : "offline";
}
