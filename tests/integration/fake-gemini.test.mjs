// The fake Gemini / Vertex AI upstream (tests/fakes/providers/gemini.mjs) is
// only useful if Google's official SDK accepts it: these tests point
// @google/genai straight at the fake (no gateway), on the AI Studio routes
// (API key) and on the Vertex AI routes (service-account OAuth2 through the
// fake's /token endpoint), and check the shapes and faults the gateway tests
// will rely on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
    GoogleGenAI, ApiError, FunctionCallingConfigMode,
    createPartFromBase64, createPartFromUri, createPartFromFunctionResponse,
} from '@google/genai';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { collect } from './lib/chat.mjs';

const KEY = 'fake-gemini-key';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const MODEL = 'gemini-2.0-flash';
let dir;
let fake;
let base;
let ai;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-gemini-'));
    fake = await startFakeProcess(dir, { apiKey: KEY });
    base = `http://127.0.0.1:${fake.port}`;
    // vertexai: false explicitly, so GOOGLE_GENAI_USE_VERTEXAI in the environment cannot switch backends.
    ai = new GoogleGenAI({ vertexai: false, apiKey: KEY, httpOptions: { baseUrl: base } });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const textOf = (chunks) => chunks.map((c) => c.candidates?.[0]?.content?.parts?.[0]?.text ?? '').join('');

/* The error body the SDK got: ApiError's message is the JSON it received. */
function googleErrorOf(e) {
    return JSON.parse(e.message).error;
}

function rejectsWith(promise, status, googleStatus, messageRe = null) {
    return assert.rejects(promise, (e) => {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.status, status);
        const err = googleErrorOf(e);
        assert.equal(err.code, status);
        assert.equal(err.status, googleStatus);
        if (messageRe) assert.match(err.message, messageRe);
        return true;
    });
}

/* The fake's Vertex control routes. */
function vertexControl(route, init) {
    return fetch(`${base}/__control/vertex/${route}`, init);
}

const tokensIssued = async () => (await (await vertexControl('tokens')).json()).issued;

