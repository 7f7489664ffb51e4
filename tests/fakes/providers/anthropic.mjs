// Fake Anthropic Messages API upstream, loaded by tests/fakes/openai.mjs.
//
// Routes (paths as api.anthropic.com has them; the SDK's base URL is the bare
// host, without /v1):
//   POST /v1/messages                 a message, JSON or SSE (stream: true)
//   POST /v1/messages/count_tokens    {"input_tokens": N}
//   anything else under /v1/messages  404 not_found_error (405 for a wrong method)
//
// Auth: the key is the x-api-key header, or else "Authorization: Bearer KEY"
// (the SDK since 1.0 sends the Bearer form; with both, x-api-key wins, as on
// the real API). No key: 401 authentication_error "x-api-key header is
// required"; a wrong one: 401 "invalid x-api-key". With no --api-key any key
// is accepted, but one must be present. The anthropic-version header is
// required (400 without it); 2023-06-01 and 2026-10-21 are known versions.
// Every answer carries a request-id header; error bodies are
//   {"type":"error","error":{"type":...,"message":...},"request_id":...}
//
// Validation, like the real API (400 invalid_request_error, pydantic-style
// "field.path: ..." messages): model, messages and max_tokens required
// ("max_tokens: Field required"); unknown top-level fields are "Extra inputs
// are not permitted" (temperature/top_p/top_k are only known to version
// 2023-06-01: 2026-10-21 removed them); messages non-empty, roles user,
// assistant or system, content a non-empty string or block list (except a
// final assistant prefill); block types checked (an OpenAI-style image_url
// block is rejected); image sources base64 (jpeg/png/gif/webp) or url;
// tools need a valid name and an input_schema (OpenAI-style {"type":
// "function"} tools are rejected); tool_choice is an object; every
// tool_result must answer a tool_use of the previous assistant message and
// every tool_use must be answered in the next message; thinking "enabled"
// needs 1024 <= budget_tokens < max_tokens.
//
// Replies: text = "Echo: " + the last user message's text blocks, plus
// " [image <mime> <bytes>]" per base64 image and " [image-url <url>]" per URL
// image in it. If that message carries tool_result blocks and no text, the
// text is "Echo: tool result: " + the first result's text. JSON mode (a
// system prompt containing "respond in JSON", or output_config.format of
// type json_schema) answers JSON.stringify({echo: <last user text>}). With
// tools, tool_choice not "none" and "call tool" in the last user text (or a
// forced tool_choice: "tool" or "any"), the answer is one tool_use block
// instead (the tool_choice's named tool, else the first tool; input
// {"text": <last user text>}, or, when that tool's input_schema has a
// "command" property and the text says run `CMD`, {"command": CMD} - see
// toolArguments() in ../openai.mjs), stop_reason "tool_use".
// Thinking (thinking.type "enabled" or "adaptive") puts a thinking block
// "Thinking about: <last user text>" with a signature before the answer.
// stop_sequences: a word equal to one ends the text before it (stop_reason
// "stop_sequence", stop_sequence set); max_tokens smaller than the word
// count cuts the words (stop_reason "max_tokens"); otherwise "end_turn".
//
// Usage: total input = sum over messages (the top-level system prompt counts
// as one) of 3 + its word count. A model name containing "cached" reports 2 of
// them as cache_read_input_tokens, and input_tokens is the rest (Anthropic's
// input_tokens excludes cache reads); otherwise cache reads are 0.
// cache_creation_input_tokens is always 0. output_tokens = words in the
// answer (tool call: words of the input JSON + 1) plus words of the thinking.
// count_tokens answers the total input.
//
// Streaming: event: message_start, content_block_start, ping (after the first
// block start), content_block_delta (text_delta one word each;
// thinking_delta one word each then one signature_delta; input_json_delta
// "" and then fragments of the tool input), content_block_stop,
// message_delta (stop_reason, stop_sequence, usage.output_tokens only),
// message_stop. One res.write per event, about 5 ms apart.
//
// Faults, by model name (an optional "-<number>" suffix tunes timing):
//   fault-500        500 api_error
//   fault-429        429 rate_limit_error, retry-after: 7
//   fault-400        400 invalid_request_error (a validation error)
//   overloaded       529 overloaded_error "Overloaded"
//   context-too-long 400 invalid_request_error "prompt is too long: N tokens > 200000 maximum"
//   content-filter   200, stop_reason "refusal", no content blocks, stop_details
//                    {type: "refusal"} (Anthropic has no filter error status)
//   drop-mid-stream  two events (non-stream: half the body), then the socket is destroyed
//   slow-stream[-MS] one event every MS (300) ms, padded with pings to ~3 s
//                    (non-stream: the answer after ~3 s)
//   slow-first-byte[-MS]  headers and first event only after MS (1500) ms
//   hang             never answers; waits for the client to go away
//   bad-event        the stream's 2nd event has malformed JSON data
//                    (non-stream: a 200 with a malformed JSON body)
//   stream-error     message_start, block start, ping, one delta, then an
//                    in-band "event: error" overloaded_error and the end of the
//                    stream (non-stream: a 529 overloaded_error)
//   empty-NNN        status NNN with an empty body
//   echo-body        the answer text is the raw request body
// The error faults (and hang, empty, slow-first-byte) apply to count_tokens too.

