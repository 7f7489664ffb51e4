// Fake AWS Bedrock Runtime upstream, loaded by tests/fakes/openai.mjs.
//
// Routes (modelId is one URL-encoded path segment, e.g.
// anthropic.claude-3-haiku-20240307-v1%3A0 or an ARN with %3A and %2F):
//   POST /model/{modelId}/converse          Converse, JSON in and out
//   POST /model/{modelId}/converse-stream   ConverseStream: 200 with
//       content-type application/vnd.amazon.eventstream; binary frames
//       (total length, headers length, prelude CRC32, headers, JSON payload,
//       message CRC32), events messageStart, contentBlockStart (tool use only,
//       as Bedrock does: text blocks start with their first delta),
//       contentBlockDelta, contentBlockStop, messageStop, metadata; every
//       payload carries Bedrock's "p" padding field. In-band errors are frames
//       with :message-type exception and :exception-type.
//   POST /model/{modelId}/invoke            embeddings and rerank only: Titan
//       ({inputText} -> {embedding, inputTextTokenCount}) and Cohere embed
//       ({texts, input_type} -> {embeddings, id, response_type, texts}).
//       Vectors are fakeEmbedding(text, dims) from ../openai.mjs, dims 8 unless
//       the body asks (Titan v2 "dimensions", Cohere "output_dimension").
//       A model id containing "rerank" (cohere.rerank-v3-5:0,
//       amazon.rerank-v1:0) reranks: {query, documents (strings or JSON
//       objects, ranked by their string values), top_n, max_tokens_per_doc,
//       api_version (an integer >= 2, required for Cohere's)} -> Cohere's
//       {id, results: [{index, relevance_score}]} (Amazon's: {results}), best
//       first by rerankOrder() of ../openai.mjs, top_n of them; a missing
//       query or documents, an empty documents list or a bad top_n is a 400
//       ValidationException "Malformed input request: ...".
//
// Auth: AWS Signature Version 4, verified for real (node:crypto, written from
// the SigV4 spec): the canonical request is rebuilt from the raw request
// (method; the path as received, normalised and URI-encoded once more, so a
// model id's %3A is signed as %253A, like AWS does for non-S3 services; the
// sorted re-encoded query; the SignedHeaders as received; the SHA-256 of the
// body actually received), with the scope date/region/bedrock/aws4_request.
// x-amz-date must be within 15 minutes of now, "host" must be signed, and the
// session-token key needs x-amz-security-token. The fake's credentials are the
// exported constants below and do not depend on --api-key. Failures answer as
// AWS does: 403 + x-amzn-ErrorType + {"message"}: InvalidSignatureException
// (wrong signature, with the canonical request AWS expected; expired date),
// UnrecognizedClientException (unknown key or bad session token),
// MissingAuthenticationTokenException (no Authorization),
// IncompleteSignatureException (malformed Authorization). Bedrock API keys
// (Authorization: Bearer K) are accepted too: K must equal --api-key, any K
// when the fake has no --api-key.
//
// Behaviour (shared with the other provider fakes): the answer is "Echo: " +
// the last user message's text blocks joined, plus " [image image/<format>
// <bytes>]" per inline image (" [image-url s3://...]" for an S3 source); a last
// user turn made only of tool results answers "Echo: tool result: " + the first
// result's text. With toolConfig.tools and "call tool" in the last user text
// the answer is one toolUse (toolChoice.tool.name, else the first tool) with
// input {"text": <last user text>}, stopReason tool_use; streamed as
// contentBlockStart + input fragments of 8 characters. A system text saying
// "respond in JSON" (Bedrock has no JSON mode) makes the text
// JSON.stringify({echo: <last user text>}). inferenceConfig.maxTokens below the
// word count cuts the words, stopReason max_tokens. Streams send one word per
// contentBlockDelta, one write per frame, 5 ms apart. Usage: inputTokens = sum
// over system blocks and messages of (3 + words), outputTokens = answer words
// (tool call: words of the input JSON + 1), cacheReadInputTokens = 2 when the
// model id contains "cached" (else 0), cacheWriteInputTokens = 0, totalTokens
// = all four summed (Bedrock counts cache reads outside inputTokens).
// metrics.latencyMs is the real elapsed time.
//
// Faults, by model id (the last "/" part of an ARN; an optional "-<number>"
// suffix tunes timings):
//   fault-500         500 InternalServerException
//   fault-429         429 ThrottlingException, retry-after: 7
//   fault-400         400 ValidationException
//   overloaded        503 ServiceUnavailableException
//   context-too-long  400 ValidationException "Input is too long for requested model."
//   content-filter    200 with stopReason content_filtered and a short refusal text
//   drop-mid-stream   two frames, then the socket is destroyed (non-stream: half the body)
//   slow-stream[-MS]  one frame every MS (300) ms for about 3 s (non-stream: answers late)
//   slow-first-byte[-MS]  headers and first frame after MS (1500) ms
//   hang              never answers
//   bad-event         the 2nd frame has valid framing but a payload that is not JSON
//   bad-crc           the 2nd frame's message CRC is wrong
//   stream-error      two frames, then an in-band modelStreamErrorException frame
//   stream-throttled  two frames, then an in-band throttlingException frame
//
// Exports: the credential constants, encodeEventStreamMessage(headers, payload)
// and decodeEventStreamMessages(buffer) for other tests.

