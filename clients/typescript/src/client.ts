// The client: one method per client event of docs/protocol.md. Parameters
// keep the protocol's field names; SDK-only options (signal, timeoutMs) are
// camelCase and come last.

import { run, type RunOptions, type RunResult } from "./agent.js";
import { Connection } from "./connection.js";
import { resolveOptions, type ClientOptions } from "./options.js";
import type {
  JsonObject,
  Message,
  MessageAppendedEvent,
  MessageInput,
  ProgramBegunEvent,
  ProgramEndedEvent,
  Sampling,
  ServerEvent,
  ServerTool,
  Session,
  Tool,
  ToolChoice,
  ToolEndedEvent,
  ToolStartedEvent,
} from "./protocol.js";
import { ResponseStream, type ResponseOptions } from "./response.js";
import type { ToolRegistry } from "./tool_registry.js";

export interface SessionParams {
  system?: string;
  sampling?: Sampling;
  tools?: Tool[];
  metadata?: JsonObject;
}

export interface ResponseParams {
  sampling?: Sampling;
  tool_choice?: ToolChoice;
  program_id?: string;
  /** The model also sees the daemon's configured tools (`listTools`): all
   * of them, or only those named. The daemon runs the ones it calls (tool.start / tool.end events), stores
   * their results and goes on generating in the same response. Calls of the
   * session's own tools still end it with finish_reason "tool_calls". */
  server_tools?: boolean | string[];
  /** Most rounds of server-side tools in the response, 1 to 64 (daemon default 8). */
  max_tool_turns?: number;
}

export interface ProgramParams {
  program_id?: string;
  session_id?: string;
  metadata?: JsonObject;
}

export interface ToolStartParams {
  call_id: string;
  name: string;
  program_id?: string;
  session_id?: string;
  arguments?: JsonObject;
}

export interface ToolEndParams {
  call_id: string;
  status?: "ok" | "error";
  result?: string;
}

export interface SessionPage {
  sessions: Session[];
  has_more: boolean;
}

export interface HistoryParams {
  /** At most this many messages, 1 to 1000 (the daemon's default: 100). */
  limit?: number;
  /** Only messages with an index below this one (default: up to the newest). */
  before?: number;
}

/** Messages in index order; `has_more`: older ones exist. */
export interface HistoryPage {
  /** message_count is the whole history's. */
  session: Session;
  messages: Message[];
  has_more: boolean;
}

/** session.get's largest `limit`. */
const MAX_HISTORY_PAGE = 1000;

export class MnemoClient {
  private constructor(readonly connection: Connection) {}

  /** Opens a connection. URL and API key come from the options, else (in
   * Node) from MNEMO_URL and MNEMO_API_KEY. */
  static async connect(options: ClientOptions = {}): Promise<MnemoClient> {
    return new MnemoClient(await Connection.open(resolveOptions(options)));
  }

  /** Server events that answered nothing this client waits for. */
  set onUnhandled(listener: ((event: ServerEvent) => void) | undefined) {
    this.connection.onUnhandled = listener;
  }

  async createSession(params: SessionParams = {}): Promise<Session> {
    return (await this.connection.request({ type: "session.create", ...params })).session;
  }

  /** Loads a stored session and warms its KV cache for the next response. */
  async resumeSession(sessionId: string): Promise<Session> {
    return (await this.connection.request({ type: "session.resume", session_id: sessionId })).session;
  }

  async listSessions(params: { limit?: number; after?: string } = {}): Promise<SessionPage> {
    const { sessions, has_more } = await this.connection.request({ type: "session.list", ...params });
    return { sessions, has_more };
  }

  /** Every stored session, oldest first, fetched a page at a time. */
  async *allSessions(pageSize = 100): AsyncGenerator<Session> {
    let after: string | undefined;
    for (;;) {
      const page = await this.listSessions(after === undefined ? { limit: pageSize } : { limit: pageSize, after });
      yield* page.sessions;
      const last = page.sessions.at(-1);
      if (!page.has_more || !last) return;
      after = last.id;
    }
  }

  /** The session and its whole history, read page by page (a long history
   * does not fit one message). `session` is as of the newest page. */
  async getSession(sessionId: string): Promise<{ session: Session; messages: Message[] }> {
    const pages: HistoryPage[] = [];
    for await (const page of this.historyPages(sessionId, { limit: MAX_HISTORY_PAGE })) pages.push(page);
    return { session: pages[0]!.session, messages: pages.reverse().flatMap((p) => p.messages) };
  }

  /** One page of the history: the newest `limit` messages below `before`.
   * The daemon may return fewer when they are large. */
  async getHistory(sessionId: string, params: HistoryParams = {}): Promise<HistoryPage> {
    const { session, messages, has_more } = await this.connection.request({
      type: "session.get", session_id: sessionId, ...params,
    });
    return { session, messages, has_more };
  }

  /** Pages from the newest back to the first message, each in index order;
   * at least one page (empty for an empty history). */
  async *historyPages(sessionId: string, params: HistoryParams = {}): AsyncGenerator<HistoryPage> {
    let before = params.before;
    for (;;) {
      const page = await this.getHistory(sessionId, before === undefined ? { ...params } : { ...params, before });
      yield page;
      const first = page.messages[0];
      if (!page.has_more || first?.index === undefined) return;
      before = first.index;
    }
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.connection.request({ type: "session.delete", session_id: sessionId });
  }

  /** Appends messages; resolves once they are on disk. */
  async append(sessionId: string, messages: MessageInput | MessageInput[]): Promise<MessageAppendedEvent> {
    return this.connection.request(Array.isArray(messages)
      ? { type: "message.append", session_id: sessionId, messages }
      : { type: "message.append", session_id: sessionId, message: messages });
  }

  /** Starts the assistant's next message. Iterate the result for events, or
   * await `.done()` / `.text()`. */
  respond(sessionId: string, params: ResponseParams = {}, options: ResponseOptions = {}): ResponseStream {
    return new ResponseStream(this.connection, { type: "response.create", session_id: sessionId, ...params }, options);
  }

  /** Cancels a running response by id (one started elsewhere, say); the
   * response's own stream ends with response.done "cancelled". A response that
   * already ended is not an error. Use ResponseStream.cancel for your own. */
  cancel(responseId: string): void {
    this.connection.sendIgnoringReply({ type: "response.cancel", response_id: responseId });
  }

  /** The agent loop (model -> tools -> model) on a session created with
   * `tools: registry.definitions()`; see agent.ts. */
  run(sessionId: string, prompt: string | MessageInput | MessageInput[] | undefined, tools: ToolRegistry,
      options: RunOptions = {}): Promise<RunResult> {
    return run(this, sessionId, prompt, tools, options);
  }

  async beginProgram(params: ProgramParams = {}): Promise<ProgramBegunEvent> {
    return this.connection.request({ type: "program.begin", ...params });
  }

  async endProgram(programId: string): Promise<ProgramEndedEvent> {
    return this.connection.request({ type: "program.end", program_id: programId });
  }

  async startTool(params: ToolStartParams): Promise<ToolStartedEvent> {
    return this.connection.request({ type: "tool.start", ...params });
  }

  async endTool(params: ToolEndParams): Promise<ToolEndedEvent> {
    return this.connection.request({ type: "tool.end", ...params });
  }

  /** The tools configured in the daemon (`mnemod --tools FILE`), offered to
   * the model by a response with `server_tools: true`. */
  async listTools(): Promise<ServerTool[]> {
    return (await this.connection.request({ type: "tools.list" })).tools;
  }

  async ping(): Promise<void> {
    await this.connection.request({ type: "ping" });
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
