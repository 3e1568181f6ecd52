// Repeating a measurement: each run is isolated (a failure is recorded, not thrown), and in a default run a row
// stops repeating once its runs together took ROW_BUDGET_MS, so one slow pair cannot blow the time budget.
import { performance } from 'node:perf_hooks';

/** At least one successful run is always kept; `--full` lifts the cap. */
export const ROW_BUDGET_MS = 60_000;

/** Runs one measurement; a failure becomes `{error}` instead of aborting the whole benchmark. */
export async function attempt(fn) {
  try {
    return await fn();
  } catch (err) {
    return { error: String(err?.message ?? err).slice(0, 600) };
  }
}

/** Runs `fn` up to `planned` times (see ROW_BUDGET_MS) and returns the results, failures included. */
export async function repeat(ctx, planned, label, fn) {
  const runs = [];
  const began = performance.now();
  for (let r = 0; r < planned; r++) {
    ctx.log(`${label} run ${r + 1}/${planned}`);
    runs.push(await attempt(fn));
    if (!ctx.full && performance.now() - began > ROW_BUDGET_MS && runs.some((x) => !x.error)) break;
  }
  return runs;
}