import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { fakeEmbedding, rerankOrder } from '../openai.mjs';

export const ACCESS_KEY_ID = 'AKIDSLUICEFAKE0001';
export const SECRET_ACCESS_KEY = 'sluice/fake/secret/key/0001';
export const SESSION_ACCESS_KEY_ID = 'ASIASLUICEFAKE0002';
export const SESSION_SECRET_ACCESS_KEY = 'sluice/fake/secret/key/0002';
export const SESSION_TOKEN = 'sluice-fake-session-token';

const CREDENTIALS = new Map([
    [ACCESS_KEY_ID, { secret: SECRET_ACCESS_KEY, sessionToken: null }],
    [SESSION_ACCESS_KEY_ID, { secret: SESSION_SECRET_ACCESS_KEY, sessionToken: SESSION_TOKEN }],
]);

const SERVICE = 'bedrock';
const MAX_SKEW_MS = 15 * 60 * 1000;
const EVENT_INTERVAL_MS = 5;
const SLOW_STREAM_EVENTS = 10;
const ARG_FRAGMENT = 8;
const BEDROCK_NS = 'http://internal.amazon.com/coral/com.amazon.bedrock/';
const CORAL_NS = 'http://internal.amazon.com/coral/com.amazon.coral.service/';
const ROUTE = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/;
const IMAGE_FORMATS = ['png', 'jpeg', 'gif', 'webp'];
const CONTENT_FILTER_TEXT = 'Sorry, the model cannot answer this question.';

/* ---------- CRC32 and event-stream framing ---------- */

let crcTable = null;
/* zlib.crc32 only exists from Node 20.15 / 22.2; the table is the fallback. */
function crc32(buf) {
    if (typeof zlib.crc32 === 'function') return zlib.crc32(buf) >>> 0;
    if (!crcTable) {
        crcTable = new Uint32Array(256);
        for (let n = 0; n < 256; n++) {
            let c = n;
            for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
            crcTable[n] = c >>> 0;
        }
    }
    let crc = 0xffffffff;
    for (let i = 0; i < buf.length; i++) crc = crcTable[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
}

function encodeHeaderValue(value) {
    if (typeof value === 'string') {
        const v = Buffer.from(value, 'utf8');
        const out = Buffer.alloc(3 + v.length);
        out[0] = 7;
        out.writeUInt16BE(v.length, 1);
        v.copy(out, 3);
        return out;
    }
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
        const v = Buffer.from(value);
        const out = Buffer.alloc(3 + v.length);
        out[0] = 6;
        out.writeUInt16BE(v.length, 1);
        v.copy(out, 3);
        return out;
    }
    if (typeof value === 'boolean') return Buffer.from([value ? 0 : 1]);
    if (Number.isInteger(value)) {
        const out = Buffer.alloc(5);
        out[0] = 4;
        out.writeInt32BE(value, 1);
        return out;
    }
    throw new TypeError(`unsupported event-stream header value: ${value}`);
}

/* One event-stream message. headers: {name: string | Buffer | boolean | int32},
 * in order; payload: Buffer or string. */
export function encodeEventStreamMessage(headers, payload = Buffer.alloc(0)) {
    const parts = [];
    for (const [name, value] of Object.entries(headers)) {
        const n = Buffer.from(name, 'utf8');
        parts.push(Buffer.from([n.length]), n, encodeHeaderValue(value));
    }
    const hdr = Buffer.concat(parts);
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const total = 12 + hdr.length + body.length + 4;
    const out = Buffer.alloc(total);
    out.writeUInt32BE(total, 0);
    out.writeUInt32BE(hdr.length, 4);
    out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
    hdr.copy(out, 12);
    body.copy(out, 12 + hdr.length);
    // The message CRC covers everything before it, prelude CRC included.
    out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
    return out;
}

/* Splits a buffer of whole messages into [{headers, payload, crcOk}] (string
 * headers only, which is all Bedrock sends). */
