// Fake Cohere v2 upstream (loaded by tests/fakes/openai.mjs).
//
// Routes: POST /v2/chat (JSON, or SSE when "stream": true), POST /v2/embed,
// POST /v2/rerank. (Cohere's v1 rerank, POST /v1/rerank, is the same path
// vLLM and other OpenAI-compatible servers use: openai-extra.mjs serves it,
// with an answer that is Cohere's v1 shape too - OpenAI-style errors, though.)
// Auth: "Authorization: Bearer <key>". No header: 401 {"message":"no api key
// supplied"}; a wrong key (when the fake has --api-key): 401 {"message":
// "invalid api token"}. Errors are always {"message": "..."}, as Cohere sends.
//
// Chat: the answer is "Echo: " + the last user message's text parts, then
// " [image <mime> <bytes>]" per data-URL image_url part or " [image-url <url>]"
// for other URLs. If the conversation ends with tool messages the answer is
// "Echo: tool result: " + the first of those messages' text. With tools,
// tool_choice other than NONE and "call tool" in the last user text, the
// answer is one tool call to the first tool (Cohere's tool_choice can only be
// REQUIRED or NONE, it never names a tool) with arguments {"text": <user
// text>}, a tool_plan, and finish_reason TOOL_CALL. response_format
// {"type":"json_object"} makes the text JSON.stringify({echo: <user text>}).
// max_tokens below the word count cuts the words: finish_reason MAX_TOKENS.
// usage: billed_units and tokens both carry input = sum over messages of
// (3 + words), output = answer words (tool call: words of the arguments JSON
// + 1); cached_tokens = 2 when the model name contains "cached", else 0.
//
// Streaming: SSE "event: <type>\ndata: <json>\n\n", one res.write per event,
// 5 ms apart: message-start, content-start, one content-delta per word,
// content-end, message-end (finish_reason, usage). A tool call streams
// message-start, tool-plan-delta (per word), tool-call-start, tool-call-delta
// (the arguments in 8-character fragments), tool-call-end, message-end. The
// stream just ends after message-end (no "[DONE]" line).
//
// Embed: {model, texts, input_type, embedding_types} ->
// {id, embeddings: {float|int8|uint8|base64: [...]}, texts, meta,
// response_type: "embeddings_by_type"}; the float values are fakeEmbedding()
// of each text (output_dimension values, default 8), as the OpenAI fake's.
//
// Rerank: {model, query, documents (strings), top_n, max_tokens_per_doc} ->
// {id, results: [{index, relevance_score}], meta: {api_version: {version:
// "2"}, billed_units: {search_units: 1 per 100 documents}}}, best first by
// rerankOrder() of ../openai.mjs (the share of the query's words found in the
// document, ties by index), top_n of them. A missing query or documents, a
// document that is not a string, or a top_n below 1 is a 400.
//
// Faults, by the body's "model" (chat, embed and rerank):
//   fault-500         500 internal server error
//   fault-429         429 with retry-after: 7
//   fault-400         400 "invalid request: ..."
//   overloaded        503 (the SDK's ServiceUnavailableError)
//   context-too-long  400 "too many tokens: ..." (Cohere's own wording)
//   content-filter    400 "blocked input: ..." - v2 chat has no filter finish
//                     reason (ChatFinishReason lists no ERROR_TOXIC), so a
//                     blocked prompt is a plain 400
//   drop-mid-stream   two events, then the socket is destroyed (non-stream:
//                     half the announced body)
//   slow-stream       one event every 300 ms for about 3 s (non-stream: the
//                     answer after 3 s)
//   hang              never answers
//   bad-event         the 2nd SSE event's data is not JSON (non-stream: a
//                     truncated JSON body with status 200)
//   stream-error      after two events, message-end with finish_reason ERROR
//                     and delta.error (Cohere's in-band error; non-stream: 500)

import crypto from 'node:crypto';
import { fakeEmbedding, rerankOrder } from '../openai.mjs';

const EVENT_GAP_MS = 5;
const SLOW_GAP_MS = 300;
const SLOW_EVENTS = 10;
const FAULTS = new Set(['fault-500', 'fault-429', 'fault-400', 'overloaded', 'context-too-long',
    'content-filter', 'drop-mid-stream', 'slow-stream', 'hang', 'bad-event', 'stream-error']);

let counter = 0;

