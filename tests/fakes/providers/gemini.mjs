// Fake Google Gemini upstream: the Gemini Developer API ("AI Studio",
// generativelanguage.googleapis.com) and Vertex AI (aiplatform.googleapis.com),
// loaded by tests/fakes/openai.mjs. Wire format as @google/genai expects it.
//
// Routes
//   AI Studio:  POST /v1beta/models/{model}:generateContent
//               POST /v1beta/models/{model}:streamGenerateContent?alt=sse
//               POST /v1beta/models/{model}:countTokens | :embedContent | :batchEmbedContents
//               (also under /v1 and /v1alpha)
//   Vertex AI:  POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:
//                    generateContent | streamGenerateContent?alt=sse | countTokens |
//                    predict (text embeddings) | embedContent (gemini embedding models)
//               (also under /v1beta1)
//   OAuth2:     POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer,
//               assertion = RS256 JWT signed with the fake service account's key
//               (iss = client_email, aud = token_uri or https://oauth2.googleapis.com/token,
//               scope including cloud-platform, exp - iat <= 3600) ->
//               {access_token, expires_in: 3599, token_type: "Bearer"}
//   Control:    GET  /__control/vertex/service-account.json  the service-account key file
//                    (RSA key made once per process; token_uri built from the Host header)
//               GET  /__control/vertex/tokens   {issued, active}: how many tokens were issued
//               POST /__control/vertex/revoke   invalidates every issued token (tests of refresh)
//
// Auth
//   AI Studio: x-goog-api-key header or ?key= query parameter (must equal --api-key
//   when one is set). Missing -> 403 PERMISSION_DENIED; wrong -> 400 INVALID_ARGUMENT
//   "API key not valid. Please pass a valid API key." (what Google really answers).
//   Without a key, a bearer token issued at /token is accepted too (Google takes OAuth
//   there as well); any other bearer -> 401 UNAUTHENTICATED.
//   Vertex: "Authorization: Bearer <token>" with a token this process issued at /token
//   (whatever --api-key is). Missing -> 401 UNAUTHENTICATED (CREDENTIALS_MISSING), an API
//   key instead -> 401 "API keys are not supported by this API", unknown/expired/revoked
//   token -> 401 UNAUTHENTICATED (ACCESS_TOKEN_TYPE_UNSUPPORTED). The project in the path
//   must be the service account's ("fake-project"), else 403 PERMISSION_DENIED.
//   Secrets never reach /__control/log: the key header is dropped and ?key= is masked.
//
// Behaviour (the common fake contract, in Gemini's terms)
//   The last turn whose role is not "model" is the user turn. Answer text = "Echo: " +
//   its text parts joined, plus " [image <mime> <bytes>]" per inlineData image,
//   " [image-url <fileUri>]" per fileData image (" [file ...]" for other mime types).
//   A user turn holding functionResponse parts and no text answers
//   "Echo: tool result: " + the first response's text (its output/result/content/text
//   string field, else the response as JSON).
//   Tools: tools[].functionDeclarations, functionCallingConfig.mode not NONE and
//   "call tool" in the user text -> one part {functionCall: {name, args: {text}}}, the
//   first allowedFunctionNames entry or else the first declaration; finishReason STOP
//   (Gemini has no tool-use stop reason). Streaming sends it whole in one event.
//   JSON mode: generationConfig.responseMimeType "application/json" -> text is
//   JSON.stringify({echo: <user text>}). stopSequences cut the text (STOP);
//   maxOutputTokens below the word count cuts words (MAX_TOKENS). candidateCount N ->
//   N identical candidates (candidatesTokenCount counts all of them).
//   usageMetadata: promptTokenCount = sum over contents (and systemInstruction) of
//   3 + words, candidatesTokenCount = answer words (function call: words of the args
//   JSON + 1), totalTokenCount = their sum; cachedContentTokenCount 2 when the model
//   name contains "cached" (zero counts are omitted, as proto3 JSON does).
//   Streaming (alt=sse): "data: <GenerateContentResponse>\r\n\r\n" per event, one word
//   per event ~5 ms apart, cumulative usageMetadata on every event, finishReason on the
//   last, no [DONE]. Without alt=sse the stream is a JSON array, as Google sends it.
//
// Faults, by the model name in the path (optional "-<number>" suffix tunes timings)
//   fault-500 -> 500 INTERNAL; fault-429 -> 429 RESOURCE_EXHAUSTED (retry-after: 7 and
//   a RetryInfo detail); fault-400 -> 400 INVALID_ARGUMENT; overloaded -> 503 UNAVAILABLE
//   "The model is overloaded."; context-too-long -> 400 INVALID_ARGUMENT "The input token
//   count (N) exceeds the maximum number of tokens allowed (1048576)."; model-not-found
//   -> 404 NOT_FOUND; content-filter -> 200 with a candidate whose finishReason is SAFETY
//   and no content; prompt-blocked -> 200 with promptFeedback.blockReason SAFETY and no
//   candidates; drop-mid-stream (two events, then the socket is destroyed); slow-stream
//   (one event every 300 ms for ~3 s); slow-first-byte (first byte after 1500 ms); hang
//   (never answers); bad-event (2nd event is not JSON); stream-error (two events, then an
//   in-band {"error": {...}} event); empty-NNN (status NNN, empty body); echo-body (the
//   answer text is the raw request body).

