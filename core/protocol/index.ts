export * from "./broker.js";
export * from "./codec.js";
export * from "./ids.js";
export * from "./limits.js";
export * from "./schema.js";