export function matches(method, pathname) {
    return method === 'POST' && (pathname === '/v2/chat' || pathname === '/v2/embed' || pathname === '/v2/rerank');
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

function sendError(res, status, message, headers = {}) {
    sendJSON(res, status, { message }, headers);
}

/* Words with their trailing whitespace: joining the pieces gives the text back. */
function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

/* Text of a message's content: a string, or its text (and document) parts. */
function contentText(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content.map((p) => {
        if (!p || typeof p !== 'object') return '';
        if (p.type === 'text' && typeof p.text === 'string') return p.text;
        if (p.type === 'document' && p.document) {
            const d = p.document.data;
            return typeof d === 'string' ? d : JSON.stringify(d ?? null);
        }
        return '';
    }).join('');
}

/* " [image ...]" markers for the image_url parts of a user message. */
function imageMarkers(content) {
    if (!Array.isArray(content)) return '';
    let out = '';
    for (const p of content) {
        if (!p || p.type !== 'image_url') continue;
        const url = typeof p.image_url === 'string' ? p.image_url : p.image_url && p.image_url.url;
        if (typeof url !== 'string') continue;
        const m = /^data:([^;,]+)(;base64)?,(.*)$/s.exec(url);
        if (m) {
            let bytes;
            try {
                bytes = m[2] ? Buffer.from(m[3], 'base64').length : Buffer.byteLength(decodeURIComponent(m[3]));
            } catch {
                bytes = Buffer.byteLength(m[3]); // a malformed %-escape: count it as written
            }
            out += ` [image ${m[1]} ${bytes}]`;
        } else {
            out += ` [image-url ${url}]`;
        }
    }
    return out;
}

/* The last user message, and the tool results that end the conversation (if any). */
function lastTurn(messages) {
    let user = null;
    for (let i = messages.length - 1; i >= 0; i--) {
        if (messages[i] && messages[i].role === 'user') {
            user = messages[i];
            break;
        }
    }
    let firstTrailingTool = null;
    for (let i = messages.length - 1; i >= 0 && messages[i] && messages[i].role === 'tool'; i--) {
        firstTrailingTool = messages[i];
    }
    return { user, toolResult: firstTrailingTool };
}

function sseEvent(obj) {
    return `event: ${obj.type}\ndata: ${JSON.stringify(obj)}\n\n`;
}

/* Writes events one by one, `gap` ms apart; optionally destroys the socket
 * after `dropAfter` events instead of finishing. */
function streamEvents(res, events, { gap = EVENT_GAP_MS, dropAfter = null, headers = {} } = {}) {
    let i = 0;
    let timer = null;
    let closed = false;
    res.on('close', () => {
        closed = true;
        clearTimeout(timer);
    });
    res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        ...headers,
    });
    const step = () => {
        if (closed) return;
        if (dropAfter !== null && i >= dropAfter) {
            if (res.socket) res.socket.destroy();
            return;
        }
        res.write(events[i++]);
        if (i >= events.length) {
            res.end();
            return;
        }
        timer = setTimeout(step, gap);
    };
    step();
}

/* Answers a non-stream body, honouring the body-level faults. */
function sendReply(res, fault, reply, headers) {
    if (fault === 'drop-mid-stream') {
        // Announce the whole body, send half of it, then vanish.
        const s = JSON.stringify(reply);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
        res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
        return;
    }
    if (fault === 'bad-event') {
        const s = JSON.stringify(reply).slice(0, 20);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
        res.end(s);
        return;
    }
    if (fault === 'slow-stream') {
        const t = setTimeout(() => sendJSON(res, 200, reply, headers), SLOW_GAP_MS * SLOW_EVENTS);
        res.on('close', () => clearTimeout(t));
        return;
    }
    sendJSON(res, 200, reply, headers);
}

/* The errors every fault model shares between chat and embed; true if sent. */
function sendFaultError(res, fault) {
    switch (fault) {
    case 'fault-500':
        sendError(res, 500, 'internal server error, this has been reported to our developers (fake upstream fault-500)');
        return true;
    case 'fault-429':
        sendError(res, 429, 'You are past the per-minute request limit of the fake upstream (fault-429), please wait and try again later.',
            { 'retry-after': '7' });
        return true;
    case 'fault-400':
        sendError(res, 400, 'invalid request: messages rejected by the fake upstream (fault-400).');
        return true;
    case 'overloaded':
        sendError(res, 503, 'service unavailable: the model is overloaded, please try again later (fake upstream).');
        return true;
    case 'context-too-long':
        sendError(res, 400, 'too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 131072. ' +
            'Try using a shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/chat for more details.');
        return true;
    case 'content-filter':
        sendError(res, 400, 'blocked input: please adjust your prompt and try again, as it may be a potential violation of ' +
            'our Usage Policy (https://docs.cohere.com/docs/usage-policy).');
        return true;
    default:
        return false;
    }
}

function checkAuth(ctx) {
    const { req, res, entry, apiKey } = ctx;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^bearer\s+(\S.*)$/i.exec(header.trim()) : null;
    if (!m) {
        entry.auth_ok = false;
        sendError(res, 401, 'no api key supplied');
        return false;
    }
    entry.auth_ok = apiKey === null || m[1] === apiKey;
    if (!entry.auth_ok) {
        sendError(res, 401, 'invalid api token');
        return false;
    }
    return true;
}

