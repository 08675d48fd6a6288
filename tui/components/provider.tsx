import type { ReactNode } from "react";
import type { Controller } from "../controller.js";
import { TuiContext, type TuiContextValue } from "../store.js";

/** Hands the controller's store and intents to every pane. */
export function TuiProvider({ controller, children }: { controller: Controller; children: ReactNode }) {
  const value: TuiContextValue = {
    store: controller.store,
    dispatch: controller.dispatch,
    onExit: (l) => controller.onExit(l),
  };
  return <TuiContext.Provider value={value}>{children}</TuiContext.Provider>;
}