describe('fake Gemini (AI Studio) via @google/genai', () => {
    it('generateContent: echo, role, usage, model version', async () => {
        const r = await ai.models.generateContent({
            model: MODEL, contents: 'hello there world', config: { systemInstruction: 'be terse' },
        });
        assert.equal(r.text, 'Echo: hello there world');
        const c = r.candidates[0];
        assert.equal(c.content.role, 'model');
        assert.equal(c.finishReason, 'STOP');
        assert.equal(c.index, 0);
        // system (3 + 2) + user (3 + 3); answer 4 words
        assert.equal(r.usageMetadata.promptTokenCount, 11);
        assert.equal(r.usageMetadata.candidatesTokenCount, 4);
        assert.equal(r.usageMetadata.totalTokenCount, 15);
        assert.equal(r.usageMetadata.cachedContentTokenCount, undefined);
        assert.equal(r.modelVersion, MODEL);
        assert.ok(r.responseId);
    });

    it('generateContent: multi-turn answers the last user turn; parts are joined', async () => {
        const r = await ai.models.generateContent({
            model: MODEL,
            contents: [
                { role: 'user', parts: [{ text: 'first question' }] },
                { role: 'model', parts: [{ text: 'first answer' }] },
                { role: 'user', parts: [{ text: 'one ' }, { text: 'two' }] },
            ],
        });
        assert.equal(r.text, 'Echo: one two');
        assert.equal(r.usageMetadata.promptTokenCount, 5 + 5 + 5);
    });

    it('streamGenerateContent: one word per event, cumulative usage, finishReason last', async () => {
        const t0 = Date.now();
        const chunks = await collect(await ai.models.generateContentStream({
            model: MODEL, contents: 'the quick  brown fox',
        }));
        assert.equal(chunks.length, 5);
        assert.equal(textOf(chunks), 'Echo: the quick  brown fox');
        assert.equal(chunks.map((c) => c.text).join(''), 'Echo: the quick  brown fox');
        assert.ok(chunks.slice(0, -1).every((c) => c.candidates[0].finishReason === undefined));
        assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
        assert.deepEqual(chunks.map((c) => c.usageMetadata.candidatesTokenCount), [1, 2, 3, 4, 5]);
        assert.equal(chunks.at(-1).usageMetadata.promptTokenCount, 7);
        assert.equal(chunks.at(-1).usageMetadata.totalTokenCount, 12);
        assert.equal(new Set(chunks.map((c) => c.responseId)).size, 1);
        assert.ok(Date.now() - t0 >= 15, 'events are spaced out');
    });

    it('SSE framing: data: lines separated by CRLF CRLF, no [DONE]', async () => {
        const res = await fetch(`${base}/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, {
            method: 'POST',
            headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
            body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
        });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        const raw = await res.text();
        const frames = raw.split('\r\n\r\n');
        assert.equal(frames.pop(), '');
        assert.equal(frames.length, 2);
        assert.ok(frames.every((f) => f.startsWith('data: ')));
        assert.ok(!raw.includes('[DONE]'));

        // Without alt=sse Google streams one JSON array.
        const arr = await fetch(`${base}/v1beta/models/${MODEL}:streamGenerateContent?key=${KEY}`, {
            method: 'POST', body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
        });
        const events = await arr.json();
        assert.equal(events.map((e) => e.candidates[0].content.parts[0].text).join(''), 'Echo: hi');
    });

    const weatherTools = [{
        functionDeclarations: [
            { name: 'get_weather', description: 'weather', parameters: { type: 'OBJECT', properties: { text: { type: 'STRING' } } } },
            { name: 'get_time', parameters: { type: 'OBJECT', properties: {} } },
        ],
    }];

    it('tool call: functionCall part with args {text}, non-stream and stream', async () => {
        const r = await ai.models.generateContent({
            model: MODEL, contents: 'please call tool now', config: { tools: weatherTools },
        });
        assert.equal(r.candidates[0].finishReason, 'STOP');
        assert.deepEqual(r.functionCalls, [{ name: 'get_weather', args: { text: 'please call tool now' } }]);
        // words of {"text":"please call tool now"} (4) + 1
        assert.equal(r.usageMetadata.candidatesTokenCount, 5);

        const chunks = await collect(await ai.models.generateContentStream({
            model: MODEL, contents: 'please call tool now', config: { tools: weatherTools },
        }));
        assert.equal(chunks.length, 1, 'Gemini streams a function call whole');
        assert.deepEqual(chunks[0].functionCalls, [{ name: 'get_weather', args: { text: 'please call tool now' } }]);
        assert.equal(chunks[0].candidates[0].finishReason, 'STOP');
    });

    it('tool config: allowedFunctionNames picks the tool; mode NONE answers text', async () => {
        const r = await ai.models.generateContent({
            model: MODEL, contents: 'call tool',
            config: {
                tools: weatherTools,
                toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY, allowedFunctionNames: ['get_time'] } },
            },
        });
        assert.equal(r.functionCalls[0].name, 'get_time');
        const none = await ai.models.generateContent({
            model: MODEL, contents: 'call tool',
            config: { tools: weatherTools, toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.NONE } } },
        });
        assert.equal(none.text, 'Echo: call tool');
        assert.equal(none.functionCalls, undefined);
    });

    it('tool result round trip: functionResponse in the last user turn', async () => {
        const r = await ai.models.generateContent({
            model: MODEL,
            config: { tools: weatherTools },
            contents: [
                { role: 'user', parts: [{ text: 'call tool please' }] },
                { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { text: 'call tool please' } } }] },
                { role: 'user', parts: [createPartFromFunctionResponse('call-1', 'get_weather', { output: 'sunny and warm' })] },
            ],
        });
        assert.equal(r.text, 'Echo: tool result: sunny and warm');
        const log = await fake.log();
        const sent = log.at(-1).body.contents[2].parts[0].functionResponse;
        assert.equal(sent.name, 'get_weather');
        assert.deepEqual(sent.response, { output: 'sunny and warm' });
    });

    it('images: inlineData counts decoded bytes, fileData names the URI', async () => {
        const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6]).toString('base64');
        const r = await ai.models.generateContent({
            model: MODEL,
            contents: [{
                role: 'user',
                parts: [
                    { text: 'what is this' },
                    createPartFromBase64(png, 'image/png'),
                    createPartFromUri('gs://bucket/cat.jpg', 'image/jpeg'),
                ],
            }],
        });
        assert.equal(r.text, 'Echo: what is this [image image/png 10] [image-url gs://bucket/cat.jpg]');
    });

    it('JSON mode: responseMimeType application/json', async () => {
        const r = await ai.models.generateContent({
            model: MODEL, contents: 'give json',
            config: {
                responseMimeType: 'application/json',
                responseSchema: { type: 'OBJECT', properties: { echo: { type: 'STRING' } } },
            },
        });
        assert.deepEqual(JSON.parse(r.text), { echo: 'give json' });
    });

    it('maxOutputTokens cuts with MAX_TOKENS; stopSequences; candidateCount', async () => {
        const r = await ai.models.generateContent({
            model: MODEL, contents: 'a b c d', config: { maxOutputTokens: 2, candidateCount: 2 },
        });
        assert.equal(r.candidates.length, 2);
        assert.equal(r.candidates[1].index, 1);
        for (const c of r.candidates) {
            assert.equal(c.content.parts[0].text, 'Echo: a ');
            assert.equal(c.finishReason, 'MAX_TOKENS');
        }
        assert.equal(r.usageMetadata.candidatesTokenCount, 4, 'both candidates counted');

        const chunks = await collect(await ai.models.generateContentStream({
            model: MODEL, contents: 'a b c d', config: { maxOutputTokens: 3 },
        }));
        assert.equal(textOf(chunks), 'Echo: a b ');
        assert.equal(chunks.at(-1).candidates[0].finishReason, 'MAX_TOKENS');

        const s = await ai.models.generateContent({
            model: MODEL, contents: 'one two STOP three', config: { stopSequences: ['STOP'] },
        });
        assert.equal(s.text, 'Echo: one two ');
        assert.equal(s.candidates[0].finishReason, 'STOP');
    });

    it('usage: cachedContentTokenCount 2 for a "cached" model', async () => {
        const r = await ai.models.generateContent({ model: 'gemini-cached-flash', contents: 'x y' });
        assert.equal(r.usageMetadata.cachedContentTokenCount, 2);
        assert.equal(r.usageMetadata.promptTokenCount, 5);
        assert.equal(r.usageMetadata.thoughtsTokenCount, undefined);
    });

    it('countTokens', async () => {
        const r = await ai.models.countTokens({ model: MODEL, contents: 'a b c' });
        assert.equal(r.totalTokens, 6);
    });

    it('embeddings: batchEmbedContents via the SDK, embedContent raw', async () => {
        const r = await ai.models.embedContent({ model: 'text-embedding-004', contents: ['hello', 'world'] });
        assert.equal(r.embeddings.length, 2);
        assert.deepEqual(r.embeddings[0].values, fakeEmbedding('hello'));
        assert.deepEqual(r.embeddings[1].values, fakeEmbedding('world'));
        const d = await ai.models.embedContent({
            model: 'text-embedding-004', contents: 'x', config: { outputDimensionality: 16 },
        });
        assert.equal(d.embeddings[0].values.length, 16);
        const batchBody = (await fake.log()).at(-1).body;
        assert.equal(batchBody.requests[0].model, 'models/text-embedding-004');

        const single = await fetch(`${base}/v1beta/models/text-embedding-004:embedContent`, {
            method: 'POST',
            headers: { 'x-goog-api-key': KEY },
            body: JSON.stringify({ content: { parts: [{ text: 'hello' }] } }),
        });
        assert.equal(single.status, 200);
        assert.deepEqual((await single.json()).embedding.values, fakeEmbedding('hello'));
    });

    it('fault-500, fault-429, fault-400, overloaded, context-too-long, model-not-found', async () => {
        const gen = (model) => ai.models.generateContent({ model, contents: 'x' });
        await rejectsWith(gen('fault-500'), 500, 'INTERNAL', /fault-500/);
        await rejectsWith(gen('fault-429'), 429, 'RESOURCE_EXHAUSTED');
        await rejectsWith(gen('fault-400'), 400, 'INVALID_ARGUMENT', /fault-400/);
        await rejectsWith(gen('overloaded'), 503, 'UNAVAILABLE', /overloaded/);
        await rejectsWith(gen('context-too-long'), 400, 'INVALID_ARGUMENT',
            /^The input token count \(\d+\) exceeds the maximum number of tokens allowed \(1048576\)\.$/);
        await rejectsWith(gen('model-not-found'), 404, 'NOT_FOUND');
        // Streaming requests fail before the stream starts, the same way.
        await rejectsWith(ai.models.generateContentStream({ model: 'fault-500', contents: 'x' }), 500, 'INTERNAL');
        await rejectsWith(ai.models.embedContent({ model: 'overloaded', contents: 'x' }), 503, 'UNAVAILABLE');

        const res = await fetch(`${base}/v1beta/models/fault-429:generateContent`, {
            method: 'POST', headers: { 'x-goog-api-key': KEY }, body: JSON.stringify({ contents: [{ parts: [{ text: 'x' }] }] }),
        });
        assert.equal(res.status, 429);
        assert.equal(res.headers.get('retry-after'), '7');
        const body = await res.json();
        assert.ok(body.error.details.some((d) => d['@type'].endsWith('RetryInfo') && d.retryDelay === '7s'));
    });

    it('content-filter: 200 with finishReason SAFETY and no content', async () => {
        const r = await ai.models.generateContent({ model: 'content-filter', contents: 'x' });
        assert.equal(r.candidates[0].finishReason, 'SAFETY');
        assert.equal(r.candidates[0].content, undefined);
        assert.ok(r.candidates[0].safetyRatings.some((s) => s.blocked === true));
        assert.equal(r.text, undefined);
        const chunks = await collect(await ai.models.generateContentStream({ model: 'content-filter', contents: 'x' }));
        assert.equal(chunks.length, 1);
        assert.equal(chunks[0].candidates[0].finishReason, 'SAFETY');
    });

    it('prompt-blocked: promptFeedback.blockReason and no candidates', async () => {
        const r = await ai.models.generateContent({ model: 'prompt-blocked', contents: 'x' });
        assert.equal(r.promptFeedback.blockReason, 'SAFETY');
        assert.equal(r.candidates, undefined);
        assert.equal(r.usageMetadata.promptTokenCount, 4);
    });

    it('stream faults: drop-mid-stream, bad-event and stream-error raise during iteration', async () => {
        const got = [];
        await assert.rejects(async () => {
            for await (const c of await ai.models.generateContentStream({ model: 'drop-mid-stream', contents: 'a b c d' })) {
                got.push(c);
            }
        });
        assert.ok(got.length <= 2);
        const dropped = (await fake.log()).filter((x) => x.model === 'drop-mid-stream').at(-1);
        assert.equal(dropped.completed, false);

        const bad = [];
        await assert.rejects(async () => {
            for await (const c of await ai.models.generateContentStream({ model: 'bad-event', contents: 'a b c d' })) {
                bad.push(c);
            }
        }, (e) => e instanceof SyntaxError || /JSON/.test(String(e)));
        assert.equal(bad.length, 1);

        const before = [];
        await assert.rejects(async () => {
            for await (const c of await ai.models.generateContentStream({ model: 'stream-error', contents: 'a b c d' })) {
                before.push(c);
            }
        }, (e) => {
            assert.ok(e instanceof ApiError, String(e));
            assert.equal(e.status, 500);
            return true;
        });
        assert.equal(textOf(before), 'Echo: a ');
    });

    it('slow-stream: events spread out (150 ms each here)', async () => {
        const t0 = Date.now();
        const times = [];
        let text = '';
        for await (const c of await ai.models.generateContentStream({ model: 'slow-stream-150', contents: 'tick tock' })) {
            times.push(Date.now() - t0);
            text += c.text ?? '';
        }
        assert.equal(text, 'Echo: tick tock');
        assert.equal(times.length, 10);
        assert.ok(times.at(-1) - times[0] >= 1000, `events spread over ${times.at(-1) - times[0]} ms`);
    });

    it('hang: the SDK times out; the log records the close', async () => {
        await fake.reset();
        const t0 = Date.now();
        await assert.rejects(ai.models.generateContent({
            model: 'hang', contents: 'x', config: { httpOptions: { timeout: 600 } },
        }));
        assert.ok(Date.now() - t0 >= 550);
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(25);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry && entry.t_close_ms, 'close recorded');
        assert.equal(entry.status, null);
        assert.equal(entry.completed, false);
    });

    it('auth: wrong key is 400 API_KEY_INVALID, missing key 403, ?key= works', async () => {
        const bad = new GoogleGenAI({ vertexai: false, apiKey: 'wrong', httpOptions: { baseUrl: base } });
        await rejectsWith(bad.models.generateContent({ model: MODEL, contents: 'x' }), 400, 'INVALID_ARGUMENT',
            /^API key not valid\. Please pass a valid API key\.$/);

        const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'q' }] }] });
        const none = await fetch(`${base}/v1beta/models/${MODEL}:generateContent`, { method: 'POST', body });
        assert.equal(none.status, 403);
        assert.equal((await none.json()).error.status, 'PERMISSION_DENIED');

        await fake.reset();
        const viaQuery = await fetch(`${base}/v1beta/models/${MODEL}:generateContent?key=${KEY}`, { method: 'POST', body });
        assert.equal(viaQuery.status, 200);
        assert.equal((await viaQuery.json()).candidates[0].content.parts[0].text, 'Echo: q');
        const [e] = await fake.log();
        assert.equal(e.auth_ok, true);
        assert.equal(e.auth_via, 'query');
        assert.ok(!JSON.stringify(e).includes(KEY), 'the key is masked in the log');
    });

    it('bad requests get Google-shaped 400s', async () => {
        const post = (body) => fetch(`${base}/v1beta/models/${MODEL}:generateContent`, {
            method: 'POST', headers: { 'x-goog-api-key': KEY }, body,
        });
        for (const body of ['{"contents":', '{}', '{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}']) {
            const res = await post(body);
            assert.equal(res.status, 400, body);
            const err = (await res.json()).error;
            assert.equal(err.status, 'INVALID_ARGUMENT');
            assert.equal(err.code, 400);
        }
    });

    it('control log: body, model from the path, stream flag, no key', async () => {
        await fake.reset();
        await collect(await ai.models.generateContentStream({
            model: MODEL, contents: 'logged', config: { temperature: 0.5, seed: 7 },
        }));
        const log = await fake.log();
        assert.equal(log.length, 1);
        const e = log[0];
        assert.equal(e.path, `/v1beta/models/${MODEL}:streamGenerateContent`);
        assert.equal(e.query, '?alt=sse');
        assert.equal(e.model, MODEL);
        assert.equal(e.stream, true);
        assert.equal(e.api, 'gemini');
        assert.equal(e.auth_ok, true);
        assert.equal(e.auth_via, 'header');
        assert.equal(e.headers['x-goog-api-key'], undefined);
        assert.ok(!JSON.stringify(log).includes(KEY));
        assert.deepEqual(e.body.contents, [{ role: 'user', parts: [{ text: 'logged' }] }]);
        assert.equal(e.body.generationConfig.temperature, 0.5);
        assert.equal(e.body.generationConfig.seed, 7);
        assert.equal(e.completed, true);
    });
});

describe('fake Vertex AI via @google/genai (service account + OAuth2)', () => {
    let sa;
    let vx;

    /* google-auth-library always posts its JWT grant to Google's fixed token URL
     * (it ignores the key file's token_uri), so the auth transport's adapter
     * sends that one request to the fake instead. */
    const toFakeTokenUri = (opts, defaultAdapter) => {
        if (String(opts.url) === GOOGLE_TOKEN_URL) opts.url = new URL(sa.token_uri);
        return defaultAdapter(opts);
    };

    const vertexClient = (project = 'fake-project') => new GoogleGenAI({
        vertexai: true,
        project,
        location: 'us-central1',
        httpOptions: { baseUrl: base },
        googleAuthOptions: { credentials: sa, clientOptions: { transporterOptions: { adapter: toFakeTokenUri } } },
    });

    before(async () => {
        sa = await (await vertexControl('service-account.json')).json();
        vx = vertexClient();
    });

    /* A JWT grant signed here with node:crypto. */
    function signJwt(claims, key = sa.private_key) {
        const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const input = `${enc({ alg: 'RS256', typ: 'JWT', kid: sa.private_key_id })}.${enc(claims)}`;
        return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
    }

    function claims(extra = {}) {
        const iat = Math.floor(Date.now() / 1000);
        return {
            iss: sa.client_email, aud: sa.token_uri,
            scope: 'https://www.googleapis.com/auth/cloud-platform', iat, exp: iat + 3600, ...extra,
        };
    }

    const grant = (assertion, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') => fetch(sa.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: grantType, assertion }),
    });

    it('service-account.json looks like a real key file', () => {
        assert.equal(sa.type, 'service_account');
        assert.equal(sa.project_id, 'fake-project');
        assert.match(sa.private_key, /^-----BEGIN PRIVATE KEY-----\n/);
        assert.match(sa.private_key_id, /^[0-9a-f]{40}$/);
        assert.match(sa.client_email, /@fake-project\.iam\.gserviceaccount\.com$/);
        assert.equal(sa.token_uri, `${base}/token`);
    });

    it('generateContent and stream through OAuth2; the token is fetched once and cached', async () => {
        const issued0 = await tokensIssued();
        await fake.reset();
        const r = await vx.models.generateContent({ model: MODEL, contents: 'hello vertex' });
        assert.equal(r.text, 'Echo: hello vertex');
        assert.equal(r.usageMetadata.promptTokenCount, 5);
        assert.equal(r.usageMetadata.candidatesTokenCount, 3);
        assert.ok(r.createTime);
        const chunks = await collect(await vx.models.generateContentStream({ model: MODEL, contents: 'a b' }));
        assert.equal(textOf(chunks), 'Echo: a b');
        assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
        assert.equal(await tokensIssued(), issued0 + 1);

        const log = await fake.log();
        const token = log.find((e) => e.path === '/token');
        assert.ok(token, 'the token request reached the fake');
        assert.equal(token.auth_ok, true);
        assert.equal(token.body.claims.iss, sa.client_email);
        assert.equal(token.body.claims.scope, 'https://www.googleapis.com/auth/cloud-platform');
        const gen = log.filter((e) => e.api === 'vertex');
        assert.equal(gen.length, 2);
        // The SDK uses v1beta1 on Vertex; the fake serves v1 as well.
        const prefix = `/v1beta1/projects/fake-project/locations/us-central1/publishers/google/models/${MODEL}`;
        assert.equal(gen[0].path, `${prefix}:generateContent`);
        assert.equal(gen[1].path, `${prefix}:streamGenerateContent`);
        assert.equal(gen[1].query, '?alt=sse');
        assert.equal(gen[0].project, 'fake-project');
        assert.equal(gen[0].location, 'us-central1');
        assert.ok(gen.every((e) => e.auth_ok === true && e.auth_via === 'bearer'));
        assert.equal(gen[0].headers.authorization, undefined, 'the bearer is not logged');
    });

    it('tool call and faults on Vertex', async () => {
        const r = await vx.models.generateContent({
            model: MODEL, contents: 'call tool',
            config: { tools: [{ functionDeclarations: [{ name: 'lookup', parameters: { type: 'OBJECT', properties: {} } }] }] },
        });
        assert.deepEqual(r.functionCalls, [{ name: 'lookup', args: { text: 'call tool' } }]);
        await rejectsWith(vx.models.generateContent({ model: 'fault-429', contents: 'x' }), 429, 'RESOURCE_EXHAUSTED');
        await rejectsWith(vx.models.generateContent({ model: 'context-too-long', contents: 'x' }), 400, 'INVALID_ARGUMENT',
            /exceeds the maximum number of tokens allowed \(1048576\)/);
    });

    it('embeddings: :predict for text-embedding models, :embedContent for gemini ones', async () => {
        await fake.reset();
        const r = await vx.models.embedContent({ model: 'text-embedding-005', contents: ['hello', 'world'] });
        assert.deepEqual(r.embeddings.map((e) => e.values), [fakeEmbedding('hello'), fakeEmbedding('world')]);
        assert.equal(r.embeddings[0].statistics.tokenCount, 1);
        const g = await vx.models.embedContent({
            model: 'gemini-embedding-2', contents: 'hello', config: { outputDimensionality: 12 },
        });
        assert.deepEqual(g.embeddings[0].values, fakeEmbedding('hello', 12));
        const paths = (await fake.log()).filter((e) => e.api === 'vertex').map((e) => e.rpc);
        assert.deepEqual(paths, ['predict', 'embedContent']);
    });

    it('Vertex auth: missing, unknown and API-key credentials are 401; another project is 403', async () => {
        const url = `${base}/v1/projects/fake-project/locations/us-central1/publishers/google/models/${MODEL}:generateContent`;
        const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] });
        for (const headers of [{}, { authorization: 'Bearer ya29.not-issued' }, { 'x-goog-api-key': KEY }]) {
            const res = await fetch(url, { method: 'POST', headers, body });
            assert.equal(res.status, 401, JSON.stringify(headers));
            assert.equal((await res.json()).error.status, 'UNAUTHENTICATED');
        }
        await rejectsWith(vertexClient('other-project').models.generateContent({ model: MODEL, contents: 'x' }),
            403, 'PERMISSION_DENIED');
    });

    it('token endpoint: checks the grant type, signature, lifetime and scope', async () => {
        const ok = await grant(signJwt(claims()));
        assert.equal(ok.status, 200);
        const tok = await ok.json();
        assert.deepEqual(Object.keys(tok).sort(), ['access_token', 'expires_in', 'token_type']);
        assert.equal(tok.expires_in, 3599);
        assert.equal(tok.token_type, 'Bearer');
        // Google's canonical audience is accepted too (google-auth-library sends it).
        assert.equal((await grant(signJwt(claims({ aud: GOOGLE_TOKEN_URL })))).status, 200);

        const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
        const cases = [
            [grant(signJwt(claims()), 'client_credentials'), 'unsupported_grant_type'],
            [grant(signJwt(claims(), otherKey)), 'invalid_grant'],
            [grant(signJwt(claims({ exp: Math.floor(Date.now() / 1000) + 7200 }))), 'invalid_grant'],
            [grant(signJwt(claims({ iss: 'someone@else.iam.gserviceaccount.com' }))), 'invalid_grant'],
            [grant(signJwt(claims({ scope: 'https://www.googleapis.com/auth/userinfo.email' }))), 'invalid_scope'],
            [grant('not.a.jwt'), 'invalid_grant'],
        ];
        for (const [p, code] of cases) {
            const res = await p;
            assert.equal(res.status, 400);
            assert.equal((await res.json()).error, code);
        }

        // A hand-made token works on Vertex; revoking every token makes it fail.
        const url = `${base}/v1/projects/fake-project/locations/europe-west4/publishers/google/models/${MODEL}:generateContent`;
        const call = () => fetch(url, {
            method: 'POST',
            headers: { authorization: `Bearer ${tok.access_token}` },
            body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'by hand' }] }] }),
        });
        const res = await call();
        assert.equal(res.status, 200);
        assert.equal((await res.json()).candidates[0].content.parts[0].text, 'Echo: by hand');
        assert.equal((await vertexControl('revoke', { method: 'POST' })).status, 200);
        assert.equal((await call()).status, 401);
    });
});