export function handle(ctx) {
    const { res, url, raw, entry } = ctx;
    let body = null;
    try {
        body = JSON.parse(raw);
    } catch {
        body = null;
    }
    if (body && typeof body === 'object' && !Array.isArray(body)) {
        entry.body = body;
        if (typeof body.model === 'string') entry.model = body.model;
        entry.stream = body.stream === true;
    }
    if (!checkAuth(ctx)) return;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        sendError(res, 400, 'invalid request: could not parse the request body as a JSON object.');
        return;
    }
    if (typeof body.model !== 'string' || body.model === '') {
        sendError(res, 400, 'invalid request: model is required.');
        return;
    }
    const fault = FAULTS.has(body.model) ? body.model : null;
    if (fault === 'hang') return; // the 'close' handler in openai.mjs records when the client gives up
    if (sendFaultError(res, fault)) return;
    if (url.pathname === '/v2/embed') embed(res, body, fault);
    else if (url.pathname === '/v2/rerank') rerank(res, body, fault);
    else chat(res, body, fault);
}

function rerank(res, body, fault) {
    if (typeof body.query !== 'string' || body.query === '') {
        sendError(res, 400, 'invalid request: query must be a non-empty string.');
        return;
    }
    const docs = body.documents;
    if (!Array.isArray(docs) || docs.length === 0) {
        sendError(res, 400, 'invalid request: documents must be a non-empty list.');
        return;
    }
    if (!docs.every((d) => typeof d === 'string')) {
        sendError(res, 400, 'invalid request: documents must be a list of strings.');
        return;
    }
    const topN = body.top_n ?? docs.length;
    if (!Number.isInteger(topN) || topN < 1) {
        sendError(res, 400, `invalid request: top_n must be a positive integer - received ${JSON.stringify(topN)}.`);
        return;
    }
    const results = rerankOrder(body.query, docs).slice(0, topN)
        .map(({ index, score }) => ({ index, relevance_score: score }));
    sendReply(res, fault, {
        id: crypto.randomUUID(),
        results,
        meta: { api_version: { version: '2' }, billed_units: { search_units: Math.ceil(docs.length / 100) } },
    }, {});
}

function embed(res, body, fault) {
    let texts = body.texts;
    if (texts === undefined && Array.isArray(body.inputs)) {
        // inputs: [{content: [{type: "text", text}]}]; only their text is embedded.
        texts = body.inputs.map((i) => contentText(i && i.content));
    }
    if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
        sendError(res, 400, 'invalid request: texts must be a non-empty list of strings.');
        return;
    }
    if (texts.length > 96) {
        sendError(res, 400, `invalid request: total number of texts must be at most 96 - received ${texts.length}`);
        return;
    }
    if (typeof body.input_type !== 'string') {
        sendError(res, 400, 'invalid request: valid input_type must be provided with the provided model');
        return;
    }
    const types = body.embedding_types === undefined ? ['float'] : body.embedding_types;
    const known = ['float', 'int8', 'uint8', 'base64'];
    if (!Array.isArray(types) || types.length === 0 || !types.every((t) => known.includes(t))) {
        sendError(res, 400, `invalid request: embedding_types must be a list of ${known.join(', ')}.`);
        return;
    }
    const dims = Number.isInteger(body.output_dimension) && body.output_dimension > 0 ? body.output_dimension : 8;
    const vectors = texts.map((t) => fakeEmbedding(t, dims));
    const embeddings = {};
    for (const t of types) {
        if (t === 'float') embeddings.float = vectors;
        // Values are in [-1, 1): scale them onto the integer ranges.
        if (t === 'int8') embeddings.int8 = vectors.map((v) => v.map((x) => Math.max(-128, Math.min(127, Math.round(x * 127)))));
        if (t === 'uint8') embeddings.uint8 = vectors.map((v) => v.map((x) => Math.max(0, Math.min(255, Math.round((x + 1) * 127.5)))));
        if (t === 'base64') {
            embeddings.base64 = vectors.map((v) => {
                const buf = Buffer.alloc(v.length * 4);
                v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
                return buf.toString('base64');
            });
        }
    }
    const tokens = texts.reduce((n, t) => n + Math.max(1, countWords(t)), 0);
    const reply = {
        id: crypto.randomUUID(),
        embeddings,
        texts,
        meta: { api_version: { version: '2' }, billed_units: { input_tokens: tokens } },
        response_type: 'embeddings_by_type',
    };
    sendReply(res, fault, reply, {});
}

