/**
 * The `/devices` view (issue #19): the user's devices as the service lists them, over the history
 * pane; ↑↓ select one, `r` asks to revoke it, `y` confirms (the worker then does what
 * `zmqchat devices revoke ID` does and signs in again with the rotated keys). Pure functions over
 * the state: the worker (tui/worker/commands.ts, tui/worker/session.ts) does the revoking.
 */

import type { DeviceInfo } from "../core/protocol/devices.js";

export interface DevicesOverlay {
  kind: "devices";
  devices: DeviceInfo[];
  /** The id of the device this TUI runs on. */
  current: string;
  /** The selected row. */
  at?: number;
  /** A device the user asked to revoke: `y` confirms, `n` or Esc takes it back. */
  confirm?: string | null;
}

export type DevicesAction =
  /** Shows the list; `revoke`: with that device selected and its revocation asked (`/devices revoke ID`). */
  | { type: "devices"; devices: DeviceInfo[]; current: string; revoke?: string }
  | { type: "devicesSelect"; by: number }
  /** `r`: asks to revoke the selected device. */
  | { type: "devicesRevoke" }
  /** `y` on the question: the worker revokes `confirm`. */
  | { type: "devicesConfirm" }
  /** `n` or Esc on the question. */
  | { type: "devicesCancel" };

/**
 * The part of the TUI state the view reads (tui/state.ts's State has it). Named here rather than
 * imported, so that state.ts, which reduces these actions, and this file form no import cycle.
 */
export interface DevicesState {
  overlay: { kind: string } | null;
  notice: { id: number; text: string; level: "info" | "warn" | "error" } | null;
  nextId: number;
}

function when(iso: string | null): string {
  return iso === null ? "never" : iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z");
}

/** One line per device: this one marked `*`, a revoked one says so instead of when it was last seen. */
export function deviceRows(o: DevicesOverlay): string[] {
  return o.devices.map((d) => {
    const mark = d.id === o.current ? "*" : " ";
    const state = d.revoked ? `revoked ${when(d.revoked)}` : `seen ${when(d.lastSeen)}`;
    return `${mark} ${d.id}  ${d.name}  added ${when(d.added)}  ${state}`;
  });
}

/** The line under the list: what the keys do now. */
export function devicesHint(o: DevicesOverlay): string {
  if (o.confirm) {
    const d = o.devices.find((x) => x.id === o.confirm);
    // The keys first: the line is cut to the view's width (57 columns on an 80-column terminal).
    const name = d ? ` (${d.name.length > 16 ? `${d.name.slice(0, 15)}…` : d.name})` : "";
    return `revoke ${o.confirm}${name}? y: yes · n: no — it is cut off for good, your keys rotate`;
  }
  return "↑↓ select · r: revoke · Esc, q or Enter: close";
}

/** Keys while the view is open (null: not a key of the view). */
export function devicesKey(
  o: DevicesOverlay,
  input: string,
  key: { escape?: boolean; return?: boolean; upArrow?: boolean; downArrow?: boolean },
): DevicesAction | { type: "close" } | null {
  if (o.confirm) {
    if (input === "y" || input === "Y") return { type: "devicesConfirm" };
    if ((key.escape && input === "") || input === "n" || input === "N" || input === "q")
      return { type: "devicesCancel" };
    return null;
  }
  if (key.upArrow || input === "k") return { type: "devicesSelect", by: -1 };
  if (key.downArrow || input === "j") return { type: "devicesSelect", by: 1 };
  if (input === "r") return { type: "devicesRevoke" };
  if ((key.escape && input === "") || key.return || input === "q") return { type: "close" };
  return null;
}

function notice<S extends DevicesState>(s: S, text: string, level: "info" | "warn" | "error"): S {
  return { ...s, notice: { id: s.nextId, text, level }, nextId: s.nextId + 1 };
}

/** Why `id` cannot be revoked from here, or null when it can. */
function refusal(o: DevicesOverlay, id: string): string | null {
  const d = o.devices.find((x) => x.id === id);
  if (!d) return `you have no device ${id} (the list shows yours)`;
  if (id === o.current)
    return `${id} is the device you are on: revoke it from another of your devices (zmqchat devices revoke ${id})`;
  if (d.revoked) return `${id} is already revoked`;
  return null;
}

export function reduceDevices<S extends DevicesState>(s: S, a: DevicesAction): S {
  const o = s.overlay?.kind === "devices" ? (s.overlay as DevicesOverlay) : null;
  switch (a.type) {
    case "devices": {
      const at = Math.max(
        0,
        a.devices.findIndex((d) => d.id === (a.revoke ?? a.current)),
      );
      const shown: DevicesOverlay = {
        kind: "devices",
        devices: a.devices,
        current: a.current,
        at,
        confirm: null,
      };
      if (a.revoke === undefined) return { ...s, overlay: shown };
      const why = refusal(shown, a.revoke);
      return why
        ? notice({ ...s, overlay: shown }, why, "error")
        : { ...s, overlay: { ...shown, confirm: a.revoke } };
    }
    case "devicesSelect": {
      if (!o || o.devices.length === 0 || o.confirm) return s;
      const at = Math.min(o.devices.length - 1, Math.max(0, (o.at ?? 0) + a.by));
      return { ...s, overlay: { ...o, at } };
    }
    case "devicesRevoke": {
      if (!o) return s;
      const d = o.devices[o.at ?? 0];
      if (!d) return s;
      const why = refusal(o, d.id);
      return why ? notice(s, why, "error") : { ...s, overlay: { ...o, confirm: d.id } };
    }
    case "devicesConfirm":
      // The worker revokes what was asked (it reads it from the state before this action).
      return o?.confirm ? notice({ ...s, overlay: null }, `revoking ${o.confirm}…`, "info") : s;
    case "devicesCancel":
      return o ? { ...s, overlay: { ...o, confirm: null } } : s;
  }
}
