// The events of an agent-chat app's streamed answer (POST /apps/<id>/chat-messages), as a script says the run goes.
import * as crypto from "crypto";
import { ChatScript } from "./types";

/** What the "tool-error" script puts in the observation (ToolEngine.agent_invoke around a ToolInvokeError). */
export const TOOL_INVOKE_ERROR_TEXT = "tool invoke error: Failed to connect to MCP server: Authentication failed - no token received";

/**
 * The server-sent events of one agent run of an app with `modelConfig`; `query` is what the person asked.
 *
 * FunctionCallAgentRunner (core/agent/fc_agent_runner.py), one iteration per LLM call: the iteration's thought
 * is announced empty, the LLM's text streams as agent_message (the stream opens with empty ones), a tool
 * call re-sends that thought (same id) with the call and again with the observation, a JSON object keyed
 * by tool name; a failed call is just another observation (ToolEngine.agent_invoke), never an error event.
 * The last iteration's thought ends with the answer as `thought`, then message_end.
 */
export function chatEvents(chatScript: ChatScript, modelConfig: Record<string, unknown>, query: string): Record<string, unknown>[] {
    const conversation = crypto.randomUUID();
    const message = crypto.randomUUID();
    const common = { conversation_id: conversation, message_id: message, created_at: Math.floor(Date.now() / 1000), task_id: crypto.randomUUID() };
    if (Array.isArray(chatScript)) {
        return chatScript.map((e) => ({ ...common, ...e }));
    }
    const tools = ((modelConfig.agent_mode as { tools?: { provider_type?: string; tool_name?: string }[] } | undefined)?.tools ?? [])
        .filter((t) => t.provider_type === "mcp")
        .map((t) => String(t.tool_name));
    const events: Record<string, unknown>[] = [];
    const thought = (id: string, position: number, fields: { thought?: string; observation?: string; tool?: string; tool_input?: string } = {}) => {
        const tool = fields.tool ?? "";
        events.push({
            event: "agent_thought",
            ...common,
            id,
            position,
            thought: fields.thought ?? "",
            observation: fields.observation ?? "",
            tool,
            tool_labels: tool ? { [tool]: { en_US: tool, zh_Hans: tool } } : {},
            tool_input: fields.tool_input ?? "",
            message_files: [],
        });
    };
    const say = (answer: string) => events.push({ event: "agent_message", ...common, id: message, answer });
    const callsTool = (chatScript === "tool-call" || chatScript === "tool-error") && tools.length > 0;
    let position = 1;
    if (callsTool) {
        const first = crypto.randomUUID();
        const toolInput = JSON.stringify({ [tools[0]]: { RegionId: "cn-hangzhou" } });
        const result = chatScript === "tool-error" ? TOOL_INVOKE_ERROR_TEXT : '{"TotalCount": 3}';
        thought(first, position);
        say("");
        say("");
        thought(first, position, { tool: tools[0], tool_input: toolInput });
        thought(first, position, { tool: tools[0], tool_input: toolInput, observation: JSON.stringify({ [tools[0]]: result }) });
        position++;
    }
    const last = crypto.randomUUID();
    thought(last, position);
    if (chatScript === "error") {
        say("Let me check");
        events.push({ event: "error", ...common, status: 400, code: "completion_request_error", message: "[tongyi] Error: Invalid API-key provided." });
        return events;
    }
    const answer = !callsTool
        ? "I cannot look that up without a tool."
        : chatScript === "tool-error"
          ? "Sorry, I could not query the ECS instances: the tool reported an authentication problem."
          : `There are 3 ECS instances in the Hangzhou region (cn-hangzhou). Query: ${query.length} chars.`;
    for (const piece of answer.match(/.{1,24}/g) ?? []) {
        say(piece);
    }
    say("");
    thought(last, position, { thought: answer });
    events.push({
        event: "message_end",
        ...common,
        id: message,
        metadata: { annotation_reply: null, retriever_resources: [], usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42, currency: "RMB" } },
        files: null,
    });
    return events;
}