export function decodeEventStreamMessages(buf) {
    const out = [];
    let off = 0;
    while (off + 16 <= buf.length) {
        const total = buf.readUInt32BE(off);
        const hlen = buf.readUInt32BE(off + 4);
        const msg = buf.subarray(off, off + total);
        const crcOk = msg.readUInt32BE(8) === crc32(msg.subarray(0, 8)) &&
            msg.readUInt32BE(total - 4) === crc32(msg.subarray(0, total - 4));
        const headers = {};
        let h = 12;
        while (h < 12 + hlen) {
            const nlen = msg[h];
            const name = msg.toString('utf8', h + 1, h + 1 + nlen);
            h += 1 + nlen;
            const type = msg[h];
            if (type !== 7 && type !== 6) throw new Error(`header type ${type} not supported`);
            const vlen = msg.readUInt16BE(h + 1);
            headers[name] = type === 7 ? msg.toString('utf8', h + 3, h + 3 + vlen) : msg.subarray(h + 3, h + 3 + vlen);
            h += 3 + vlen;
        }
        out.push({ headers, payload: msg.subarray(12 + hlen, total - 4), crcOk });
        off += total;
    }
    return out;
}

function eventFrame(type, obj) {
    return encodeEventStreamMessage(
        { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
        JSON.stringify(obj));
}

function exceptionFrame(type, obj) {
    return encodeEventStreamMessage(
        { ':exception-type': type, ':content-type': 'application/json', ':message-type': 'exception' },
        JSON.stringify(obj));
}

/* Bedrock pads every stream payload with a "p" field of varying length so
 * event sizes do not reveal the tokens; clients must ignore it. */
const PAD_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function pad(i) {
    return PAD_CHARS.slice(0, 1 + ((i * 7) % PAD_CHARS.length));
}

/* ---------- AWS-style replies ---------- */

function requestId() {
    return crypto.randomUUID();
}

function sendAws(res, status, obj, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-amzn-RequestId': requestId(),
        ...headers,
    });
    res.end(body);
}

/* Bedrock's error form: status, x-amzn-ErrorType "<Code>:<namespace>", {"message"}. */
function sendAwsError(res, status, code, message, { ns = BEDROCK_NS, headers = {}, extra = {} } = {}) {
    sendAws(res, status, { message, ...extra }, { 'x-amzn-ErrorType': `${code}:${ns}`, ...headers });
}

/* ---------- SigV4 verification ---------- */

/* RFC 3986 encoding as AWS uses it: everything but A-Z a-z 0-9 - _ . ~ */
function uriEncode(s) {
    return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s) {
    try {
        return decodeURIComponent(s);
    } catch {
        return s;
    }
}

/* The path as received (still percent-encoded), with empty, "." and ".."
 * segments resolved, encoded once more: AWS's rule for non-S3 services. */
function canonicalPath(rawPath) {
    const segs = [];
    for (const s of rawPath.split('/')) {
        if (s === '' || s === '.') continue;
        if (s === '..') segs.pop();
        else segs.push(s);
    }
    const norm = `/${segs.join('/')}${segs.length > 0 && rawPath.endsWith('/') ? '/' : ''}`;
    return uriEncode(norm).replace(/%2F/g, '/');
}

