import { join } from "node:path";

/**
 * With ZMQCHAT_BENCH_PROFILE=DIR, every process the bench starts (stack, helpers) writes a V8
 * CPU profile into DIR when it exits (node --cpu-prof), to see where the time goes.
 * ZMQCHAT_BENCH_PROFILE_INTERVAL=µs samples less often than V8's 1,000 µs: every thread of a
 * process (a client's opener and checkpoint threads too) gets its own sampling thread, and a
 * helper with 25 clients has some 75 of them, which at 1 ms took more CPU than the clients.
 * Each process writes into a directory of its own, DIR/NAME-TIME/, one file per thread under
 * Node's own name, CPU.DATE.TIME.PID.TID.SEQ.cpuprofile (the main thread's TID is 0): a
 * --cpu-prof-name would be the same for every thread, and the workers' profiles overwrote the
 * main thread's.
 * ZMQCHAT_BENCH_NODE_FLAGS adds Node flags to every such process (say "--trace-gc", with
 * ZMQCHAT_BENCH_DEBUG=1 to see their output on the bench's stderr); with
 * ZMQCHAT_BENCH_NODE_FLAGS_FOR=REGEX, only to the processes whose name matches (say
 * "balancer|server" for the stack, "peer" for the clients' helpers).
 */
export function profileFlags(name: string): string[] {
  const only = process.env.ZMQCHAT_BENCH_NODE_FLAGS_FOR;
  const extra =
    only && !new RegExp(only).test(name)
      ? []
      : (process.env.ZMQCHAT_BENCH_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? []);
  const dir = process.env.ZMQCHAT_BENCH_PROFILE;
  if (!dir) return extra;
  const interval = process.env.ZMQCHAT_BENCH_PROFILE_INTERVAL;
  return [
    ...extra,
    "--cpu-prof",
    `--cpu-prof-dir=${join(dir, `${name}-${Date.now()}`)}`,
    ...(interval ? [`--cpu-prof-interval=${interval}`] : []),
  ];
}
