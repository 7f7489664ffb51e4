// Fake Ollama upstream (loaded by tests/fakes/openai.mjs).
//
// Routes: POST /api/chat, POST /api/embed, POST /api/embeddings (the legacy
// single-prompt form), GET /api/tags, GET /api/version.
// Auth: Ollama has none. A request without an Authorization header is
// accepted; one with a header that is not "Bearer <--api-key>" (when the fake
// has a key) gets 401 {"error":"unauthorized"}, as ollama.com answers.
// Errors are {"error": "..."}.
//
// Chat: "stream" defaults to TRUE, as in Ollama. Streaming answers NDJSON
// (application/x-ndjson), one line per res.write, 5 ms apart:
// {model, created_at, message: {role: "assistant", content: <word>}, done:
// false} per word, then a last line with empty content, done: true,
// done_reason (stop | length), total_duration, load_duration,
// prompt_eval_count, prompt_eval_duration, eval_count, eval_duration.
// "stream": false answers the same fields in one JSON object.
// The answer is "Echo: " + the last user message's content, then
// " [image <mime> <bytes>]" for each of its images. Ollama images are bare
// base64 with no mime type, so the fake sniffs the magic bytes: image/png,
// image/jpeg, image/gif, image/webp, else "image/unknown". If the
// conversation ends with tool messages the answer is "Echo: tool result: " +
// the first of those messages' content. With tools and "call tool" in the
// last user text (Ollama has no tool_choice) the answer is one tool call to
// the first tool: message.tool_calls [{id, function: {index: 0, name,
// arguments: {"text": <user text>}}}] - arguments are an object and arrive
// whole in one chunk (Ollama never fragments them); done_reason stays "stop"
// (Ollama has no separate tool-use reason). "format": "json" or a JSON schema
// object makes the text JSON.stringify({echo: <user text>}).
// options.num_predict below the word count cuts the words: done_reason
// "length". "think" (true or a level) adds message.thinking (streamed as
// thinking-only chunks before the content). prompt_eval_count = sum over
// messages of (3 + words); eval_count = answer words (tool call: words of
// the arguments JSON + 1); thinking is not counted. Ollama reports no cached
// tokens. An empty "messages" list just "loads" the model: done_reason "load".
//
// Embed: {model, input: string | [string], dimensions} -> {model,
// embeddings: [[...]], total_duration, load_duration, prompt_eval_count};
// the vectors are fakeEmbedding() of each input (default 8 values), like the
// OpenAI fake's, and NOT normalised as real Ollama's are.
//
// Faults, by the body's "model" (chat and embed):
//   missing*, not-found*  404 'model "<name>" not found, try pulling it first'
//   fault-500             500
//   fault-429             429 with retry-after: 7
//   fault-400             400
//   overloaded            503 "server busy, please try again.  maximum pending
//                         requests exceeded" (Ollama's queue-full error)
//   context-too-long      400 "the input length exceeds the context length"
//   content-filter        Ollama has no content filter: a normal 200 answer
//                         whose text is a refusal, done_reason "stop"
//   drop-mid-stream       two lines, then the socket is destroyed (non-stream:
//                         half the announced body)
//   slow-stream           one line every 300 ms for about 3 s (non-stream:
//                         the answer after 3 s)
//   hang                  never answers
//   bad-event             the 2nd line is not JSON (non-stream: a truncated
//                         JSON body with status 200)
//   stream-error          after two lines, a line {"error": "..."} and the end
//                         of the body, as Ollama reports mid-stream failures
//                         (non-stream: 500)

import { fakeEmbedding } from '../openai.mjs';

const VERSION = '0.12.6';
const EVENT_GAP_MS = 5;
const SLOW_GAP_MS = 300;
const SLOW_EVENTS = 10;
const REFUSAL = "I'm sorry, but I can't help with that request.";
const FAULTS = new Set(['fault-500', 'fault-429', 'fault-400', 'overloaded', 'context-too-long',
    'content-filter', 'drop-mid-stream', 'slow-stream', 'hang', 'bad-event', 'stream-error']);
