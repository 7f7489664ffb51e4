// OpenAI's wire format for the routes other than chat, embeddings and models
// (those stay in ../openai.mjs), loaded by tests/fakes/openai.mjs. Every route
// answers with and without the /v1 prefix.
//
//   POST   /v1/responses                      the Responses API, JSON or SSE
//   GET    /v1/responses/{id}                 a stored response
//   DELETE /v1/responses/{id}                 {id, object: "response", deleted: true}
//   GET    /v1/responses/{id}/input_items     {object: "list", data, first_id, last_id, has_more}
//   POST   /v1/completions                    legacy text completions, JSON or SSE
//   POST   /v1/rerank, POST /rerank           the Cohere-compatible rerank vLLM,
//                                             Jina and others serve
//   POST   /v1/moderations                    a moderation object
//   POST   /v1/images/generations             images (a tiny PNG) as b64_json or url
//   GET    /v1/fake-images/{name}.png         what those urls point at (no auth,
//                                             like a signed blob URL)
//   POST   /v1/audio/speech                   binary audio, chunked over time
//   POST   /v1/audio/transcriptions           multipart upload -> a transcript
//   POST   /v1/audio/translations             the same, as a translation
// Other methods on these paths: 405; other paths under /v1/responses/: 404.
//
// Auth, logging and errors as the chat routes: "Authorization: Bearer KEY"
// must match --api-key when the fake has one (401 invalid_api_key
// otherwise); the log entry gets model, stream, body (JSON bodies up to 64 KiB;
// for multipart the fields and a summary of the file) and auth_ok; errors are
// {"error": {message, type, param, code}} with OpenAI's wording where known.
// Unknown body fields are accepted (unlike the real API).
//
// Faults, by the body's model (parseFault of ../openai.mjs), on every POST
// route: fault-500, fault-429 (retry-after: 7), fault-400, context-too-long,
// content-filter, empty-NNN, hang as on the chat route; slow-first-byte[-MS]
// (the answer after MS ms), slow-stream[-MS] (SSE and audio: one event or
// chunk every MS (300) ms; JSON: the answer after ~3 s), drop-mid-stream (two
// events or chunks, or half the JSON body, then the socket is destroyed);
// echo-body makes the Responses, completions answer text the raw body.
//
// Responses (POST /v1/responses):
//   Validation (400, OpenAI's messages, param set): model required; input a
//   string or an array of items, required unless previous_response_id,
//   prompt or conversation is given. Items: messages ({role, content}, type
//   "message" optional) with role user, assistant, system or developer and
//   content a string or parts (input_text, input_image, input_file,
//   input_audio; assistant: output_text, refusal); function_call (call_id,
//   name, arguments strings); function_call_output (call_id, output) whose
//   call_id must match an earlier function_call in input unless
//   previous_response_id is given ("No tool call found for function call
//   output with call_id ..."); reasoning, item_reference and the built-in
//   tools' call/output items are accepted; any other type is an invalid
//   value. tools: an array of objects with a string type (function tools
//   need a name); a tool_choice naming a function must name one of them.
//   text.format: text, json_object (the input must mention "json"), or
//   json_schema (name and schema required). previous_response_id must name
//   a response the fake made and kept (store not false): else 400 "Previous
//   response with id '...' not found." (code previous_response_not_found);
//   with a known id the earlier conversation counts toward input_tokens.
//   Replies: "Echo: " + the last user message's text (over the earlier
//   conversation too), plus " [image-url <url>]" / " [image <mime> <bytes>]"
//   per input_image and " [file <name> <bytes>]" per input_file part. If the
//   input ends with function_call_output items (or custom_tool_call_output)
//   the text is "Echo: tool result: " + the first of them's output, and no
//   tool is called. Otherwise, with function tools, tool_choice not "none"
//   and "call tool" in the last user text, the output is one function_call
//   item (id "fc_...", call_id "call_...", status "completed"; name: the
//   tool_choice's function, else the first function tool; arguments:
//   toolArguments() of ../openai.mjs, i.e. {"text": ...} or the run `CMD`
//   command convention). text.format json_schema or json_object answers
//   JSON.stringify({echo: <text after "Echo: ">}). max_output_tokens below
//   the word count cuts the words: status "incomplete", incomplete_details
//   {reason: "max_output_tokens"}, the message's status "incomplete".
//   reasoning.effort (other than "none") puts a reasoning item first
//   ({id: "rs_...", type: "reasoning", summary: []}, plus encrypted_content
//   when include has "reasoning.encrypted_content") and counts the words of
//   "Thinking about: <last user text>" as output_tokens_details
//   .reasoning_tokens (part of output_tokens). Usage: input_tokens = sum over
//   the conversation's items (and instructions) of 3 + words; cached_tokens 2
//   when the model name contains "cached"; output_tokens = answer words (a
//   function call: words of its arguments + 1) + reasoning tokens. The
//   response object carries OpenAI's fields (request settings echoed, their
//   defaults otherwise; no output_text, which the SDK adds). Responses are
//   kept in memory (the latest 1000; /__control/reset keeps them) unless
//   store is false.
//   Streaming ("stream": true): "event: <type>" + "data: <json>" per event,
//   each with type and sequence_number counting from 0, one write each:
//   response.created, response.in_progress (status in_progress, no output),
//   [reasoning: response.output_item.added, response.output_item.done],
//   then for a message response.output_item.added, response.content_part
//   .added, response.output_text.delta (one per word, with logprobs [] and an
//   obfuscation string unless stream_options.include_obfuscation is false),
//   response.output_text.done, response.content_part.done,
//   response.output_item.done; for a function call response.output_item
//   .added (arguments ""), response.function_call_arguments.delta (8
//   characters each), response.function_call_arguments.done,
//   response.output_item.done; and last response.completed (or
//   response.incomplete) with the full response. No [DONE] line.
//   GET /v1/responses/{id}: the stored response (404 "Response with id '...'
//   not found." otherwise); DELETE removes it; input_items lists its input
//   items (each with an id) newest first unless ?order=asc.
//
// Legacy completions (POST /v1/completions): prompt a string, an array of
// strings, a token array or an array of token arrays (400 otherwise or when
// missing). Each prompt's text is "Echo: " + the prompt (a token array reads
// as its numbers joined by spaces), with " [before <suffix>]" appended when
// suffix is set; echo: true puts the prompt in front; stop (a string or up to
// 4) cuts the text at the first occurrence; max_tokens (default 16, like
// OpenAI) cuts the words (finish_reason "length", else "stop"); n choices per
// prompt (index = prompt * n + k); logprobs N gives a logprobs object per
// choice (tokens = the words). Usage: prompt words (token count for token
// arrays) and answer words, summed. Streaming: one "text_completion" chunk
// per word, a chunk with "" and the finish_reason per choice, a usage chunk
// (choices []) when stream_options.include_usage, then data: [DONE].
//
// Rerank (POST /v1/rerank, /rerank): {model, query, documents (strings or
// objects with text), top_n, return_documents} -> {id, model, usage:
// {total_tokens}, results: [{index, relevance_score, document: {text}}],
// meta: {api_version: {version: "1"}, billed_units: {search_units}}}: the
// results best first by rerankOrder() of ../openai.mjs (the share of the
// query's words in the document, ties by index), top_n of them; document is
// left out when return_documents is false (and is the object as sent for
// object documents). The meta block makes the same answer Cohere's v1 rerank
// (cohere-ai's CohereClient.rerank posts to /v1/rerank, so this route is
// the Cohere fake's v1 rerank too); total_tokens = query words + document
// words.
//
// Moderations (POST /v1/moderations): input a string, an array of strings
// (one result each) or an array of {type: "text", text} / {type:
// "image_url", image_url: {url}} parts (one result for all) -> {id: "modr-...",
// model, results: [{flagged, categories, category_scores,
// category_applied_input_types}]} with all 13 of OpenAI's categories; a text
// with the word "kill" is flagged as violence (score 0.9).
//
// Images (POST /v1/images/generations): prompt required; n 1-10 (dall-e-3:
// 1); size "WxH" or "auto"; response_format "url" (the default for dall-e
// models) or "b64_json". Each image is the same 1x1 PNG; dall-e models add a
// revised_prompt "A picture of: <prompt>". gpt-image models always answer
// b64_json, with usage {input_tokens, input_tokens_details, output_tokens,
// total_tokens} and background/output_format/quality/size.
//
// Speech (POST /v1/audio/speech): model, input (at most 4096 characters) and
// voice required; response_format mp3 (default), opus, aac, flac, wav or pcm;
// speed 0.25-4. The body is SPEECH_BYTES_PER_CHAR bytes per input character
// (wav: plus its 44-byte header), starting with the format's magic bytes
// (pcm and wav: a 24 kHz 16-bit mono sine), sent without content-length in
// SPEECH_CHUNKS writes SPEECH_GAP_MS apart, content-type audio/mpeg,
// audio/opus, audio/aac, audio/flac, audio/wav or audio/pcm. stream_format
// "sse" sends the same bytes as speech.audio.delta events (base64) and a
// speech.audio.done event with usage instead.
//
// Transcriptions (POST /v1/audio/transcriptions; translations alike):
// multipart/form-data (parsed here) with file and model required (400
// otherwise, or when the body is not multipart, or the file name's extension
// is not an audio one OpenAI takes). The text is "Transcribed <N> bytes of
// <filename> (sha256 <first 16 hex digits>)" ("Translated ..." for
// translations). response_format json (default: {text, usage}), text
// (text/plain), srt, vtt, verbose_json ({task, language, duration, text,
// segments, words when timestamp_granularities[] has "word", usage});
// gpt-4o transcribe models take json and text only, and stream=true sends
// transcript.text.delta events (one per word) and transcript.text.done.
// Usage: whisper-1 {type: "duration", seconds}; others {type: "tokens",
// input_tokens, input_token_details, output_tokens, total_tokens}. The
// duration is the file size / 16000 seconds.

