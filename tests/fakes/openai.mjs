#!/usr/bin/env node
// A fake OpenAI upstream for sluice's integration tests (node:http only, no
// dependencies). It speaks OpenAI's wire format closely enough for the
// official SDK to accept it, answers deterministically, and can misbehave on
// purpose: the request's "model" field selects a fault, so a gateway config
// can route a model name to it.
//
//   node tests/fakes/openai.mjs --port 0 --port-file FILE [--host 127.0.0.1] [--api-key K]
//
// or, as a module:  const fake = await start({ port: 0, apiKey });  fake.port; await fake.close();
//
// Routes: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models[/ID]
// (also without the /v1 prefix). Observation: GET /__control/log,
// POST /__control/reset.
//
// Other providers' wire formats live in tests/fakes/providers/<name>.mjs, one
// module each, loaded at start. A module exports
//   matches(method, pathname) -> boolean      claims a request
//   handle(ctx)                               answers it; ctx = {req, res, url,
//       raw (body text), rawBuffer, entry (the log entry: set entry.model,
//       entry.stream, entry.body (the parsed body) and entry.auth_ok), apiKey
//       (--api-key or null), helpers: {sendJSON, parseFault, lastUserText,
//       contentText, openai(pathname[, rawBody]): the OpenAI routes, auth
//       already checked}}
// and is checked before the OpenAI routes.
//
// Other OpenAI routes (Responses, legacy completions, rerank, moderations,
// images, audio) live in providers/openai-extra.mjs.
//
// Replies: the assistant text is "Echo: " + the last user message's text,
// streamed one word per event (with its trailing spaces, so the deltas join
// back to exactly the same text). When the conversation ends with tool
// messages (a tool round trip) the text is "Echo: tool result: " + the first
// of those messages' text, and no tool is called. Otherwise, with tools,
// tool_choice not "none" and "call tool" in the last user message, the answer
// is a tool call instead (tool_choice's named function, else the first tool)
// with the arguments toolArguments() gives: {"text": <last user text>}, or
// the "run `CMD`" command convention described there.
//
// Exports for the provider modules and tests: start(), fakeEmbedding(),
// toolArguments(), rerankOrder().
//
// Faults, by model name (an optional "-<number>" suffix tunes the timing):
//   fault-500, fault-429 (retry-after: 7), fault-400     error replies
//   context-too-long, content-filter   400s as OpenAI words them (code
//                          context_length_exceeded, content_filter)
//   empty-NNN                                           status NNN with an empty body
//   slow-first-byte[-MS]   headers and first event only after MS (1500) ms
//   drop-mid-stream        two events, then the socket is destroyed
//   hang                   never answers; waits for the socket to close
//   slow-stream[-MS]       one event every MS (300) ms for about 3 s
//   echo-body              the assistant content is the raw request body

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MAX_BODY = 64 * 1024 * 1024;
const SLOW_STREAM_EVENTS = 10;

function errorBody(message, type, param = null, code = null) {
    return { error: { message, type, param, code } };
}

function sendJSON(res, status, obj, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...headers,
    });
    res.end(body);
}

function sendError(res, status, message, type, param = null, code = null, headers = {}) {
    sendJSON(res, status, errorBody(message, type, param, code), headers);
}

/* The fault a model name selects, with its optional numeric argument. */
function parseFault(model) {
    if (typeof model !== 'string') return { name: null, arg: null };
    const m = /^(fault-500|fault-429|fault-400|context-too-long|content-filter|empty|slow-first-byte|drop-mid-stream|hang|slow-stream|echo-body)(?:-(\d+))?$/.exec(model);
    if (!m) return { name: null, arg: null };
    return { name: m[1], arg: m[2] === undefined ? null : Number(m[2]) };
}

/* Text of one message's content: a string, or the concatenated text parts. */
function contentText(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
        return content
            .filter((p) => p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string')
            .map((p) => p.text)
            .join('');
    }
    return '';
}

function lastUserText(messages) {
    for (let i = messages.length - 1; i >= 0; i--) {
        const m = messages[i];
        if (m && m.role === 'user') return contentText(m.content);
    }
    return '';
}

/* Words with their trailing whitespace: joining the pieces gives the text back. */
function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

