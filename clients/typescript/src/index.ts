export { MnemoClient } from "./client.js";
export type {
  HistoryPage, HistoryParams, ProgramParams, ResponseParams, SessionPage, SessionParams, ToolEndParams, ToolStartParams,
} from "./client.js";
export { Connection } from "./connection.js";
export { ConnectionError, MnemoError, ProtocolError, TimeoutError } from "./errors.js";
export { DEFAULT_URL, normalizeUrl } from "./options.js";
export type { ClientOptions } from "./options.js";
export * from "./protocol.js";
export { ResponseError, ResponseStream } from "./response.js";
export type { ResponseOptions, ServerToolRun } from "./response.js";
export { run } from "./agent.js";
export type { RunOptions, RunResult, ToolResult, TurnReport } from "./agent.js";
export { ToolRegistry } from "./tool_registry.js";
export type { ToolContext, ToolFunction, ToolSpec } from "./tool_registry.js";
export type { WebSocketFactory, WebSocketLike } from "./transport.js";
