/**
 * A bench helper process hosting one or more real ChatClients (the client core over the
 * zeromq transport, each with its own profile and cache): they register, log in, send and
 * record, per run tag, when each message became display-ready (opened, verified, cached).
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { ChatClient, type Target } from "../../core/client/client.js";
import { ensureIdentity, hasIdentity, profilePaths, saveIdentity } from "../../core/client/profile.js";
import type { ReplyBody } from "../../core/protocol/schema.js";
import { ZeromqClientTransport } from "../../transports/zeromq/client.js";
import { now, sleep } from "../lib/clock.js";
import { benchIdentity } from "../lib/keys.js";
import { serve } from "../lib/rpc.js";
import { cpuMicros } from "../lib/sysinfo.js";
import { benchText, parseBenchText } from "../lib/text.js";

interface ReceiveLog {
  times: Float64Array;
  count: number;
  duplicates: number;
}

interface Peer {
  client: ChatClient;
  logs: Map<string, ReceiveLog>;
  /** Messages that arrived but did not verify or decrypt, or carried no bench tag we expected. */
  problems: string[];
}

const peers = new Map<string, Peer>();

/**
 * How long this process's event loop was blocked during a call (a stall here delays every
 * message of the run). With ZMQCHAT_BENCH_LOOPLOG=FILE each sendRate/collect call appends one
 * JSON line with it there, to tell a client stall from a slow service.
 */
/** With ZMQCHAT_BENCH_LOOPLOG, the send → acknowledgement times of a call (is the wait before or after the service?). */
function logAcks(what: string, sent: Float64Array, acked: Float64Array): void {
  const file = process.env.ZMQCHAT_BENCH_LOOPLOG;
  if (!file) return;
  const d = Array.from(acked, (a, i) => a - sent[i]!)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);
  if (d.length === 0) return;
  const q = (p: number) => Math.round(d[Math.floor(p * (d.length - 1))]! * 10) / 10;
  appendFileSync(
    file,
    `${JSON.stringify({ pid: process.pid, what: `${what} acks`, p50: q(0.5), p99: q(0.99), max: q(1) })}\n`,
  );
}

/** This process's event-loop delay during a call, in ms: the result of the call carries it as `loop`. */
export interface LoopDelay {
  p99: number;
  max: number;
}

async function withLoopDelay<T>(what: string, run: () => Promise<T>): Promise<T & { loop?: LoopDelay }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  let result: T | undefined;
  try {
    result = await run();
  } finally {
    h.disable();
  }
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const loop = { p99: ms(h.percentile(99)), max: ms(h.max) };
  const file = process.env.ZMQCHAT_BENCH_LOOPLOG;
  if (file)
    appendFileSync(
      file,
      `${JSON.stringify({ pid: process.pid, what, p50: ms(h.percentile(50)), ...loop })}\n`,
    );
  return (result !== null && typeof result === "object" ? { ...result, loop } : result) as T & {
    loop?: LoopDelay;
  };
}
const transport = new ZeromqClientTransport();
/** Long enough that a slow machine never turns into a failed request; retries keep their ids. */
const REQUEST_TIMEOUT_MS = 120_000;
/** A sync page that never comes back is a failure to report, not slowness to wait out. */
const RECOVERY_TIMEOUT_MS = 30_000;

function peer(name: string): Peer {
  const p = peers.get(name);
  if (!p) throw new Error(`no client named ${name} in this helper`);
  return p;
}

function record(p: Peer, m: ChatMessage): void {
  if (m.from === p.client.name) return;
  if (!m.verified) {
    p.problems.push(`${m.id} from ${m.from}: ${m.problem}`);
    return;
  }
  const t = parseBenchText(m.text);
  const log = t ? p.logs.get(t.tag) : undefined;
  if (!t || !log || t.index >= log.times.length) return;
  if (Number.isNaN(log.times[t.index]!)) {
    log.times[t.index] = now();
    log.count++;
  } else {
    log.duplicates++;
  }
}