function canonicalQuery(rawQuery) {
    if (!rawQuery) return '';
    const pairs = rawQuery.split('&').filter((p) => p !== '').map((p) => {
        const i = p.indexOf('=');
        const k = i < 0 ? p : p.slice(0, i);
        const v = i < 0 ? '' : p.slice(i + 1);
        return [uriEncode(safeDecode(k)), uriEncode(safeDecode(v))];
    });
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(v) {
    const s = Array.isArray(v) ? v.join(',') : String(v);
    return s.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim();
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

/* "20240101T000000Z" -> Date, or null. */
function parseAmzDate(s) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
    if (!m) return null;
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

const amzDate = (d) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');

/* Checks the request's authentication. Returns null when it is fine, else
 * {status, code, message, ns}. */
function checkAuth(req, rawBuffer, apiKey) {
    const auth = req.headers.authorization;
    const incomplete = (message) => ({ status: 403, code: 'IncompleteSignatureException', message, ns: CORAL_NS });
    const invalidSig = (message) => ({ status: 403, code: 'InvalidSignatureException', message, ns: CORAL_NS });
    const unrecognized = () => ({
        status: 403, code: 'UnrecognizedClientException',
        message: 'The security token included in the request is invalid.', ns: CORAL_NS,
    });
    if (auth === undefined || auth === '') {
        return { status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token', ns: CORAL_NS };
    }
    const bearer = /^Bearer\s+(.+)$/.exec(auth);
    if (bearer) {
        // A Bedrock API key.
        return apiKey === null || bearer[1].trim() === apiKey ? null : unrecognized();
    }
    const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(auth);
    if (!m) {
        return incomplete(`Authorization header requires 'Credential' parameter. Authorization header requires ` +
            `'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=${auth}`);
    }
    const params = {};
    for (const part of m[1].split(',')) {
        const i = part.indexOf('=');
        if (i > 0) params[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
    const missing = ['Credential', 'Signature', 'SignedHeaders'].filter((k) => !params[k]);
    if (missing.length) {
        return incomplete(missing.map((k) => `Authorization header requires '${k}' parameter.`).join(' ') +
            ` Authorization=${auth}`);
    }
    const scopeParts = params.Credential.split('/');
    if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') {
        return incomplete(`Credential should be scoped to a valid region. Authorization=${auth}`);
    }
    const [accessKeyId, scopeDate, region, service] = scopeParts;
    const cred = CREDENTIALS.get(accessKeyId);
    if (!cred) return unrecognized();
    const token = req.headers['x-amz-security-token'];
    if ((cred.sessionToken ?? undefined) !== token) return unrecognized();
    if (service !== SERVICE) return invalidSig(`Credential should be scoped to correct service: '${SERVICE}'. `);

    const dateHeader = req.headers['x-amz-date'];
    let when;
    let longDate;
    if (dateHeader !== undefined) {
        when = parseAmzDate(dateHeader);
        longDate = dateHeader;
    } else if (req.headers.date !== undefined) {
        when = new Date(req.headers.date);
        longDate = Number.isNaN(when.getTime()) ? '' : amzDate(when);
    } else {
        return incomplete(`Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=${auth}`);
    }
    if (!when || Number.isNaN(when.getTime())) {
        return incomplete(`Date must be in ISO-8601 'basic format'. Got '${dateHeader ?? req.headers.date}'. See http://en.wikipedia.org/wiki/ISO_8601`);
    }
    if (scopeDate !== longDate.slice(0, 8)) {
        return invalidSig(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
            `'${scopeDate}' != '${longDate.slice(0, 8)}', from '${longDate}'.`);
    }
    const now = new Date();
    if (when.getTime() < now.getTime() - MAX_SKEW_MS) {
        return invalidSig(`Signature expired: ${longDate} is now earlier than ` +
            `${amzDate(new Date(now.getTime() - MAX_SKEW_MS))} (${amzDate(now)} - 15 min.)`);
    }
    if (when.getTime() > now.getTime() + MAX_SKEW_MS) {
        return invalidSig(`Signature not yet current: ${longDate} is still later than ` +
            `${amzDate(new Date(now.getTime() + MAX_SKEW_MS))} (${amzDate(now)} + 15 min.)`);
    }

    const signed = params.SignedHeaders.split(';');
    if (!signed.includes('host')) {
        return invalidSig("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }
    const q = req.url.indexOf('?');
    const rawPath = q < 0 ? req.url : req.url.slice(0, q);
    const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
    // The hash of the body actually received: a client whose
    // x-amz-content-sha256 lies about the body fails the comparison.
    const canonical = [
        req.method,
        canonicalPath(rawPath),
        canonicalQuery(rawQuery),
        ...signed.map((h) => `${h}:${req.headers[h] === undefined ? '' : headerValue(req.headers[h])}`),
        '',
        params.SignedHeaders,
        sha256hex(rawBuffer),
    ].join('\n');
    const scope = `${scopeDate}/${region}/${service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', longDate, scope, sha256hex(Buffer.from(canonical, 'utf8'))].join('\n');
    let key = hmac(`AWS4${cred.secret}`, scopeDate);
    for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
    const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
    const given = Buffer.from(params.Signature);
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
        return invalidSig('The request signature we calculated does not match the signature you provided. ' +
            'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' +
            `\n\nThe Canonical String for this request should have been\n'${canonical}'\n\n` +
            `The String-to-Sign should have been\n'${stringToSign}'\n`);
    }
    return null;
}

/* ---------- request reading ---------- */

function countWords(text) {
    return (text.match(/\S+/g) || []).length;
}

function splitWords(text) {
    return text.match(/\S+\s*|\s+/g) || [];
}

/* A model id's fault, looking at the last "/" part of an ARN. */
function parseFault(modelId) {
    const tail = modelId.slice(modelId.lastIndexOf('/') + 1);
    const m = /^(fault-500|fault-429|fault-400|overloaded|context-too-long|content-filter|drop-mid-stream|slow-stream|slow-first-byte|hang|bad-event|bad-crc|stream-error|stream-throttled)(?:-(\d+))?$/.exec(tail);
    return m ? { name: m[1], arg: m[2] === undefined ? null : Number(m[2]) } : { name: null, arg: null };
}

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const blocks = (content) => (Array.isArray(content) ? content.filter(isObject) : []);
const textOfBlocks = (content) =>
    blocks(content).filter((b) => typeof b.text === 'string').map((b) => b.text).join('');

function toolResultText(tr) {
    return blocks(tr.content).map((b) => {
        if (typeof b.text === 'string') return b.text;
        if (b.json !== undefined) return JSON.stringify(b.json);
        return '';
    }).join('');
}

function imageNote(img) {
    const src = isObject(img.source) ? img.source : {};
    if (isObject(src.s3Location)) return ` [image-url ${src.s3Location.uri}]`;
    const bytes = typeof src.bytes === 'string' ? Buffer.from(src.bytes, 'base64').length : 0;
    return ` [image image/${img.format} ${bytes}]`;
}

/* What the answer echoes: {userText (for tools and JSON), echo (the text after "Echo: ")}. */
function lastUserTurn(messages) {
    for (let i = messages.length - 1; i >= 0; i--) {
        const m = messages[i];
        if (!m || m.role !== 'user') continue;
        const bs = blocks(m.content);
        const userText = textOfBlocks(bs);
        const images = bs.filter((b) => isObject(b.image)).map((b) => imageNote(b.image)).join('');
        const hasText = bs.some((b) => typeof b.text === 'string');
        const tr = bs.find((b) => isObject(b.toolResult));
        if (!hasText && tr) return { userText, echo: `tool result: ${toolResultText(tr.toolResult)}` };
        return { userText, echo: userText + images };
    }
    return { userText: '', echo: '' };
}

function inputTokens(body) {
    let n = 0;
    for (const s of blocks(body.system)) if (typeof s.text === 'string') n += 3 + countWords(s.text);
    for (const m of body.messages) {
        let words = countWords(textOfBlocks(m.content));
        for (const b of blocks(m.content)) if (isObject(b.toolResult)) words += countWords(toolResultText(b.toolResult));
        n += 3 + words;
    }
    return n;
}

/* The Converse checks Bedrock makes before calling a model; null when fine. */
function validateConverse(body) {
    if (!Array.isArray(body.messages)) {
        return ("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null");
    }
    if (body.messages.length === 0 || !isObject(body.messages[0]) || body.messages[0].role !== 'user') {
        return ('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
    }
    let usesTools = false;
    for (let i = 0; i < body.messages.length; i++) {
        const m = body.messages[i];
        if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) {
            return (`1 validation error detected: Value '${m && m.role}' at 'messages.${i + 1}.member.role' failed to ` +
                'satisfy constraint: Member must satisfy enum value set: [user, assistant]');
        }
        if (i > 0 && body.messages[i - 1].role === m.role) {
            return ('A conversation must alternate between user and assistant roles. Make sure the conversation ' +
                'alternates between user and assistant roles and try again.');
        }
        if (!Array.isArray(m.content) || m.content.length === 0) {
            return (`1 validation error detected: Value at 'messages.${i + 1}.member.content' failed to satisfy ` +
                'constraint: Member must have length greater than or equal to 1');
        }
        for (const b of m.content) {
            if (!isObject(b) || Object.keys(b).length !== 1) {
                return ('Malformed input request: content block must have exactly one member, please reformat your input and try again.');
            }
            if (b.toolUse !== undefined || b.toolResult !== undefined) usesTools = true;
            if (b.image !== undefined) {
                const img = b.image;
                if (!isObject(img) || !IMAGE_FORMATS.includes(img.format)) {
                    return (`1 validation error detected: Value '${img && img.format}' at 'messages.${i + 1}.member.content.` +
                        'member.image.format\' failed to satisfy constraint: Member must satisfy enum value set: [gif, jpeg, png, webp]');
                }
                if (!isObject(img.source) || (typeof img.source.bytes !== 'string' && !isObject(img.source.s3Location))) {
                    return ('The image source is invalid: provide bytes or an s3Location.');
                }
            }
        }
    }
    const tools = isObject(body.toolConfig) ? body.toolConfig.tools : undefined;
    if (body.toolConfig !== undefined && (!Array.isArray(tools) || tools.length === 0)) {
        return ("1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: " +
            'Member must have length greater than or equal to 1');
    }
    if (usesTools && body.toolConfig === undefined) {
        return ('The toolConfig field must be defined when using toolUse and toolResult content blocks.');
    }
    const ic = body.inferenceConfig;
    if (ic !== undefined && isObject(ic) && ic.maxTokens !== undefined && (!Number.isInteger(ic.maxTokens) || ic.maxTokens < 1)) {
        return (`1 validation error detected: Value '${ic.maxTokens}' at 'inferenceConfig.maxTokens' failed to ` +
            'satisfy constraint: Member must have value greater than or equal to 1');
    }
    return null;
}

function chooseTool(body) {
    const tc = body.toolConfig.toolChoice;
    if (isObject(tc) && isObject(tc.tool) && typeof tc.tool.name === 'string') return tc.tool.name;
    const t = body.toolConfig.tools.find((x) => isObject(x) && isObject(x.toolSpec) && typeof x.toolSpec.name === 'string');
    return t ? t.toolSpec.name : 'unknown_tool';
}

function wantsJson(body) {
    return blocks(body.system).some((s) => typeof s.text === 'string' && /respond in JSON/i.test(s.text));
}

let toolCounter = 0;
function toolUseId() {
    const h = crypto.createHash('sha256').update(`tool:${++toolCounter}:${process.pid}`).digest('base64url');
    return `tooluse_${h.slice(0, 22)}`;
}

/* ---------- the answer ---------- */

function buildAnswer(body, modelId, fault) {
    const { userText, echo } = lastUserTurn(body.messages);
    let text = wantsJson(body) ? JSON.stringify({ echo: userText }) : `Echo: ${echo}`;
    let stopReason = 'end_turn';
    let pieces = splitWords(text);
    const limit = isObject(body.inferenceConfig) && Number.isInteger(body.inferenceConfig.maxTokens)
        ? body.inferenceConfig.maxTokens : null;
    if (limit !== null && pieces.length > limit) {
        pieces = pieces.slice(0, limit);
        text = pieces.join('');
        stopReason = 'max_tokens';
    }
    let toolUse = null;
    const tools = isObject(body.toolConfig) && Array.isArray(body.toolConfig.tools) ? body.toolConfig.tools : [];
    if (fault.name === 'content-filter') {
        text = CONTENT_FILTER_TEXT;
        pieces = splitWords(text);
        stopReason = 'content_filtered';
    } else if (tools.length > 0 && /call tool/i.test(userText)) {
        toolUse = { toolUseId: toolUseId(), name: chooseTool(body), input: { text: userText } };
        stopReason = 'tool_use';
    }
    const inTok = inputTokens(body);
    const outTok = toolUse ? countWords(JSON.stringify(toolUse.input)) + 1 : countWords(text);
    const cacheRead = modelId.includes('cached') ? 2 : 0;
    const usage = {
        inputTokens: inTok,
        outputTokens: outTok,
        totalTokens: inTok + outTok + cacheRead,
        cacheReadInputTokens: cacheRead,
        cacheWriteInputTokens: 0,
    };
    return { text, pieces, stopReason, toolUse, usage };
}

function converse(ctx, body, modelId, fault, started) {
    const { res } = ctx;
    const a = buildAnswer(body, modelId, fault);
    const content = a.toolUse ? [{ toolUse: a.toolUse }] : [{ text: a.text }];
    const reply = () => ({
        output: { message: { role: 'assistant', content } },
        stopReason: a.stopReason,
        usage: a.usage,
        metrics: { latencyMs: Date.now() - started },
    });
    if (fault.name === 'drop-mid-stream') {
        const s = JSON.stringify(reply());
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'x-amzn-RequestId': requestId() });
        res.write(s.slice(0, Math.floor(s.length / 2)), () => res.socket && res.socket.destroy());
        return;
    }
    let delay = 0;
    if (fault.name === 'slow-first-byte') delay = fault.arg ?? 1500;
    if (fault.name === 'slow-stream') delay = (fault.arg ?? 300) * Math.max(SLOW_STREAM_EVENTS, a.pieces.length);
    if (delay > 0) {
        const t = setTimeout(() => sendAws(res, 200, reply()), delay);
        res.on('close', () => clearTimeout(t));
    } else {
        sendAws(res, 200, reply());
    }
}