import crypto from 'node:crypto';
import { toolArguments } from '../openai.mjs';

const KNOWN_VERSIONS = new Set(['2023-01-01', '2023-06-01', '2026-10-21']);
const CONTEXT_LIMIT = 200000;
const STREAM_INTERVAL_MS = 5;
const SLOW_STREAM_EVENTS = 10;
const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];

// Top-level body fields of POST /v1/messages (SDK 1.12 MessageCreateParams)
// and of count_tokens; the sampling fields only exist in version 2023-06-01.
const MESSAGE_FIELDS = new Set([
    'model', 'messages', 'max_tokens', 'cache_control', 'container', 'diagnostics', 'inference_geo',
    'metadata', 'output_config', 'service_tier', 'speed', 'stop_sequences', 'stream', 'system',
    'thinking', 'tool_choice', 'tools', 'user_profile_id', 'workspace_id',
    // Beta request fields (sent with an anthropic-beta header).
    'context_management', 'mcp_servers',
]);
const COUNT_FIELDS = new Set([
    'model', 'messages', 'cache_control', 'output_config', 'speed', 'system', 'thinking',
    'tool_choice', 'tools', 'user_profile_id', 'workspace_id', 'context_management', 'mcp_servers',
]);
const SAMPLING_FIELDS = ['temperature', 'top_p', 'top_k'];

const BLOCK_TYPES = [
    'text', 'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use',
    'tool_result', 'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result',
    'code_execution_tool_result', 'bash_code_execution_tool_result',
    'text_editor_code_execution_tool_result', 'tool_search_tool_result', 'container_upload',
    'tool_reference', 'mcp_tool_use', 'mcp_tool_result', 'browser_state',
];

const FAULT_RE = new RegExp('^(fault-500|fault-429|fault-400|overloaded|context-too-long|content-filter|' +
    'drop-mid-stream|slow-stream|slow-first-byte|hang|bad-event|stream-error|empty|echo-body)(?:-(\\d+))?$');

export function matches(method, pathname) {
    return pathname === '/v1/messages' || pathname.startsWith('/v1/messages/');
}

/* ---------- small helpers ---------- */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/* An id in Anthropic's style, e.g. msg_01 + 22 base62 characters. */
function newId(prefix, length = 22) {
    const bytes = crypto.randomBytes(length);
    let s = '';
    for (const b of bytes) s += BASE62[b % 62];
    return `${prefix}${s}`;
}

function parseFault(model) {
    const m = typeof model === 'string' ? FAULT_RE.exec(model) : null;
    if (!m) return { name: null, arg: null };
    return { name: m[1], arg: m[2] === undefined ? null : Number(m[2]) };
}

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

/* Text of a content value: a string, or its text blocks joined. */
function textOf(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content.filter((b) => isObject(b) && b.type === 'text' && typeof b.text === 'string')
        .map((b) => b.text).join('');
}

/* Text of one tool_result block's content (a string or text blocks). */
function toolResultText(block) {
    return textOf(block.content);
}

/* Words a message counts for: its text blocks and tool results. */
function messageText(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    const parts = [];
    for (const b of content) {
        if (!isObject(b)) continue;
        if (b.type === 'text' && typeof b.text === 'string') parts.push(b.text);
        if (b.type === 'tool_result') parts.push(toolResultText(b));
    }
    return parts.join(' ');
}