import crypto from 'node:crypto';
import { toolArguments, rerankOrder } from '../openai.mjs';

const SLOW_STREAM_GAP_MS = 300;
const SLOW_JSON_MS = 3000;
const STORE_LIMIT = 1000;
const SPEECH_BYTES_PER_CHAR = 200;
const SPEECH_CHUNKS = 4;
const SPEECH_GAP_MS = 100;
const SPEECH_RATE = 24000;
const MAX_SPEECH_CHARS = 4096;

/* A 1x1 RGBA PNG. */
const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const PLAIN_ROUTES = ['/completions', '/rerank', '/moderations', '/images/generations', '/audio/speech',
    '/audio/transcriptions', '/audio/translations'];
const RESPONSE_ID_RE = /^\/responses\/([^/]+)(\/input_items)?$/;
const IMAGE_FILE_RE = /^\/fake-images\/([A-Za-z0-9_-]+)\.png$/;

/* The path without its /v1 prefix. */
const bare = (pathname) => pathname.replace(/^\/v1(?=\/)/, '');

export function matches(method, pathname) {
    const p = bare(pathname);
    return p === '/responses' || p.startsWith('/responses/') || PLAIN_ROUTES.includes(p) || IMAGE_FILE_RE.test(p);
}

/* ---------- small helpers ---------- */

let counter = 0;

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/* Words with their trailing whitespace: joining the pieces gives the text back. */
function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (String(text).match(/\S+/g) || []).length;
}

/* "resp_" + 48 hex digits, as OpenAI's ids look. */
function hexId(prefix) {
    return `${prefix}${crypto.randomBytes(24).toString('hex')}`;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function base62Id(prefix, length = 24) {
    let s = '';
    for (const b of crypto.randomBytes(length)) s += BASE62[b % 62];
    return `${prefix}${s}`;
}

/* How a JSON value's type reads in OpenAI's "Invalid type" messages. */
function typeName(v) {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'an array';
    if (typeof v === 'object') return 'an object';
    if (typeof v === 'string') return 'a string';
    if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal';
    if (typeof v === 'boolean') return 'a boolean';
    return typeof v;
}

/* "'a', 'b', and 'c'" as OpenAI lists supported values. */
function oneOf(values) {
    const q = values.map((v) => `'${v}'`);
    return q.length <= 2 ? q.join(' and ') : `${q.slice(0, -1).join(', ')}, and ${q.at(-1)}`;
}

/* ---------- replies ---------- */

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

/* An error in OpenAI's shape: {"error": {message, type, param, code}}. */
function sendError(res, status, message, { type = 'invalid_request_error', param = null, code = null, headers = {} } = {}) {
    sendJSON(res, status, { error: { message, type, param, code } }, headers);
}

/* A validation problem: {message, param, code}, answered as a 400. */
const problem = (message, param = null, code = null) => ({ message, param, code });
const missing = (param) => problem(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
const invalidType = (param, expected, v) =>
    problem(`Invalid type for '${param}': expected ${expected}, but got ${typeName(v)} instead.`, param, 'invalid_type');
const invalidValue = (param, v, supported) =>
    problem(`Invalid value: '${v}'. Supported values are: ${oneOf(supported)}.`, param, 'invalid_value');

function sendProblem(res, p) {
    sendError(res, 400, p.message, { param: p.param, code: p.code });
}

const requestHeaders = () => ({ 'x-request-id': `req_fake_extra_${++counter}` });

/* The error faults, answered before anything else: true when one was. */
function errorFault(res, fault) {
    switch (fault.name) {
    case 'empty':
        res.writeHead(fault.arg || 503, { 'content-length': '0' });
        res.end();
        return true;
    case 'fault-500':
        sendError(res, 500, 'The server had an error while processing your request. (fake upstream fault-500)',
            { type: 'server_error' });
        return true;
    case 'fault-429':
        sendError(res, 429, 'Rate limit reached for fake upstream (fault-429). Please try again in 7s.',
            { type: 'rate_limit_error', code: 'rate_limit_exceeded', headers: { 'retry-after': '7' } });
        return true;
    case 'fault-400':
        sendError(res, 400, "Invalid value for 'input': rejected by the fake upstream (fault-400).",
            { param: 'input', code: 'invalid_value' });
        return true;
    case 'context-too-long':
        sendError(res, 400, 'Your input exceeds the context window of this model. Please adjust your input and try again.',
            { param: 'input', code: 'context_length_exceeded' });
        return true;
    case 'content-filter':
        sendError(res, 400, 'The response was filtered due to the prompt triggering the content management policy '
            + '(fake upstream content-filter).', { param: 'prompt', code: 'content_filter' });
        return true;
    case 'hang':
        // Keep the request open; the log records when the client gives up.
        return true;
    default:
        return false;
    }
}

/* A JSON answer, honouring the timing faults. */
function sendReply(res, fault, reply, headers = {}) {
    if (fault.name === 'drop-mid-stream') {
        // Announce the whole body, send half of it, then vanish.
        const s = JSON.stringify(reply);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
        res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
        return;
    }
    let delay = 0;
    if (fault.name === 'slow-first-byte') delay = fault.arg ?? 1500;
    if (fault.name === 'slow-stream') delay = fault.arg ? fault.arg * 10 : SLOW_JSON_MS;
    if (delay > 0) {
        const t = setTimeout(() => sendJSON(res, 200, reply, headers), delay);
        res.on('close', () => clearTimeout(t));
    } else {
        sendJSON(res, 200, reply, headers);
    }
}

/* Writes chunks (strings or Buffers) one per write, gap ms apart, with no
 * content-length (so chunked), honouring the timing faults. */
function streamOut(res, chunks, fault, { contentType = 'text/event-stream; charset=utf-8', headers = {}, gap = 0 } = {}) {
    const interval = fault.name === 'slow-stream' ? fault.arg ?? SLOW_STREAM_GAP_MS : gap;
    const firstDelay = fault.name === 'slow-first-byte' ? fault.arg ?? 1500 : 0;
    const dropAfter = fault.name === 'drop-mid-stream' ? 2 : null;
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
            const h = { 'content-type': contentType, ...headers };
            if (contentType.startsWith('text/event-stream')) h['cache-control'] = 'no-cache';
            res.writeHead(200, h);
        }
        if (dropAfter !== null && i >= dropAfter) {
            res.socket.destroy();
            return;
        }
        res.write(chunks[i++]);
        if (i >= chunks.length) {
            res.end();
            return;
        }
        timer = setTimeout(step, interval);
    };
    timer = setTimeout(step, firstDelay);
}

