import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * A worker thread running the module at `url`, compiled (.js) or from source (.ts, as the tests
 * run it under tsx): a worker does not take tsx's loader from its parent here (Node 20 says
 * "Unknown file extension .ts"), so from source the thread registers it before importing.
 */
export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith(".ts")) return new Worker(url, options);
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { ...options, eval: true });
}