function converseStream(ctx, body, modelId, fault, started) {
    const { res } = ctx;
    const a = buildAnswer(body, modelId, fault);
    // Frames as thunks, so metadata's latency is measured when it is sent.
    const evs = [];
    let n = 0;
    const ev = (type, obj) => {
        const i = n++;
        evs.push(() => eventFrame(type, { ...obj, p: pad(i) }));
    };
    ev('messageStart', { role: 'assistant' });
    if (a.toolUse) {
        ev('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: a.toolUse.toolUseId, name: a.toolUse.name } } });
        const args = JSON.stringify(a.toolUse.input);
        for (let i = 0; i < args.length; i += ARG_FRAGMENT) {
            ev('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: args.slice(i, i + ARG_FRAGMENT) } } });
        }
    } else {
        for (const p of a.pieces) ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: p } });
    }
    if (fault.name === 'slow-stream') {
        // Empty deltas keep the stream going for about 3 s whatever the text.
        while (evs.length < SLOW_STREAM_EVENTS) ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: '' } });
    }
    ev('contentBlockStop', { contentBlockIndex: 0 });
    ev('messageStop', { stopReason: a.stopReason });
    const mi = n++;
    evs.push(() => eventFrame('metadata', {
        metrics: { latencyMs: Date.now() - started }, p: pad(mi), usage: a.usage,
    }));

    if (fault.name === 'bad-event') {
        // Valid framing and CRCs around a payload that is not JSON.
        evs[1] = () => encodeEventStreamMessage(
            { ':event-type': 'contentBlockDelta', ':content-type': 'application/json', ':message-type': 'event' },
            '{"contentBlockIndex":0,"delta":{"text":');
    }
    if (fault.name === 'bad-crc') {
        const orig = evs[1];
        evs[1] = () => {
            const f = Buffer.from(orig());
            f.writeUInt32BE((f.readUInt32BE(f.length - 4) ^ 0xdeadbeef) >>> 0, f.length - 4);
            return f;
        };
    }
    let endAfter = null;
    if (fault.name === 'stream-error') {
        evs.splice(2, evs.length, () => exceptionFrame('modelStreamErrorException', {
            message: 'The model encountered an error while streaming its response. (fake upstream stream-error)',
            originalStatusCode: 500,
            originalMessage: 'Internal server error',
        }));
        endAfter = evs.length;
    }
    if (fault.name === 'stream-throttled') {
        evs.splice(2, evs.length, () => exceptionFrame('throttlingException', {
            message: 'Too many requests, please wait before trying again. (fake upstream stream-throttled)',
        }));
        endAfter = evs.length;
    }

    const interval = fault.name === 'slow-stream' ? fault.arg ?? 300 : EVENT_INTERVAL_MS;
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
            res.writeHead(200, {
                'content-type': 'application/vnd.amazon.eventstream',
                'x-amzn-RequestId': requestId(),
            });
        }
        if (dropAfter !== null && i >= dropAfter) {
            res.socket.destroy();
            return;
        }
        res.write(evs[i++]());
        if (i >= evs.length || (endAfter !== null && i >= endAfter)) {
            res.end();
            return;
        }
        timer = setTimeout(step, interval);
    };
    timer = setTimeout(step, firstDelay);
}