/* ---------- entry point ---------- */

export function handle(ctx) {
    const { req, res, url, raw, entry, apiKey, helpers } = ctx;
    const p = bare(url.pathname);

    // The PNGs behind image urls need no key, like a signed blob URL.
    const img = IMAGE_FILE_RE.exec(p);
    if (img) {
        if (req.method !== 'GET') return methodNotAllowed(res, req);
        const png = Buffer.from(PNG_BASE64, 'base64');
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
        res.end(png);
        return;
    }

    const multipart = /^multipart\/form-data/i.test(req.headers['content-type'] || '');
    let body = null;
    let parseError = null;
    if (!multipart && raw !== '') {
        try {
            body = JSON.parse(raw);
        } catch (e) {
            parseError = e;
        }
    }
    if (isObject(body)) {
        if (typeof body.model === 'string') entry.model = body.model;
        // Small bodies are kept for tests to inspect (big ones would bloat the log).
        if (raw.length <= 65536) entry.body = body;
        entry.stream = body.stream === true;
    }

    entry.auth_ok = apiKey === null ? null : req.headers.authorization === `Bearer ${apiKey}`;
    if (apiKey !== null && !entry.auth_ok) {
        sendError(res, 401, entry.had_auth
            ? 'Incorrect API key provided. You can find your API key at the fake upstream.'
            : "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                + 'Bearer auth (i.e. Authorization: Bearer YOUR_KEY).', { code: 'invalid_api_key' });
        return;
    }

    // The stored-response routes.
    const m = RESPONSE_ID_RE.exec(p);
    if (m) return storedResponse(req, res, url, decodeURIComponent(m[1]), !!m[2]);
    if (p.startsWith('/responses/')) {
        sendError(res, 404, `Invalid URL (${req.method} ${url.pathname})`);
        return;
    }
    if (req.method !== 'POST') return methodNotAllowed(res, req);

    if (p === '/audio/transcriptions' || p === '/audio/translations') {
        return transcribe(ctx, p === '/audio/translations');
    }
    if (parseError) {
        sendError(res, 400, `We could not parse the JSON body of your request. (${parseError.message})`);
        return;
    }
    if (!isObject(body)) {
        sendError(res, 400, 'The request body must be a JSON object.');
        return;
    }
    const fault = helpers.parseFault(body.model);
    switch (p) {
    case '/responses': return responses(ctx, body, fault);
    case '/completions': return completions(ctx, body, fault);
    case '/rerank': return rerank(ctx, body, fault);
    case '/moderations': return moderations(ctx, body, fault);
    case '/images/generations': return images(ctx, body, fault);
    default: return speech(ctx, body, fault);
    }
}

function methodNotAllowed(res, req) {
    sendError(res, 405, `Method ${req.method} not allowed.`);
}

/* The model check the JSON routes share: a 400 sent (true) when it is missing. */
function needsModel(res, body, wording = 'you must provide a model parameter') {
    if (typeof body.model === 'string' && body.model !== '') return false;
    sendError(res, 400, wording,
        { param: 'model', code: wording.startsWith('Missing') ? 'missing_required_parameter' : null });
    return true;
}

/* ================= Responses ================= */

// Responses the fake made, by id: {response, history (every item of the
// conversation so far, input and output), inputItems}. Insertion ordered.
const stored = new Map();

const INPUT_ROLES = ['user', 'assistant', 'system', 'developer'];
const INPUT_PARTS = ['input_text', 'input_image', 'input_file', 'input_audio'];
const ASSISTANT_PARTS = ['output_text', 'refusal'];
// The item types the real API takes besides messages.
const ITEM_TYPES = ['message', 'function_call', 'function_call_output', 'reasoning', 'item_reference',
    'custom_tool_call', 'custom_tool_call_output', 'local_shell_call', 'local_shell_call_output',
    'shell_call', 'shell_call_output', 'apply_patch_call', 'apply_patch_call_output', 'computer_call',
    'computer_call_output', 'file_search_call', 'web_search_call', 'image_generation_call',
    'code_interpreter_call', 'mcp_list_tools', 'mcp_approval_request', 'mcp_approval_response', 'mcp_call'];
const TOOL_OUTPUT_TYPES = ['function_call_output', 'custom_tool_call_output'];

/* The input as items: a string is one user message. */
function inputItems(input) {
    if (input === undefined || input === null) return [];
    if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
    return input;
}

const isMessage = (item) => item.type === 'message' || (item.type === undefined && 'role' in item);

/* The first problem with a Responses request body, or null. */
function validateResponses(body) {
    if (!('model' in body)) return missing('model');
    if (typeof body.model !== 'string') return invalidType('model', 'a string', body.model);
    const input = body.input;
    if (input === undefined || input === null) {
        if (body.previous_response_id === undefined && body.prompt === undefined && body.conversation === undefined) {
            return missing('input');
        }
    } else if (typeof input !== 'string' && !Array.isArray(input)) {
        return invalidType('input', 'one of a string or array of input items', input);
    }
    if (body.previous_response_id !== undefined && body.previous_response_id !== null &&
        typeof body.previous_response_id !== 'string') {
        return invalidType('previous_response_id', 'a string', body.previous_response_id);
    }
    const calls = new Set();
    const items = inputItems(input);
    for (let i = 0; i < items.length; i++) {
        const err = validateItem(items[i], `input[${i}]`, calls, body.previous_response_id);
        if (err) return err;
    }
    if ('stream' in body && body.stream !== null && typeof body.stream !== 'boolean') {
        return invalidType('stream', 'a boolean', body.stream);
    }
    if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) {
        if (!Number.isInteger(body.max_output_tokens)) {
            return invalidType('max_output_tokens', 'an integer', body.max_output_tokens);
        }
        if (body.max_output_tokens < 0) {
            return problem("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 0, but "
                + `got ${body.max_output_tokens} instead.`, 'max_output_tokens', 'integer_below_min_value');
        }
    }
    for (const [k, max] of [['temperature', 2], ['top_p', 1]]) {
        const v = body[k];
        if (v === undefined || v === null) continue;
        if (typeof v !== 'number') return invalidType(k, 'a number', v);
        if (v < 0 || v > max) {
            return problem(`Invalid '${k}': decimal ${v < 0 ? 'below minimum' : 'above maximum'} value. Expected a `
                + `value ${v < 0 ? '>= 0' : `<= ${max}`}, but got ${v} instead.`, k,
            v < 0 ? 'decimal_below_min_value' : 'decimal_above_max_value');
        }
    }
    const tools = validateTools(body);
    if (tools) return tools;
    if (body.reasoning !== undefined && body.reasoning !== null && !isObject(body.reasoning)) {
        return invalidType('reasoning', 'an object', body.reasoning);
    }
    return validateTextFormat(body);
}