import crypto from 'node:crypto';
import { fakeEmbedding } from '../openai.mjs';

const STUDIO_RE = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):([A-Za-z]+)$/;
const VERTEX_RE = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):([A-Za-z]+)$/;
const CONTROL_PREFIXES = ['/__control/vertex/'];
const TOKEN_PATH = '/token';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const PROJECT_ID = 'fake-project';
const CLIENT_EMAIL = `sluice-fake@${PROJECT_ID}.iam.gserviceaccount.com`;
const TOKEN_LIFETIME_S = 3599;
const MAX_INPUT_TOKENS = 1048576;
const EVENT_GAP_MS = 5;
const SLOW_STREAM_EVENTS = 10;

const FAULT_RE = new RegExp('^(fault-500|fault-429|fault-400|overloaded|context-too-long|content-filter|' +
    'prompt-blocked|model-not-found|empty|slow-first-byte|drop-mid-stream|hang|slow-stream|bad-event|' +
    'stream-error|echo-body)(?:-(\\d+))?$');

/* ---------- service account and tokens (one per fake process) ---------- */

let keyPair = null;
const privateKeyId = crypto.randomBytes(20).toString('hex');
const issuedTokens = new Map(); // access token -> expiry (ms since epoch)
let tokensIssued = 0;
let responseCounter = 0;

/* Generated on first use: RSA key generation costs ~100 ms, and most runs of
 * the fake never touch Vertex. */
function serviceKeys() {
    if (!keyPair) {
        keyPair = crypto.generateKeyPairSync('rsa', {
            modulusLength: 2048,
            publicKeyEncoding: { type: 'spki', format: 'pem' },
            privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        });
    }
    return keyPair;
}

function tokenUri(req) {
    return `http://${req.headers.host || '127.0.0.1'}${TOKEN_PATH}`;
}