/* ---------- embeddings through InvokeModel ---------- */

function invokeEmbeddings(ctx, body, modelId, fault, started) {
    const { res } = ctx;
    const malformed = (detail) => sendAwsError(res, 400, 'ValidationException',
        `Malformed input request: ${detail}, please reformat your input and try again.`);
    let reply;
    let tokens = 0;
    if (!isObject(body)) return malformed('expected type: JSONObject, found: JSONArray');
    if (body.texts !== undefined || /cohere/.test(modelId)) {
        // Cohere Embed on Bedrock.
        if (!Array.isArray(body.texts)) return malformed('#: required key [texts] not found');
        if (!body.texts.every((t) => typeof t === 'string')) return malformed('#/texts: expected type: String');
        if (typeof body.input_type !== 'string') return malformed('#: required key [input_type] not found');
        const dims = Number.isInteger(body.output_dimension) && body.output_dimension > 0 ? body.output_dimension : 8;
        const vecs = body.texts.map((t) => fakeEmbedding(t, dims));
        for (const t of body.texts) tokens += Math.max(1, countWords(t));
        const types = Array.isArray(body.embedding_types) ? body.embedding_types : null;
        reply = types
            ? { id: crypto.randomUUID(), texts: body.texts, embeddings: { float: vecs }, response_type: 'embeddings_by_type' }
            : { id: crypto.randomUUID(), texts: body.texts, embeddings: vecs, response_type: 'embeddings_floats' };
    } else {
        // Amazon Titan Embeddings (v1 and v2 share this shape).
        if (typeof body.inputText !== 'string') return malformed('#: required key [inputText] not found');
        if (body.inputText === '') return malformed('#/inputText: expected minLength: 1, actual: 0');
        const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : 8;
        const vec = fakeEmbedding(body.inputText, dims);
        tokens = Math.max(1, countWords(body.inputText));
        reply = { embedding: vec, inputTextTokenCount: tokens };
        if (Array.isArray(body.embeddingTypes) && body.embeddingTypes.includes('float')) reply.embeddingsByType = { float: vec };
    }
    const send = () => sendAws(res, 200, reply, {
        'X-Amzn-Bedrock-Invocation-Latency': String(Date.now() - started),
        'X-Amzn-Bedrock-Input-Token-Count': String(tokens),
    });
    if (fault.name === 'slow-first-byte') {
        const t = setTimeout(send, fault.arg ?? 1500);
        res.on('close', () => clearTimeout(t));
    } else {
        send();
    }
}