function validateItem(item, where, calls, previousId) {
    if (!isObject(item)) return invalidType(where, 'an input item object', item);
    if (isMessage(item)) {
        if (!('role' in item)) return missing(`${where}.role`);
        if (!INPUT_ROLES.includes(item.role)) {
            return invalidValue(`${where}.role`, item.role, ['assistant', 'system', 'developer', 'user']);
        }
        if (!('content' in item)) return missing(`${where}.content`);
        const c = item.content;
        if (typeof c === 'string') return null;
        if (!Array.isArray(c)) return invalidType(`${where}.content`, 'one of a string or array of input content parts', c);
        const allowed = item.role === 'assistant' ? ASSISTANT_PARTS : INPUT_PARTS;
        for (let j = 0; j < c.length; j++) {
            const part = c[j];
            const pw = `${where}.content[${j}]`;
            if (!isObject(part)) return invalidType(pw, 'an object', part);
            if (!allowed.includes(part.type)) return invalidValue(`${pw}.type`, part.type, allowed);
            if ((part.type === 'input_text' || part.type === 'output_text') && typeof part.text !== 'string') {
                return missing(`${pw}.text`);
            }
            if (part.type === 'input_image' && typeof part.image_url !== 'string' && typeof part.file_id !== 'string') {
                return problem(`Missing required parameter: '${pw}.image_url'. Provide either image_url or file_id.`,
                    `${pw}.image_url`, 'missing_required_parameter');
            }
        }
        return null;
    }
    if (typeof item.type !== 'string') return missing(`${where}.type`);
    if (!ITEM_TYPES.includes(item.type)) return invalidValue(`${where}.type`, item.type, ITEM_TYPES);
    if (item.type === 'function_call' || item.type === 'custom_tool_call') {
        for (const k of ['call_id', 'name']) if (typeof item[k] !== 'string') return missing(`${where}.${k}`);
        const k = item.type === 'function_call' ? 'arguments' : 'input';
        if (typeof item[k] !== 'string') return missing(`${where}.${k}`);
        calls.add(item.call_id);
    }
    if (TOOL_OUTPUT_TYPES.includes(item.type)) {
        if (typeof item.call_id !== 'string') return missing(`${where}.call_id`);
        if (!('output' in item)) return missing(`${where}.output`);
        if (typeof item.output !== 'string' && !Array.isArray(item.output)) {
            return invalidType(`${where}.output`, 'one of a string or array of content parts', item.output);
        }
        // Without an earlier conversation the matching call must be in this input.
        if (!previousId && !calls.has(item.call_id)) {
            return problem(`No tool call found for function call output with call_id ${item.call_id}.`, 'input');
        }
    }
    return null;
}

function validateTools(body) {
    if (body.tools !== undefined && body.tools !== null) {
        if (!Array.isArray(body.tools)) return invalidType('tools', 'an array of tool objects', body.tools);
        for (let i = 0; i < body.tools.length; i++) {
            const t = body.tools[i];
            if (!isObject(t)) return invalidType(`tools[${i}]`, 'an object', t);
            if (!('type' in t)) return missing(`tools[${i}].type`);
            if (typeof t.type !== 'string') return invalidType(`tools[${i}].type`, 'a string', t.type);
            if ((t.type === 'function' || t.type === 'custom') && typeof t.name !== 'string') {
                return missing(`tools[${i}].name`);
            }
        }
    }
    const tc = body.tool_choice;
    if (tc === undefined || tc === null) return null;
    if (typeof tc === 'string') {
        const modes = ['none', 'auto', 'required'];
        return modes.includes(tc) ? null : invalidValue('tool_choice', tc, modes);
    }
    if (!isObject(tc)) return invalidType('tool_choice', 'one of a string or object', tc);
    if (typeof tc.type !== 'string') return missing('tool_choice.type');
    if (tc.type === 'function') {
        if (typeof tc.name !== 'string') return missing('tool_choice.name');
        const tools = Array.isArray(body.tools) ? body.tools : [];
        if (!tools.some((t) => t.type === 'function' && t.name === tc.name)) {
            return problem(`Tool choice 'function' not found in 'tools' parameter.`, 'tool_choice');
        }
    }
    return null;
}

function validateTextFormat(body) {
    if (body.text === undefined || body.text === null) return null;
    if (!isObject(body.text)) return invalidType('text', 'an object', body.text);
    const f = body.text.format;
    if (f === undefined || f === null) return null;
    if (!isObject(f)) return invalidType('text.format', 'an object', f);
    if (!['text', 'json_object', 'json_schema'].includes(f.type)) {
        return invalidValue('text.format.type', f.type, ['text', 'json_object', 'json_schema']);
    }
    if (f.type === 'json_schema') {
        if (typeof f.name !== 'string') return missing('text.format.name');
        if (!isObject(f.schema)) return missing('text.format.schema');
    }
    if (f.type === 'json_object') {
        const all = [body.instructions, ...inputItems(body.input).map(itemText)].join(' ');
        if (!/json/i.test(all)) {
            return problem("Response input messages must contain the word 'json' in some form to use 'text.format' "
                + "of type 'json_object'.", 'input');
        }
    }
    return null;
}

/* The text of message content: a string, or its text parts joined. */
function partsText(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content.filter((p) => isObject(p) && typeof p.text === 'string').map((p) => p.text).join('');
}

/* The words an item counts for. */
function itemText(item) {
    if (typeof item === 'string') return item;
    if (!isObject(item)) return '';
    if (isMessage(item)) return partsText(item.content);
    if (item.type === 'function_call') return item.arguments || '';
    if (TOOL_OUTPUT_TYPES.includes(item.type)) return partsText(item.output);
    return '';
}

/* " [image ...]" / " [file ...]" notes for a user message's media parts. */
function mediaNotes(content) {
    if (!Array.isArray(content)) return '';
    let s = '';
    for (const p of content) {
        if (!isObject(p)) continue;
        if (p.type === 'input_image') {
            const d = typeof p.image_url === 'string' ? /^data:([^;,]+);base64,(.*)$/s.exec(p.image_url) : null;
            if (d) s += ` [image ${d[1]} ${Buffer.from(d[2], 'base64').length}]`;
            else s += ` [image-url ${p.image_url ?? `file:${p.file_id}`}]`;
        } else if (p.type === 'input_file') {
            const d = typeof p.file_data === 'string' ? /^(?:data:[^,]*;base64,)?(.*)$/s.exec(p.file_data) : null;
            const name = p.filename ?? p.file_id ?? p.file_url ?? 'file';
            s += d ? ` [file ${name} ${Buffer.from(d[1], 'base64').length}]` : ` [file ${name}]`;
        }
    }
    return s;
}

function tokensOf(items) {
    let n = 0;
    for (const it of items) n += 3 + countWords(itemText(it));
    return n;
}

/* The tools as the response echoes them: function tools with their defaults. */
function echoTools(tools) {
    if (!Array.isArray(tools)) return [];
    return tools.map((t) => (t.type === 'function'
        ? { type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null,
            strict: t.strict ?? true, ...t }
        : t));
}

/* Everything about a reply, shared by the JSON and the SSE forms. */
function planResponse(body, raw, fault) {
    const prev = body.previous_response_id ? stored.get(body.previous_response_id) : null;
    const items = inputItems(body.input);
    const history = [...(prev ? prev.history : []), ...items];
    let lastUser = null;
    for (let i = history.length - 1; i >= 0 && !lastUser; i--) {
        if (isObject(history[i]) && isMessage(history[i]) && history[i].role === 'user') lastUser = history[i];
    }
    const userText = lastUser ? partsText(lastUser.content) : '';
    // The tool outputs that end the input: a tool round trip.
    let toolOutput = null;
    for (let i = items.length - 1; i >= 0 && TOOL_OUTPUT_TYPES.includes(items[i].type); i--) toolOutput = items[i];

    const plan = {
        id: hexId('resp_'),
        createdAt: Math.floor(Date.now() / 1000),
        items,
        history,
        reasoning: null,
        call: null,
        text: null,
        pieces: [],
        incomplete: false,
    };
    const effort = isObject(body.reasoning) ? body.reasoning.effort : null;
    let reasoningTokens = 0;
    if (typeof effort === 'string' && effort !== 'none') {
        const thought = `Thinking about: ${userText}`;
        reasoningTokens = countWords(thought);
        plan.reasoning = { id: hexId('rs_'), type: 'reasoning', summary: [] };
        if (Array.isArray(body.include) && body.include.includes('reasoning.encrypted_content')) {
            plan.reasoning.encrypted_content = Buffer.from(`fake-reasoning:${thought}`).toString('base64');
        }
    }

    const fn = (Array.isArray(body.tools) ? body.tools : []).filter((t) => t.type === 'function');
    const tc = body.tool_choice;
    const tool = isObject(tc) && tc.type === 'function' ? fn.find((t) => t.name === tc.name) : fn[0];
    let outputTokens;
    if (fault.name !== 'echo-body' && !toolOutput && tool && tc !== 'none' && /call tool/i.test(userText)) {
        plan.call = {
            id: hexId('fc_'),
            type: 'function_call',
            status: 'completed',
            arguments: JSON.stringify(toolArguments(tool.parameters, userText)),
            call_id: base62Id('call_'),
            name: tool.name,
        };
        outputTokens = countWords(plan.call.arguments) + 1;
    } else {
        const format = isObject(body.text) && isObject(body.text.format) ? body.text.format.type : 'text';
        const said = toolOutput ? `tool result: ${partsText(toolOutput.output)}`
            : `${userText}${mediaNotes(lastUser && lastUser.content)}`;
        let text;
        if (fault.name === 'echo-body') text = raw;
        else if (format === 'json_schema' || format === 'json_object') {
            text = JSON.stringify({ echo: toolOutput ? said : userText });
        }
        else text = `Echo: ${said}`;
        let pieces = fault.name === 'echo-body' ? (text.match(/[\s\S]{1,40}/g) || []) : splitWords(text);
        const limit = body.max_output_tokens;
        if (Number.isInteger(limit) && pieces.length > limit) {
            pieces = pieces.slice(0, limit);
            plan.incomplete = true;
        }
        plan.pieces = pieces;
        plan.text = pieces.join('');
        outputTokens = countWords(plan.text);
    }
    const instructions = typeof body.instructions === 'string' ? 3 + countWords(body.instructions) : 0;
    const inputTokens = tokensOf(history) + instructions;
    plan.usage = {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: body.model.includes('cached') ? Math.min(2, inputTokens) : 0 },
        output_tokens: outputTokens + reasoningTokens,
        output_tokens_details: { reasoning_tokens: reasoningTokens },
        total_tokens: inputTokens + outputTokens + reasoningTokens,
    };
    plan.messageId = hexId('msg_');
    return plan;
}

