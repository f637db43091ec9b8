// The objects and events of docs/protocol.md, field for field. Server events
// form one union keyed by `type`, so a `switch (event.type)` narrows them.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface Sampling {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  max_tokens?: number;
  /** Keep below 2^53: JSON numbers above it lose precision in JavaScript. */
  seed?: number;
  /** The server always sends it back as an array. */
  stop?: string | string[];
}

export interface FunctionDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: JsonObject;
}

export interface Tool {
  type: "function";
  function: FunctionDefinition;
}

/** A call the model made; `arguments` is already parsed. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: JsonObject;
}

export type Role = "system" | "user" | "assistant" | "tool";

/** A message as the client appends it. */
export interface MessageInput {
  role: Role;
  content?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

/** A message as the history holds it. `index` is absent on the message of a
 * response that was not stored (cancelled, error, shutdown). */
export interface Message {
  index?: number;
  role: Role;
  content: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
  created_at: number;
}

export interface Session {
  id: string;
  created_at: number;
  updated_at: number;
  system: string;
  sampling: Sampling;
  tools: Tool[];
  metadata: JsonObject;
  message_count: number;
}

export interface Usage {
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
}

/** A tool configured in the daemon (`mnemod --tools FILE`), as tools.list reports it. */
export interface ServerTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: JsonObject;
  /** The configured MCP server, plugin or command that offers it. */
  provider: string;
  kind: "mcp" | "plugin" | "command";
}

/** Why a server-side tool call failed (tool.end's `error`). */
export type ServerToolFailure =
  | "timeout"
  | "cancelled"
  | "too_large"
  | "crashed"
  | "unavailable"
  | "invalid_output"
  | "busy"
  | "unknown_tool";

export type ToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

export type FinishReason = "stop" | "length" | "tool_calls" | "cancelled" | "error" | "shutdown";

export type ErrorCode =
  | "invalid_json"
  | "invalid_event"
  | "unknown_type"
  | "missing_field"
  | "invalid_field"
  | "frame_too_large"
  | "not_found"
  | "conflict"
  | "busy"
  | "invalid_request"
  | "overloaded"
  | "shutting_down"
  | "storage_full"
  | "storage_error"
  | "internal";

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

// ---- client events ----

interface ClientBase {
  event_id?: string;
}

export interface SessionCreateEvent extends ClientBase {
  type: "session.create";
  system?: string;
  sampling?: Sampling;
  tools?: Tool[];
  metadata?: JsonObject;
}
export interface SessionResumeEvent extends ClientBase {
  type: "session.resume";
  session_id: string;
}
export interface SessionListEvent extends ClientBase {
  type: "session.list";
  limit?: number;
  after?: string;
}
export interface SessionGetEvent extends ClientBase {
  type: "session.get";
  session_id: string;
  /** At most this many messages, 1 to 1000 (default 100). */
  limit?: number;
  /** Only messages with a lower index (default: all). */
  before?: number;
}
export interface SessionDeleteEvent extends ClientBase {
  type: "session.delete";
  session_id: string;
}
export interface MessageAppendEvent extends ClientBase {
  type: "message.append";
  session_id: string;
  message?: MessageInput;
  messages?: MessageInput[];
}
export interface ResponseCreateEvent extends ClientBase {
  type: "response.create";
  session_id: string;
  sampling?: Sampling;
  tool_choice?: ToolChoice;
  program_id?: string;
  /** The model also sees the daemon's configured tools (all of them, or only
   * those named), and the daemon runs the ones it calls, within this
   * response (default false). */
  server_tools?: boolean | string[];
  /** Most rounds of server-side tools in the response, 1 to 64 (default 8). */
  max_tool_turns?: number;
}
export interface ResponseCancelEvent extends ClientBase {
  type: "response.cancel";
  response_id: string;
}
export interface ProgramBeginEvent extends ClientBase {
  type: "program.begin";
  program_id?: string;
  session_id?: string;
  metadata?: JsonObject;
}
export interface ProgramEndEvent extends ClientBase {
  type: "program.end";
  program_id: string;
}
export interface ToolStartEvent extends ClientBase {
  type: "tool.start";
  call_id: string;
  name: string;
  program_id?: string;
  session_id?: string;
  arguments?: JsonObject;
}
export interface ToolEndEvent extends ClientBase {
  type: "tool.end";
  call_id: string;
  status?: "ok" | "error";
  result?: string;
}
export interface ToolsListEvent extends ClientBase {
  type: "tools.list";
}
export interface PingEvent extends ClientBase {
  type: "ping";
}

export type ClientEvent =
  | SessionCreateEvent
  | SessionResumeEvent
  | SessionListEvent
  | SessionGetEvent
  | SessionDeleteEvent
  | MessageAppendEvent
  | ResponseCreateEvent
  | ResponseCancelEvent
  | ProgramBeginEvent
  | ProgramEndEvent
  | ToolStartEvent
  | ToolEndEvent
  | ToolsListEvent
  | PingEvent;

