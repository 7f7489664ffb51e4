// The fake Bedrock Runtime upstream (tests/fakes/providers/bedrock.mjs) is only
// useful if the official AWS SDK accepts it: these tests point
// BedrockRuntimeClient straight at the fake (no gateway), signing with SigV4,
// and check every shape and fault mode the gateway tests rely on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
    BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand,
    ThrottlingException, ValidationException, InternalServerException, ServiceUnavailableException,
    ModelStreamErrorException, BedrockRuntimeServiceException,
} from '@aws-sdk/client-bedrock-runtime';
// Bedrock's default handler speaks HTTP/2; the fake (like sluice) is HTTP/1.1.
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import {
    ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_ACCESS_KEY_ID, SESSION_SECRET_ACCESS_KEY, SESSION_TOKEN,
    encodeEventStreamMessage, decodeEventStreamMessages,
} from '../fakes/providers/bedrock.mjs';

const API_KEY = 'fake-bedrock-api-key';
const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const ARN = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0';
let dir;
let fake;
let endpoint;
let client;

const makeClient = (credentials, extra = {}) => new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint,
    credentials,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ requestTimeout: 20000 }),
    ...extra,
});

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-bedrock-'));
    fake = await startFakeProcess(dir, { apiKey: API_KEY, name: 'fake-bedrock' });
    endpoint = `http://127.0.0.1:${fake.port}`;
    client = makeClient({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY });
});