/* The message output item of a plan, as finished. */
function messageItem(plan, text = plan.text, status = plan.incomplete ? 'incomplete' : 'completed') {
    const content = text === null ? [] : [{ type: 'output_text', annotations: [], logprobs: [], text }];
    return { id: plan.messageId, type: 'message', status, content, role: 'assistant' };
}

function outputOf(plan) {
    const out = [];
    if (plan.reasoning) out.push(plan.reasoning);
    out.push(plan.call ? plan.call : messageItem(plan));
    return out;
}

function responseObject(body, plan, { status, output, usage }) {
    const reasoning = isObject(body.reasoning) ? body.reasoning : {};
    const text = isObject(body.text) ? body.text : {};
    return {
        id: plan.id,
        object: 'response',
        created_at: plan.createdAt,
        status,
        background: body.background === true,
        error: null,
        incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
        instructions: body.instructions ?? null,
        max_output_tokens: body.max_output_tokens ?? null,
        max_tool_calls: body.max_tool_calls ?? null,
        model: body.model,
        output,
        parallel_tool_calls: body.parallel_tool_calls ?? true,
        previous_response_id: body.previous_response_id ?? null,
        prompt_cache_key: body.prompt_cache_key ?? null,
        reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
        safety_identifier: body.safety_identifier ?? null,
        service_tier: !body.service_tier || body.service_tier === 'auto' ? 'default' : body.service_tier,
        store: body.store !== false,
        temperature: body.temperature ?? 1,
        text: { format: text.format ?? { type: 'text' }, verbosity: text.verbosity ?? 'medium' },
        tool_choice: body.tool_choice ?? 'auto',
        tools: echoTools(body.tools),
        top_logprobs: body.top_logprobs ?? 0,
        top_p: body.top_p ?? 1,
        truncation: body.truncation ?? 'disabled',
        usage,
        user: body.user ?? null,
        metadata: body.metadata ?? {},
    };
}

/* Keeps a finished response for previous_response_id, GET and DELETE. */
function store(plan, response) {
    const inputs = plan.items.map((it) => (isObject(it) && typeof it.id === 'string' ? it
        : { id: hexId(isMessage(it) ? 'msg_' : 'item_'), ...(isMessage(it) ? { type: 'message' } : {}), ...it }));
    stored.set(plan.id, { response, history: [...plan.history, ...response.output], inputItems: inputs });
    while (stored.size > STORE_LIMIT) stored.delete(stored.keys().next().value);
}

function responses(ctx, body, fault) {
    const { res, raw } = ctx;
    const bad = validateResponses(body);
    if (bad) return sendProblem(res, bad);
    if (body.previous_response_id && !stored.has(body.previous_response_id)) {
        sendError(res, 400, `Previous response with id '${body.previous_response_id}' not found.`,
            { param: 'previous_response_id', code: 'previous_response_not_found' });
        return;
    }
    if (errorFault(res, fault)) return;
    const plan = planResponse(body, raw, fault);
    const final = responseObject(body, plan, {
        status: plan.incomplete ? 'incomplete' : 'completed', output: outputOf(plan), usage: plan.usage,
    });
    if (body.store !== false && fault.name !== 'drop-mid-stream') store(plan, final);
    if (body.stream === true) {
        const obfuscate = !(isObject(body.stream_options) && body.stream_options.include_obfuscation === false);
        streamOut(res, responseEvents(body, plan, final, obfuscate), fault, { headers: requestHeaders() });
    } else {
        sendReply(res, fault, final, requestHeaders());
    }
}