function inputTokens(body) {
    let n = 0;
    const sys = textOf(body.system);
    if (sys !== '') n += 3 + countWords(sys);
    for (const m of body.messages) n += 3 + countWords(messageText(m.content));
    return n;
}

function systemText(body) {
    const parts = [textOf(body.system)];
    for (const m of body.messages) if (m.role === 'system') parts.push(textOf(m.content));
    return parts.join('\n');
}

function blocksOf(content) {
    return Array.isArray(content) ? content.filter(isObject) : [];
}

/* ---------- replies ---------- */

function sendJSON(res, status, obj, requestId, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'request-id': requestId,
        ...headers,
    });
    res.end(body);
}

function errorBody(type, message, requestId) {
    return { type: 'error', error: { type, message }, request_id: requestId };
}

function sendError(res, status, type, message, requestId, headers = {}) {
    sendJSON(res, status, errorBody(type, message, requestId), requestId, headers);
}

/* ---------- validation ---------- */

/* The first problem with a /v1/messages (or count_tokens) body, or null. */
function validate(body, { countOnly, version }) {
    if (!isObject(body)) return 'Input should be a valid dictionary';
    const known = countOnly ? COUNT_FIELDS : MESSAGE_FIELDS;
    const sampling = version === '2023-06-01' || version === '2023-01-01';
    for (const k of Object.keys(body)) {
        if (known.has(k)) continue;
        if (!countOnly && sampling && SAMPLING_FIELDS.includes(k)) continue;
        return `${k}: Extra inputs are not permitted`;
    }
    if (!('model' in body)) return 'model: Field required';
    if (typeof body.model !== 'string') return 'model: Input should be a valid string';
    if (!countOnly) {
        if (!('max_tokens' in body)) return 'max_tokens: Field required';
        if (!Number.isInteger(body.max_tokens)) return 'max_tokens: Input should be a valid integer';
        if (body.max_tokens < 0) return 'max_tokens: Input should be greater than or equal to 0';
        if ('stream' in body && typeof body.stream !== 'boolean') return 'stream: Input should be a valid boolean';
        if ('stop_sequences' in body) {
            if (!Array.isArray(body.stop_sequences)) return 'stop_sequences: Input should be a valid list';
            const bad = body.stop_sequences.findIndex((s) => typeof s !== 'string');
            if (bad >= 0) return `stop_sequences.${bad}: Input should be a valid string`;
        }
        if (body.temperature !== undefined) {
            if (typeof body.temperature !== 'number') return 'temperature: Input should be a valid number';
            if (body.temperature < 0) return 'temperature: Input should be greater than or equal to 0';
            if (body.temperature > 1) return 'temperature: Input should be less than or equal to 1';
        }
    }
    if (!('messages' in body)) return 'messages: Field required';
    if (!Array.isArray(body.messages)) return 'messages: Input should be a valid list';
    if (body.messages.length === 0) return 'messages: at least one message is required';
    if ('system' in body && typeof body.system !== 'string') {
        if (!Array.isArray(body.system)) return 'system: Input should be a valid string';
        for (let j = 0; j < body.system.length; j++) {
            const b = body.system[j];
            if (!isObject(b) || b.type !== 'text') return `system.${j}.type: Input should be 'text'`;
            if (typeof b.text !== 'string') return `system.${j}.text: Field required`;
        }
    }
    const last = body.messages.length - 1;
    for (let i = 0; i < body.messages.length; i++) {
        const err = validateMessage(body.messages[i], i, i === last);
        if (err) return err;
    }
    const pairing = validateToolPairs(body.messages);
    if (pairing) return pairing;
    const tools = validateTools(body);
    if (tools) return tools;
    if ('thinking' in body) {
        const t = body.thinking;
        if (!isObject(t)) return 'thinking: Input should be a valid dictionary or object to extract fields from';
        if (!['enabled', 'disabled', 'adaptive', 'between_tools'].includes(t.type)) {
            return `thinking: Input tag '${t.type}' found using 'type' does not match any of the expected tags: ` +
                "'enabled', 'disabled', 'adaptive', 'between_tools'";
        }
        if (t.type === 'enabled') {
            if (!('budget_tokens' in t)) return 'thinking.enabled.budget_tokens: Field required';
            if (!Number.isInteger(t.budget_tokens)) return 'thinking.enabled.budget_tokens: Input should be a valid integer';
            if (t.budget_tokens < 1024) {
                return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
            }
            if (!countOnly && body.max_tokens <= t.budget_tokens) {
                return '`max_tokens` must be greater than `thinking.budget_tokens`.';
            }
        }
        if (!countOnly && t.type !== 'disabled' && body.temperature !== undefined && body.temperature !== 1) {
            return '`temperature` may only be set to 1 when thinking is enabled.';
        }
    }
    if ('output_config' in body) {
        const oc = body.output_config;
        if (!isObject(oc)) return 'output_config: Input should be a valid dictionary or object to extract fields from';
        if (oc.format !== undefined && oc.format !== null) {
            if (!isObject(oc.format) || oc.format.type !== 'json_schema') {
                return "output_config.format.type: Input should be 'json_schema'";
            }
            if (!isObject(oc.format.schema)) return 'output_config.format.schema: Field required';
        }
    }
    return null;
}

