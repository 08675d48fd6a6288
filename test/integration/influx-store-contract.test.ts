import { after } from "node:test";
import { InfluxStore } from "../../server/store/influx.js";
import { storeContract } from "../contract/store-contract.js";
import { startInfluxd } from "../helpers/influxd.js";

const influxd = await startInfluxd();
after(() => influxd.stop());

let n = 0;
storeContract("influx", async (metrics) => {
  const db = `contract_${process.pid}_${n++}`;
  const open = () => new InfluxStore({ url: influxd.url, db });
  const store = open();
  store.metrics = metrics;
  return {
    store,
    reopen: async () => open(),
    cleanup: async () => {
      await fetch(`${influxd.url}/query`, {
        method: "POST",
        body: new URLSearchParams({ q: `DROP DATABASE "${db}"` }),
      });
    },
  };
});