/* The SSE events of a response, in order, as strings. */
function responseEvents(body, plan, final, obfuscate) {
    const evs = [];
    const ev = (type, fields) => {
        const data = { type, sequence_number: evs.length, ...fields };
        evs.push(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // Random padding of the deltas, as OpenAI sends against side channels.
    const pad = (delta) => (obfuscate ? { obfuscation: base62Id('', Math.max(1, 16 - delta.length)) } : {});
    const start = responseObject(body, plan, { status: 'in_progress', output: [], usage: null });
    ev('response.created', { response: start });
    ev('response.in_progress', { response: start });
    let index = 0;
    if (plan.reasoning) {
        ev('response.output_item.added', { output_index: index, item: plan.reasoning });
        ev('response.output_item.done', { output_index: index, item: plan.reasoning });
        index++;
    }
    if (plan.call) {
        const c = plan.call;
        ev('response.output_item.added', { output_index: index, item: { ...c, status: 'in_progress', arguments: '' } });
        for (const frag of c.arguments.match(/[\s\S]{1,8}/g) || []) {
            ev('response.function_call_arguments.delta', { item_id: c.id, output_index: index, delta: frag, ...pad(frag) });
        }
        ev('response.function_call_arguments.done',
            { item_id: c.id, output_index: index, name: c.name, arguments: c.arguments });
        ev('response.output_item.done', { output_index: index, item: c });
    } else {
        const at = { item_id: plan.messageId, output_index: index, content_index: 0 };
        const part = (text) => ({ type: 'output_text', annotations: [], logprobs: [], text });
        ev('response.output_item.added', { output_index: index, item: messageItem(plan, null, 'in_progress') });
        ev('response.content_part.added', { ...at, part: part('') });
        for (const p of plan.pieces) ev('response.output_text.delta', { ...at, delta: p, logprobs: [], ...pad(p) });
        ev('response.output_text.done', { ...at, text: plan.text, logprobs: [] });
        ev('response.content_part.done', { ...at, part: part(plan.text) });
        ev('response.output_item.done', { output_index: index, item: messageItem(plan) });
    }
    ev(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
    return evs;
}

/* GET or DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items. */
function storedResponse(req, res, url, id, itemsRoute) {
    const allowed = itemsRoute ? ['GET'] : ['GET', 'DELETE'];
    if (!allowed.includes(req.method)) return methodNotAllowed(res, req);
    const s = stored.get(id);
    if (!s) {
        sendError(res, 404, `Response with id '${id}' not found.`);
        return;
    }
    if (itemsRoute) {
        const data = url.searchParams.get('order') === 'asc' ? [...s.inputItems] : [...s.inputItems].reverse();
        sendJSON(res, 200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null,
            has_more: false }, requestHeaders());
        return;
    }
    if (req.method === 'DELETE') {
        stored.delete(id);
        sendJSON(res, 200, { id, object: 'response', deleted: true }, requestHeaders());
        return;
    }
    sendJSON(res, 200, s.response, requestHeaders());
}

/* ================= legacy completions ================= */

function completions(ctx, body, fault) {
    const { res, raw } = ctx;
    if (needsModel(res, body)) return;
    const isTokens = (a) => Array.isArray(a) && a.length > 0 && a.every((x) => Number.isInteger(x));
    let prompts = body.prompt;
    if (prompts === undefined || prompts === null) return sendProblem(res, missing('prompt'));
    if (typeof prompts === 'string' || isTokens(prompts)) prompts = [prompts];
    if (!Array.isArray(prompts) || prompts.length === 0 ||
        !prompts.every((x) => typeof x === 'string' || isTokens(x))) {
        return sendProblem(res, problem("'$.prompt' is invalid. Please check the API reference: "
            + 'https://platform.openai.com/docs/api-reference.', 'prompt'));
    }
    const n = body.n ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 128) {
        return sendProblem(res, problem(`Invalid 'n': expected an integer between 1 and 128, but got `
            + `${JSON.stringify(n)}.`, 'n', 'invalid_value'));
    }
    const maxTokens = body.max_tokens ?? 16;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) {
        return sendProblem(res, invalidType('max_tokens', 'an integer', maxTokens));
    }
    let stops = body.stop ?? [];
    if (typeof stops === 'string') stops = [stops];
    if (!Array.isArray(stops) || stops.length > 4 || !stops.every((s) => typeof s === 'string')) {
        return sendProblem(res, problem("Invalid 'stop': expected a string or an array of at most 4 strings.",
            'stop', 'invalid_value'));
    }
    if (body.suffix !== undefined && body.suffix !== null && typeof body.suffix !== 'string') {
        return sendProblem(res, invalidType('suffix', 'a string', body.suffix));
    }
    const logprobs = body.logprobs ?? null;
    if (logprobs !== null && (!Number.isInteger(logprobs) || logprobs < 0 || logprobs > 5)) {
        return sendProblem(res, problem("Invalid 'logprobs': expected an integer between 0 and 5.", 'logprobs',
            'invalid_value'));
    }
    if (body.best_of !== undefined && body.best_of !== null && (!Number.isInteger(body.best_of) || body.best_of < n)) {
        return sendProblem(res, problem('best_of must be greater than or equal to n.', 'best_of', 'invalid_value'));
    }
    if (errorFault(res, fault)) return;

    // One entry per choice: the pieces to send (echo first) and the finish reason.
    const choices = [];
    let promptTokens = 0;
    let completionTokens = 0;
    prompts.forEach((p, pi) => {
        const promptText = typeof p === 'string' ? p : p.join(' ');
        promptTokens += typeof p === 'string' ? countWords(p) : p.length;
        let text = fault.name === 'echo-body' ? raw : `Echo: ${promptText}`;
        if (typeof body.suffix === 'string' && fault.name !== 'echo-body') text += ` [before ${body.suffix}]`;
        const cutAt = Math.min(...stops.map((s) => (s === '' ? -1 : text.indexOf(s))).filter((i) => i >= 0), text.length);
        text = text.slice(0, cutAt);
        let pieces = fault.name === 'echo-body' ? (text.match(/[\s\S]{1,40}/g) || []) : splitWords(text);
        let finish = 'stop';
        if (pieces.length > maxTokens) {
            pieces = pieces.slice(0, maxTokens);
            finish = 'length';
        }
        for (let k = 0; k < n; k++) {
            completionTokens += countWords(pieces.join(''));
            const sent = body.echo === true ? [promptText, ...pieces] : pieces;
            choices.push({ index: pi * n + k, pieces: sent.filter((s) => s !== ''), finish });
        }
    });
    const usage = {
        prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens,
    };
    const id = `cmpl-fake${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const lp = (pieces, offset = 0) => {
        if (logprobs === null) return null;
        const offsets = [];
        let at = offset;
        for (const p of pieces) {
            offsets.push(at);
            at += p.length;
        }
        return { tokens: pieces, token_logprobs: pieces.map(() => -0.25), top_logprobs: pieces.map((p) => ({ [p]: -0.25 })),
            text_offset: offsets };
    };
    const base = { id, object: 'text_completion', created, model: body.model };

    if (body.stream !== true) {
        const reply = {
            ...base,
            choices: choices.map((c) => ({
                text: c.pieces.join(''), index: c.index, logprobs: lp(c.pieces), finish_reason: c.finish,
            })),
            usage,
        };
        return sendReply(res, fault, reply, requestHeaders());
    }
    const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
    const chunk = (choicesList, extra = {}) => {
        const c = { ...base, choices: choicesList, ...extra };
        if (includeUsage && !('usage' in extra)) c.usage = null;
        return `data: ${JSON.stringify(c)}\n\n`;
    };
    const evs = [];
    for (const c of choices) {
        let offset = 0;
        for (const p of c.pieces) {
            evs.push(chunk([{ text: p, index: c.index, logprobs: lp([p], offset), finish_reason: null }]));
            offset += p.length;
        }
        evs.push(chunk([{ text: '', index: c.index, logprobs: null, finish_reason: c.finish }]));
    }
    if (includeUsage) evs.push(chunk([], { usage }));
    evs.push('data: [DONE]\n\n');
    streamOut(res, evs, fault, { headers: requestHeaders() });
}

/* ================= rerank ================= */

/* The text a rerank document is ranked by. */
function documentText(doc, rankFields) {
    if (typeof doc === 'string') return doc;
    if (!isObject(doc)) return '';
    if (Array.isArray(rankFields) && rankFields.length > 0) return rankFields.map((f) => doc[f] ?? '').join(' ');
    if (typeof doc.text === 'string') return doc.text;
    return Object.values(doc).filter((v) => typeof v === 'string').join(' ');
}

function rerank(ctx, body, fault) {
    const { res } = ctx;
    if (needsModel(res, body)) return;
    if (typeof body.query !== 'string') {
        return sendProblem(res, body.query === undefined ? missing('query') : invalidType('query', 'a string', body.query));
    }
    const docs = body.documents;
    if (!Array.isArray(docs)) {
        return sendProblem(res, docs === undefined ? missing('documents') : invalidType('documents', 'an array', docs));
    }
    if (docs.length === 0) {
        return sendProblem(res, problem("Invalid 'documents': empty array. Expected an array with minimum length 1.",
            'documents', 'empty_array'));
    }
    const badDoc = docs.findIndex((d) => typeof d !== 'string' && !(isObject(d) && typeof d.text === 'string'));
    if (badDoc >= 0) {
        return sendProblem(res, invalidType(`documents[${badDoc}]`, 'a string or an object with text', docs[badDoc]));
    }
    const topN = body.top_n ?? docs.length;
    if (!Number.isInteger(topN) || topN < 1) {
        return sendProblem(res, problem(`Invalid 'top_n': expected a positive integer, but got ${JSON.stringify(topN)}.`,
            'top_n', 'invalid_value'));
    }
    if (errorFault(res, fault)) return;

    const texts = docs.map((d) => documentText(d, body.rank_fields));
    const results = rerankOrder(body.query, texts).slice(0, topN).map(({ index, score }) => {
        const r = { index, relevance_score: score };
        if (body.return_documents !== false) {
            r.document = typeof docs[index] === 'string' ? { text: docs[index] } : docs[index];
        }
        return r;
    });
    const tokens = countWords(body.query) + texts.reduce((a, t) => a + countWords(t), 0);
    sendReply(res, fault, {
        id: `rerank-fake${++counter}`,
        model: body.model,
        usage: { total_tokens: tokens },
        results,
        meta: { api_version: { version: '1' }, billed_units: { search_units: Math.ceil(docs.length / 100) } },
    }, requestHeaders());
}

/* ================= moderations ================= */

const MOD_CATEGORIES = ['harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit',
    'illicit/violent', 'self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors',
    'violence', 'violence/graphic'];
// The categories omni-moderation also judges images for.
const IMAGE_CATEGORIES = new Set(['self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'violence',
    'violence/graphic']);

function moderationResult(text, hasText, hasImage) {
    const violent = /\bkill\b/i.test(text);
    const categories = {};
    const scores = {};
    const applied = {};
    MOD_CATEGORIES.forEach((c, i) => {
        const hit = c === 'violence' && violent;
        categories[c] = hit;
        scores[c] = hit ? 0.9 : Number(((i + 1) * 1e-6).toFixed(6));
        applied[c] = [...(hasText ? ['text'] : []), ...(hasImage && IMAGE_CATEGORIES.has(c) ? ['image'] : [])];
    });
    return { flagged: violent, categories, category_scores: scores, category_applied_input_types: applied };
}

function moderations(ctx, body, fault) {
    const { res } = ctx;
    const input = body.input;
    let results;
    const isPart = (p) => isObject(p) && ((p.type === 'text' && typeof p.text === 'string') ||
        (p.type === 'image_url' && isObject(p.image_url) && typeof p.image_url.url === 'string'));
    if (input === undefined) return sendProblem(res, missing('input'));
    if (typeof input === 'string') {
        results = [moderationResult(input, true, false)];
    } else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) {
        results = input.map((t) => moderationResult(t, true, false));
    } else if (Array.isArray(input) && input.length > 0 && input.every(isPart)) {
        // A multi-modal input is judged as one.
        const text = input.filter((p) => p.type === 'text').map((p) => p.text).join(' ');
        results = [moderationResult(text, input.some((p) => p.type === 'text'), input.some((p) => p.type === 'image_url'))];
    } else {
        return sendProblem(res, invalidType('input', 'a string, an array of strings or an array of content parts', input));
    }
    if (errorFault(res, fault)) return;
    sendReply(res, fault, {
        id: `modr-${crypto.randomBytes(12).toString('hex')}`,
        model: body.model ?? 'omni-moderation-latest',
        results,
    }, requestHeaders());
}

/* ================= images ================= */

function images(ctx, body, fault) {
    const { req, res } = ctx;
    if (typeof body.prompt !== 'string' || body.prompt === '') return sendProblem(res, missing('prompt'));
    const model = body.model ?? 'dall-e-2';
    const gptImage = /^gpt-image/.test(model);
    const n = body.n ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 10) {
        return sendProblem(res, problem(`Invalid 'n': expected an integer between 1 and 10, but got `
            + `${JSON.stringify(n)}.`, 'n', 'invalid_value'));
    }
    if (model === 'dall-e-3' && n !== 1) {
        return sendProblem(res, problem('You must provide n=1 for this model.', 'n', 'invalid_value'));
    }
    const size = body.size ?? (gptImage ? 'auto' : '1024x1024');
    if (typeof size !== 'string' || !(/^\d+x\d+$/.test(size) || size === 'auto')) {
        return sendProblem(res, invalidValue('size', size,
            ['256x256', '512x512', '1024x1024', '1536x1024', '1024x1536', '1792x1024', '1024x1792', 'auto']));
    }
    const format = body.response_format ?? (gptImage ? 'b64_json' : 'url');
    if (format !== 'url' && format !== 'b64_json') {
        return sendProblem(res, invalidValue('response_format', format, ['url', 'b64_json']));
    }
    if (errorFault(res, fault)) return;

    const host = req.headers.host || '127.0.0.1';
    const id = `img-fake${++counter}`;
    const data = [];
    for (let i = 0; i < n; i++) {
        const item = gptImage || format === 'b64_json' ? { b64_json: PNG_BASE64 }
            : { url: `http://${host}/v1/fake-images/${id}-${i}.png` };
        if (!gptImage) item.revised_prompt = `A picture of: ${body.prompt}`;
        data.push(item);
    }
    const reply = { created: Math.floor(Date.now() / 1000), data };
    if (gptImage) {
        const input = countWords(body.prompt);
        const output = 272 * n;
        Object.assign(reply, {
            background: body.background ?? 'opaque', output_format: body.output_format ?? 'png',
            quality: body.quality ?? 'medium', size: size === 'auto' ? '1024x1024' : size,
            usage: { input_tokens: input, input_tokens_details: { text_tokens: input, image_tokens: 0 },
                output_tokens: output, total_tokens: input + output },
        });
    }
    sendReply(res, fault, reply, requestHeaders());
}