function validateMessage(m, i, isLast) {
    if (!isObject(m)) return `messages.${i}: Input should be a valid dictionary or object to extract fields from`;
    if (!('role' in m)) return `messages.${i}.role: Field required`;
    if (!['user', 'assistant', 'system'].includes(m.role)) {
        return `messages.${i}.role: Input should be 'user', 'assistant' or 'system'`;
    }
    if (!('content' in m)) return `messages.${i}.content: Field required`;
    const c = m.content;
    if (typeof c !== 'string' && !Array.isArray(c)) return `messages.${i}.content: Input should be a valid string`;
    const prefill = isLast && m.role === 'assistant';
    if (c.length === 0 && !prefill) {
        return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
    }
    if (typeof c === 'string') return null;
    for (let j = 0; j < c.length; j++) {
        const err = validateBlock(c[j], `messages.${i}.content.${j}`, m.role);
        if (err) return err;
    }
    return null;
}

function validateBlock(b, where, role) {
    if (!isObject(b)) return `${where}: Input should be a valid dictionary or object to extract fields from`;
    if (!BLOCK_TYPES.includes(b.type)) {
        return `${where}: Input tag '${b.type}' found using 'type' does not match any of the expected tags: ` +
            BLOCK_TYPES.map((t) => `'${t}'`).join(', ');
    }
    switch (b.type) {
    case 'text':
        if (typeof b.text !== 'string') return `${where}.text.text: Field required`;
        if (b.text === '') return 'messages: text content blocks must be non-empty';
        break;
    case 'image': {
        const s = b.source;
        if (!isObject(s)) return `${where}.image.source: Field required`;
        if (s.type === 'base64') {
            if (!IMAGE_TYPES.includes(s.media_type)) {
                return `${where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', ` +
                    "'image/gif' or 'image/webp'";
            }
            if (typeof s.data !== 'string') return `${where}.image.source.base64.data: Field required`;
        } else if (s.type === 'url') {
            if (typeof s.url !== 'string') return `${where}.image.source.url.url: Field required`;
        } else if (s.type === 'file') {
            if (typeof s.file_id !== 'string') return `${where}.image.source.file.file_id: Field required`;
        } else {
            return `${where}.image.source: Input tag '${s.type}' found using 'type' does not match any of the ` +
                "expected tags: 'base64', 'url', 'file'";
        }
        break;
    }
    case 'tool_use':
        if (role !== 'assistant') return `${where}: tool_use blocks may only appear in assistant messages`;
        if (typeof b.id !== 'string') return `${where}.tool_use.id: Field required`;
        if (typeof b.name !== 'string') return `${where}.tool_use.name: Field required`;
        if (!isObject(b.input)) return `${where}.tool_use.input: Input should be a valid dictionary`;
        break;
    case 'tool_result':
        if (typeof b.tool_use_id !== 'string') return `${where}.tool_result.tool_use_id: Field required`;
        if (b.content !== undefined && typeof b.content !== 'string' && !Array.isArray(b.content)) {
            return `${where}.tool_result.content: Input should be a valid string`;
        }
        break;
    default:
        break;
    }
    return null;
}

/* tool_result blocks must answer the previous assistant turn's tool_use
 * blocks, and every tool_use must be answered in the next message. */
