import { Argument, Command, CommanderError, Option } from "commander";
import { DEFAULT_ENDPOINT, OPERATOR_DEFAULTS } from "../core/config/defaults.js";
import { ZmqchatError } from "../core/errors.js";
import { DEFAULT_SESSION_TTL_MS } from "../server/auth.js";
import { deleteCommand, editCommand, reactCommand } from "./commands/actions.js";
import {
  contactsCommand,
  groupAnswerCommand,
  groupCommand,
  groupsCommand,
  historyCommand,
  listenCommand,
  registerCommand,
  sendCommand,
  syncCommand,
  verifyHistoryCommand,
} from "./commands/chat.js";
import { completeNamesCommand } from "./commands/complete-names.js";
import { completionCommand } from "./commands/completion.js";
import { configShowCommand } from "./commands/config.js";
import type { DaemonFlags } from "./commands/daemon.js";
import { adoptPushedKeys, registerDevicesCommands } from "./commands/devices.js";
import { downloadCommand, sendFileCommand } from "./commands/files.js";
import {
  groupAdminCommand,
  groupInfoCommand,
  groupOwnerCommand,
  groupRenameCommand,
} from "./commands/group-roles.js";
import { muteCommand } from "./commands/mute.js";
import { searchCommand } from "./commands/search.js";
import type { BalancerFlags, ServerFlags } from "./commands/serve.js";
import type { UpFlags } from "./commands/stack.js";
import { type Io, processIo } from "./io.js";
import { joinDashValues } from "./option-values.js";
import { EXIT, report } from "./report.js";
import { packageVersion } from "./version.js";

// Commands that bring code a chat command never needs (the server and the balancer, the daemon,
// the local stack, the passphrase-strength estimator's dictionaries) are loaded when run: every
// `zmqchat send` would otherwise import them (~90 ms of a ~400 ms start, measured).
const loadKeys = () => import("./commands/keys.js");
const loadServe = () => import("./commands/serve.js");
const loadStack = () => import("./commands/stack.js");
const loadDaemon = () => import("./commands/daemon.js");