function chat(res, body, fault) {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
        sendError(res, 400, 'invalid request: messages must not be empty.');
        return;
    }
    const n = ++counter;
    const id = crypto.randomUUID();
    const { user, toolResult } = lastTurn(messages);
    const userText = user ? contentText(user.content) : '';
    const jsonMode = !!(body.response_format && body.response_format.type === 'json_object');
    const tools = Array.isArray(body.tools) ? body.tools : [];
    const wantsTool = !toolResult && tools.length > 0 && body.tool_choice !== 'NONE' && /call tool/i.test(userText);

    let text;
    if (toolResult) {
        const result = `tool result: ${contentText(toolResult.content)}`;
        text = jsonMode ? JSON.stringify({ echo: result }) : `Echo: ${result}`;
    } else {
        text = jsonMode ? JSON.stringify({ echo: userText }) : `Echo: ${userText}${imageMarkers(user && user.content)}`;
    }
    let finish = 'COMPLETE';
    let pieces = splitWords(text);
    if (Number.isInteger(body.max_tokens) && body.max_tokens >= 0 && pieces.length > body.max_tokens) {
        pieces = pieces.slice(0, body.max_tokens);
        text = pieces.join('');
        finish = 'MAX_TOKENS';
    }

    let toolCall = null;
    let toolPlan = '';
    if (wantsTool) {
        const t = tools.find((x) => x && x.function && typeof x.function.name === 'string');
        const name = t ? t.function.name : 'unknown_tool';
        toolCall = { id: `${name}_fake${n}`, type: 'function', function: { name, arguments: JSON.stringify({ text: userText }) } };
        toolPlan = `I will call ${name} with the user's text.`;
        finish = 'TOOL_CALL';
    }

    const inputTokens = messages.reduce((acc, m) => acc + 3 + countWords(contentText(m && m.content)), 0);
    const outputTokens = toolCall ? countWords(toolCall.function.arguments) + 1 : countWords(text);
    const usage = {
        billed_units: { input_tokens: inputTokens, output_tokens: outputTokens },
        tokens: { input_tokens: inputTokens, output_tokens: outputTokens },
        cached_tokens: body.model.includes('cached') ? 2 : 0,
    };
    const headers = { 'x-debug-trace-id': `fake-trace-${n}` };

    if (body.stream !== true) {
        if (fault === 'stream-error') {
            sendError(res, 500, 'internal server error: the generation failed (fake upstream stream-error)');
            return;
        }
        const message = toolCall
            ? { role: 'assistant', tool_plan: toolPlan, tool_calls: [toolCall] }
            : { role: 'assistant', content: [{ type: 'text', text }] };
        sendReply(res, fault, { id, message, finish_reason: finish, usage }, headers);
        return;
    }

    const events = [sseEvent({
        id, type: 'message-start',
        delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } },
    })];
    if (toolCall) {
        for (const w of splitWords(toolPlan)) {
            events.push(sseEvent({ type: 'tool-plan-delta', delta: { message: { tool_plan: w } } }));
        }
        events.push(sseEvent({
            type: 'tool-call-start', index: 0,
            delta: { message: { tool_calls: { id: toolCall.id, type: 'function',
                function: { name: toolCall.function.name, arguments: '' } } } },
        }));
        for (const frag of toolCall.function.arguments.match(/[\s\S]{1,8}/g) || []) {
            events.push(sseEvent({ type: 'tool-call-delta', index: 0,
                delta: { message: { tool_calls: { function: { arguments: frag } } } } }));
        }
        events.push(sseEvent({ type: 'tool-call-end', index: 0 }));
    } else {
        events.push(sseEvent({ type: 'content-start', index: 0,
            delta: { message: { content: { type: 'text', text: '' } } } }));
        for (const p of pieces) {
            events.push(sseEvent({ type: 'content-delta', index: 0, delta: { message: { content: { text: p } } } }));
        }
        if (fault === 'slow-stream') {
            // Pad with empty deltas so the stream lasts about 3 s whatever the text.
            while (events.length < SLOW_EVENTS - 2) {
                events.push(sseEvent({ type: 'content-delta', index: 0, delta: { message: { content: { text: '' } } } }));
            }
        }
        events.push(sseEvent({ type: 'content-end', index: 0 }));
    }
    events.push(sseEvent({ type: 'message-end', delta: { finish_reason: finish, usage } }));

    if (fault === 'bad-event') {
        events[1] = `event: content-start\ndata: {"type":"content-start","index":0,"delta":{"mess\n\n`;
    }
    if (fault === 'stream-error') {
        events.splice(2, events.length, sseEvent({
            type: 'message-end',
            delta: {
                error: 'internal server error: the generation failed (fake upstream stream-error)',
                finish_reason: 'ERROR',
                usage,
            },
        }));
    }
    streamEvents(res, events, {
        gap: fault === 'slow-stream' ? SLOW_GAP_MS : EVENT_GAP_MS,
        dropAfter: fault === 'drop-mid-stream' ? 2 : null,
        headers,
    });
}