function serviceAccountJSON(req) {
    return {
        type: 'service_account',
        project_id: PROJECT_ID,
        private_key_id: privateKeyId,
        private_key: serviceKeys().privateKey,
        client_email: CLIENT_EMAIL,
        client_id: '100000000000000000001',
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: tokenUri(req),
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(CLIENT_EMAIL)}`,
        universe_domain: 'googleapis.com',
    };
}

/* ---------- small helpers ---------- */

function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

function parseFault(model) {
    const m = FAULT_RE.exec(model);
    if (!m) return { name: null, arg: null };
    return { name: m[1], arg: m[2] === undefined ? null : Number(m[2]) };
}

function sendJSON(res, status, obj, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json; charset=UTF-8',
        'content-length': Buffer.byteLength(body),
        ...headers,
    });
    res.end(body);
}

/* Google's error envelope: {"error": {code, message, status[, details]}}. */
function sendGoogleError(res, code, status, message, details = null, headers = {}) {
    const error = { code, message, status };
    if (details) error.details = details;
    sendJSON(res, code, { error }, headers);
}

function errorInfo(reason, service, extra = {}) {
    return {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason,
        domain: 'googleapis.com',
        metadata: { service, ...extra },
    };
}

function badRequest(res, message, field = null) {
    const details = field
        ? [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description: message }] }]
        : null;
    sendGoogleError(res, 400, 'INVALID_ARGUMENT', message, details);
}

function responseId() {
    responseCounter++;
    return crypto.randomBytes(12).toString('base64url').slice(0, 16) + responseCounter.toString(36);
}

function base64urlJSON(part) {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/* ---------- reading a GenerateContentRequest ---------- */

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

function partsText(parts) {
    if (!Array.isArray(parts)) return '';
    return parts
        .filter((p) => isObject(p) && typeof p.text === 'string' && p.thought !== true)
        .map((p) => p.text)
        .join('');
}

function mediaTags(parts) {
    let out = '';
    for (const p of parts) {
        if (!isObject(p)) continue;
        if (isObject(p.inlineData)) {
            const mime = String(p.inlineData.mimeType || 'application/octet-stream');
            const bytes = Buffer.from(String(p.inlineData.data || ''), 'base64').length;
            out += mime.startsWith('image/') ? ` [image ${mime} ${bytes}]` : ` [file ${mime} ${bytes}]`;
        } else if (isObject(p.fileData)) {
            const mime = String(p.fileData.mimeType || '');
            const uri = String(p.fileData.fileUri || '');
            out += mime === '' || mime.startsWith('image/') ? ` [image-url ${uri}]` : ` [file-url ${uri}]`;
        }
    }
    return out;
}

function toolResultText(response) {
    if (typeof response === 'string') return response;
    if (isObject(response)) {
        for (const k of ['output', 'result', 'content', 'text']) {
            if (typeof response[k] === 'string') return response[k];
        }
    }
    return JSON.stringify(response ?? null);
}

/* Checks contents the way Google does; returns an error message or null. */
function contentsProblem(contents, what = 'GenerateContentRequest') {
    if (!Array.isArray(contents) || contents.length === 0) {
        return `* ${what}.contents: contents is not specified\n`;
    }
    for (let i = 0; i < contents.length; i++) {
        const c = contents[i];
        if (!isObject(c)) return `* ${what}.contents[${i}]: must be a Content object\n`;
        if (c.role !== undefined && !['user', 'model', 'function'].includes(c.role)) {
            return 'Please use a valid role: user, model.';
        }
        if (!Array.isArray(c.parts) || c.parts.length === 0) {
            return `* ${what}.contents[${i}].parts: contents.parts must not be empty.\n`;
        }
    }
    return null;
}

function promptTokenCount(body) {
    let n = 0;
    for (const c of body.contents || []) n += 3 + countWords(partsText(c && c.parts));
    if (isObject(body.systemInstruction)) n += 3 + countWords(partsText(body.systemInstruction.parts));
    else if (typeof body.systemInstruction === 'string') n += 3 + countWords(body.systemInstruction);
    return n;
}

function declaredFunctions(body) {
    const names = [];
    for (const t of Array.isArray(body.tools) ? body.tools : []) {
        const decls = isObject(t) ? (t.functionDeclarations || t.function_declarations) : null;
        for (const d of Array.isArray(decls) ? decls : []) {
            if (isObject(d) && typeof d.name === 'string') names.push(d.name);
        }
    }
    return names;
}

function callingConfig(body) {
    const tc = isObject(body.toolConfig) ? body.toolConfig : isObject(body.tool_config) ? body.tool_config : {};
    const fc = tc.functionCallingConfig || tc.function_calling_config;
    return isObject(fc) ? fc : {};
}

function generationConfig(body) {
    const g = body.generationConfig || body.generation_config;
    return isObject(g) ? g : {};
}

/* ---------- the answer ---------- */

/* What the model "says": {parts, words, finishReason, outputTokens}. */
function buildAnswer(body, raw, fault) {
    const contents = body.contents;
    let userTurn = null;
    for (let i = contents.length - 1; i >= 0; i--) {
        if (contents[i].role !== 'model') {
            userTurn = contents[i];
            break;
        }
    }
    const parts = userTurn ? userTurn.parts : [];
    const userText = partsText(parts);
    const hasText = parts.some((p) => isObject(p) && typeof p.text === 'string');
    const toolResult = parts.find((p) => isObject(p) && isObject(p.functionResponse));
    const gen = generationConfig(body);

    const fc = callingConfig(body);
    const functions = declaredFunctions(body);
    const mode = typeof fc.mode === 'string' ? fc.mode.toUpperCase() : 'AUTO';
    if (fault.name !== 'echo-body' && functions.length > 0 && mode !== 'NONE' && /call tool/i.test(userText)) {
        const allowed = Array.isArray(fc.allowedFunctionNames) ? fc.allowedFunctionNames
            : Array.isArray(fc.allowed_function_names) ? fc.allowed_function_names : [];
        const name = typeof allowed[0] === 'string' ? allowed[0] : functions[0];
        const args = { text: userText };
        return {
            parts: [{ functionCall: { name, args } }],
            pieces: null,
            finishReason: 'STOP',
            outputTokens: countWords(JSON.stringify(args)) + 1,
        };
    }

    let text;
    if (fault.name === 'echo-body') text = raw;
    else if (gen.responseMimeType === 'application/json' || gen.response_mime_type === 'application/json') {
        text = JSON.stringify({ echo: userText });
    } else if (toolResult && !hasText) {
        text = `Echo: tool result: ${toolResultText(toolResult.functionResponse.response)}`;
    } else {
        text = `Echo: ${userText}${mediaTags(parts)}`;
    }

    let finishReason = 'STOP';
    const stops = gen.stopSequences || gen.stop_sequences;
    if (Array.isArray(stops)) {
        let cut = -1;
        for (const s of stops) {
            if (typeof s !== 'string' || s === '') continue;
            const at = text.indexOf(s);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0) text = text.slice(0, cut);
    }
    let pieces = fault.name === 'echo-body' ? (text.match(/[\s\S]{1,40}/g) || []) : splitWords(text);
    const limit = gen.maxOutputTokens ?? gen.max_output_tokens;
    if (Number.isInteger(limit) && limit >= 0 && pieces.length > limit) {
        pieces = pieces.slice(0, limit);
        text = pieces.join('');
        finishReason = 'MAX_TOKENS';
    }
    return { parts: [{ text }], pieces, finishReason, outputTokens: countWords(text) };
}

function usageMetadata(route, promptTokens, candidateTokens) {
    const u = { promptTokenCount: promptTokens };
    if (candidateTokens > 0) u.candidatesTokenCount = candidateTokens;
    u.totalTokenCount = promptTokens + candidateTokens;
    const cached = route.model.includes('cached') ? Math.min(2, promptTokens) : 0;
    if (cached > 0) u.cachedContentTokenCount = cached;
    u.promptTokensDetails = [{ modality: 'TEXT', tokenCount: promptTokens }];
    if (cached > 0) u.cacheTokensDetails = [{ modality: 'TEXT', tokenCount: cached }];
    if (route.api === 'vertex') {
        if (candidateTokens > 0) u.candidatesTokensDetails = [{ modality: 'TEXT', tokenCount: candidateTokens }];
        u.trafficType = 'ON_DEMAND';
    }
    return u;
}

function safetyRatings(blocked) {
    const cats = ['HARM_CATEGORY_SEXUALLY_EXPLICIT', 'HARM_CATEGORY_HATE_SPEECH',
        'HARM_CATEGORY_HARASSMENT', 'HARM_CATEGORY_DANGEROUS_CONTENT'];
    return cats.map((category, i) => {
        const r = { category, probability: blocked && i === 3 ? 'HIGH' : 'NEGLIGIBLE' };
        if (blocked && i === 3) r.blocked = true;
        return r;
    });
}

/* The envelope around candidates, in the field order Google uses. */
function envelope(route, meta, fields) {
    const out = { ...fields, modelVersion: route.model };
    if (route.api === 'vertex') out.createTime = meta.createTime;
    out.responseId = meta.responseId;
    return out;
}

/* ---------- generateContent / streamGenerateContent ---------- */

function generate(ctx, route, body, fault, stream) {
    const { res, url, raw } = ctx;
    const gen = generationConfig(body);
    const n = Number.isInteger(gen.candidateCount) && gen.candidateCount >= 1 && gen.candidateCount <= 8
        ? gen.candidateCount : 1;
    const promptTokens = promptTokenCount(body);
    const meta = { responseId: responseId(), createTime: new Date().toISOString() };

    if (fault.name === 'context-too-long') {
        badRequest(res, `The input token count (${MAX_INPUT_TOKENS + promptTokens}) exceeds the maximum number ` +
            `of tokens allowed (${MAX_INPUT_TOKENS}).`);
        return;
    }

    // The events (parsed objects, or a raw string for a malformed one), in order.
    let events;
    if (fault.name === 'prompt-blocked') {
        events = [envelope(route, meta, {
            promptFeedback: { blockReason: 'SAFETY', safetyRatings: safetyRatings(true) },
            usageMetadata: usageMetadata(route, promptTokens, 0),
        })];
    } else if (fault.name === 'content-filter') {
        const candidates = [];
        for (let i = 0; i < n; i++) candidates.push({ finishReason: 'SAFETY', index: i, safetyRatings: safetyRatings(true) });
        events = [envelope(route, meta, { candidates, usageMetadata: usageMetadata(route, promptTokens, 0) })];
    } else {
        const answer = buildAnswer(body, raw, fault);
        const candidatesFor = (parts, finishReason) => {
            const out = [];
            for (let i = 0; i < n; i++) {
                const c = { content: { parts: structuredClone(parts), role: 'model' } };
                if (finishReason) c.finishReason = finishReason;
                c.index = i;
                out.push(c);
            }
            return out;
        };
        if (!stream) {
            events = [envelope(route, meta, {
                candidates: candidatesFor(answer.parts, answer.finishReason),
                usageMetadata: usageMetadata(route, promptTokens, answer.outputTokens * n),
            })];
        } else if (!answer.pieces) {
            // A function call arrives whole, in one event.
            events = [envelope(route, meta, {
                candidates: candidatesFor(answer.parts, answer.finishReason),
                usageMetadata: usageMetadata(route, promptTokens, answer.outputTokens * n),
            })];
        } else {
            const pieces = answer.pieces.length ? [...answer.pieces] : [''];
            if (fault.name === 'slow-stream') while (pieces.length < SLOW_STREAM_EVENTS) pieces.push('');
            events = [];
            let sofar = '';
            pieces.forEach((piece, i) => {
                sofar += piece;
                const last = i === pieces.length - 1;
                events.push(envelope(route, meta, {
                    candidates: candidatesFor([{ text: piece }], last ? answer.finishReason : null),
                    usageMetadata: usageMetadata(route, promptTokens, countWords(sofar) * n),
                }));
            });
        }
    }

    if (!stream) {
        const reply = events[0];
        if (fault.name === 'drop-mid-stream') {
            // Announce the whole body, send half of it, then vanish.
            const s = JSON.stringify(reply);
            res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(s) });
            res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
            return;
        }
        if (fault.name === 'stream-error') {
            sendGoogleError(res, 500, 'INTERNAL', 'An internal error has occurred. Please retry or report in ' +
                'https://developers.generativeai.google/guide/troubleshooting (fake upstream stream-error)');
            return;
        }
        let delay = 0;
        if (fault.name === 'slow-first-byte') delay = fault.arg ?? 1500;
        if (fault.name === 'slow-stream') delay = (fault.arg ?? 300) * SLOW_STREAM_EVENTS;
        if (delay > 0) {
            const t = setTimeout(() => sendJSON(res, 200, reply), delay);
            res.on('close', () => clearTimeout(t));
        } else {
            sendJSON(res, 200, reply);
        }
        return;
    }

    let encoded = events.map((e) => JSON.stringify(e));
    if (fault.name === 'bad-event') {
        const broken = '{"candidates": [{"content": {"parts": [{"text": "bro';
        encoded.splice(Math.min(1, encoded.length), encoded.length > 1 ? 1 : 0, broken);
    }
    if (fault.name === 'stream-error') {
        const err = JSON.stringify({ error: {
            code: 500,
            message: 'An internal error has occurred. Please retry or report in ' +
                'https://developers.generativeai.google/guide/troubleshooting (fake upstream stream-error)',
            status: 'INTERNAL',
        } });
        encoded = [...encoded.slice(0, 2), err];
    }
    const sse = url.searchParams.get('alt') === 'sse';
    writeStream(res, encoded, sse, fault);
}

/* Writes the events one write() each: SSE frames, or (without alt=sse) the
 * pieces of one JSON array, the way Google streams it. */
function writeStream(res, encoded, sse, fault) {
    const frames = sse
        ? encoded.map((e) => `data: ${e}\r\n\r\n`)
        : encoded.map((e, i) => (i === 0 ? `[${e}` : `,\r\n${e}`)).concat([']']);
    let interval = EVENT_GAP_MS;
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
    const step = () => {
        if (closed) return;
        if (!res.headersSent) {
            res.writeHead(200, sse
                ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }
                : { 'content-type': 'application/json; charset=UTF-8', 'x-content-type-options': 'nosniff' });
        }
        // Never let the last frame out before dropping: the stream must look cut.
        if (dropAfter !== null && (i >= dropAfter || i >= frames.length - 1)) {
            if (res.socket) res.socket.destroy();
            return;
        }
        res.write(frames[i++]);
        if (i >= frames.length) {
            res.end();
            return;
        }
        timer = setTimeout(step, interval);
    };
    timer = setTimeout(step, firstDelay);
}

/* ---------- countTokens ---------- */

function countTokens(ctx, route, body) {
    const inner = isObject(body.generateContentRequest) ? body.generateContentRequest : body;
    const problem = contentsProblem(inner.contents, 'CountTokensRequest');
    if (problem) return badRequest(ctx.res, problem);
    const total = promptTokenCount(inner);
    const reply = { totalTokens: total };
    if (route.api === 'vertex') {
        let chars = 0;
        for (const c of inner.contents) chars += partsText(c.parts).replace(/\s/g, '').length;
        reply.totalBillableCharacters = chars;
    }
    reply.promptTokensDetails = [{ modality: 'TEXT', tokenCount: total }];
    sendJSON(ctx.res, 200, reply);
}

/* ---------- embeddings ---------- */

function embedText(content) {
    if (typeof content === 'string') return content;
    if (isObject(content)) return partsText(content.parts);
    return null;
}

function dimsOf(...candidates) {
    for (const d of candidates) if (Number.isInteger(d) && d > 0) return d;
    return 8;
}

/* AI Studio :embedContent -> {embedding: {values}}. */
function studioEmbed(ctx, body) {
    const text = embedText(body.content);
    if (!text) return badRequest(ctx.res, '* EmbedContentRequest.content: content is not specified\n', 'content');
    sendJSON(ctx.res, 200, { embedding: { values: fakeEmbedding(text, dimsOf(body.outputDimensionality)) } });
}

/* AI Studio :batchEmbedContents -> {embeddings: [{values}]}; every request
 * names the model, and it must be the one in the path. */
function studioBatchEmbed(ctx, route, body) {
    const reqs = body.requests;
    if (!Array.isArray(reqs) || reqs.length === 0) {
        return badRequest(ctx.res, '* BatchEmbedContentsRequest.requests: requests is not specified\n', 'requests');
    }
    const embeddings = [];
    for (let i = 0; i < reqs.length; i++) {
        const r = reqs[i];
        if (!isObject(r) || r.model !== `models/${route.model}`) {
            return badRequest(ctx.res, `* BatchEmbedContentsRequest.requests[${i}].model: unexpected model name format\n`,
                `requests[${i}].model`);
        }
        const text = embedText(r.content);
        if (!text) {
            return badRequest(ctx.res, `* BatchEmbedContentsRequest.requests[${i}].content: content is not specified\n`,
                `requests[${i}].content`);
        }
        embeddings.push({ values: fakeEmbedding(text, dimsOf(r.outputDimensionality)) });
    }
    sendJSON(ctx.res, 200, { embeddings });
}

/* Vertex :predict (text-embedding-* models) -> {predictions: [{embeddings: {values, statistics}}], metadata}. */
function vertexPredict(ctx, body) {
    const inst = body.instances;
    if (!Array.isArray(inst) || inst.length === 0) {
        return badRequest(ctx.res, 'Invalid instances: instances must be a non-empty list.', 'instances');
    }
    const params = isObject(body.parameters) ? body.parameters : {};
    let chars = 0;
    const predictions = [];
    for (let i = 0; i < inst.length; i++) {
        const text = isObject(inst[i]) ? embedText(inst[i].content) : null;
        if (!text) return badRequest(ctx.res, `Invalid instance ${i}: "content" is required.`, `instances[${i}].content`);
        chars += text.length;
        predictions.push({
            embeddings: {
                values: fakeEmbedding(text, dimsOf(params.outputDimensionality)),
                statistics: { truncated: false, token_count: Math.max(1, countWords(text)) },
            },
        });
    }
    sendJSON(ctx.res, 200, { predictions, metadata: { billableCharacterCount: chars } });
}

/* Vertex :embedContent (gemini embedding models) -> {embedding: {values}, usageMetadata, truncated}. */
function vertexEmbed(ctx, body) {
    const text = embedText(body.content);
    if (!text) return badRequest(ctx.res, '* EmbedContentRequest.content: content is not specified\n', 'content');
    const cfg = isObject(body.embedContentConfig) ? body.embedContentConfig : {};
    sendJSON(ctx.res, 200, {
        embedding: { values: fakeEmbedding(text, dimsOf(cfg.outputDimensionality, body.outputDimensionality)) },
        usageMetadata: { promptTokenCount: Math.max(1, countWords(text)) },
        truncated: false,
    });
}

/* ---------- auth ---------- */

function studioAuth(ctx) {
    const { req, url, entry, apiKey } = ctx;
    const headerKey = req.headers['x-goog-api-key'];
    const queryKey = url.searchParams.get('key');
    const key = headerKey ?? queryKey;
    entry.had_auth = key !== null && key !== undefined;
    entry.auth_via = headerKey !== undefined ? 'header' : queryKey !== null ? 'query' : null;
    if (!entry.had_auth) {
        // OAuth also works on AI Studio; accept the tokens this fake issued.
        const bearer = bearerToken(req);
        if (bearer !== null) {
            entry.auth_via = 'bearer';
            entry.had_auth = true;
            if (tokenValid(bearer)) return true;
            unauthenticated(ctx.res, 'generativelanguage.googleapis.com', false);
            return false;
        }
        sendGoogleError(ctx.res, 403, 'PERMISSION_DENIED',
            "Method doesn't allow unregistered callers (callers without established identity). " +
            'Please use API Key or other form of API consumer identity to call this API.');
        return false;
    }
    if (apiKey !== null && key !== apiKey) {
        const message = 'API key not valid. Please pass a valid API key.';
        sendGoogleError(ctx.res, 400, 'INVALID_ARGUMENT', message, [
            errorInfo('API_KEY_INVALID', 'generativelanguage.googleapis.com'),
            { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message },
        ]);
        return false;
    }
    return true;
}

function bearerToken(req) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
    return m ? m[1] : null;
}

function tokenValid(token) {
    const exp = issuedTokens.get(token);
    return exp !== undefined && exp > Date.now();
}

function unauthenticated(res, service, missing, message = null) {
    const text = message || (missing
        ? 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie ' +
          'or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.'
        : 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other ' +
          'valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.');
    sendGoogleError(res, 401, 'UNAUTHENTICATED', text,
        [errorInfo(missing ? 'CREDENTIALS_MISSING' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED', service)],
        { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
}

function vertexAuth(ctx) {
    const { req, url, entry, res } = ctx;
    const token = bearerToken(req);
    entry.had_auth = token !== null;
    entry.auth_via = token !== null ? 'bearer' : null;
    if (token === null) {
        if (req.headers['x-goog-api-key'] !== undefined || url.searchParams.has('key')) {
            unauthenticated(res, 'aiplatform.googleapis.com', true,
                'API keys are not supported by this API. Expected OAuth2 access token or other authentication ' +
                'credentials that assert a principal. See https://cloud.google.com/docs/authentication');
        } else {
            unauthenticated(res, 'aiplatform.googleapis.com', true);
        }
        return false;
    }
    if (!tokenValid(token)) {
        unauthenticated(res, 'aiplatform.googleapis.com', false);
        return false;
    }
    return true;
}

/* ---------- the OAuth2 token endpoint ---------- */

function oauthError(res, error, description) {
    sendJSON(res, 400, { error, error_description: description }, { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate' });
}

function tokenEndpoint(ctx) {
    const { req, res, raw, entry } = ctx;
    entry.auth_ok = false;
    if (req.method !== 'POST') {
        sendJSON(res, 405, { error: 'invalid_request', error_description: 'Only POST is supported.' });
        return;
    }
    const form = new URLSearchParams(raw);
    const grantType = form.get('grant_type');
    const assertion = form.get('assertion');
    entry.body = { grant_type: grantType, assertion: assertion ? '(jwt)' : null };
    if (grantType === null) return oauthError(res, 'invalid_request', 'Missing required parameter: grant_type');
    if (grantType !== JWT_GRANT) return oauthError(res, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
    if (!assertion) return oauthError(res, 'invalid_request', 'Missing required parameter: assertion');

    const segs = assertion.split('.');
    let header;
    let claims;
    try {
        if (segs.length !== 3) throw new Error('segments');
        header = base64urlJSON(segs[0]);
        claims = base64urlJSON(segs[1]);
    } catch {
        return oauthError(res, 'invalid_grant', 'Invalid JWT: Unable to parse the assertion.');
    }
    entry.body.jwt_header = header;
    entry.body.claims = claims;
    if (!isObject(header) || header.alg !== 'RS256') {
        return oauthError(res, 'invalid_grant', 'Invalid JWT: the signing algorithm must be RS256.');
    }
    if (!isObject(claims) || claims.iss !== CLIENT_EMAIL) {
        return oauthError(res, 'invalid_grant', 'Invalid grant: account not found');
    }
    const signed = Buffer.from(`${segs[0]}.${segs[1]}`);
    const signature = Buffer.from(segs[2], 'base64url');
    if (!crypto.verify('sha256', signed, serviceKeys().publicKey, signature)) {
        return oauthError(res, 'invalid_grant', 'Invalid JWT Signature.');
    }
    if (claims.aud !== tokenUri(req) && claims.aud !== GOOGLE_TOKEN_URL) {
        return oauthError(res, 'invalid_grant', `Invalid JWT: Failed audience check. The expected audience is ${tokenUri(req)}.`);
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = claims;
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= iat || exp - iat > 3600 ||
        iat > now + 300 || exp < now) {
        return oauthError(res, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and ' +
            'in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes(CLOUD_PLATFORM_SCOPE)) {
        return oauthError(res, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    }
    tokensIssued++;
    const token = `ya29.c.fake${tokensIssued}-${crypto.randomBytes(24).toString('base64url')}`;
    issuedTokens.set(token, Date.now() + TOKEN_LIFETIME_S * 1000);
    entry.auth_ok = true;
    sendJSON(res, 200, { access_token: token, expires_in: TOKEN_LIFETIME_S, token_type: 'Bearer' },
        { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate' });
}

/* ---------- control routes ---------- */

function controlPrefix(pathname) {
    return CONTROL_PREFIXES.find((p) => pathname.startsWith(p)) ?? null;
}

function control(ctx) {
    const { req, res, url } = ctx;
    const p = url.pathname.slice(controlPrefix(url.pathname).length);
    if (p === 'service-account.json' && req.method === 'GET') return sendJSON(res, 200, serviceAccountJSON(req));
    if (p === 'tokens' && req.method === 'GET') {
        let active = 0;
        for (const exp of issuedTokens.values()) if (exp > Date.now()) active++;
        return sendJSON(res, 200, { issued: tokensIssued, active });
    }
    if (p === 'revoke' && req.method === 'POST') {
        issuedTokens.clear();
        return sendJSON(res, 200, { ok: true });
    }
    sendJSON(res, 404, { error: { message: `Unknown control route ${req.method} ${url.pathname}` } });
}

/* ---------- module interface ---------- */

export function matches(method, pathname) {
    // Every Gemini model route is a POST; GET /v1/models/<id> stays OpenAI's.
    if (method === 'POST' && (STUDIO_RE.test(pathname) || VERTEX_RE.test(pathname))) return true;
    return pathname === TOKEN_PATH || controlPrefix(pathname) !== null;
}

const STUDIO_METHODS = ['generateContent', 'streamGenerateContent', 'countTokens', 'embedContent', 'batchEmbedContents'];
const VERTEX_METHODS = ['generateContent', 'streamGenerateContent', 'countTokens', 'predict', 'embedContent'];

export function handle(ctx) {
    const { req, res, url, raw, entry } = ctx;
    if (controlPrefix(url.pathname) !== null) return control(ctx);
    if (url.pathname === TOKEN_PATH) return tokenEndpoint(ctx);

    // Secrets stay out of the log.
    delete entry.headers['x-goog-api-key'];
    if (url.searchParams.has('key')) {
        const q = new URLSearchParams(url.search);
        q.set('key', 'REDACTED');
        entry.query = `?${q.toString()}`;
    }

    let route;
    let m = VERTEX_RE.exec(url.pathname);
    if (m) {
        route = { api: 'vertex', version: m[1], project: decodeURIComponent(m[2]),
            location: decodeURIComponent(m[3]), model: decodeURIComponent(m[4]), rpc: m[5] };
    } else {
        m = STUDIO_RE.exec(url.pathname);
        route = { api: 'gemini', version: m[1], model: decodeURIComponent(m[2]), rpc: m[3] };
    }
    entry.api = route.api;
    entry.rpc = route.rpc;
    entry.model = route.model;
    entry.stream = route.rpc === 'streamGenerateContent';
    if (route.api === 'vertex') {
        entry.project = route.project;
        entry.location = route.location;
    }

    entry.auth_ok = route.api === 'vertex' ? vertexAuth(ctx) : studioAuth(ctx);
    if (!entry.auth_ok) return;

    const known = route.api === 'vertex' ? VERTEX_METHODS : STUDIO_METHODS;
    if (!known.includes(route.rpc) || req.method !== 'POST') {
        sendGoogleError(res, 404, 'NOT_FOUND', `Method not found: ${req.method} ${url.pathname}`);
        return;
    }
    if (route.api === 'vertex' && route.project !== PROJECT_ID) {
        const resource = `//aiplatform.googleapis.com/projects/${route.project}/locations/${route.location}` +
            `/publishers/google/models/${route.model}`;
        sendGoogleError(res, 403, 'PERMISSION_DENIED',
            `Permission 'aiplatform.endpoints.predict' denied on resource '${resource}' (or it may not exist).`,
            [errorInfo('IAM_PERMISSION_DENIED', 'aiplatform.googleapis.com',
                { permission: 'aiplatform.endpoints.predict', resource: resource.slice(2) })]);
        return;
    }

    let body;
    try {
        body = JSON.parse(raw);
    } catch (e) {
        badRequest(res, `Invalid JSON payload received. ${e.message}`);
        return;
    }
    entry.body = body;
    if (!isObject(body)) {
        badRequest(res, 'Invalid JSON payload received. Expected an object.');
        return;
    }

    const fault = parseFault(route.model);
    if (fault.name === 'hang') return; // the 'close' handler in openai.mjs records the give-up
    if (fault.name === 'empty') {
        res.writeHead(fault.arg || 503, { 'content-length': '0' });
        res.end();
        return;
    }
    if (fault.name === 'fault-500') {
        sendGoogleError(res, 500, 'INTERNAL', 'An internal error has occurred. Please retry or report in ' +
            'https://developers.generativeai.google/guide/troubleshooting (fake upstream fault-500)');
        return;
    }
    if (fault.name === 'fault-429') {
        sendGoogleError(res, 429, 'RESOURCE_EXHAUSTED',
            'You exceeded your current quota, please check your plan and billing details. (fake upstream fault-429)', [
                {
                    '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
                    violations: [{
                        quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
                        quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
                        quotaDimensions: { location: 'global', model: route.model },
                        quotaValue: '10',
                    }],
                },
                { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' },
            ], { 'retry-after': '7' });
        return;
    }
    if (fault.name === 'fault-400') {
        const message = "Invalid value at 'contents[0]': rejected by the fake upstream (fault-400).";
        badRequest(res, message, 'contents[0]');
        return;
    }
    if (fault.name === 'overloaded') {
        sendGoogleError(res, 503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
        return;
    }
    if (fault.name === 'model-not-found') {
        sendGoogleError(res, 404, 'NOT_FOUND', route.api === 'vertex'
            ? `Publisher Model \`projects/${route.project}/locations/${route.location}/publishers/google/models/${route.model}\` ` +
              'was not found or your project does not have access to it.'
            : `models/${route.model} is not found for API version ${route.version}, or is not supported for ${route.rpc}. ` +
              'Call ListModels to see the list of available models and their supported methods.');
        return;
    }

    switch (route.rpc) {
        case 'generateContent':
        case 'streamGenerateContent': {
            const problem = contentsProblem(body.contents);
            if (problem) return badRequest(res, problem);
            return generate(ctx, route, body, fault, route.rpc === 'streamGenerateContent');
        }
        case 'countTokens':
            return countTokens(ctx, route, body);
        case 'embedContent':
            return route.api === 'vertex' ? vertexEmbed(ctx, body) : studioEmbed(ctx, body);
        case 'batchEmbedContents':
            return studioBatchEmbed(ctx, route, body);
        case 'predict':
            return vertexPredict(ctx, body);
        default:
            return sendGoogleError(res, 404, 'NOT_FOUND', `Method not found: ${route.rpc}`);
    }
}