/** Builds the command tree. Each action maps flags to one library call; failures go to one reporter. */
export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command("zmqchat")
    .description("End-to-end encrypted terminal chat over ZeroMQ. With no command, opens the full-screen UI.")
    .version(packageVersion())
    .option("-u, --user <name>", "who you are (env ZMQCHAT_USER)")
    .option(
      "-e, --endpoint <urls>",
      `balancer endpoints, comma-separated (env ZMQCHAT_ENDPOINT; default ${DEFAULT_ENDPOINT})`,
    )
    .option("--home <dir>", "zmqchat home with one profile per user (env ZMQCHAT_HOME; default ~/.zmqchat)")
    .option("--config <file>", "config file (default HOME/config.json)")
    .option(
      "--curve-server-key <key>",
      "the balancer's CURVE public key, or one per endpoint comma-separated: pin it (env ZMQCHAT_CURVE_SERVER_KEY; default: the key a local stack published)",
    )
    .option(
      "--request-timeout <duration>",
      "how long to wait for the service to answer a request, e.g. 30s (env ZMQCHAT_REQUEST_TIMEOUT; default 10s)",
    )
    .option("--debug", "print stacks with errors")
    // Commander's own usage errors (unknown option, missing argument) go through the one
    // reporter too; the help it shows after them goes to the same stderr.
    .configureOutput({
      writeErr: (text) => io.err(text.replace(/\n$/, "")),
      outputError: (text) => {
        report(new ZmqchatError("usage", text.replace(/^error: /, "").trim()), false, io.err);
      },
    })
    .showHelpAfterError()
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user alice                  # the full-screen UI\n  zmqchat --user alice send bob 'hi'\n  zmqchat help send",
    )
    .exitOverride();

  const run =
    <A extends unknown[]>(fn: (cmd: Command, ...args: A) => Promise<void>) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      try {
        const again = () => fn(cmd, ...(args.slice(0, -1) as A));
        // A login refused for keys another device rotated: take the keys it pushed here, retry once.
        await again().catch(async (err) => {
          if (!(await adoptPushedKeys(cmd, io, err))) throw err;
          await again();
        });
        setExit(EXIT.ok);
      } catch (err) {
        setExit(report(err, Boolean(cmd.optsWithGlobals().debug), io.err));
      }
    };
  const timeout = new Option(
    "--timeout <duration>",
    "give up after this long (500ms, 2s, 1m; a bare number is seconds)",
  );

  program
    .command("register")
    .description("create your keys if absent and register your name (harmless to repeat)")
    .addOption(timeout)
    .addHelpText("after", "\nExample:\n  zmqchat --user alice register")
    .action(run((cmd) => registerCommand(cmd, io)));

  program
    .command("send")
    .description("send a message; TEXT from the argument, or stdin when absent or '-'; prints the message id")
    .argument("[user]", "recipient")
    .argument("[text]", "the message")
    .option("-g, --group <group>", "send to a group instead")
    .option("-q, --queue", "when the service is unreachable, keep the message in the outbox and exit 0")
    .option("--reply-to <id>", "reply to this message of the conversation (its id from history --json)")
    .option("--file <path>", "attach a file (encrypted here, uploaded in chunks, resumed when sent again)")
    .addOption(timeout)
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user alice send bob 'hi bob'\n  echo 'hi all' | zmqchat --user alice send --group team\n  zmqchat --user alice send bob --file report.pdf 'the report'",
    )
    .action(
      run(
        (
          cmd,
          user: string | undefined,
          text: string | undefined,
          opts: { group?: string; timeout?: string; replyTo?: string; file?: string },
        ) =>
          opts.file !== undefined
            ? sendFileCommand(cmd, io, user, text, { ...opts, file: opts.file })
            : sendCommand(cmd, io, user, text, opts),
      ),
    );

  program
    .command("download")
    .description("fetch, decrypt and check the file of a message; prints where it was written")
    .argument("<id>", "the message id (history --json)")
    .option(
      "-o, --out <path>",
      "where to write it (a directory: the file's name in it); default: its name here",
    )
    .option("--force", "replace a file that exists")
    .addOption(timeout)
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --user bob download 0190f000-0000-7000-8000-000000000001 --out ~/Downloads",
    )
    .action(
      run((cmd, id: string, opts: { out?: string; force?: boolean; timeout?: string }) =>
        downloadCommand(cmd, io, id, opts),
      ),
    );

  program
    .command("edit")
    .description(
      "edit one of your messages for everyone; TEXT from the argument, or stdin when absent or '-'",
    )
    .argument("<id>", "the message id (history --json)")
    .argument("[text]", "the new text")
    .addOption(timeout)
    .addHelpText("after", "\nExample:\n  zmqchat --user alice edit 0193… 'lunch at 1, not 12'")
    .action(
      run((cmd, id: string, text: string | undefined, opts: { timeout?: string }) =>
        editCommand(cmd, io, id, text, opts),
      ),
    );

  program
    .command("delete")
    .description("delete one of your messages for everyone")
    .argument("<id>", "the message id (history --json)")
    .addOption(timeout)
    .addHelpText("after", "\nExample:\n  zmqchat --user alice delete 0193…")
    .action(run((cmd, id: string, opts: { timeout?: string }) => deleteCommand(cmd, io, id, opts)));

  program
    .command("react")
    .description("react to a message with one emoji (again with --remove to take it back)")
    .argument("<id>", "the message id (history --json)")
    .argument("<emoji>", "one emoji")
    .option("--remove", "take the reaction back")
    .addOption(timeout)
    .addHelpText("after", "\nExample:\n  zmqchat --user bob react 0193… 👍")
    .action(
      run((cmd, id: string, emoji: string, opts: { remove?: boolean; timeout?: string }) =>
        reactCommand(cmd, io, id, emoji, opts),
      ),
    );

  program
    .command("mute")
    .description(
      "no bell or notification for a conversation (its messages are still kept and shown); no target: list",
    )
    .argument("[user]", "the other person")
    .option("-g, --group <group>", "a group instead")
    .option("--off", "unmute")
    .option("--json", "the list as JSON lines")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob mute --group team")
    .action(
      run((cmd, user: string | undefined, opts: { group?: string; off?: boolean; json?: boolean }) =>
        muteCommand(cmd, io, user, opts),
      ),
    );

  program
    .command("history")
    .description("a conversation, oldest first (fetches what is new first; offline: the local cache)")
    .argument("[user]", "the other person")
    .option("-g, --group <group>", "a group's history instead")
    .option("-n, --limit <n>", "how many of the newest messages", "100")
    .option("--json", "one JSON object per line")
    .option("--mark-read", "count what is printed as read (read receipts) even when stdout is not a terminal")
    .option("--no-mark-read", "do not count what is printed as read, even on a terminal")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob history alice --json")
    .action(
      run(
        (
          cmd,
          user: string | undefined,
          opts: { group?: string; limit: string; json?: boolean; markRead?: boolean },
        ) => historyCommand(cmd, io, user, opts),
      ),
    );

  program
    .command("search")
    .description(
      "search your messages in the local cache (fetches what is new first; offline: the cache as it is)",
    )
    .argument("<words...>", 'words that must all appear (word beginnings match); "a phrase" in quotes')
    .option("-f, --from <user>", "only messages this user sent")
    .option("-g, --group <group>", "only this group's messages")
    .option("-n, --limit <n>", "how many of the newest matches", "100")
    .option("--json", "one JSON object per line, as history prints them")
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user bob search lunch friday\n  zmqchat --user bob search --group team --from alice release --json",
    )
    .action(
      run((cmd, words: string[], opts: { from?: string; group?: string; limit: string; json?: boolean }) =>
        searchCommand(cmd, io, words, opts),
      ),
    );

  program
    .command("listen")
    .description("print what arrived since the last listen, then live messages until interrupted")
    .option("--json", "one JSON object per line")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob listen --json | jq .text")
    .action(run((cmd, opts: { json?: boolean }) => listenCommand(cmd, io, opts)));

  program
    .command("sync")
    .description("recover everything from your mailbox into the local cache")
    .option("--json", "print {recovered, total} as JSON")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob sync")
    .action(run((cmd, opts: { json?: boolean }) => syncCommand(cmd, io, opts)));

  program
    .command("daemon")
    .description("serve this profile to scripts and bots: JSON-RPC 2.0, one object per line (README: Daemon)")
    .option("--socket <path>", "the unix socket (default daemon.sock in the profile; mode 0600)")
    .option("--stdio", "also serve stdin/stdout; stops when stdin ends")
    .option(
      "--tcp <host:port>",
      "also serve TCP on loopback (clients call auth with the token in daemon.token)",
    )
    .option("--allow-remote", "let --tcp listen beyond loopback (plaintext; the token is still required)")
    .addHelpText(
      "after",
      `\nExamples:\n  zmqchat --user alice daemon &\n  echo '{"jsonrpc":"2.0","id":1,"method":"send","params":{"to":"bob","text":"hi"}}' | socat - UNIX-CONNECT:$HOME/.zmqchat/users/alice/daemon.sock`,
    )
    .action(run(async (cmd, flags: DaemonFlags) => (await loadDaemon()).daemonCommand(cmd, io, flags)));

  program
    .command("verify-history")
    .description("check conversations for gaps and unverifiable messages; exit 0 only when complete")
    .argument("[user]", "one 1:1 conversation (default: all)")
    .option("-g, --group <group>", "one group's history")
    .option("--json", "one JSON report per conversation")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob verify-history alice")
    .action(
      run((cmd, user: string | undefined, opts: { group?: string; json?: boolean }) =>
        verifyHistoryCommand(cmd, io, user, opts),
      ),
    );

  program
    .command("logout")
    .description("end this device's sessions on the service (--all: every device's)")
    .option("--all", "end every session of your user, on every device")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice logout")
    .action(run(async (cmd, opts: { all?: boolean }) => (await loadKeys()).logoutCommand(cmd, io, opts)));

  program
    .command("contacts")
    .description("registered users, with the state of their pinned keys")
    .option("--json", "one JSON object per line")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice contacts --json")
    .action(run((cmd, opts: { json?: boolean }) => contactsCommand(cmd, io, opts)));

  program
    .command("groups")
    .description("the groups you are in")
    .option("--json", "one JSON object per line")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice groups")
    .action(run((cmd, opts: { json?: boolean }) => groupsCommand(cmd, io, opts)));

  const group = program
    .command("group")
    .description("groups: the owner creates and invites; invitees accept or decline; members leave")
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user alice group create team bob carol\n  zmqchat --user alice group remove team carol",
    );
  for (const op of ["create", "add", "remove"] as const) {
    group
      .command(op)
      .argument("<group>", "group name")
      .argument(op === "create" ? "[members...]" : "<members...>", "user names")
      .description({ create: "create a group you own", add: "add members", remove: "remove members" }[op])
      .addHelpText(
        "after",
        `\nExample:\n  zmqchat --user alice group ${op} team bob${op === "create" ? " carol" : ""}`,
      )
      .action(run((cmd, name: string, members: string[]) => groupCommand(cmd, io, op, name, members)));
  }
  group
    .command("info")
    .argument("<group>", "group name")
    .description("a group's owner, members, pending invitations, admins and title")
    .option("--json", "as one JSON object: {name, owner, members, invited, admins, title}")
    .addHelpText("after", "\nExample:\n  zmqchat --user bob group info team --json")
    .action(run((cmd, name: string, opts: { json?: boolean }) => groupInfoCommand(cmd, io, name, opts)));
  group
    .command("rename")
    .argument("<group>", "group name (stays: --group keeps using it)")
    .argument("<title>", "the new display title")
    .description("owner: set the group's display title; its name stays, so scripts keep working")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice group rename team 'Release team'")
    .action(run((cmd, name: string, title: string) => groupRenameCommand(cmd, io, name, title)));
  group
    .command("owner")
    .argument("<group>", "group name")
    .argument("<user>", "a member")
    .description("owner: hand the group over to a member (you stay a plain member)")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice group owner team bob")
    .action(run((cmd, name: string, user: string) => groupOwnerCommand(cmd, io, name, user)));
  group
    .command("admin")
    .argument("<group>", "group name")
    .argument("<user>", "a member")
    .option("--remove", "no longer an admin")
    .description("owner: make a member an admin (admins add and remove plain members)")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice group admin team bob")
    .action(
      run((cmd, name: string, user: string, opts: { remove?: boolean }) =>
        groupAdminCommand(cmd, io, name, user, opts),
      ),
    );
  for (const op of ["accept", "decline", "leave"] as const) {
    group
      .command(op)
      .argument("<group>", "group name")
      .description(
        {
          accept: "accept an invitation: become a member and receive the group's messages",
          decline: "decline an invitation: nothing from the group reaches you",
          leave: "leave a group (its owner cannot): nothing more from it reaches you",
        }[op],
      )
      .addHelpText("after", `\nExample:\n  zmqchat --user bob group ${op} team`)
      .action(run((cmd, name: string) => groupAnswerCommand(cmd, io, op, name)));
  }

  const keys = program
    .command("keys")
    .description("your keys, and the keys pinned for others")
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user alice keys show\n  zmqchat --user alice keys fingerprint bob",
    );
  keys
    .command("show")
    .description("your fingerprint")
    .option("--json", "as JSON")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice keys show --json")
    .action(run(async (cmd, opts: { json?: boolean }) => (await loadKeys()).keysShowCommand(cmd, io, opts)));
  keys
    .command("fingerprint")
    .argument("<user>")
    .description("another user's fingerprint, as pinned here")
    .option("--json", "as JSON")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice keys fingerprint bob")
    .action(
      run(async (cmd, user: string, opts: { json?: boolean }) =>
        (await loadKeys()).keysFingerprintCommand(cmd, io, user, opts),
      ),
    );
  keys
    .command("trust")
    .argument("<user>")
    .description("accept a user's changed keys (compare fingerprints first)")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --user alice keys fingerprint bob && zmqchat --user alice keys trust bob",
    )
    .action(run(async (cmd, user: string) => (await loadKeys()).keysTrustCommand(cmd, io, user)));
  keys
    .command("verify")
    .argument("<user>")
    .description("mark a user's keys verified, after comparing safety numbers with them")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --user alice keys fingerprint bob   # read it to bob, then:\n  zmqchat --user alice keys verify bob",
    )
    .action(run(async (cmd, user: string) => (await loadKeys()).keysVerifyCommand(cmd, io, user)));
  keys
    .command("rotate")
    .description("make new keys, signed over by the old ones (contacts are warned and must trust them)")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice keys rotate && zmqchat --user alice keys show")
    .action(run(async (cmd) => (await loadKeys()).keysRotateCommand(cmd, io)));
  keys
    .command("protect")
    .description("encrypt your keys on disk under a passphrase (then commands need ZMQCHAT_PASSPHRASE)")
    .addHelpText("after", "\nExample:\n  ZMQCHAT_PASSPHRASE='…' zmqchat --user alice keys protect")
    .action(run(async (cmd) => (await loadKeys()).keysProtectCommand(cmd, io)));
  keys
    .command("unprotect")
    .description("store your keys without a passphrase again (file mode 0600)")
    .addHelpText("after", "\nExample:\n  ZMQCHAT_PASSPHRASE='…' zmqchat --user alice keys unprotect")
    .action(run(async (cmd) => (await loadKeys()).keysUnprotectCommand(cmd, io)));
  keys
    .command("backup")
    .description("upload your keys encrypted under a passphrase (env ZMQCHAT_PASSPHRASE, or stdin)")
    .option("--force", "accept a passphrase the strength estimator rates weak")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice keys backup")
    .action(
      run(async (cmd, opts: { force?: boolean }) => (await loadKeys()).keysBackupCommand(cmd, io, opts)),
    );
  keys
    .command("restore")
    .description("restore your keys from the passphrase backup into an empty home, then run sync")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --home /new/home --user alice keys restore && zmqchat --home /new/home --user alice sync",
    )
    .action(run(async (cmd) => (await loadKeys()).keysRestoreCommand(cmd, io)));

  registerDevicesCommands(program, run, io);

  program
    .command("up")
    .description("start a local stack (balancer + servers on loopback, SQLite under the home)")
    .option("-s, --servers <n>", "how many chat servers", OPERATOR_DEFAULTS.servers)
    .option(
      "-p, --port <port>",
      "first of four ports (clients, servers, pub in, pub out)",
      OPERATOR_DEFAULTS.port,
    )
    .option("--store <url>", "sqlite:PATH or influx://HOST:PORT/DB (default: sqlite under the home)")
    .option("-d, --detach", "run in the background")
    .option("--insecure", "plaintext links, no CurveZMQ or allow-lists (not for shared machines)")
    .option(
      "--http-port <port>",
      "serve /healthz and /metrics on 127.0.0.1: the balancer on PORT, server N on PORT+N (zmqchat status shows them)",
    )
    .addOption(new Option("--supervise").hideHelp())
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat up --detach && zmqchat status\n  zmqchat up --detach --http-port 9100 && curl -s 127.0.0.1:9100/metrics",
    )
    .action(run(async (cmd, flags: UpFlags) => (await loadStack()).upCommand(cmd, io, flags)));

  program
    .command("down")
    .description("stop the local stack")
    .addHelpText("after", "\nExample:\n  zmqchat down")
    .action(run(async (cmd) => (await loadStack()).downCommand(cmd, io)));
  program
    .command("status")
    .description("the local stack's processes, pids, uptime and restarts")
    .option("--json", "as JSON")
    .addHelpText("after", "\nExample:\n  zmqchat status --json")
    .action(run(async (cmd, opts: { json?: boolean }) => (await loadStack()).statusCommand(cmd, io, opts)));

  program
    .command("server")
    .description("run a chat server (operators)")
    .option("--balancer <urls>", "balancer backend endpoints, comma-separated", OPERATOR_DEFAULTS.balancer)
    .option(
      "--store <url>",
      "sqlite:PATH or influx://HOST:PORT/DB (credentials by env)",
      OPERATOR_DEFAULTS.store,
    )
    .option(
      "--blobs <url>",
      "attachments' encrypted chunks: a path, file:PATH or s3://BUCKET[/PREFIX]?endpoint=URL&region=R (env ZMQCHAT_BLOBS; default: blobs/ beside an SQLite store)",
    )
    .option("--secret-file <path>", "cluster secret file (or env ZMQCHAT_CLUSTER_SECRET)")
    .option("--http-port <port>", "serve /healthz and /metrics on this port")
    .option("--http-host <host>", "address for the HTTP port", OPERATOR_DEFAULTS.httpHost)
    .option("--id <name>", "server id in logs and metrics")
    .option("--curve-keys <file>", "this server's CURVE key pair (zmqchat curve keygen)")
    .option("--curve-balancer-key <key>", "the balancers' CURVE public key, or one per --balancer endpoint")
    .option("--insecure", "run without CurveZMQ (plaintext; required when no --curve-keys)")
    .option(
      "--session-ttl <duration>",
      `session token lifetime; clients renew it (env ZMQCHAT_SESSION_TTL, default ${DEFAULT_SESSION_TTL_MS / 60_000}m)`,
    )
    .option("--log-level <level>", "trace, debug, info, warn, error", OPERATOR_DEFAULTS.logLevel)
    .addHelpText(
      "after",
      "\nExample:\n  ZMQCHAT_CLUSTER_SECRET=... zmqchat server --balancer tcp://10.0.0.5:5571 --store sqlite:/var/lib/zmqchat/store.db --http-port 9101 --curve-keys /etc/zmqchat/server.curve --curve-balancer-key KEY",
    )
    .action(run(async (cmd, flags: ServerFlags) => (await loadServe()).serverCommand(cmd, io, flags)));

  program
    .command("balancer")
    .description(
      "run a balancer (operators): clients on PORT, servers on PORT+1, pub/sub on PORT+2 and PORT+3",
    )
    .option("--bind <host>", "address to bind", OPERATOR_DEFAULTS.bind)
    .option("--port <port>", "first of four ports (0: any free ones)", OPERATOR_DEFAULTS.port)
    .option(
      "--public-host <host>",
      "host clients and servers use for pub/sub (default: the one they reached)",
    )
    .option("--curve-keys <file>", "turn on CurveZMQ with this key pair (zmqchat curve keygen)")
    .option("--curve-servers <file>", "servers' CURVE public keys allowed in, one per line")
    .option("--curve-clients <file>", "client device keys allowed in, one per line (default: any device)")
    .option(
      "--topic-key-file <file>",
      "admit only delivery topics the servers issued (zmqchat topic-key makes the file from the cluster secret)",
    )
    .option(
      "--no-legacy-subscribers",
      "leave PORT+3 unbound: clients of this release take live deliveries over their connection on PORT; older ones subscribe on PORT+3, and without it see new messages only when they sync",
    )
    .option("--insecure", "run without CurveZMQ (plaintext; required when no --curve-keys)")
    .option("--http-port <port>", "serve /healthz and /metrics on this port")
    .option("--http-host <host>", "address for the HTTP port", OPERATOR_DEFAULTS.httpHost)
    .option("--log-level <level>", "trace, debug, info, warn, error", OPERATOR_DEFAULTS.logLevel)
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat balancer --bind 0.0.0.0 --port 5570 --http-port 9100 --curve-keys /etc/zmqchat/balancer.curve --curve-servers /etc/zmqchat/servers.allow --topic-key-file /etc/zmqchat/topic.key",
    )
    .action(run(async (cmd, flags: BalancerFlags) => (await loadServe()).balancerCommand(cmd, io, flags)));
  program
    .command("topic-key")
    .description(
      "print the key balancers check delivery topics with (operators), from the cluster secret: for balancer --topic-key-file",
    )
    .option("--secret-file <file>", "read the cluster secret from this file (else ZMQCHAT_CLUSTER_SECRET)")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat topic-key --secret-file /etc/zmqchat/cluster-secret > /etc/zmqchat/topic.key",
    )
    .action(
      run(async (_cmd, flags: { secretFile?: string }) => (await loadServe()).topicKeyCommand(io, flags)),
    );

  const config = program
    .command("config")
    .description("the settings in effect and where each comes from")
    .addHelpText("after", "\nExample:\n  ZMQCHAT_USER=alice zmqchat config show");
  config
    .command("show")
    .description("each setting's value and source (flag, env, file, default), the home and the config file")
    .option("--json", "as one JSON object: {NAME: {value, source, from}}")
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat config show\n  zmqchat --config ./team.json config show --json",
    )
    .action(run((cmd, opts: { json?: boolean }) => configShowCommand(cmd, io, opts)));

  program
    .command("completion")
    .description("print a shell completion script for bash or zsh")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .addHelpText(
      "after",
      "\nExamples:\n  source <(zmqchat completion bash)          # in ~/.bashrc\n  source <(zmqchat completion zsh)           # in ~/.zshrc, after compinit",
    )
    .action(run((cmd, shell: string) => completionCommand(cmd, io, shell)));

  // What the completion scripts call for user and group names (the local cache only).
  program
    .command("complete-names", { hidden: true })
    .argument("<kind>", "users, groups or profiles")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice complete-names users")
    .action(run((cmd, kind: string) => completeNamesCommand(cmd, io, kind)));

  program
    .command("curve")
    .description("CurveZMQ keys for encrypted links")
    .addHelpText("after", "\nExample:\n  zmqchat curve keygen /etc/zmqchat/balancer.curve")
    .command("keygen")
    .argument("<file>", "where to write the key pair (mode 0600)")
    .description("make a CURVE key pair; prints its public key")
    .addHelpText("after", "\nExample:\n  zmqchat curve keygen /etc/zmqchat/balancer.curve")
    .action(run(async (cmd, file: string) => (await loadServe()).curveKeygenCommand(cmd, io, file)));

  return program;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  for (const c of program.commands) c.exitOverride();
  try {
    const args = joinDashValues(program, argv.slice(2));
    // No command (global options only): the full-screen UI.
    const { operands, unknown } = program.parseOptions(args);
    if (operands.length === 0 && unknown.length === 0) {
      const { tuiCommand } = await import("./commands/tui.js");
      return await tuiCommand(program);
    }
    await program.parseAsync(args, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      ) {
        return EXIT.ok;
      }
      return EXIT.usage;
    }
    return report(err, argv.includes("--debug"), io.err);
  }
}