async function open(params: {
  name: string;
  home: string;
  endpoint: string;
  cachePath?: string;
  live: boolean;
}): Promise<void> {
  const paths = profilePaths(params.home, params.name);
  // The profile's keys are made here (see lib/keys.ts for why not by ensureIdentity), then loaded as the CLI would.
  if (!hasIdentity(paths))
    saveIdentity(paths, { identity: benchIdentity(params.name), device: randomBytes(8).toString("hex") });
  const identity = ensureIdentity(paths, params.name);
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: [params.endpoint],
    identity,
    cache: new Cache(params.cachePath ?? paths.cache),
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    // The service is known to run: the 1.5 s first-contact budget (for "nothing runs there") is
    // less than a loaded machine's stalls while 25 members start at once ("nothing answers").
    firstContactMs: 60_000,
  });
  const p: Peer = { client, logs: new Map(), problems: [] };
  client.on((e) => {
    if (e.type === "message") record(p, e.message);
  });
  await client.register();
  await client.login();
  if (params.live) await client.goLive();
  peers.set(params.name, p);
}

async function close(name: string): Promise<void> {
  const p = peers.get(name);
  if (!p) return;
  peers.delete(name);
  await p.client.close();
  await p.client.cache.close();
}

/**
 * Runs `count` sends with at most `concurrency` awaiting their acknowledgement. With
 * `untilMs`, no new send starts after that time (ms since the epoch); `issued` says how many did.
 */
