import { existsSync } from "node:fs";
import type { Command } from "commander";
import { SETTING_ENV, type SettingName, type Settings, type Source } from "../../core/config/config.js";
import { type GlobalFlags, settingsOf } from "../context.js";
import type { Io } from "../io.js";

export interface ShownSetting {
  value: unknown;
  source: Source;
  /** Where exactly: the flag, the environment variable, the config file, or "default". */
  from: string;
}

/** `home`, `configFile` (with `exists`), then every setting, in the order `config show` prints them. */
export type ConfigReport = { home: ShownSetting; configFile: ShownSetting & { exists: boolean } } & Record<
  SettingName,
  ShownSetting
>;

/** Every setting as resolved for this invocation, with where each value came from. */
export function configReport(cmd: Command, env: NodeJS.ProcessEnv = process.env): ConfigReport {
  const settings = settingsOf(cmd, env);
  const flags = cmd.optsWithGlobals() as GlobalFlags;
  const where = (flag: string, envName: string, source: Source): string =>
    source === "flag"
      ? flag
      : source === "env"
        ? envName
        : source === "file"
          ? settings.configFile
          : "default";
  const fileSource: Source = flags.config ? "flag" : env.ZMQCHAT_CONFIG ? "env" : "default";
  const report = {
    home: {
      value: settings.home,
      source: settings.sources.home,
      from: where("--home", "ZMQCHAT_HOME", settings.sources.home),
    },
    configFile: {
      value: settings.configFile,
      source: fileSource,
      from: where("--config", "ZMQCHAT_CONFIG", fileSource),
      exists: existsSync(settings.configFile),
    },
  } as ConfigReport;
  // Every setting config.ts knows, in its order: a new one shows up here by itself.
  for (const name of Object.keys(SETTING_ENV) as SettingName[]) {
    const source = settings.sources[name];
    const value =
      name === "endpoint" ? settings.endpoints.join(",") : (settings[name as keyof Settings] ?? null);
    report[name] = { value, source, from: where(`--${kebab(name)}`, SETTING_ENV[name], source) };
  }
  return report;
}

/** `zmqchat config show`: each value and its source; an invalid configuration fails as a usage error. */
export async function configShowCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const r = configReport(cmd);
  if (opts.json) {
    io.out(JSON.stringify(r));
    return;
  }
  const rows = Object.entries(r).map(([name, s]: [string, ShownSetting & { exists?: boolean }]) => [
    name,
    s.value === null ? "(not set)" : String(s.value),
    `${s.source === "default" ? "default" : `${s.source} ${s.from}`}${s.exists === false ? ", absent" : ""}`,
  ]);
  const width = (i: number) => Math.max(...rows.map((row) => row[i]!.length));
  const [w0, w1] = [width(0), width(1)];
  for (const [name, value, source] of rows) io.out(`${name!.padEnd(w0)}  ${value!.padEnd(w1)}  (${source})`);
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
