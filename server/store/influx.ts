import { ZmqchatError } from "../../core/errors.js";
import type { Store } from "./store.js";

/** Placeholder until the InfluxDB store lands (issue 4): refuses clearly instead of pretending. */
export const InfluxStore = {
  fromUrl(url: string, _env: NodeJS.ProcessEnv): Store {
    throw new ZmqchatError("usage", `the InfluxDB store is not built yet (${url})`);
  },
};