async function sendBurst(params: {
  name: string;
  target: Target;
  tag: string;
  count: number;
  size: number;
  concurrency: number;
  untilMs?: number;
}): Promise<{ sent: Float64Array; acked: Float64Array; failures: string[]; issued: number }> {
  const { client } = peer(params.name);
  const sent = new Float64Array(params.count).fill(Number.NaN);
  const acked = new Float64Array(params.count).fill(Number.NaN);
  const failures: string[] = [];
  let next = 0;
  let issued = 0;
  const lane = async () => {
    for (;;) {
      if (params.untilMs !== undefined && Date.now() > params.untilMs) return;
      const i = next++;
      if (i >= params.count) return;
      issued++;
      sent[i] = now();
      try {
        await client.send(params.target, benchText(params.tag, i, params.size));
        acked[i] = now();
      } catch (err) {
        failures.push(`${i}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(params.concurrency, params.count) }, lane));
  return { sent, acked, failures, issued };
}

/** Offers `rate` messages per second for `durationMs` (open loop: a send does not wait for the previous ack). */
async function sendRate(params: {
  name: string;
  target: Target;
  tag: string;
  rate: number;
  durationMs: number;
  size: number;
  maxInFlight: number;
}): Promise<{ sent: Float64Array; acked: Float64Array; failures: string[]; behindMs: number }> {
  const { client } = peer(params.name);
  const count = Math.round((params.rate * params.durationMs) / 1000);
  const sent = new Float64Array(count).fill(Number.NaN);
  const acked = new Float64Array(count).fill(Number.NaN);
  const failures: string[] = [];
  const pending = new Set<Promise<void>>();
  const start = now();
  let behindMs = 0;
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / params.rate;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    while (pending.size >= params.maxInFlight) await Promise.race(pending);
    behindMs = Math.max(behindMs, now() - due);
    sent[i] = now();
    const p: Promise<void> = client
      .send(params.target, benchText(params.tag, i, params.size))
      .then(
        () => {
          acked[i] = now();
        },
        (err: unknown) => {
          failures.push(`${i}: ${(err as Error).message}`);
        },
      )
      .finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  logAcks("sendRate", sent, acked);
  return { sent, acked, failures, behindMs };
}

/** Prepares the receive logs of a run tag on these clients. */
function listen(params: { names: string[]; tag: string; count: number }): void {
  for (const n of params.names) {
    peer(n).logs.set(params.tag, {
      times: new Float64Array(params.count).fill(Number.NaN),
      count: 0,
      duplicates: 0,
    });
  }
}

/**
 * Waits until every client has every message of the tag, or until no client has made progress
 * for `stallMs` (then the missing ones count as lost). Returns each client's arrival times.
 */
async function collect(params: { names: string[]; tag: string; stallMs: number }): Promise<{
  times: Float64Array[];
  duplicates: number;
  problems: string[];
}> {
  const logs = params.names.map((n) => {
    const log = peer(n).logs.get(params.tag);
    if (!log) throw new Error(`${n} is not listening for ${params.tag}`);
    return log;
  });
  const total = () => logs.reduce((s, l) => s + l.count, 0);
  const want = logs.reduce((s, l) => s + l.times.length, 0);
  let seen = total();
  let progressAt = now();
  while (seen < want) {
    await sleep(10);
    const t = total();
    if (t !== seen) {
      seen = t;
      progressAt = now();
    } else if (now() - progressAt > params.stallMs) {
      break;
    }
  }
  const problems = params.names.flatMap((n) => peer(n).problems.splice(0));
  for (const n of params.names) peer(n).logs.delete(params.tag);
  return {
    times: logs.map((l) => l.times),
    duplicates: logs.reduce((s, l) => s + l.duplicates, 0),
    problems,
  };
}

/**
 * A user on a new machine: a fresh cache for an existing identity, then one `sync` of the whole
 * mailbox. Returns how long it took until every message was stored, verified and decrypted.
 */
async function recover(params: {
  name: string;
  home: string;
  endpoint: string;
  cacheDir: string;
  /** The service's processes (balancer, servers): their CPU time during the sync is returned too. */
  servicePids?: number[];
}): Promise<{
  ms: number;
  /** CPU time of this process (all its threads: the opener's too) during the sync. */
  cpuMs?: number;
  /** CPU time of its main thread alone (the rest: the opener's threads, V8's helpers). */
  mainCpuMs?: number;
  /** Of the rest: the threads the sync started (opener, checkpoint), and the process's other threads. */
  startedCpuMs?: number;
  otherCpuMs?: number;
  /** CPU time of the service's processes during the sync. */
  serviceCpuMs?: number;
  messages: number;
  verified: number;
  problems: number;
  duplicates: number;
  storedTwice?: number;
  error?: string;
}> {
  const paths = profilePaths(params.home, params.name);
  const identity = ensureIdentity(paths, params.name);
  const cache = new Cache(join(params.cacheDir, `${params.name}-${Date.now()}.db`));
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: [params.endpoint],
    identity,
    cache,
    requestTimeoutMs: RECOVERY_TIMEOUT_MS,
    firstContactMs: 60_000,
  });
  let messages = 0;
  let verified = 0;
  let problems = 0;
  const ids = new Set<string>();
  let duplicates = 0;
  client.on((e) => {
    if (e.type !== "message") return;
    messages++;
    if (e.message.verified) verified++;
    else problems++;
    const t = parseBenchText(e.message.text);
    const id = t ? `${t.tag}:${t.index}` : e.message.id;
    if (ids.has(id)) duplicates++;
    else ids.add(id);
  });
  const servicePids = params.servicePids ?? [];
  const serviceCpu = () => servicePids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  const started = now();
  const main0 = mainThreadCpuMs();
  const threads0 = threadCpuMs();
  const cpu0 = process.cpuUsage();
  const service0 = serviceCpu();
  try {
    await client.login();
    await client.sync();
    const ms = now() - started;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const main1 = mainThreadCpuMs();
    const split = threadSplit(threads0, threadCpuMs());
    const mainCpuMs = main0 !== null && main1 !== null ? main1 - main0 : undefined;
    const serviceCpuMs = (serviceCpu() - service0) / 1000;
    // Not timed: a second read of the whole mailbox, for copies the service stored twice.
    const stored = await auditMailbox(client);
    return {
      ms,
      cpuMs,
      mainCpuMs,
      ...split,
      serviceCpuMs,
      messages,
      verified,
      problems,
      duplicates,
      storedTwice: stored.items - stored.unique,
    };
  } catch (err) {
    // What did arrive is reported with the error: the caller counts the rest as lost.
    return { ms: now() - started, messages, verified, problems, duplicates, error: (err as Error).message };
  } finally {
    await client.close();
    await cache.close();
  }
}

/**
 * Reads a live client's whole mailbox from the service (without touching its cache) and counts
 * the stored copies: the client's cache drops a second copy of a message id silently, so this
 * is where a resend that the service stored twice shows.
 */
async function audit(params: { name: string }): Promise<{ items: number; unique: number }> {
  return auditMailbox(peer(params.name).client);
}

async function auditMailbox(client: ChatClient): Promise<{ items: number; unique: number }> {
  const ids = new Set<string>();
  let items = 0;
  let after: string | null = null;
  for (;;) {
    // Pages of 500: larger ones can exceed the 1 MiB frame limit.
    const page: ReplyBody<"sync"> = await client.request("sync", { after, limit: 500 });
    for (const i of page.items) ids.add(i.envelope.id);
    items += page.items.length;
    if (!page.more || page.items.length === 0) break;
    after = page.items.at(-1)!.cursor;
  }
  return { items, unique: ids.size };
}

serve(
  {
    open,
    audit,
    async openMany(params: { names: string[]; home: string; endpoint: string; live: boolean }) {
      // A few at a time: each one registers and logs in.
      for (let i = 0; i < params.names.length; i += 10) {
        await Promise.all(
          params.names
            .slice(i, i + 10)
            .map((name) => open({ name, home: params.home, endpoint: params.endpoint, live: params.live })),
        );
      }
    },
    async close(params: { names?: string[] }) {
      for (const n of params.names ?? [...peers.keys()]) await close(n);
    },
    async groupCreate(params: { name: string; group: string; members: string[] }) {
      await peer(params.name).client.groupCreate(params.group, params.members);
    },
    /** Members accept their invitation; those not open here are opened for it and closed again. */
    async groupAccept(params: { names: string[]; group: string; home: string; endpoint: string }) {
      for (const name of params.names) {
        const wasOpen = peers.has(name);
        if (!wasOpen) await open({ name, home: params.home, endpoint: params.endpoint, live: false });
        await peer(name).client.groupAnswer(params.group, "accept");
        if (!wasOpen) await close(name);
      }
    },
    sendBurst: (p: Parameters<typeof sendBurst>[0]) => withLoopDelay("sendBurst", () => sendBurst(p)),
    sendRate: (p: Parameters<typeof sendRate>[0]) => withLoopDelay("sendRate", () => sendRate(p)),
    listen,
    collect: (p: Parameters<typeof collect>[0]) => withLoopDelay("collect", () => collect(p)),
    recover,
    /** CPU time of this process so far: its main thread, and all its threads (ms). */
    cpu(): { mainMs: number | null; allMs: number } {
      const u = process.cpuUsage();
      return { mainMs: mainThreadCpuMs(), allMs: (u.user + u.system) / 1000 };
    },
  },
  async () => {
    for (const n of [...peers.keys()]) await close(n);
  },
);

/** CPU time of this process's main thread (Linux: /proc, in clock ticks of 10 ms), null elsewhere. */
function mainThreadCpuMs(): number | null {
  return taskCpuMs(String(process.pid));
}

function taskCpuMs(tid: string): number | null {
  try {
    const st = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

/** CPU time of each of this process's threads by thread id (Linux: /proc), null elsewhere. */
function threadCpuMs(): Map<string, number> | null {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return null;
  }
  const out = new Map<string, number>();
  for (const tid of tids) {
    const ms = taskCpuMs(tid);
    if (ms !== null) out.set(tid, ms);
  }
  return out;
}

/**
 * The CPU a sync took beyond the main thread, split: the threads it started (the opener's, the
 * cache's checkpoint thread) and the process's other threads (V8's garbage collection and
 * compiler helpers, libuv's, ZeroMQ's I/O thread).
 */
function threadSplit(
  before: Map<string, number> | null,
  after: Map<string, number> | null,
): { startedCpuMs?: number; otherCpuMs?: number } {
  if (!before || !after) return {};
  let startedCpuMs = 0;
  let otherCpuMs = 0;
  for (const [tid, ms] of after) {
    if (tid === String(process.pid)) continue;
    const was = before.get(tid);
    if (was === undefined) startedCpuMs += ms;
    else otherCpuMs += ms - was;
  }
  return { startedCpuMs, otherCpuMs };
}