after(async () => {
    if (client) client.destroy();
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const user = (text) => [{ role: 'user', content: [{ text }] }];
const converse = (input, c = client) => c.send(new ConverseCommand({ modelId: MODEL, ...input }));

async function converseStream(input, c = client) {
    const r = await c.send(new ConverseStreamCommand({ modelId: MODEL, ...input }));
    const events = [];
    for await (const e of r.stream) events.push(e);
    return events;
}

const streamText = (events) => events.map((e) => e.contentBlockDelta?.delta?.text ?? '').join('');

/* Runs fn, expecting it to reject; returns the error. */
async function failure(fn) {
    try {
        await fn();
    } catch (e) {
        return e;
    }
    assert.fail('expected an error');
}

async function lastLogEntry(pathPart) {
    const entries = (await fake.log()).filter((e) => e.path.includes(pathPart));
    return entries.at(-1);
}

describe('fake Bedrock via the official SDK', () => {
    it('converse: non-stream echo, stop reason, usage and metrics', async () => {
        const r = await converse({
            system: [{ text: 'be terse' }],
            messages: user('hello there world'),
            inferenceConfig: { temperature: 0.2, topP: 0.9, stopSequences: ['STOP'] },
        });
        assert.equal(r.$metadata.httpStatusCode, 200);
        assert.ok(r.$metadata.requestId);
        assert.equal(r.output.message.role, 'assistant');
        assert.deepEqual(r.output.message.content, [{ text: 'Echo: hello there world' }]);
        assert.equal(r.stopReason, 'end_turn');
        // system (3 + 2) + user (3 + 3); answer is four words
        assert.deepEqual(r.usage, {
            inputTokens: 11, outputTokens: 4, totalTokens: 15, cacheReadInputTokens: 0, cacheWriteInputTokens: 0,
        });
        assert.equal(typeof r.metrics.latencyMs, 'number');

        const e = await lastLogEntry('/converse');
        assert.equal(e.method, 'POST');
        // The SDK encodes the ":" of the model id in the path.
        assert.equal(e.path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse');
        assert.equal(e.model, MODEL);
        assert.equal(e.stream, false);
        assert.equal(e.auth_ok, true);
        assert.deepEqual(e.body.messages, user('hello there world'));
        assert.deepEqual(e.body.system, [{ text: 'be terse' }]);
        assert.equal(e.body.inferenceConfig.temperature, 0.2);
        assert.match(e.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
    });

    it('converse: an ARN model id (":" and "/" encoded, signed double-encoded) and multi-turn text', async () => {
        const r = await client.send(new ConverseCommand({
            modelId: ARN,
            messages: [
                { role: 'user', content: [{ text: 'first' }] },
                { role: 'assistant', content: [{ text: 'Echo: first' }] },
                { role: 'user', content: [{ text: 'one ' }, { text: 'two' }] },
            ],
        }));
        assert.equal(r.output.message.content[0].text, 'Echo: one two');
        assert.equal(r.usage.inputTokens, 4 + 5 + 5);
        const e = await lastLogEntry('/converse');
        assert.equal(e.model, ARN);
        assert.ok(e.path.includes('%2Fus.anthropic'));
    });

    it('converse-stream: one word per delta, joins to the text, ends with usage', async () => {
        const events = await converseStream({ messages: user('the quick  brown fox') });
        assert.deepEqual(events[0], { messageStart: { role: 'assistant' } });
        const deltas = events.filter((e) => e.contentBlockDelta);
        assert.deepEqual(deltas.map((e) => e.contentBlockDelta.delta.text), ['Echo: ', 'the ', 'quick  ', 'brown ', 'fox']);
        assert.ok(deltas.every((e) => e.contentBlockDelta.contentBlockIndex === 0));
        assert.equal(streamText(events), 'Echo: the quick  brown fox');
        // Text blocks have no contentBlockStart on Bedrock.
        assert.ok(!events.some((e) => e.contentBlockStart));
        assert.deepEqual(events.at(-3), { contentBlockStop: { contentBlockIndex: 0 } });
        assert.deepEqual(events.at(-2), { messageStop: { stopReason: 'end_turn' } });
        const meta = events.at(-1).metadata;
        assert.equal(meta.usage.outputTokens, 5);
        assert.equal(meta.usage.inputTokens, 7);
        assert.equal(meta.usage.totalTokens, 12);
        assert.equal(typeof meta.metrics.latencyMs, 'number');
        const e = await lastLogEntry('/converse-stream');
        assert.equal(e.stream, true);
        assert.equal(e.auth_ok, true);
    });

    it('converse-stream: raw frames are event-stream messages with valid CRCs and "p" padding', async () => {
        // Sign by hand, read the raw bytes.
        const body = JSON.stringify({ messages: user('hi') });
        const res = await signedFetch(`/model/${encodeURIComponent(MODEL)}/converse-stream`, body);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/vnd.amazon.eventstream');
        const frames = decodeEventStreamMessages(Buffer.from(await res.arrayBuffer()));
        assert.deepEqual(frames.map((f) => f.headers[':event-type']),
            ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata']);
        for (const f of frames) {
            assert.ok(f.crcOk);
            assert.equal(f.headers[':message-type'], 'event');
            assert.equal(f.headers[':content-type'], 'application/json');
            assert.equal(typeof JSON.parse(f.payload).p, 'string');
        }
    });

    it('tools: a toolUse, non-stream and stream, with the tool choice honoured', async () => {
        const toolConfig = {
            tools: [
                { toolSpec: { name: 'get_weather', description: 'weather', inputSchema: { json: { type: 'object', properties: {} } } } },
                { toolSpec: { name: 'get_time', inputSchema: { json: { type: 'object' } } } },
            ],
            toolChoice: { auto: {} },
        };
        const r = await converse({ toolConfig, messages: user('please call tool now') });
        assert.equal(r.stopReason, 'tool_use');
        assert.equal(r.output.message.content.length, 1);
        const tu = r.output.message.content[0].toolUse;
        assert.equal(tu.name, 'get_weather');
        assert.match(tu.toolUseId, /^tooluse_/);
        assert.deepEqual(tu.input, { text: 'please call tool now' });
        // words of {"text":"please call tool now"} + 1
        assert.equal(r.usage.outputTokens, 5);

        const events = await converseStream({
            toolConfig: { ...toolConfig, toolChoice: { tool: { name: 'get_time' } } },
            messages: user('please call tool now'),
        });
        const start = events.find((e) => e.contentBlockStart).contentBlockStart;
        assert.equal(start.contentBlockIndex, 0);
        assert.equal(start.start.toolUse.name, 'get_time');
        assert.match(start.start.toolUse.toolUseId, /^tooluse_/);
        const frags = events.filter((e) => e.contentBlockDelta).map((e) => e.contentBlockDelta.delta.toolUse.input);
        assert.ok(frags.length >= 2);
        assert.deepEqual(JSON.parse(frags.join('')), { text: 'please call tool now' });
        assert.deepEqual(events.find((e) => e.messageStop).messageStop, { stopReason: 'tool_use' });

        // Without "call tool" the answer stays text.
        const plain = await converse({ toolConfig, messages: user('just talk') });
        assert.equal(plain.output.message.content[0].text, 'Echo: just talk');
    });

    it('tools: a toolResult round trip answers with the result text', async () => {
        const toolConfig = { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: { type: 'object' } } } }] };
        const first = await converse({ toolConfig, messages: user('call tool please') });
        const tu = first.output.message.content[0].toolUse;
        const messages = [
            ...user('call tool please'),
            { role: 'assistant', content: [{ toolUse: tu }] },
            { role: 'user', content: [{ toolResult: { toolUseId: tu.toolUseId, content: [{ text: 'sunny and warm' }], status: 'success' } }] },
        ];
        const r = await converse({ toolConfig, messages });
        assert.equal(r.stopReason, 'end_turn');
        assert.equal(r.output.message.content[0].text, 'Echo: tool result: sunny and warm');
        const j = await converse({
            toolConfig,
            messages: [...messages.slice(0, 2), { role: 'user', content: [{ toolResult: { toolUseId: tu.toolUseId, content: [{ json: { t: 21 } }] } }] }],
        });
        assert.equal(j.output.message.content[0].text, 'Echo: tool result: {"t":21}');
        // Tool blocks without a toolConfig are refused, as Bedrock does.
        const err = await failure(() => converse({ messages }));
        assert.ok(err instanceof ValidationException);
        assert.match(err.message, /toolConfig field must be defined/);
    });

    it('images: inline bytes are counted, S3 sources named', async () => {
        const png = crypto.randomBytes(123);
        const r = await converse({
            messages: [{ role: 'user', content: [{ text: 'what is this' }, { image: { format: 'png', source: { bytes: png } } }] }],
        });
        assert.equal(r.output.message.content[0].text, 'Echo: what is this [image image/png 123]');
        const e = await lastLogEntry('/converse');
        assert.equal(e.body.messages[0].content[1].image.source.bytes, png.toString('base64'));
        const s3 = await converse({
            messages: [{ role: 'user', content: [{ text: 'see' }, { image: { format: 'jpeg', source: { s3Location: { uri: 's3://b/cat.jpg' } } } }] }],
        });
        assert.equal(s3.output.message.content[0].text, 'Echo: see [image-url s3://b/cat.jpg]');
    });

    it('JSON mode (a system text asking for JSON) and the max tokens cut', async () => {
        const r = await converse({ system: [{ text: 'Please respond in JSON.' }], messages: user('hello json') });
        assert.deepEqual(JSON.parse(r.output.message.content[0].text), { echo: 'hello json' });

        const cut = await converse({ inferenceConfig: { maxTokens: 2 }, messages: user('a b c d') });
        assert.equal(cut.output.message.content[0].text, 'Echo: a ');
        assert.equal(cut.stopReason, 'max_tokens');
        assert.equal(cut.usage.outputTokens, 2);
        const events = await converseStream({ inferenceConfig: { maxTokens: 3 }, messages: user('a b c d') });
        assert.equal(streamText(events), 'Echo: a b ');
        assert.equal(events.find((e) => e.messageStop).messageStop.stopReason, 'max_tokens');
    });

    it('usage: a "cached" model reports cache reads', async () => {
        const r = await converse({ modelId: 'anthropic.claude-cached-v1:0', messages: user('x') });
        assert.equal(r.usage.cacheReadInputTokens, 2);
        assert.equal(r.usage.cacheWriteInputTokens, 0);
        assert.equal(r.usage.totalTokens, r.usage.inputTokens + r.usage.outputTokens + 2);
    });

    it('validation: Bedrock refuses a conversation that does not alternate or start with the user', async () => {
        let err = await failure(() => converse({ messages: [...user('a'), ...user('b')] }));
        assert.ok(err instanceof ValidationException);
        assert.equal(err.$metadata.httpStatusCode, 400);
        assert.match(err.message, /alternate between user and assistant/);
        err = await failure(() => converse({ messages: [{ role: 'assistant', content: [{ text: 'x' }] }] }));
        assert.match(err.message, /must start with a user message/);
    });

    it('faults: errors carry the right class, status and x-amzn-ErrorType', async () => {
        const cases = [
            ['fault-500', InternalServerException, 500],
            ['fault-429', ThrottlingException, 429],
            ['fault-400', ValidationException, 400],
            ['overloaded', ServiceUnavailableException, 503],
            ['context-too-long', ValidationException, 400],
        ];
        for (const [modelId, cls, status] of cases) {
            const err = await failure(() => converse({ modelId, messages: user('hi') }));
            assert.ok(err instanceof cls, `${modelId}: ${err.name}`);
            assert.equal(err.$metadata.httpStatusCode, status, modelId);
            // Stream requests fail before the stream starts, the same way.
            const serr = await failure(() => converseStream({ modelId, messages: user('hi') }));
            assert.ok(serr instanceof cls, `${modelId} stream: ${serr.name}`);
        }
        const tooLong = await failure(() => converse({ modelId: 'context-too-long', messages: user('hi') }));
        assert.equal(tooLong.message, 'Input is too long for requested model.');

        const raw = await signedFetch('/model/fault-429/converse', JSON.stringify({ messages: user('hi') }));
        assert.equal(raw.status, 429);
        assert.equal(raw.headers.get('retry-after'), '7');
        assert.match(raw.headers.get('x-amzn-errortype'), /^ThrottlingException:/);
        assert.ok(raw.headers.get('x-amzn-requestid'));
        assert.deepEqual(Object.keys(await raw.json()), ['message']);
    });

    it('faults: content-filter answers with stopReason content_filtered', async () => {
        const r = await converse({ modelId: 'content-filter', messages: user('something bad') });
        assert.equal(r.stopReason, 'content_filtered');
        assert.ok(r.output.message.content[0].text.length > 0);
        const events = await converseStream({ modelId: 'content-filter', messages: user('something bad') });
        assert.equal(events.find((e) => e.messageStop).messageStop.stopReason, 'content_filtered');
        assert.equal(streamText(events), r.output.message.content[0].text);
    });

    it('stream faults: errors raised during iteration', async () => {
        // In-band exception frames become the SDK's modelled errors.
        const seen = [];
        const err = await failure(async () => {
            const r = await client.send(new ConverseStreamCommand({ modelId: 'stream-error', messages: user('a b c d e') }));
            for await (const e of r.stream) seen.push(e);
        });
        assert.ok(err instanceof ModelStreamErrorException, err.name);
        assert.equal(err.originalStatusCode, 500);
        assert.equal(seen.length, 2);
        assert.ok(seen[0].messageStart);

        const thr = await failure(() => converseStream({ modelId: 'stream-throttled', messages: user('a b c') }));
        assert.ok(thr instanceof ThrottlingException, thr.name);

        const drop = await failure(() => converseStream({ modelId: 'drop-mid-stream', messages: user('a b c d e') }));
        assert.ok(drop instanceof Error);

        const bad = await failure(() => converseStream({ modelId: 'bad-event', messages: user('a b c') }));
        assert.ok(bad instanceof SyntaxError, bad.name);
        const crc = await failure(() => converseStream({ modelId: 'bad-crc', messages: user('a b c') }));
        assert.match(crc.message, /checksum/);

        // Non-stream drop: half a body, then the socket goes.
        const ndrop = await failure(() => converse({ modelId: 'drop-mid-stream', messages: user('a b') }));
        assert.ok(ndrop instanceof Error);
    });

    it('stream faults: slow-stream paces the frames; hang never answers', async () => {
        const t0 = Date.now();
        const events = await converseStream({ modelId: 'slow-stream-40', messages: user('a') });
        const took = Date.now() - t0;
        // 10 frames before the stop frames, 40 ms apart.
        assert.ok(took >= 400, `took ${took} ms`);
        assert.equal(streamText(events), 'Echo: a');

        const ac = new AbortController();
        setTimeout(() => ac.abort(), 300);
        const err = await failure(() => client.send(new ConverseCommand({ modelId: 'hang', messages: user('hi') }), { abortSignal: ac.signal }));
        assert.equal(err.name, 'AbortError');
        await sleep(100);
        const e = await lastLogEntry('/model/hang/');
        assert.equal(e.status, null);
        assert.equal(e.auth_ok, true);
    });

    it('embeddings: Titan and Cohere through InvokeModel', async () => {
        const titan = await client.send(new InvokeModelCommand({
            modelId: 'amazon.titan-embed-text-v2:0',
            contentType: 'application/json',
            accept: 'application/json',
            body: JSON.stringify({ inputText: 'hello embedding world', dimensions: 16 }),
        }));
        assert.equal(titan.contentType, 'application/json');
        const t = JSON.parse(titan.body.transformToString());
        assert.deepEqual(t.embedding, fakeEmbedding('hello embedding world', 16));
        assert.equal(t.inputTextTokenCount, 3);

        const cohere = await client.send(new InvokeModelCommand({
            modelId: 'cohere.embed-english-v3',
            contentType: 'application/json',
            body: JSON.stringify({ texts: ['one', 'two three'], input_type: 'search_document' }),
        }));
        const c = JSON.parse(cohere.body.transformToString());
        assert.equal(c.response_type, 'embeddings_floats');
        assert.deepEqual(c.texts, ['one', 'two three']);
        assert.deepEqual(c.embeddings, [fakeEmbedding('one'), fakeEmbedding('two three')]);
        assert.equal(typeof c.id, 'string');

        const err = await failure(() => client.send(new InvokeModelCommand({
            modelId: 'cohere.embed-english-v3', contentType: 'application/json', body: JSON.stringify({ texts: ['x'] }),
        })));
        assert.ok(err instanceof ValidationException);
        const f = await failure(() => client.send(new InvokeModelCommand({
            modelId: 'fault-429', contentType: 'application/json', body: JSON.stringify({ inputText: 'x' }),
        })));
        assert.ok(f instanceof ThrottlingException);
        const e = await lastLogEntry('/invoke');
        assert.equal(e.model, 'fault-429');
        assert.deepEqual(e.body, { inputText: 'x' });
    });

    it('auth: a wrong secret is an InvalidSignatureException (403)', async () => {
        const bad = makeClient({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: 'not-the-secret' });
        const err = await failure(() => converse({ messages: user('hi') }, bad));
        bad.destroy();
        assert.ok(err instanceof BedrockRuntimeServiceException);
        assert.equal(err.name, 'InvalidSignatureException');
        assert.equal(err.$metadata.httpStatusCode, 403);
        assert.match(err.message, /^The request signature we calculated does not match the signature you provided/);
        // AWS shows the canonical request it expected: the path double-encoded.
        assert.match(err.message, /\/model\/anthropic\.claude-3-haiku-20240307-v1%253A0\/converse\n/);
        const e = await lastLogEntry('/converse');
        assert.equal(e.auth_ok, false);
    });

    it('auth: unknown keys, session tokens, skewed clocks, missing auth', async () => {
        const unknown = makeClient({ accessKeyId: 'AKIDUNKNOWN', secretAccessKey: SECRET_ACCESS_KEY });
        let err = await failure(() => converse({ messages: user('hi') }, unknown));
        unknown.destroy();
        assert.equal(err.name, 'UnrecognizedClientException');
        assert.equal(err.$metadata.httpStatusCode, 403);
        assert.equal(err.message, 'The security token included in the request is invalid.');

        const session = makeClient({
            accessKeyId: SESSION_ACCESS_KEY_ID, secretAccessKey: SESSION_SECRET_ACCESS_KEY, sessionToken: SESSION_TOKEN,
        });
        const r = await converse({ messages: user('with a session') }, session);
        assert.equal(r.output.message.content[0].text, 'Echo: with a session');
        const events = await converseStream({ messages: user('streamed session') }, session);
        assert.equal(streamText(events), 'Echo: streamed session');
        session.destroy();
        const logged = await lastLogEntry('/converse-stream');
        assert.equal(logged.headers['x-amz-security-token'], SESSION_TOKEN);

        const noToken = makeClient({ accessKeyId: SESSION_ACCESS_KEY_ID, secretAccessKey: SESSION_SECRET_ACCESS_KEY });
        err = await failure(() => converse({ messages: user('hi') }, noToken));
        noToken.destroy();
        assert.equal(err.name, 'UnrecognizedClientException');

        const skewed = makeClient({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, { systemClockOffset: -20 * 60 * 1000 });
        err = await failure(() => converse({ messages: user('hi') }, skewed));
        skewed.destroy();
        assert.equal(err.name, 'InvalidSignatureException');
        assert.match(err.message, /^Signature expired/);

        const res = await fetch(`${endpoint}/model/${encodeURIComponent(MODEL)}/converse`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: user('hi') }),
        });
        assert.equal(res.status, 403);
        assert.match(res.headers.get('x-amzn-errortype'), /^MissingAuthenticationTokenException/);
        assert.deepEqual(await res.json(), { message: 'Missing Authentication Token' });
    });

    it('auth: the signature covers the body and the query string', async () => {
        const signer = new SignatureV4({
            credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
            region: 'eu-west-3', service: 'bedrock', sha256: Sha256,
        });
        const body = JSON.stringify({ messages: user('signed body') });
        const p = `/model/${encodeURIComponent(MODEL)}/converse`;
        const host = `127.0.0.1:${fake.port}`;
        const query = { 'b key': 'x y', a: '1*' };
        const signed = await signer.sign({
            method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: fake.port, path: p, query,
            headers: { host, 'content-type': 'application/json' }, body,
        });
        const url = `${endpoint}${p}?b%20key=x%20y&a=1%2A`;
        const send = (b) => fetch(url, { method: 'POST', headers: signed.headers, body: b });
        const ok = await send(body);
        assert.equal(ok.status, 200, await ok.clone().text());
        assert.equal((await ok.json()).output.message.content[0].text, 'Echo: signed body');
        // Same signature, different body: refused.
        const tampered = await send(body.replace('signed', 'forged'));
        assert.equal(tampered.status, 403);
        assert.match(tampered.headers.get('x-amzn-errortype'), /^InvalidSignatureException/);
        // Same signature, different query: refused.
        const q = await fetch(`${endpoint}${p}?a=2`, { method: 'POST', headers: signed.headers, body });
        assert.equal(q.status, 403);
    });

    it('auth: a Bedrock API key (Bearer) is accepted when it matches --api-key', async () => {
        const bearer = makeClient(undefined, { token: { token: API_KEY }, authSchemePreference: ['httpBearerAuth'] });
        const r = await converse({ messages: user('bearer') }, bearer);
        bearer.destroy();
        assert.equal(r.output.message.content[0].text, 'Echo: bearer');
        const e = await lastLogEntry('/converse');
        assert.equal(e.had_auth, true);
        assert.equal(e.auth_ok, true);
        // Bearer, not SigV4: nothing was signed.
        assert.equal(e.headers['x-amz-date'], undefined);
        const wrong = makeClient(undefined, { token: { token: 'nope' }, authSchemePreference: ['httpBearerAuth'] });
        const err = await failure(() => converse({ messages: user('bearer') }, wrong));
        wrong.destroy();
        assert.equal(err.$metadata.httpStatusCode, 403);
    });

    it('encodeEventStreamMessage builds frames the SDK codec decodes', () => {
        const frame = encodeEventStreamMessage(
            { ':event-type': 'messageStop', ':content-type': 'application/json', ':message-type': 'event' },
            Buffer.from('{"stopReason":"end_turn"}'));
        const codec = new EventStreamCodec((b) => Buffer.from(b).toString('utf8'), (s) => new Uint8Array(Buffer.from(s)));
        const msg = codec.decode(new Uint8Array(frame));
        assert.equal(msg.headers[':event-type'].value, 'messageStop');
        assert.equal(Buffer.from(msg.body).toString(), '{"stopReason":"end_turn"}');
        assert.deepEqual(Buffer.from(codec.encode(msg)), frame);
    });
});

/* A POST signed with the fake's credentials, sent with fetch (for raw bytes and headers). */
async function signedFetch(p, body) {
    const signer = new SignatureV4({
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
        region: 'us-east-1', service: 'bedrock', sha256: Sha256,
    });
    const signed = await signer.sign({
        method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: fake.port, path: p, query: {},
        headers: { host: `127.0.0.1:${fake.port}`, 'content-type': 'application/json' }, body,
    });
    return fetch(`${endpoint}${p}`, { method: 'POST', headers: signed.headers, body });
}