function promptTokens(messages) {
    let n = 0;
    for (const m of messages) n += 3 + countWords(contentText(m && m.content));
    return n;
}

function usageObject(prompt, completion) {
    return {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: {
            reasoning_tokens: 0,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    };
}

/* Deterministic embedding of one input item: `dims` float32 values in [-1, 1)
 * derived from SHA-256 of the item. Values are rounded to float32 so the
 * base64 and the float encodings carry exactly the same numbers. */
export function fakeEmbedding(item, dims = 8) {
    const key = typeof item === 'string' ? item : JSON.stringify(item);
    const out = [];
    for (let block = 0; out.length < dims; block++) {
        const h = crypto.createHash('sha256').update(`${block}:${key}`).digest();
        for (let off = 0; off + 4 <= h.length && out.length < dims; off += 4) {
            out.push(Math.fround(h.readUInt32LE(off) / 2 ** 31 - 1));
        }
    }
    return out;
}

function float32Base64(values) {
    const buf = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
    return buf.toString('base64');
}

/* The tool-call convention every fake shares. The arguments are normally
 * {"text": <last user text>}. When the chosen tool's parameter schema has a
 * property named "command" (or "cmd") and the user text holds a command in
 * backticks after the word "run" (e.g. "call tool: run `echo hi > out.txt`"),
 * they are {"command": CMD} instead, or {"command": ["bash", "-lc", CMD]}
 * when that property's type is "array": a real tool call a coding agent
 * will execute (OpenAI's Codex CLI: exec_command with "cmd", its older shell
 * tool with "command"; their other properties are left out). */
export function toolArguments(schema, userText) {
    const props = schema && typeof schema === 'object' && schema.properties && typeof schema.properties === 'object'
        ? schema.properties : null;
    const m = /\brun\b:?\s*`([^`]+)`/i.exec(userText);
    // "command" (Codex's older shell tool, many agents) or "cmd" (Codex's exec_command)
    const key = props && m ? ['command', 'cmd'].find((k) => Object.hasOwn(props, k)) : undefined;
    if (key) {
        const t = props[key] && props[key].type;
        const isArray = t === 'array' || (Array.isArray(t) && t.includes('array'));
        return { [key]: isArray ? ['bash', '-lc', m[1]] : m[1] };
    }
    return { text: userText };
}

/* The rerank relevance every fake shares: the share of the query's distinct
 * words (lowercased letter/digit runs) that occur in the document text.
 * Returns [{index, score}] for texts, best first, ties by index. */
export function rerankOrder(query, texts) {
    const words = (s) => new Set(String(s).toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []);
    const q = words(query);
    return texts.map((t, index) => {
        const d = words(t);
        let hits = 0;
        for (const w of q) if (d.has(w)) hits++;
        return { index, score: q.size > 0 ? hits / q.size : 0 };
    }).sort((a, b) => b.score - a.score || a.index - b.index);
}

/* Picks the tool to call: tool_choice naming a function, else the first one. */
function chooseTool(body) {
    const tc = body.tool_choice;
    if (tc && typeof tc === 'object' && tc.function && typeof tc.function.name === 'string') {
        return tc.function.name;
    }
    const t = body.tools.find((x) => x && x.function && typeof x.function.name === 'string');
    return t ? t.function.name : 'unknown_tool';
}

/* The parameter schema of the tool named name, or null. */
function toolSchema(body, name) {
    const t = body.tools.find((x) => x && x.function && x.function.name === name);
    return t ? t.function.parameters : null;
}

/* The first of the tool messages that end the conversation, or null. */
function trailingToolMessage(messages) {
    let first = null;
    for (let i = messages.length - 1; i >= 0 && messages[i] && messages[i].role === 'tool'; i--) first = messages[i];
    return first;
}

function wantsToolCall(body, userText) {
    return Array.isArray(body.tools) && body.tools.length > 0 && body.tool_choice !== 'none' &&
        /call tool/i.test(userText);
}

/* The provider modules under providers/, sorted by file name. */
async function loadProviders() {
    const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'providers');
    let names = [];
    try {
        names = fs.readdirSync(dir).filter((n) => n.endsWith('.mjs')).sort();
    } catch {
        return [];
    }
    const mods = [];
    for (const n of names) mods.push(await import(pathToFileURL(path.join(dir, n)).href));
    return mods;
}

export async function start({ port = 0, host = '127.0.0.1', apiKey = null } = {}) {
    const providers = await loadProviders();
    const events = new EventEmitter();
    let requests = [];
    let nextId = 1;
    let respCounter = 0;
    const sockets = new Set();

    const server = http.createServer();
    // Never time out a request ourselves: "hang" must wait for the client.
    server.requestTimeout = 0;
    server.headersTimeout = 60000;
    server.keepAliveTimeout = 5000;

    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });

    server.on('request', (req, res) => {
        const url = new URL(req.url, 'http://fake');
        // Provider modules may claim control paths of their own.
        if (url.pathname.startsWith('/__control/') &&
            !providers.some((m) => m.matches(req.method, url.pathname))) {
            handleControl(req, res, url.pathname);
            return;
        }
        const headers = { ...req.headers };
        const auth = headers.authorization;
        delete headers.authorization;
        const entry = {
            id: nextId++,
            method: req.method,
            path: url.pathname,
            query: url.search,
            t_start_ms: Date.now(),
            t_first_byte_ms: null,
            t_close_ms: null,
            model: null,
            stream: false,
            had_auth: auth !== undefined,
            auth_ok: apiKey === null ? null : auth === `Bearer ${apiKey}`,
            headers,
            body_bytes: 0,
            status: null,
            completed: false,
        };
        requests.push(entry);
        const origWriteHead = res.writeHead;
        res.writeHead = function (status, ...rest) {
            entry.status = status;
            entry.t_first_byte_ms = Date.now();
            return origWriteHead.call(this, status, ...rest);
        };
        res.on('close', () => {
            entry.t_close_ms = Date.now();
            entry.completed = res.writableFinished;
            events.emit('close', entry);
        });
        events.emit('request', entry);

        const chunks = [];
        let size = 0;
        let tooBig = false;
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_BODY) tooBig = true;
            else chunks.push(c);
        });
        req.on('error', () => {});
        req.on('end', () => {
            entry.body_bytes = size;
            if (tooBig) {
                sendError(res, 413, 'Request body too large for the fake upstream.', 'invalid_request_error');
                return;
            }
            const rawBuffer = Buffer.concat(chunks);
            const raw = rawBuffer.toString('utf8');
            try {
                const mod = providers.find((m) => m.matches(req.method, url.pathname));
                if (mod) {
                    entry.auth_ok = null;
                    const helpers = {
                        sendJSON, parseFault, lastUserText, contentText,
                        // The OpenAI routes for an already authenticated request,
                        // as if it had come to pathname (e.g. '/v1/chat/completions').
                        openai: (pathname, rawBody = raw) =>
                            route(req, res, new URL(pathname, 'http://fake'), rawBody, entry, true),
                    };
                    Promise.resolve(mod.handle({ req, res, url, raw, rawBuffer, entry, apiKey, helpers }))
                        .catch((e) => sendError(res, 500, `fake upstream bug: ${e && e.stack}`, 'server_error'));
                    return;
                }
                route(req, res, url, raw, entry);
            } catch (e) {
                sendError(res, 500, `fake upstream bug: ${e && e.stack}`, 'server_error');
            }
        });
    });

    function handleControl(req, res, p) {
        if (p === '/__control/log' && req.method === 'GET') {
            sendJSON(res, 200, { requests });
        } else if (p === '/__control/reset' && req.method === 'POST') {
            requests = [];
            sendJSON(res, 200, { ok: true });
        } else {
            sendError(res, 404, `Unknown control route ${req.method} ${p}`, 'invalid_request_error');
        }
        req.resume();
    }

    function route(req, res, url, raw, entry, authenticated = false) {
        let body;
        let parseError = null;
        try {
            body = JSON.parse(raw);
        } catch (e) {
            parseError = e;
        }
        if (body && typeof body === 'object' && typeof body.model === 'string') entry.model = body.model;
        // Small bodies are kept for tests to inspect (big ones would bloat the log).
        if (body && typeof body === 'object' && raw.length <= 65536) entry.body = body;
        if (body && typeof body === 'object') entry.stream = body.stream === true;
        if (apiKey !== null && !entry.auth_ok && !authenticated) {
            sendError(res, 401,
                entry.had_auth ? 'Incorrect API key provided. You can find your API key at the fake upstream.'
                    : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                'invalid_request_error', null, 'invalid_api_key');
            return;
        }
        const p = url.pathname.replace(/^\/v1(?=\/)/, '');
        if (p === '/models' || p.startsWith('/models/')) {
            if (req.method !== 'GET') return methodNotAllowed(res, req);
            return listModels(res, p);
        }
        if (p !== '/chat/completions' && p !== '/embeddings') {
            sendError(res, 404, `Invalid URL (${req.method} ${url.pathname})`, 'invalid_request_error');
            return;
        }
        if (req.method !== 'POST') return methodNotAllowed(res, req);
        if (parseError) {
            sendError(res, 400, `We could not parse the JSON body of your request. (${parseError.message})`,
                'invalid_request_error');
            return;
        }
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
            sendError(res, 400, 'The request body must be a JSON object.', 'invalid_request_error');
            return;
        }
        if (typeof body.model !== 'string' || body.model === '') {
            sendError(res, 400, 'you must provide a model parameter', 'invalid_request_error', 'model');
            return;
        }
        const fault = parseFault(body.model);
        if (fault.name === 'empty') {
            /* A status with no body at all, as some proxies answer. */
            res.writeHead(fault.arg || 503, { 'content-length': '0' });
            res.end();
            return;
        }
        if (fault.name === 'fault-500') {
            sendError(res, 500, 'The server had an error while processing your request. (fake upstream fault-500)',
                'server_error');
            return;
        }
        if (fault.name === 'fault-429') {
            sendError(res, 429, 'Rate limit reached for fake upstream (fault-429). Please try again in 7s.',
                'rate_limit_error', null, 'rate_limit_exceeded', { 'retry-after': '7' });
            return;
        }
        if (fault.name === 'fault-400') {
            sendError(res, 400, "Invalid value for 'messages': rejected by the fake upstream (fault-400).",
                'invalid_request_error', 'messages', 'invalid_value');
            return;
        }
        if (fault.name === 'context-too-long') {
            sendError(res, 400, "This model's maximum context length is 8192 tokens. However, your "
                + 'messages resulted in 9000 tokens. Please reduce the length of the messages.',
                'invalid_request_error', 'messages', 'context_length_exceeded');
            return;
        }
        if (fault.name === 'content-filter') {
            sendError(res, 400, "The response was filtered due to the prompt triggering the content "
                + 'management policy (fake upstream content-filter).', 'invalid_request_error', 'prompt',
                'content_filter');
            return;
        }
        if (fault.name === 'hang') {
            // Keep the request open; the 'close' handler records when the client gives up.
            return;
        }
        if (p === '/embeddings') return embeddings(res, body, fault);
        return chat(res, body, raw, fault);
    }

    function methodNotAllowed(res, req) {
        sendError(res, 405, `Method ${req.method} not allowed.`, 'invalid_request_error');
    }

    function listModels(res, p) {
        const created = 1700000000;
        const ids = ['gpt-4o-mini', 'text-embedding-3-small', 'fault-500', 'fault-429', 'fault-400',
            'slow-first-byte', 'drop-mid-stream', 'hang', 'slow-stream', 'echo-body'];
        const model = (id) => ({ id, object: 'model', created, owned_by: 'fake-upstream' });
        if (p === '/models') {
            sendJSON(res, 200, { object: 'list', data: ids.map(model) });
            return;
        }
        const id = decodeURIComponent(p.slice('/models/'.length));
        if (ids.includes(id)) sendJSON(res, 200, model(id));
        else sendError(res, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    }

    function embeddings(res, body, fault) {
        let items = body.input;
        const fmt = body.encoding_format === undefined ? 'float' : body.encoding_format;
        if (fmt !== 'float' && fmt !== 'base64') {
            sendError(res, 400, `Invalid value for 'encoding_format': ${JSON.stringify(fmt)}.`,
                'invalid_request_error', 'encoding_format', 'invalid_value');
            return;
        }
        const isTokens = (a) => Array.isArray(a) && a.length > 0 && a.every((x) => Number.isInteger(x));
        if (typeof items === 'string' || isTokens(items)) items = [items];
        const ok = Array.isArray(items) && items.length > 0 &&
            items.every((x) => (typeof x === 'string' && x.length > 0) || isTokens(x));
        if (!ok) {
            sendError(res, 400, "'$.input' is invalid. Please check the API reference.",
                'invalid_request_error', 'input');
            return;
        }
        const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : 8;
        let tokens = 0;
        const data = items.map((x, index) => {
            tokens += typeof x === 'string' ? Math.max(1, countWords(x)) : x.length;
            const v = fakeEmbedding(x, dims);
            return { object: 'embedding', index, embedding: fmt === 'base64' ? float32Base64(v) : v };
        });
        const reply = {
            object: 'list',
            data,
            model: body.model,
            usage: { prompt_tokens: tokens, total_tokens: tokens },
        };
        const send = () => sendJSON(res, 200, reply, { 'x-request-id': `req_fake_${++respCounter}` });
        if (fault.name === 'slow-first-byte') setTimeout(send, fault.arg ?? 1500);
        else send();
    }

    function chat(res, body, raw, fault) {
        const messages = body.messages;
        if (!Array.isArray(messages) || messages.length === 0) {
            sendError(res, 400, "Invalid 'messages': expected a non-empty array.", 'invalid_request_error',
                'messages', 'invalid_type');
            return;
        }
        const userText = lastUserText(messages);
        const n = Number.isInteger(body.n) && body.n > 0 && body.n <= 8 ? body.n : 1;
        const id = `chatcmpl-fake${++respCounter}`;
        const created = Math.floor(Date.now() / 1000);
        const ptoks = promptTokens(messages);
        const limit = Number.isInteger(body.max_completion_tokens) ? body.max_completion_tokens
            : Number.isInteger(body.max_tokens) ? body.max_tokens : null;

        // A tool round trip answers the (first) tool result and calls nothing.
        const toolResult = trailingToolMessage(messages);
        let text = fault.name === 'echo-body' ? raw
            : toolResult ? `Echo: tool result: ${contentText(toolResult.content)}` : `Echo: ${userText}`;
        let finish = 'stop';
        let pieces = fault.name === 'echo-body' ? (text.match(/[\s\S]{1,40}/g) || []) : splitWords(text);
        if (limit !== null && limit >= 0 && pieces.length > limit) {
            pieces = pieces.slice(0, limit);
            text = pieces.join('');
            finish = 'length';
        }
        let toolCall = null;
        if (fault.name !== 'echo-body' && !toolResult && wantsToolCall(body, userText)) {
            const name = chooseTool(body);
            toolCall = {
                id: `call_fake${respCounter}`,
                type: 'function',
                function: { name, arguments: JSON.stringify(toolArguments(toolSchema(body, name), userText)) },
            };
            finish = 'tool_calls';
        }
        const ctoks = toolCall ? countWords(toolCall.function.arguments) + 1 : countWords(text);
        const usage = usageObject(ptoks, ctoks);
        const base = { id, created, model: body.model, system_fingerprint: 'fp_fake' };

        if (body.stream === true) {
            const includeUsage = !!(body.stream_options && body.stream_options.include_usage === true);
            streamChat(res, { base, n, pieces, finish, toolCall, usage, includeUsage, fault });
            return;
        }
        const choices = [];
        for (let i = 0; i < n; i++) {
            const message = toolCall
                ? { role: 'assistant', content: null, tool_calls: [toolCall], refusal: null, annotations: [] }
                : { role: 'assistant', content: text, refusal: null, annotations: [] };
            choices.push({ index: i, message, logprobs: null, finish_reason: finish });
        }
        const reply = {
            id, object: 'chat.completion', created, model: body.model, choices, usage,
            service_tier: 'default', system_fingerprint: 'fp_fake',
        };
        const hdrs = { 'x-request-id': `req_fake_${respCounter}` };
        if (fault.name === 'drop-mid-stream') {
            // Announce the whole body, send half of it, then vanish.
            const s = JSON.stringify(reply);
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...hdrs });
            res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
            return;
        }
        let delay = 0;
        if (fault.name === 'slow-first-byte') delay = fault.arg ?? 1500;
        if (fault.name === 'slow-stream') delay = (fault.arg ?? 300) * Math.max(SLOW_STREAM_EVENTS, pieces.length);
        if (delay > 0) {
            const t = setTimeout(() => sendJSON(res, 200, reply, hdrs), delay);
            res.on('close', () => clearTimeout(t));
        } else {
            sendJSON(res, 200, reply, hdrs);
        }
    }

    function streamChat(res, o) {
        const { base, n, pieces, finish, toolCall, usage, includeUsage, fault } = o;
        const chunk = (choices, extra = {}) => {
            const c = { id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model,
                service_tier: 'default', system_fingerprint: base.system_fingerprint, choices, ...extra };
            if (includeUsage && !('usage' in extra)) c.usage = null;
            return `data: ${JSON.stringify(c)}\n\n`;
        };
        const perChoice = (delta, fr = null) => {
            const out = [];
            for (let i = 0; i < n; i++) out.push({ index: i, delta, logprobs: null, finish_reason: fr });
            return out;
        };

        // The events, as strings, in order.
        const evs = [];
        if (toolCall) {
            evs.push(chunk(perChoice({
                role: 'assistant', content: null, refusal: null,
                tool_calls: [{ index: 0, id: toolCall.id, type: 'function',
                    function: { name: toolCall.function.name, arguments: '' } }],
            })));
            const args = toolCall.function.arguments;
            for (const frag of args.match(/[\s\S]{1,8}/g) || []) {
                evs.push(chunk(perChoice({ tool_calls: [{ index: 0, function: { arguments: frag } }] })));
            }
        } else {
            evs.push(chunk(perChoice({ role: 'assistant', content: '', refusal: null })));
            for (const p of pieces) evs.push(chunk(perChoice({ content: p })));
        }
        if (fault.name === 'slow-stream') {
            // Pad with empty deltas so the stream lasts about 3 s whatever the text.
            while (evs.length < SLOW_STREAM_EVENTS) evs.push(chunk(perChoice({ content: '' })));
        }
        evs.push(chunk(perChoice({}, finish)));
        if (includeUsage) evs.push(chunk([], { usage }));
        evs.push('data: [DONE]\n\n');

        let interval = 0;
        let firstDelay = 0;
        let dropAfter = null;
        if (fault.name === 'slow-first-byte') firstDelay = fault.arg ?? 1500;
        if (fault.name === 'slow-stream') interval = fault.arg ?? 300;
        if (fault.name === 'drop-mid-stream') dropAfter = 2;

        let i = 0;
        let timer = null;
        let closed = false;
        res.on('close', () => {
            closed = true;
            clearTimeout(timer);
        });
        const headers = () => {
            res.writeHead(200, {
                'content-type': 'text/event-stream; charset=utf-8',
                'cache-control': 'no-cache',
                'x-request-id': `req_fake_${respCounter}`,
            });
        };
        const step = () => {
            if (closed) return;
            if (i === 0 && !res.headersSent) headers();
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

    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
            server.off('error', reject);
            resolve();
        });
    });

    return {
        port: server.address().port,
        host,
        events,
        log: () => requests,
        reset: () => { requests = []; },
        close: () => new Promise((resolve) => {
            server.close(() => resolve());
            for (const s of sockets) s.destroy();
        }),
    };
}

function parseArgs(argv) {
    const opts = { port: 0, host: '127.0.0.1', apiKey: null, portFile: null };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--port') opts.port = Number(val());
        else if (a === '--host') opts.host = val();
        else if (a === '--api-key') opts.apiKey = val();
        else if (a === '--port-file') opts.portFile = val();
        else throw new Error(`unknown argument ${a}`);
    }
    return opts;
}

async function main() {
    let opts;
    try {
        opts = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`fake-openai: ${e.message}\n` +
            'usage: openai.mjs [--port N] [--host H] [--api-key K] [--port-file FILE]\n');
        process.exit(2);
    }
    const fake = await start(opts);
    if (opts.portFile) {
        // Write then rename, so a reader never sees a half-written file.
        const tmp = path.join(path.dirname(opts.portFile), `.${path.basename(opts.portFile)}.${process.pid}`);
        fs.writeFileSync(tmp, `${fake.port}\n`);
        fs.renameSync(tmp, opts.portFile);
    }
    process.stderr.write(`fake-openai: listening on ${opts.host}:${fake.port}\n`);
    const stop = () => fake.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    main();
}