// ---- server events ----

interface ServerBase {
  event_id?: string;
}

export interface SessionCreatedEvent extends ServerBase {
  type: "session.created";
  session: Session;
}
export interface SessionResumedEvent extends ServerBase {
  type: "session.resumed";
  session: Session;
}
export interface SessionListedEvent extends ServerBase {
  type: "session.listed";
  sessions: Session[];
  has_more: boolean;
}
/** One page of a history, in index order. */
export interface SessionHistoryEvent extends ServerBase {
  type: "session.history";
  session: Session;
  messages: Message[];
  /** Older messages exist: ask with `before` = messages[0].index. */
  has_more: boolean;
}
export interface SessionDeletedEvent extends ServerBase {
  type: "session.deleted";
  session_id: string;
}
export interface MessageAppendedEvent extends ServerBase {
  type: "message.appended";
  session_id: string;
  indices: number[];
  message_count: number;
}
export interface ResponseCreatedEvent extends ServerBase {
  type: "response.created";
  response_id: string;
  session_id: string;
}
/** Never carries `event_id`: match it by `response_id`. */
export interface ResponseDeltaEvent {
  type: "response.delta";
  response_id: string;
  delta: string;
}
/** Never carries `event_id`: match it by `response_id`. */
export interface ResponseToolCallEvent {
  type: "response.tool_call";
  response_id: string;
  tool_call: ToolCall;
}
export interface ResponseDoneEvent extends ServerBase {
  type: "response.done";
  response_id: string;
  session_id: string;
  finish_reason: FinishReason;
  /** The last turn's assistant message. */
  message: Message;
  /** Summed over every turn of the response. */
  usage: Usage;
  /** Only with finish_reason "error". */
  error?: ErrorBody;
  /** Rounds of server-side tools run within the response (0 when none; absent from older daemons). */
  tool_turns?: number;
}
export interface ProgramBegunEvent extends ServerBase {
  type: "program.begun";
  program_id: string;
  session_id?: string;
  started_at: number;
}
export interface ProgramEndedEvent extends ServerBase {
  type: "program.ended";
  program_id: string;
  duration_ms: number;
}
export interface ToolStartedEvent extends ServerBase {
  type: "tool.started";
  call_id: string;
  started_at: number;
}
export interface ToolEndedEvent extends ServerBase {
  type: "tool.ended";
  call_id: string;
  status: "ok" | "error";
  duration_ms: number;
}
/** The daemon started a configured tool the model called (a response with
 * server_tools). Not the reply to the client's own tool.start (that is
 * tool.started). Never carries `event_id`: match it by `response_id`. */
export interface ServerToolStartEvent {
  type: "tool.start";
  response_id: string;
  session_id: string;
  call_id: string;
  name: string;
  arguments: JsonObject;
  program_id?: string;
}
/** A server-side tool finished; `output` is what the model reads (stored as
 * a tool message). Never carries `event_id`: match it by `response_id`. */
export interface ServerToolEndEvent {
  type: "tool.end";
  response_id: string;
  session_id: string;
  call_id: string;
  name: string;
  status: "ok" | "error";
  duration_ms: number;
  output_bytes: number;
  output: string;
  /** Only when the call failed. */
  error?: ServerToolFailure;
}
export interface ToolsListedEvent extends ServerBase {
  type: "tools.listed";
  tools: ServerTool[];
}
export interface PongEvent extends ServerBase {
  type: "pong";
}
export interface ErrorEvent extends ServerBase {
  type: "error";
  code: ErrorCode;
  message: string;
  field?: string;
}

export type ResponseEvent =
  | ResponseCreatedEvent
  | ResponseDeltaEvent
  | ResponseToolCallEvent
  | ServerToolStartEvent
  | ServerToolEndEvent
  | ResponseDoneEvent;

export type ServerEvent =
  | SessionCreatedEvent
  | SessionResumedEvent
  | SessionListedEvent
  | SessionHistoryEvent
  | SessionDeletedEvent
  | MessageAppendedEvent
  | ResponseEvent
  | ProgramBegunEvent
  | ProgramEndedEvent
  | ToolStartedEvent
  | ToolEndedEvent
  | ToolsListedEvent
  | PongEvent
  | ErrorEvent;

/** The reply type the server sends for each client event that has a direct reply. */
export interface ReplyOf {
  "session.create": SessionCreatedEvent;
  "session.resume": SessionResumedEvent;
  "session.list": SessionListedEvent;
  "session.get": SessionHistoryEvent;
  "session.delete": SessionDeletedEvent;
  "message.append": MessageAppendedEvent;
  "program.begin": ProgramBegunEvent;
  "program.end": ProgramEndedEvent;
  "tool.start": ToolStartedEvent;
  "tool.end": ToolEndedEvent;
  "tools.list": ToolsListedEvent;
  ping: PongEvent;
}
