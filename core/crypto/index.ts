export * from "./backup.js";
export * from "./envelope.js";
export * from "./keys.js";
export * from "./login.js";
