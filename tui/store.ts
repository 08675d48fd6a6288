/** A minimal store for the reducer, and the React hooks panes read it with. */

import { createContext, useContext, useSyncExternalStore } from "react";
import type { Action, Intent, State } from "./state.js";

export class Store {
  private state: State;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly updater: (s: State, a: Action) => { state: State; intents: Intent[] },
    initial: State,
  ) {
    this.state = initial;
  }

  getState = (): State => this.state;

  /** Applies an action; returns the state before it and what the change asks the worker for. */
  dispatch(action: Action): { prev: State; intents: Intent[] } {
    const prev = this.state;
    const { state: next, intents } = this.updater(prev, action);
    if (next !== prev) {
      this.state = next;
      for (const l of this.listeners) l();
    }
    return { prev, intents };
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };
}

/** What panes get from the root: the store to read, and `dispatch` for their intents. */
export interface TuiContextValue {
  store: Store;
  dispatch: (action: Action) => void;
  /** Registers what to do when the user leaves; returns the unregistering function. */
  onExit: (listener: () => void) => () => void;
}

export const TuiContext = createContext<TuiContextValue | null>(null);

function useTui(): TuiContextValue {
  const v = useContext(TuiContext);
  if (!v) throw new Error("TUI components need a TuiContext provider");
  return v;
}

/** Reads one slice of the state; the component re-renders only when that slice changes. */
export function useAppState<T>(selector: (s: State) => T): T {
  const { store } = useTui();
  return useSyncExternalStore(store.subscribe, () => selector(store.getState()));
}

export function useStore(): Store {
  return useTui().store;
}

export function useDispatch(): (action: Action) => void {
  return useTui().dispatch;
}

export function useOnExit(): TuiContextValue["onExit"] {
  return useTui().onExit;
}
