/**
 * With ZMQCHAT_BENCH_PROFILE=DIR, every process the bench starts (stack, helpers) writes a V8
 * CPU profile into DIR when it exits (node --cpu-prof), to see where the time goes.
 */
export function profileFlags(name: string): string[] {
  const dir = process.env.ZMQCHAT_BENCH_PROFILE;
  if (!dir) return [];
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`];
}