/* ================= speech ================= */

const VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'onyx', 'nova', 'sage', 'shimmer', 'verse',
    'marin', 'cedar'];
const AUDIO_TYPES = {
    mp3: 'audio/mpeg', opus: 'audio/opus', aac: 'audio/aac', flac: 'audio/flac', wav: 'audio/wav', pcm: 'audio/pcm',
};

/* 16-bit little-endian mono samples of a 440 Hz sine, `bytes` long. */
function sine(bytes) {
    const buf = Buffer.alloc(bytes - (bytes % 2));
    for (let i = 0; i < buf.length / 2; i++) {
        buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / SPEECH_RATE)), i * 2);
    }
    return buf;
}

/* Fake audio of `bytes` bytes in format: the format's magic bytes, then filler. */
function fakeAudio(format, bytes) {
    if (format === 'pcm') return sine(bytes);
    if (format === 'wav') {
        const data = sine(bytes);
        const h = Buffer.alloc(44);
        h.write('RIFF', 0);
        h.writeUInt32LE(36 + data.length, 4);
        h.write('WAVEfmt ', 8);
        h.writeUInt32LE(16, 16);
        h.writeUInt16LE(1, 20); // PCM
        h.writeUInt16LE(1, 22); // mono
        h.writeUInt32LE(SPEECH_RATE, 24);
        h.writeUInt32LE(SPEECH_RATE * 2, 28);
        h.writeUInt16LE(2, 32);
        h.writeUInt16LE(16, 34);
        h.write('data', 36);
        h.writeUInt32LE(data.length, 40);
        return Buffer.concat([h, data]);
    }
    const magic = {
        mp3: Buffer.from([0xff, 0xfb, 0x90, 0x64]), // an MPEG-1 Layer III frame header
        opus: Buffer.from('OggS'),
        aac: Buffer.from([0xff, 0xf1, 0x50, 0x80]), // an ADTS header
        flac: Buffer.from('fLaC'),
    }[format];
    const out = Buffer.alloc(Math.max(bytes, magic.length));
    magic.copy(out);
    for (let i = magic.length; i < out.length; i++) out[i] = (i * 31) & 0xff;
    return out;
}

function speech(ctx, body, fault) {
    const { res } = ctx;
    if (needsModel(res, body)) return;
    if (typeof body.input !== 'string') {
        return sendProblem(res, body.input === undefined ? missing('input') : invalidType('input', 'a string', body.input));
    }
    if (body.input.length > MAX_SPEECH_CHARS) {
        return sendProblem(res, problem(`[{'type': 'string_too_long', 'loc': ('body', 'input'), 'msg': 'String `
            + `should have at most ${MAX_SPEECH_CHARS} characters'}]`, 'input', 'string_too_long'));
    }
    const voice = body.voice;
    if (voice === undefined) return sendProblem(res, missing('voice'));
    if (!(typeof voice === 'string' && VOICES.includes(voice)) && !(isObject(voice) && typeof voice.id === 'string')) {
        return sendProblem(res, invalidValue('voice', typeof voice === 'string' ? voice : JSON.stringify(voice), VOICES));
    }
    const format = body.response_format ?? 'mp3';
    if (!Object.hasOwn(AUDIO_TYPES, format)) {
        return sendProblem(res, invalidValue('response_format', format, Object.keys(AUDIO_TYPES)));
    }
    const speed = body.speed ?? 1;
    if (typeof speed !== 'number' || speed < 0.25 || speed > 4) {
        return sendProblem(res, problem(`Invalid 'speed': expected a number between 0.25 and 4.0, but got `
            + `${JSON.stringify(speed)}.`, 'speed', 'invalid_value'));
    }
    const sse = body.stream_format === 'sse';
    if (body.stream_format !== undefined && body.stream_format !== 'sse' && body.stream_format !== 'audio') {
        return sendProblem(res, invalidValue('stream_format', body.stream_format, ['sse', 'audio']));
    }
    if (errorFault(res, fault)) return;

    const audio = fakeAudio(format, Math.max(1, body.input.length) * SPEECH_BYTES_PER_CHAR);
    const size = Math.ceil(audio.length / SPEECH_CHUNKS);
    const chunks = [];
    for (let off = 0; off < audio.length; off += size) chunks.push(audio.subarray(off, off + size));
    if (sse) {
        const inTok = countWords(body.input);
        const outTok = Math.ceil(audio.length / 100);
        const data = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
        const evs = chunks.map((c) => data({ type: 'speech.audio.delta', audio: c.toString('base64') }));
        evs.push(data({ type: 'speech.audio.done',
            usage: { input_tokens: inTok, output_tokens: outTok, total_tokens: inTok + outTok } }));
        streamOut(res, evs, fault, { gap: SPEECH_GAP_MS, headers: requestHeaders() });
        return;
    }
    streamOut(res, chunks, fault, { contentType: AUDIO_TYPES[format], gap: SPEECH_GAP_MS, headers: requestHeaders() });
}