const ROUTES = {
    'POST /api/chat': 'chat',
    'POST /api/embed': 'embed',
    'POST /api/embeddings': 'embeddings',
    'GET /api/tags': 'tags',
    'GET /api/version': 'version',
};

let counter = 0;

export function matches(method, pathname) {
    return Object.hasOwn(ROUTES, `${method} ${pathname}`);
}

function sendJSON(res, status, obj, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        ...headers,
    });
    res.end(body);
}

function sendError(res, status, error, headers = {}) {
    sendJSON(res, status, { error }, headers);
}

/* Words with their trailing whitespace: joining the pieces gives the text back. */
function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

const textOf = (m) => (m && typeof m.content === 'string' ? m.content : '');

/* The mime type of decoded image bytes, from their magic numbers. */
function sniffMime(buf) {
    if (buf.length >= 4 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) return 'image/png';
    if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'image/jpeg';
    if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'GIF8') return 'image/gif';
    if (buf.length >= 12 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
    return 'image/unknown';
}

function isBase64(s) {
    return typeof s === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 !== 1;
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

/* Writes lines one by one, `gap` ms apart; optionally destroys the socket
 * after `dropAfter` lines instead of finishing. A line is a string, or a
 * function that makes it when it is due. */
function streamLines(res, lines, { gap = EVENT_GAP_MS, dropAfter = null } = {}) {
    let i = 0;
    let timer = null;
    let closed = false;
    res.on('close', () => {
        closed = true;
        clearTimeout(timer);
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const step = () => {
        if (closed) return;
        if (dropAfter !== null && i >= dropAfter) {
            if (res.socket) res.socket.destroy();
            return;
        }
        const line = lines[i++];
        res.write(typeof line === 'function' ? line() : line);
        if (i >= lines.length) {
            res.end();
            return;
        }
        timer = setTimeout(step, gap);
    };
    step();
}

/* Answers a non-stream body, honouring the body-level faults. */
function sendReply(res, fault, reply) {
    const type = { 'content-type': 'application/json; charset=utf-8' };
    if (fault === 'drop-mid-stream') {
        // Announce the whole body, send half of it, then vanish.
        const s = JSON.stringify(reply);
        res.writeHead(200, { ...type, 'content-length': Buffer.byteLength(s) });
        res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
        return;
    }
    if (fault === 'bad-event') {
        const s = JSON.stringify(reply).slice(0, 20);
        res.writeHead(200, { ...type, 'content-length': Buffer.byteLength(s) });
        res.end(s);
        return;
    }
    if (fault === 'slow-stream') {
        const t = setTimeout(() => sendJSON(res, 200, reply), SLOW_GAP_MS * SLOW_EVENTS);
        res.on('close', () => clearTimeout(t));
        return;
    }
    sendJSON(res, 200, reply);
}

/* The error replies chat and embed share; true if one was sent. */
function sendFaultError(res, model, fault) {
    if (/^(missing|not-found)/.test(model)) {
        sendError(res, 404, `model "${model}" not found, try pulling it first`);
        return true;
    }
    switch (fault) {
    case 'fault-500':
        sendError(res, 500, 'llama runner process has terminated: exit status 2 (fake upstream fault-500)');
        return true;
    case 'fault-429':
        sendError(res, 429, 'too many requests: rate limit of the fake upstream exceeded (fault-429), retry in 7s',
            { 'retry-after': '7' });
        return true;
    case 'fault-400':
        sendError(res, 400, 'invalid message format: rejected by the fake upstream (fault-400)');
        return true;
    case 'overloaded':
        sendError(res, 503, 'server busy, please try again.  maximum pending requests exceeded');
        return true;
    case 'context-too-long':
        sendError(res, 400, 'the input length exceeds the context length');
        return true;
    default:
        return false;
    }
}

function durations(promptTokens, evalTokens) {
    // Nanoseconds, like Ollama; made up but self-consistent.
    const promptNs = 1000000 + promptTokens * 250000;
    const evalNs = 2000000 + evalTokens * 20000000;
    const loadNs = 15000000;
    return {
        total_duration: loadNs + promptNs + evalNs + 500000,
        load_duration: loadNs,
        prompt_eval_count: promptTokens,
        prompt_eval_duration: promptNs,
        eval_count: evalTokens,
        eval_duration: evalNs,
    };
}

export function handle(ctx) {
    const { req, res, url, raw, entry, apiKey } = ctx;
    const route = ROUTES[`${req.method} ${url.pathname}`];
    const header = req.headers.authorization;
    entry.auth_ok = header === undefined || apiKey === null || header === `Bearer ${apiKey}`;
    if (!entry.auth_ok) {
        sendError(res, 401, 'unauthorized');
        return;
    }
    if (route === 'version') {
        sendJSON(res, 200, { version: VERSION });
        return;
    }
    if (route === 'tags') {
        sendJSON(res, 200, { models: ['llama3.2:latest', 'llava:latest', 'nomic-embed-text:latest'].map(tagEntry) });
        return;
    }
    let body;
    try {
        body = JSON.parse(raw);
    } catch (e) {
        sendError(res, 400, raw.trim() === '' ? 'EOF' : `invalid character in request body: ${e.message}`);
        return;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        sendError(res, 400, 'json: cannot unmarshal request body into Go value of type api.ChatRequest');
        return;
    }
    entry.body = body;
    if (typeof body.model === 'string') entry.model = body.model;
    entry.stream = route === 'chat' && body.stream !== false;
    if (typeof body.model !== 'string' || body.model === '') {
        sendError(res, 400, 'model is required');
        return;
    }
    const fault = FAULTS.has(body.model) ? body.model : null;
    if (fault === 'hang') return; // the 'close' handler in openai.mjs records when the client gives up
    if (sendFaultError(res, body.model, fault)) return;
    if (route === 'chat') chat(res, body, fault);
    else if (route === 'embed') embed(res, body, fault);
    else legacyEmbeddings(res, body, fault);
}

function tagEntry(name, i) {
    const family = name.startsWith('nomic') ? 'nomic-bert' : 'llama';
    return {
        name,
        model: name,
        modified_at: '2025-01-01T00:00:00.000000000Z',
        size: 2019393189 + i,
        digest: `a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b7${i}`,
        details: {
            parent_model: '', format: 'gguf', family, families: [family],
            parameter_size: '3.2B', quantization_level: 'Q4_K_M',
        },
    };
}

function embed(res, body, fault) {
    let input = body.input;
    if (input === undefined || input === null) input = [];
    if (typeof input === 'string') input = [input];
    if (!Array.isArray(input) || !input.every((x) => typeof x === 'string')) {
        sendError(res, 400, 'invalid input type');
        return;
    }
    const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : 8;
    const tokens = input.reduce((n, t) => n + Math.max(1, countWords(t)), 0);
    const d = durations(tokens, 0);
    sendReply(res, fault, {
        model: body.model,
        embeddings: input.map((t) => fakeEmbedding(t, dims)),
        total_duration: d.total_duration,
        load_duration: d.load_duration,
        prompt_eval_count: tokens,
    });
}

function legacyEmbeddings(res, body, fault) {
    if (typeof body.prompt !== 'string') {
        sendError(res, 400, 'prompt is required');
        return;
    }
    sendReply(res, fault, { embedding: fakeEmbedding(body.prompt, 8) });
}

function chat(res, body, fault) {
    const messages = body.messages === undefined || body.messages === null ? [] : body.messages;
    if (!Array.isArray(messages) || !messages.every((m) => m && typeof m === 'object')) {
        sendError(res, 400, 'json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message');
        return;
    }
    const created = () => new Date().toISOString();
    if (messages.length === 0) {
        // Ollama answers an empty conversation by loading the model.
        sendJSON(res, 200, { model: body.model, created_at: created(),
            message: { role: 'assistant', content: '' }, done_reason: 'load', done: true });
        return;
    }
    const n = ++counter;
    const { user, toolResult } = lastTurn(messages);
    const userText = textOf(user);
    let images = '';
    for (const img of (user && Array.isArray(user.images) ? user.images : [])) {
        if (!isBase64(img)) {
            sendError(res, 400, 'illegal base64 data at input byte 0');
            return;
        }
        const buf = Buffer.from(img, 'base64');
        images += ` [image ${sniffMime(buf)} ${buf.length}]`;
    }
    const jsonMode = body.format === 'json' || (body.format !== null && typeof body.format === 'object');
    const tools = Array.isArray(body.tools) ? body.tools : [];
    const options = body.options && typeof body.options === 'object' ? body.options : {};

    let text;
    if (fault === 'content-filter') text = REFUSAL;
    else if (toolResult) text = jsonMode ? JSON.stringify({ echo: `tool result: ${textOf(toolResult)}` }) : `Echo: tool result: ${textOf(toolResult)}`;
    else text = jsonMode ? JSON.stringify({ echo: userText }) : `Echo: ${userText}${images}`;
    let doneReason = 'stop';
    let pieces = splitWords(text);
    if (Number.isInteger(options.num_predict) && options.num_predict >= 0 && pieces.length > options.num_predict) {
        pieces = pieces.slice(0, options.num_predict);
        text = pieces.join('');
        doneReason = 'length';
    }
    let toolCall = null;
    if (!toolResult && fault !== 'content-filter' && tools.length > 0 && /call tool/i.test(userText)) {
        const t = tools.find((x) => x && x.function && typeof x.function.name === 'string');
        toolCall = {
            id: `call_fake${n}`,
            function: { index: 0, name: t ? t.function.name : 'unknown_tool', arguments: { text: userText } },
        };
    }
    const thinking = body.think && body.think !== 'none' ? `The user wants their words echoed back: ${userText}` : '';

    const promptTokens = messages.reduce((acc, m) => acc + 3 + countWords(textOf(m)), 0);
    const evalTokens = toolCall ? countWords(JSON.stringify(toolCall.function.arguments)) + 1 : countWords(text);
    const stats = durations(promptTokens, evalTokens);
    const base = (message) => ({ model: body.model, created_at: created(), message, done: false });

    if (body.stream === false) {
        if (fault === 'stream-error') {
            sendError(res, 500, 'an error was encountered while running the model: fake upstream stream-error');
            return;
        }
        const message = { role: 'assistant', content: toolCall ? '' : text };
        if (thinking) message.thinking = thinking;
        if (toolCall) message.tool_calls = [toolCall];
        sendReply(res, fault, { model: body.model, created_at: created(), message, done_reason: doneReason, done: true, ...stats });
        return;
    }

    // Lines are built when sent, so created_at advances like Ollama's.
    const makers = [];
    if (thinking) {
        for (const w of splitWords(thinking)) makers.push(() => base({ role: 'assistant', content: '', thinking: w }));
    }
    if (toolCall) {
        makers.push(() => base({ role: 'assistant', content: '', tool_calls: [toolCall] }));
    } else {
        for (const p of pieces) makers.push(() => base({ role: 'assistant', content: p }));
    }
    if (fault === 'slow-stream') {
        // Pad with empty chunks so the stream lasts about 3 s whatever the text.
        while (makers.length < SLOW_EVENTS - 1) makers.push(() => base({ role: 'assistant', content: '' }));
    }
    makers.push(() => ({ model: body.model, created_at: created(), message: { role: 'assistant', content: '' },
        done: true, done_reason: doneReason, ...stats }));
    let lines = makers.map((make) => () => `${JSON.stringify(make())}\n`);
    if (fault === 'bad-event') lines[1] = `{"model":"${body.model}","created_at":"${created()}","message":{"role":\n`;
    if (fault === 'stream-error') {
        lines = lines.slice(0, 2);
        lines.push(`${JSON.stringify({ error: 'an error was encountered while running the model: fake upstream stream-error' })}\n`);
    }
    streamLines(res, lines, {
        gap: fault === 'slow-stream' ? SLOW_GAP_MS : EVENT_GAP_MS,
        dropAfter: fault === 'drop-mid-stream' ? 2 : null,
    });
}
