/** The `/devices` view (issue #19): the user's devices as the service lists them, over the history pane. */

import type { DeviceInfo } from "../core/protocol/devices.js";

export interface DevicesOverlay {
  kind: "devices";
  devices: DeviceInfo[];
  /** The id of the device this TUI runs on. */
  current: string;
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
