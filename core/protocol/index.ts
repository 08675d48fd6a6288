export * from "./codec.js";
export * from "./ids.js";
export * from "./limits.js";
export * from "./schema.js";
export * from "./broker.js";