function validateToolPairs(messages) {
    for (let i = 0; i < messages.length; i++) {
        const m = messages[i];
        const blocks = blocksOf(m.content);
        if (m.role === 'assistant') {
            const ids = blocks.filter((b) => b.type === 'tool_use').map((b) => b.id);
            if (ids.length === 0 || i === messages.length - 1) continue;
            const next = messages[i + 1];
            const answered = new Set(blocksOf(next.content).filter((b) => b.type === 'tool_result')
                .map((b) => b.tool_use_id));
            const missing = next.role === 'user' ? ids.filter((id) => !answered.has(id)) : ids;
            if (missing.length > 0) {
                return `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately ` +
                    `after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding ` +
                    '`tool_result` block in the next message.';
            }
        }
        const prev = i > 0 ? messages[i - 1] : null;
        const offered = new Set(prev && prev.role === 'assistant'
            ? blocksOf(prev.content).filter((b) => b.type === 'tool_use').map((b) => b.id) : []);
        for (let j = 0; j < blocks.length; j++) {
            const b = blocks[j];
            if (b.type === 'tool_result' && !offered.has(b.tool_use_id)) {
                return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ` +
                    `${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block ` +
                    'in the previous message.';
            }
        }
    }
    return null;
}

function validateTools(body) {
    if ('tools' in body) {
        if (!Array.isArray(body.tools)) return 'tools: Input should be a valid list';
        for (let i = 0; i < body.tools.length; i++) {
            const t = body.tools[i];
            if (!isObject(t)) return `tools.${i}: Input should be a valid dictionary or object to extract fields from`;
            const custom = t.type === undefined || t.type === null || t.type === 'custom';
            if (!custom) {
                // Server tools are versioned, e.g. web_search_20250305.
                if (typeof t.type === 'string' && /_\d{8}$/.test(t.type)) continue;
                return `tools.${i}: Input tag '${t.type}' found using 'type' does not match any of the expected ` +
                    "tags: 'custom', 'bash_20250124', 'text_editor_20250728', 'web_search_20250305', ...";
            }
            if (typeof t.name !== 'string') return `tools.${i}.custom.name: Field required`;
            if (!/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) {
                return `tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`;
            }
            if (!('input_schema' in t)) return `tools.${i}.custom.input_schema: Field required`;
            if (!isObject(t.input_schema)) return `tools.${i}.custom.input_schema: Input should be a valid dictionary`;
        }
    }
    if ('tool_choice' in body) {
        const tc = body.tool_choice;
        if (!isObject(tc)) return 'tool_choice: Input should be a valid dictionary or object to extract fields from';
        if (!['auto', 'any', 'tool', 'none'].includes(tc.type)) {
            return `tool_choice: Input tag '${tc.type}' found using 'type' does not match any of the expected ` +
                "tags: 'auto', 'any', 'tool', 'none'";
        }
        if (tc.type === 'tool' && typeof tc.name !== 'string') return 'tool_choice.tool.name: Field required';
    }
    return null;
}

/* ---------- the answer ---------- */

function lastUserMessage(messages) {
    for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return messages[i];
    return null;
}

function imageNotes(content) {
    let s = '';
    for (const b of blocksOf(content)) {
        if (b.type !== 'image' || !isObject(b.source)) continue;
        if (b.source.type === 'base64') {
            s += ` [image ${b.source.media_type} ${Buffer.from(b.source.data, 'base64').length}]`;
        } else if (b.source.type === 'url') {
            s += ` [image-url ${b.source.url}]`;
        }
    }
    return s;
}

function thinkingEnabled(body) {
    return isObject(body.thinking) && (body.thinking.type === 'enabled' || body.thinking.type === 'adaptive');
}

/* Everything about the reply, shared by the JSON and the SSE forms. */
function planReply(body, raw, fault) {
    const last = lastUserMessage(body.messages);
    const userText = last ? textOf(last.content) : '';
    const results = last ? blocksOf(last.content).filter((b) => b.type === 'tool_result') : [];
    const total = inputTokens(body);
    const cached = body.model.includes('cached') ? 2 : 0;
    const plan = {
        id: newId('msg_01'),
        model: body.model,
        thinking: null,
        signature: null,
        text: null,           // the answer text, when it is not a tool call
        pieces: [],           // text split into words, one per text_delta
        tool: null,
        stopReason: 'end_turn',
        stopSequence: null,
        stopDetails: null,
        inputTokens: total - cached,
        cacheRead: cached,
        outputTokens: 0,
    };
    if (thinkingEnabled(body)) {
        plan.thinking = body.thinking.display === 'omitted' ? '' : `Thinking about: ${userText}`;
        plan.signature = crypto.createHash('sha512').update(`sig:${userText}`).digest('base64');
    }
    if (fault.name === 'content-filter') {
        plan.thinking = null;
        plan.stopReason = 'refusal';
        plan.stopDetails = {
            type: 'refusal',
            category: null,
            explanation: 'The request was declined by the fake upstream (content-filter).',
        };
        return plan;
    }
    const tools = Array.isArray(body.tools) ? body.tools : [];
    const choice = isObject(body.tool_choice) ? body.tool_choice : { type: 'auto' };
    // A forced choice ("tool" or "any") always calls, as the real model must.
    const forced = choice.type === 'tool' || choice.type === 'any';
    if (tools.length > 0 && choice.type !== 'none' && (forced || /call tool/i.test(userText))) {
        const name = choice.type === 'tool' ? choice.name
            : (tools.find((t) => typeof t.name === 'string') || { name: 'unknown_tool' }).name;
        const chosen = tools.find((t) => t.name === name);
        const input = toolArguments(chosen ? chosen.input_schema : null, userText);
        plan.tool = { id: newId('toolu_01'), name, input, json: JSON.stringify(input) };
        plan.stopReason = 'tool_use';
        plan.outputTokens = countWords(plan.tool.json) + 1;
    } else {
        const format = isObject(body.output_config) && isObject(body.output_config.format)
            ? body.output_config.format : null;
        let text;
        if (fault.name === 'echo-body') text = raw;
        else if (/respond in JSON/i.test(systemText(body)) || (format && format.type === 'json_schema')) {
            text = JSON.stringify({ echo: userText });
        } else if (results.length > 0 && userText.trim() === '') {
            text = `Echo: tool result: ${toolResultText(results[0])}`;
        } else {
            text = `Echo: ${userText}${imageNotes(last && last.content)}`;
        }
        let pieces = splitWords(text);
        // A stop sequence ends generation before the word that matches it.
        const stops = Array.isArray(body.stop_sequences) ? body.stop_sequences : [];
        const at = pieces.findIndex((p) => stops.includes(p.trim()));
        const limit = body.max_tokens;
        if (limit < (at >= 0 ? at : pieces.length)) {
            pieces = pieces.slice(0, limit);
            plan.stopReason = 'max_tokens';
        } else if (at >= 0) {
            plan.stopSequence = pieces[at].trim();
            pieces = pieces.slice(0, at);
            plan.stopReason = 'stop_sequence';
        }
        plan.pieces = pieces;
        plan.text = pieces.join('');
        plan.outputTokens = countWords(plan.text);
    }
    if (plan.thinking !== null) plan.outputTokens += countWords(plan.thinking);
    return plan;
}

function usageOf(plan, outputTokens) {
    return {
        input_tokens: plan.inputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: plan.cacheRead,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
        output_tokens: outputTokens,
        service_tier: 'standard',
    };
}

function messageOf(plan) {
    const content = [];
    if (plan.thinking !== null) content.push({ type: 'thinking', thinking: plan.thinking, signature: plan.signature });
    if (plan.tool) {
        content.push({ type: 'tool_use', id: plan.tool.id, name: plan.tool.name, input: plan.tool.input });
    } else if (plan.text) {
        content.push({ type: 'text', text: plan.text });
    }
    return {
        id: plan.id,
        type: 'message',
        role: 'assistant',
        model: plan.model,
        content,
        stop_reason: plan.stopReason,
        stop_sequence: plan.stopSequence,
        stop_details: plan.stopDetails,
        usage: usageOf(plan, plan.outputTokens),
    };
}

function sse(type, data) {
    return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/* The SSE events of a reply, in order, as strings. */
function streamEvents(plan) {
    const evs = [];
    const start = { ...messageOf(plan), content: [], stop_reason: null, stop_sequence: null, stop_details: null };
    start.usage = usageOf(plan, 1);
    evs.push(sse('message_start', { type: 'message_start', message: start }));
    let index = 0;
    let pinged = false;
    const block = (contentBlock, deltas) => {
        evs.push(sse('content_block_start', { type: 'content_block_start', index, content_block: contentBlock }));
        if (!pinged) {
            evs.push(sse('ping', { type: 'ping' }));
            pinged = true;
        }
        for (const d of deltas) evs.push(sse('content_block_delta', { type: 'content_block_delta', index, delta: d }));
        evs.push(sse('content_block_stop', { type: 'content_block_stop', index }));
        index++;
    };
    if (plan.thinking !== null) {
        const deltas = splitWords(plan.thinking).map((w) => ({ type: 'thinking_delta', thinking: w }));
        deltas.push({ type: 'signature_delta', signature: plan.signature });
        block({ type: 'thinking', thinking: '', signature: '' }, deltas);
    }
    if (plan.tool) {
        // Like the real API: an empty fragment first, then the JSON in pieces.
        const json = plan.tool.json;
        const cut = [0, Math.ceil(json.length / 3), Math.ceil((2 * json.length) / 3), json.length];
        const frags = [''];
        for (let k = 0; k < 3; k++) if (cut[k + 1] > cut[k]) frags.push(json.slice(cut[k], cut[k + 1]));
        block({ type: 'tool_use', id: plan.tool.id, name: plan.tool.name, input: {} },
            frags.map((f) => ({ type: 'input_json_delta', partial_json: f })));
    } else if (plan.pieces.length > 0) {
        block({ type: 'text', text: '' }, plan.pieces.map((p) => ({ type: 'text_delta', text: p })));
    }
    if (!pinged) evs.push(sse('ping', { type: 'ping' }));
    evs.push(sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: plan.stopReason, stop_sequence: plan.stopSequence, stop_details: plan.stopDetails },
        usage: { output_tokens: plan.outputTokens },
    }));
    evs.push(sse('message_stop', { type: 'message_stop' }));
    return evs;
}

function stream(res, plan, fault, requestId) {
    let evs = streamEvents(plan);
    let interval = STREAM_INTERVAL_MS;
    let firstDelay = 0;
    let dropAfter = null;
    if (fault.name === 'slow-stream') {
        interval = fault.arg ?? 300;
        // Pad with pings before message_delta so the stream lasts about 3 s.
        while (evs.length < SLOW_STREAM_EVENTS) evs.splice(evs.length - 2, 0, sse('ping', { type: 'ping' }));
    }
    if (fault.name === 'slow-first-byte') firstDelay = fault.arg ?? 1500;
    if (fault.name === 'drop-mid-stream') dropAfter = 2;
    if (fault.name === 'bad-event') {
        evs[1] = 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":\n\n';
    }
    if (fault.name === 'stream-error') {
        // message_start, block start, ping, one delta, then the in-band error.
        evs = evs.slice(0, 4);
        evs.push(sse('error', errorBody('overloaded_error', 'Overloaded', requestId)));
    }

    let i = 0;
    let timer = null;
    let closed = false;
    res.on('close', () => {
        closed = true;
        clearTimeout(timer);
    });
    const step = () => {
        if (closed) return;
        if (!res.headersSent) {
            res.writeHead(200, {
                'content-type': 'text/event-stream; charset=utf-8',
                'cache-control': 'no-cache',
                'request-id': requestId,
            });
        }
        if (dropAfter !== null && i >= dropAfter) {
            res.socket.destroy();
            return;
        }
        res.write(evs[i++]);
        if (i >= evs.length) {
            res.end();
            return;
        }
        timer = setTimeout(step, interval);
    };
    timer = setTimeout(step, firstDelay);
}

function answerJSON(res, plan, fault, requestId) {
    const reply = messageOf(plan);
    if (fault.name === 'drop-mid-stream') {
        // Announce the whole body, send half of it, then vanish.
        const s = JSON.stringify(reply);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s),
            'request-id': requestId });
        res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
        return;
    }
    if (fault.name === 'bad-event') {
        const s = JSON.stringify(reply).slice(0, -7);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s),
            'request-id': requestId });
        res.end(s);
        return;
    }
    let delay = 0;
    if (fault.name === 'slow-first-byte') delay = fault.arg ?? 1500;
    if (fault.name === 'slow-stream') delay = (fault.arg ?? 300) * SLOW_STREAM_EVENTS;
    if (delay > 0) {
        const t = setTimeout(() => sendJSON(res, 200, reply, requestId), delay);
        res.on('close', () => clearTimeout(t));
    } else {
        sendJSON(res, 200, reply, requestId);
    }
}

/* The faults answered before any generation: true when one was. */
function errorFault(res, fault, body, requestId) {
    switch (fault.name) {
    case 'empty':
        res.writeHead(fault.arg || 503, { 'content-length': '0', 'request-id': requestId });
        res.end();
        return true;
    case 'fault-500':
        sendError(res, 500, 'api_error', 'Internal server error', requestId);
        return true;
    case 'fault-429':
        sendError(res, 429, 'rate_limit_error',
            'This request would exceed the rate limit for your organization of 50 requests per minute ' +
            '(fake upstream fault-429). Please try again later.', requestId, {
                'retry-after': '7',
                'anthropic-ratelimit-requests-limit': '50',
                'anthropic-ratelimit-requests-remaining': '0',
                'anthropic-ratelimit-requests-reset': new Date(Date.now() + 7000).toISOString().replace(/\.\d+Z$/, 'Z'),
            });
        return true;
    case 'fault-400':
        sendError(res, 400, 'invalid_request_error',
            'messages.0.content: rejected by the fake upstream (fault-400)', requestId);
        return true;
    case 'overloaded':
        sendError(res, 529, 'overloaded_error', 'Overloaded', requestId);
        return true;
    case 'context-too-long':
        sendError(res, 400, 'invalid_request_error',
            `prompt is too long: ${CONTEXT_LIMIT + 1 + inputTokens(body)} tokens > ${CONTEXT_LIMIT} maximum`, requestId);
        return true;
    case 'hang':
        // Keep the request open; the log records when the client gives up.
        return true;
    default:
        return false;
    }
}

/* ---------- entry point ---------- */

export function handle(ctx) {
    const { req, res, url, raw, entry, apiKey } = ctx;
    const requestId = newId('req_011C', 20);

    let body = null;
    let parseError = null;
    try {
        body = JSON.parse(raw);
    } catch (e) {
        parseError = e;
    }
    if (isObject(body)) {
        entry.body = body;
        if (typeof body.model === 'string') entry.model = body.model;
        entry.stream = body.stream === true;
    }

    // The log must never show the key (openai.mjs already drops authorization).
    delete entry.headers['x-api-key'];
    const xKey = req.headers['x-api-key'];
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
    const key = xKey !== undefined ? xKey : (bearer ? bearer[1] : undefined);
    entry.had_auth = key !== undefined;
    entry.auth_ok = key !== undefined && key !== '' && (apiKey === null || key === apiKey);
    if (key === undefined || key === '') {
        sendError(res, 401, 'authentication_error', 'x-api-key header is required', requestId);
        return;
    }
    if (!entry.auth_ok) {
        sendError(res, 401, 'authentication_error', 'invalid x-api-key', requestId);
        return;
    }
    const version = req.headers['anthropic-version'];
    if (version === undefined || version === '') {
        sendError(res, 400, 'invalid_request_error', 'anthropic-version: header is required', requestId);
        return;
    }
    if (!KNOWN_VERSIONS.has(version)) {
        sendError(res, 400, 'invalid_request_error', `anthropic-version: "${version}" is not a valid version`,
            requestId);
        return;
    }

    const countOnly = url.pathname === '/v1/messages/count_tokens';
    if (!countOnly && url.pathname !== '/v1/messages') {
        sendError(res, 404, 'not_found_error', 'Not Found', requestId);
        return;
    }
    if (req.method !== 'POST') {
        sendError(res, 405, 'invalid_request_error', `Method ${req.method} not allowed`, requestId);
        return;
    }
    if (parseError) {
        sendError(res, 400, 'invalid_request_error', `There was an issue with your request body: ${parseError.message}`,
            requestId);
        return;
    }
    const problem = validate(body, { countOnly, version });
    if (problem) {
        sendError(res, 400, 'invalid_request_error', problem, requestId);
        return;
    }

    const fault = parseFault(body.model);
    if (countOnly) {
        if (errorFault(res, fault, body, requestId)) return;
        const reply = { input_tokens: inputTokens(body) };
        if (fault.name === 'slow-first-byte') {
            const t = setTimeout(() => sendJSON(res, 200, reply, requestId), fault.arg ?? 1500);
            res.on('close', () => clearTimeout(t));
            return;
        }
        sendJSON(res, 200, reply, requestId);
        return;
    }
    if (errorFault(res, fault, body, requestId)) return;
    if (fault.name === 'stream-error' && body.stream !== true) {
        // Without a stream the same mid-generation failure is an error status.
        sendError(res, 529, 'overloaded_error', 'Overloaded', requestId);
        return;
    }
    const plan = planReply(body, raw, fault);
    if (body.stream === true) stream(res, plan, fault, requestId);
    else answerJSON(res, plan, fault, requestId);
}
