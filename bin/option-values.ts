import type { Command, Option } from "commander";
import { ZmqchatError } from "../core/errors.js";

/**
 * Joins each option-argument that starts with a dash to its option (`--key -Vx` becomes
 * `--key=-Vx`), for the options of the command being run that require a value.
 *
 * Commander lets the program's own options stand anywhere on the line, also after the command,
 * and reads a short group like `-Vx` as its `-V` even where it is the value of the command's
 * option: `zmqchat server --curve-balancer-key -Vx…` printed the version and exited 0, and a value
 * starting with `-u` or `-e` went to `--user` or `--endpoint` (the command then missed its value).
 * A CURVE key is Z85, whose alphabet has `-`: about one key in 2,400 began so (`zmqchat up`, the
 * Ansible server role and the tests pass keys this way). The command itself takes the next argument whatever it is
 * (commander is greedy for a required value), so joining changes nothing else. Stops at `--`.
 *
 * An argument after the command that begins like one of the program's flags without a value
 * (`-V…`) and is no option there is refused as a usage error: commander took it for `--version`,
 * so `zmqchat send bob "-Very well"` printed the version and exited 0 without sending anything.
 * A text that begins with a dash goes after `--`, as with any other dash-led text (`-1 …` was
 * already refused as an unknown option).
 */
export function joinDashValues(program: Command, args: readonly string[]): string[] {
  const out = [...args];
  let cmd = program;
  for (let i = 0; i < out.length; i++) {
    const arg = out[i]!;
    if (arg === "--") break;
    const option = findOption(cmd, arg);
    if (option) {
      if (!option.required) continue;
      const value = out[i + 1];
      // The program's own options are greedy in its own parse: only the command's need this.
      if (cmd !== program && value !== undefined && value.length > 1 && value.startsWith("-")) {
        out.splice(i, 2, arg.startsWith("--") ? `${arg}=${value}` : `${arg}${value}`);
      } else {
        i++;
      }
      continue;
    }
    if (arg.startsWith("-")) {
      const flag = cmd !== program && /^-[^-]/.test(arg) ? findOption(program, arg.slice(0, 2)) : undefined;
      if (flag && !flag.required && !flag.optional)
        throw new ZmqchatError("usage", `${arg} would be read as ${flag.long ?? flag.short}`, {
          hint: `put -- before an argument that begins with a dash: zmqchat ${cmd.name()} … -- '${arg}'`,
        });
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (sub) cmd = sub;
  }
  return out;
}

/** `arg` as an option of `cmd` or of a command above it (exact flag, not `--x=v` or `-abc`). */
function findOption(cmd: Command, arg: string): Option | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const found = c.options.find((o) => o.long === arg || o.short === arg);
    if (found) return found;
  }
  return undefined;
}