/* ================= transcriptions ================= */

// The extensions OpenAI's transcription endpoints take.
const AUDIO_EXTENSIONS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'];
const LANGUAGES = {
    en: 'english', fr: 'french', de: 'german', es: 'spanish', it: 'italian', ja: 'japanese', nl: 'dutch', pt: 'portuguese',
};

/* Splits a multipart/form-data body into [{name, filename, contentType,
 * data (Buffer)}], or returns null when it is malformed. */
function parseMultipart(buf, contentType) {
    const bm = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
    if (!bm) return null;
    const delimiter = Buffer.from(`--${bm[1] || bm[2]}`);
    const parts = [];
    let pos = buf.indexOf(delimiter);
    if (pos < 0) return null;
    for (;;) {
        let start = pos + delimiter.length;
        if (buf[start] === 0x2d && buf[start + 1] === 0x2d) return parts; // the closing "--"
        if (buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
        const headEnd = buf.indexOf('\r\n\r\n', start);
        if (headEnd < 0) return null;
        const next = buf.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headEnd + 4);
        if (next < 0) return null;
        const part = { name: null, filename: null, contentType: null, data: buf.subarray(headEnd + 4, next) };
        for (const line of buf.toString('utf8', start, headEnd).split('\r\n')) {
            const i = line.indexOf(':');
            if (i < 0) continue;
            const key = line.slice(0, i).trim().toLowerCase();
            const value = line.slice(i + 1).trim();
            if (key === 'content-type') part.contentType = value;
            if (key !== 'content-disposition') continue;
            const name = /;\s*name="((?:[^"\\]|\\.)*)"/i.exec(value);
            const file = /;\s*filename="((?:[^"\\]|\\.)*)"/i.exec(value);
            const fileStar = /;\s*filename\*=(?:UTF-8|utf-8)''([^;]+)/.exec(value);
            if (name) part.name = name[1].replace(/\\(.)/g, '$1');
            if (fileStar) part.filename = decodeURIComponent(fileStar[1]);
            else if (file) part.filename = file[1].replace(/\\(.)/g, '$1');
        }
        parts.push(part);
        pos = next + 2;
    }
}

/* "00:00:01,500" (srt) or "00:00:01.500" (vtt). */
function clock(seconds, sep) {
    const ms = Math.round(seconds * 1000);
    const pad = (v, w = 2) => String(v).padStart(w, '0');
    const hms = [Math.floor(ms / 3600000), Math.floor(ms / 60000) % 60, Math.floor(ms / 1000) % 60].map((v) => pad(v));
    return `${hms.join(':')}${sep}${pad(ms % 1000, 3)}`;
}

function transcribe(ctx, translate) {
    const { req, res, rawBuffer, entry, helpers } = ctx;
    const ct = req.headers['content-type'] || '';
    if (!/^multipart\/form-data/i.test(ct)) {
        sendError(res, 400, `Invalid Content-Type header (${ct || 'none'}), expected multipart/form-data. (HINT: If `
            + "you're using curl, you can pass -H 'Content-Type: multipart/form-data')");
        return;
    }
    const parts = parseMultipart(rawBuffer, ct);
    if (!parts) {
        sendError(res, 400, 'Could not parse multipart form');
        return;
    }
    const fields = {};
    const lists = {};
    let file = null;
    for (const p of parts) {
        if (p.name === null) continue;
        if (p.filename !== null || p.name === 'file') {
            if (p.name === 'file') file = p;
            continue;
        }
        const v = p.data.toString('utf8');
        if (p.name.endsWith('[]')) (lists[p.name.slice(0, -2)] ??= []).push(v);
        else fields[p.name] = v;
    }
    const sha = file ? crypto.createHash('sha256').update(file.data).digest('hex') : null;
    entry.model = fields.model ?? null;
    entry.stream = fields.stream === 'true';
    entry.body = {
        ...fields, ...lists,
        file: file && { filename: file.filename, content_type: file.contentType, bytes: file.data.length, sha256: sha },
    };

    if (!fields.model) return sendProblem(res, missing('model'));
    if (!file) return sendProblem(res, missing('file'));
    const name = file.filename ?? 'file';
    const ext = (/\.([A-Za-z0-9]+)$/.exec(name) || [])[1];
    if (!ext || !AUDIO_EXTENSIONS.includes(ext.toLowerCase())) {
        return sendProblem(res, problem(`Invalid file format. Supported formats: ${JSON.stringify(AUDIO_EXTENSIONS)}`,
            'file', 'invalid_value'));
    }
    const whisper = !/transcribe/.test(fields.model);
    const format = fields.response_format ?? 'json';
    const formats = whisper ? ['json', 'text', 'srt', 'verbose_json', 'vtt'] : ['json', 'text'];
    if (!formats.includes(format)) {
        if (['json', 'text', 'srt', 'verbose_json', 'vtt'].includes(format)) {
            return sendProblem(res, problem(`response_format '${format}' is not compatible with model '${fields.model}'. `
                + "Use 'json' or 'text' instead.", 'response_format', 'unsupported_value'));
        }
        return sendProblem(res, invalidValue('response_format', format, formats));
    }
    const fault = helpers.parseFault(fields.model);
    if (errorFault(res, fault)) return;

    const verb = translate ? 'Translated' : 'Transcribed';
    const text = `${verb} ${file.data.length} bytes of ${name} (sha256 ${sha.slice(0, 16)})`;
    const duration = Math.max(0.1, Math.round((file.data.length / 16000) * 100) / 100);
    const outTok = countWords(text);
    const audioTok = Math.max(1, Math.ceil(duration * 10));
    const promptTok = fields.prompt ? countWords(fields.prompt) : 0;
    const usage = whisper
        ? { type: 'duration', seconds: Math.ceil(duration) }
        : { type: 'tokens', input_tokens: audioTok + promptTok,
            input_token_details: { text_tokens: promptTok, audio_tokens: audioTok },
            output_tokens: outTok, total_tokens: audioTok + promptTok + outTok };
    const headers = requestHeaders();

    if (fields.stream === 'true' && !whisper) {
        const data = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
        const evs = splitWords(text).map((w) => data({ type: 'transcript.text.delta', delta: w, logprobs: [] }));
        evs.push(data({ type: 'transcript.text.done', text, logprobs: [], usage }));
        streamOut(res, evs, fault, { headers });
        return;
    }
    const sendText = (s, type) => {
        res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(s), ...headers });
        res.end(s);
    };
    if (format === 'text') return sendText(`${text}\n`, 'text/plain');
    if (format === 'srt') return sendText(`1\n${clock(0, ',')} --> ${clock(duration, ',')}\n${text}\n\n`, 'text/plain');
    if (format === 'vtt') return sendText(`WEBVTT\n\n${clock(0, '.')} --> ${clock(duration, '.')}\n${text}\n\n`, 'text/vtt');
    if (format === 'json') return sendReply(res, fault, { text, usage }, headers);

    const granularities = lists.timestamp_granularities ?? ['segment'];
    const reply = {
        task: translate ? 'translate' : 'transcribe',
        language: translate ? 'english' : LANGUAGES[fields.language] ?? fields.language ?? 'english',
        duration,
        text,
    };
    if (granularities.includes('word')) {
        const words = text.split(/\s+/);
        const step = duration / words.length;
        const at = (k) => Math.round(k * step * 100) / 100;
        reply.words = words.map((word, i) => ({ word, start: at(i), end: at(i + 1) }));
    }
    if (granularities.includes('segment')) {
        reply.segments = [{
            id: 0, seek: 0, start: 0, end: duration, text: ` ${text}`,
            tokens: Array.from({ length: outTok }, (_, i) => 50364 + i),
            temperature: Number(fields.temperature ?? 0), avg_logprob: -0.25, compression_ratio: 1.2, no_speech_prob: 0.01,
        }];
    }
    reply.usage = usage;
    sendReply(res, fault, reply, headers);
}