/* ---------- rerank through InvokeModel ---------- */

function invokeRerank(ctx, body, modelId, fault, started) {
    const { res } = ctx;
    const malformed = (detail) => sendAwsError(res, 400, 'ValidationException',
        `Malformed input request: ${detail}, please reformat your input and try again.`);
    const cohere = /cohere/.test(modelId);
    if (!isObject(body)) return malformed('expected type: JSONObject, found: JSONArray');
    if (typeof body.query !== 'string') return malformed('#: required key [query] not found');
    if (!Array.isArray(body.documents)) return malformed('#: required key [documents] not found');
    if (body.documents.length === 0) return malformed('#/documents: expected minimum item count: 1, found: 0');
    if (!body.documents.every((d) => typeof d === 'string' || isObject(d))) {
        return malformed('#/documents: expected type: String or JSONObject');
    }
    if (cohere) {
        if (body.api_version === undefined) return malformed('#: required key [api_version] not found');
        if (!Number.isInteger(body.api_version) || body.api_version < 2) {
            return malformed(`#/api_version: ${JSON.stringify(body.api_version)} is not greater or equal to 2`);
        }
    }
    const topN = body.top_n ?? body.documents.length;
    if (!Number.isInteger(topN) || topN < 1) return malformed(`#/top_n: ${JSON.stringify(topN)} is not greater or equal to 1`);
    const texts = body.documents.map((d) => (typeof d === 'string' ? d
        : Object.values(d).filter((v) => typeof v === 'string').join(' ')));
    const results = rerankOrder(body.query, texts).slice(0, topN)
        .map(({ index, score }) => ({ index, relevance_score: score }));
    const reply = cohere ? { id: crypto.randomUUID(), results } : { results };
    const send = () => sendAws(res, 200, reply, {
        'X-Amzn-Bedrock-Invocation-Latency': String(Date.now() - started),
    });
    if (fault.name === 'slow-first-byte') {
        const t = setTimeout(send, fault.arg ?? 1500);
        res.on('close', () => clearTimeout(t));
    } else {
        send();
    }
}

/* ---------- entry points ---------- */

export function matches(method, pathname) {
    return ROUTE.test(pathname);
}

export function handle(ctx) {
    const { req, res, url, raw, rawBuffer, entry, apiKey } = ctx;
    const started = entry.t_start_ms ?? Date.now();
    const [, encodedId, op] = ROUTE.exec(url.pathname);
    const modelId = safeDecode(encodedId);
    entry.model = modelId;
    entry.stream = op === 'converse-stream';

    const authErr = checkAuth(req, rawBuffer, apiKey);
    entry.auth_ok = authErr === null;
    if (authErr) {
        entry.auth_error = `${authErr.code}: ${authErr.message}`;
        sendAwsError(res, authErr.status, authErr.code, authErr.message, { ns: authErr.ns });
        return;
    }
    if (req.method !== 'POST') {
        sendAwsError(res, 404, 'UnknownOperationException', null, { ns: CORAL_NS });
        return;
    }
    let body;
    try {
        body = JSON.parse(raw);
    } catch {
        entry.body = raw;
        sendAwsError(res, 400, op === 'invoke' ? 'ValidationException' : 'SerializationException',
            'Malformed input request, please reformat your input and try again.');
        return;
    }
    entry.body = body;

    const fault = parseFault(modelId);
    switch (fault.name) {
        case 'fault-500':
            return sendAwsError(res, 500, 'InternalServerException',
                'The system encountered an unexpected error during processing. Try your request again. (fake upstream fault-500)');
        case 'fault-429':
            return sendAwsError(res, 429, 'ThrottlingException',
                'Too many requests, please wait before trying again. (fake upstream fault-429)',
                { headers: { 'retry-after': '7' } });
        case 'fault-400':
            return sendAwsError(res, 400, 'ValidationException',
                'Malformed input request: rejected by the fake upstream (fault-400), please reformat your input and try again.');
        case 'overloaded':
            return sendAwsError(res, 503, 'ServiceUnavailableException',
                'Bedrock is unable to process your request. (fake upstream overloaded)');
        case 'context-too-long':
            return sendAwsError(res, 400, 'ValidationException', 'Input is too long for requested model.');
        case 'hang':
            return; // the request stays open; the log records when the client gives up
        default:
            break;
    }
    if (op === 'invoke' && /rerank/.test(modelId)) return invokeRerank(ctx, body, modelId, fault, started);
    if (op === 'invoke') return invokeEmbeddings(ctx, body, modelId, fault, started);
    if (!isObject(body)) {
        return sendAwsError(res, 400, 'SerializationException', 'Start of structure or map found where not expected.');
    }
    const invalid = validateConverse(body);
    if (invalid) return sendAwsError(res, 400, 'ValidationException', invalid);
    if (op === 'converse-stream') return converseStream(ctx, body, modelId, fault, started);
    return converse(ctx, body, modelId, fault, started);
}
