// The bedrock/ adapter end to end: the official openai client talks to sluice
// (behind lighttpd), sluice talks Bedrock's Converse / ConverseStream /
// InvokeModel to the fake (tests/fakes/providers/bedrock.mjs), which checks
// every SigV4 signature for real and answers ConverseStream in AWS's binary
// event-stream. Checks what the client gets and, through the fake's log,
// what Bedrock was sent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import {
    ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_ACCESS_KEY_ID, SESSION_SECRET_ACCESS_KEY, SESSION_TOKEN,
} from '../fakes/providers/bedrock.mjs';
import { user, collect, textOf, chatFaultTests, streamFaultTests } from './lib/chat.mjs';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const FAULTS = ['overloaded', 'context-too-long', 'content-filter', 'fault-429', 'fault-500', 'fault-400',
    'drop-mid-stream', 'bad-event', 'bad-crc', 'stream-error', 'stream-throttled'];

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            const creds = { aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: SECRET_ACCESS_KEY,
                aws_region_name: 'us-east-1' };
            const bedrock = (name, model, extra = {}, info = undefined) => ({
                model_name: name,
                litellm_params: { model: `bedrock/${model}`, api_base: root, timeout: 10, ...creds, ...extra },
                ...(info ? { model_info: info } : {}),
            });
            const noCreds = { aws_access_key_id: undefined, aws_secret_access_key: undefined };
            cfg.model_list.push(
                bedrock('bedrock', HAIKU),
                bedrock('bedrock-converse', `converse/${HAIKU}`, { aws_region_name: 'eu-west-3' }),
                bedrock('bedrock-cached', 'anthropic.claude-cached-v1:0'),
                bedrock('bedrock-arn', 'ignored', {
                    model_id: `arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.${HAIKU}`,
                }),
                bedrock('bedrock-session', HAIKU, { aws_access_key_id: SESSION_ACCESS_KEY_ID,
                    aws_secret_access_key: SESSION_SECRET_ACCESS_KEY, aws_session_token: SESSION_TOKEN }),
                bedrock('bedrock-wrong-secret', HAIKU, { aws_secret_access_key: 'not-the-secret' }),
                bedrock('bedrock-unknown-key', HAIKU, { aws_access_key_id: 'AKIDNOTKNOWN' }),
                bedrock('bedrock-session-no-token', HAIKU, { aws_access_key_id: SESSION_ACCESS_KEY_ID,
                    aws_secret_access_key: SESSION_SECRET_ACCESS_KEY }),
                bedrock('bedrock-api-key', HAIKU, { ...noCreds, api_key: FAKE_UPSTREAM_KEY }),
                // No credentials in litellm_params: the standard AWS variables (exported
                // from environment_variables at start-up) are used.
                bedrock('bedrock-env', HAIKU, noCreds),
                bedrock('titan-embed', 'amazon.titan-embed-text-v2:0', {}, { mode: 'embedding' }),
                bedrock('cohere-embed', 'cohere.embed-english-v3', {}, { mode: 'embedding' }),
                ...FAULTS.map((f) => bedrock(`bedrock-${f}`, f)),
            );
            // YAML has no "undefined": drop the keys set to it.
            for (const m of cfg.model_list) {
                for (const [k, v] of Object.entries(m.litellm_params)) if (v === undefined) delete m.litellm_params[k];
            }
            cfg.environment_variables = {
                ...(cfg.environment_variables || {}),
                AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
                AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
            };
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const lastUpstream = async () => (await h.fake.log()).filter((e) => /^\/model\//.test(e.path ?? '')).at(-1);

const weather = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    },
};

describe('bedrock/ through sluice', () => {
    it('chat: signed Converse call, system blocks, inferenceConfig, usage in OpenAI shape', async () => {
        const r = await client.chat.completions.create({
            model: 'bedrock',
            messages: [{ role: 'system', content: 'be brief' }, ...user('hello there')],
            temperature: 0.3, max_tokens: 100, stop: ['STOP'],
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'bedrock');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.choices[0].finish_reason, 'stop');
        // 3 + 2 words for the system prompt, 3 + 2 for the user message
        assert.equal(r.usage.prompt_tokens, 10);
        assert.equal(r.usage.completion_tokens, 3);
        assert.equal(r.usage.total_tokens, 13);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);

        const up = await lastUpstream();
        assert.equal(up.auth_ok, true, up.auth_error);
        assert.equal(up.path, `/model/${encodeURIComponent(HAIKU)}/converse`);
        // The fake checked the signature (it keeps Authorization out of its log).
        assert.match(up.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
        assert.equal(up.headers['content-type'], 'application/json');
        assert.deepEqual(up.body.system, [{ text: 'be brief' }]);
        assert.deepEqual(up.body.messages, [{ role: 'user', content: [{ text: 'hello there' }] }]);
        assert.deepEqual(up.body.inferenceConfig, { maxTokens: 100, temperature: 0.3, stopSequences: ['STOP'] });
    });

    it('bedrock/converse/<model> and another region sign for that region', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-converse', messages: user('x y') });
        assert.equal(r.choices[0].message.content, 'Echo: x y');
        const up = await lastUpstream();
        assert.equal(up.path, `/model/${encodeURIComponent(HAIKU)}/converse`);
        assert.equal(up.auth_ok, true, up.auth_error);
    });

    it('an inference-profile ARN (model_id) is one encoded path segment, signed encoded twice', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-arn', messages: user('arn') });
        assert.equal(r.choices[0].message.content, 'Echo: arn');
        const up = await lastUpstream();
        assert.equal(up.auth_ok, true, up.auth_error);
        assert.match(up.path, /^\/model\/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus\./);
    });

    it('temporary credentials: the session token is sent and signed', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-session', messages: user('token') });
        assert.equal(r.choices[0].message.content, 'Echo: token');
        const up = await lastUpstream();
        assert.equal(up.headers['x-amz-security-token'], SESSION_TOKEN);
        assert.equal(up.auth_ok, true, up.auth_error);
    });

    it('credentials from the standard AWS environment variables', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-env', messages: user('env') });
        assert.equal(r.choices[0].message.content, 'Echo: env');
        const up = await lastUpstream();
        assert.equal(up.auth_ok, true, up.auth_error);
        assert.ok(up.headers['x-amz-date'], 'signed with SigV4');
    });

    it('a Bedrock API key goes as a bearer token', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-api-key', messages: user('key') });
        assert.equal(r.choices[0].message.content, 'Echo: key');
        const up = await lastUpstream();
        assert.equal(up.auth_ok, true, up.auth_error);
        assert.equal(up.headers['x-amz-date'], undefined, 'a bearer token, not a signature');
    });

    it('stream: event-stream frames become deltas that join to the text; usage when asked', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'bedrock', messages: user('one two three four'), stream: true,
            stream_options: { include_usage: true },
        }));
        assert.equal(textOf(chunks), 'Echo: one two three four');
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.ok(chunks.every((c) => c.model === 'bedrock'));
        const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.length, 1);
        assert.equal(fin[0].choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.prompt_tokens, 7);
        assert.equal(last.usage.completion_tokens, 5);
        assert.ok(chunks.length >= 7, `got ${chunks.length} chunks`);
        const up = await lastUpstream();
        assert.equal(up.path, `/model/${encodeURIComponent(HAIKU)}/converse-stream`);
        assert.equal(up.auth_ok, true, up.auth_error);
    });

    it('stream without include_usage has no usage chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'bedrock', messages: user('a b'), stream: true,
        }));
        assert.equal(textOf(chunks), 'Echo: a b');
        assert.ok(chunks.every((c) => c.choices.length === 1 && !c.usage));
    });

    it('tools: a call, then the tool result, then the answer', async () => {
        const messages = user('please call tool now');
        const r1 = await client.chat.completions.create({ model: 'bedrock', messages, tools: [weather],
            tool_choice: 'auto' });
        assert.equal(r1.choices[0].finish_reason, 'tool_calls');
        const call = r1.choices[0].message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.match(call.id, /^tooluse_/);
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'please call tool now' });
        let up = await lastUpstream();
        assert.deepEqual(up.body.toolConfig, {
            tools: [{ toolSpec: { name: 'get_weather', description: 'Weather for a city',
                inputSchema: { json: weather.function.parameters } } }],
            toolChoice: { auto: {} },
        });

        const r2 = await client.chat.completions.create({
            model: 'bedrock',
            tools: [weather],
            messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C' }],
        });
        assert.equal(r2.choices[0].message.content, 'Echo: tool result: 18C');
        up = await lastUpstream();
        assert.deepEqual(up.body.messages[1].content,
            [{ toolUse: { toolUseId: call.id, name: 'get_weather', input: { text: 'please call tool now' } } }]);
        assert.deepEqual(up.body.messages[2],
            { role: 'user', content: [{ toolResult: { toolUseId: call.id, content: [{ text: '18C' }] } }] });
    });

    it('tools while streaming: the SDK assembles the call from the deltas', async () => {
        const stream = client.chat.completions.stream({
            model: 'bedrock', messages: user('call tool for Paris'), tools: [weather],
            tool_choice: { type: 'function', function: { name: 'get_weather' } },
        });
        const final = await stream.finalChatCompletion();
        const call = final.choices[0].message.tool_calls[0];
        assert.equal(final.choices[0].finish_reason, 'tool_calls');
        assert.equal(call.function.name, 'get_weather');
        assert.match(call.id, /^tooluse_/);
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool for Paris' });
        const up = await lastUpstream();
        assert.deepEqual(up.body.toolConfig.toolChoice, { tool: { name: 'get_weather' } });
    });

    it('images: a data URL becomes an image block with bytes; an http URL is a 400', async () => {
        const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
        const r = await client.chat.completions.create({
            model: 'bedrock',
            messages: [{ role: 'user', content: [
                { type: 'text', text: 'what is this' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
            ] }],
        });
        assert.equal(r.choices[0].message.content, `Echo: what is this [image image/png ${png.length}]`);
        await assert.rejects(client.chat.completions.create({
            model: 'bedrock',
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }],
        }), (e) => e instanceof OpenAI.BadRequestError && /data URLs/.test(e.message));
    });

    it('JSON mode: the forced json tool comes back as the message content', async () => {
        // The fake calls a tool only when asked to "call tool"; the forced
        // tool is then json_tool_call, with input {"text": <user text>}.
        const r = await client.chat.completions.create({
            model: 'bedrock', messages: user('call tool: json please'), response_format: { type: 'json_object' },
        });
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.choices[0].message.tool_calls, undefined);
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { text: 'call tool: json please' });
        const up = await lastUpstream();
        assert.deepEqual(up.body.toolConfig.toolChoice, { tool: { name: 'json_tool_call' } });
    });

    it('max_tokens cuts the answer: finish_reason length', async () => {
        const r = await client.chat.completions.create({
            model: 'bedrock', messages: user('one two three four five'), max_completion_tokens: 2,
        });
        assert.equal(r.choices[0].message.content, 'Echo: one ');
        assert.equal(r.choices[0].finish_reason, 'length');
        assert.equal((await lastUpstream()).body.inferenceConfig.maxTokens, 2);
    });

    it('cached input tokens are counted in prompt_tokens and reported in prompt_tokens_details', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-cached', messages: user('a b c') });
        assert.equal(r.usage.prompt_tokens, 8);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 2);
        assert.equal(r.usage.total_tokens, 8 + r.usage.completion_tokens);
    });

    it('an unsupported parameter is a 400 naming it; drop_params drops it', async () => {
        await assert.rejects(
            client.chat.completions.create({ model: 'bedrock', messages: user('x'), seed: 3 }),
            (e) => e instanceof OpenAI.BadRequestError && /bedrock does not support parameters: seed/.test(e.message),
        );
        const r = await client.chat.completions.create({ model: 'bedrock', messages: user('x'), seed: 3,
            drop_params: true });
        assert.equal(r.choices[0].message.content, 'Echo: x');
        const up = await lastUpstream();
        assert.equal(JSON.stringify(up.body).includes('seed'), false);
        assert.equal(up.body.drop_params, undefined);
    });

    it('provider-specific fields go to additionalModelRequestFields', async () => {
        await client.chat.completions.create({ model: 'bedrock', messages: user('x'), top_k: 7 });
        assert.deepEqual((await lastUpstream()).body.additionalModelRequestFields, { top_k: 7 });
    });

    it('content filter → finish_reason content_filter', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock-content-filter', messages: user('x') });
        assert.equal(r.choices[0].finish_reason, 'content_filter');
    });
});

describe('bedrock/ embeddings (InvokeModel)', () => {
    const close = (got, want) => {
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `${got[i]} vs ${want[i]}`);
    };

    it('Titan: one text, its vector and token count', async () => {
        const r = await client.embeddings.create({ model: 'titan-embed', input: 'hello embedding world',
            encoding_format: 'float' });
        assert.equal(r.object, 'list');
        assert.equal(r.data.length, 1);
        close(r.data[0].embedding, fakeEmbedding('hello embedding world', 8));
        assert.equal(r.usage.prompt_tokens, 3);
        const up = await lastUpstream();
        assert.equal(up.path, `/model/${encodeURIComponent('amazon.titan-embed-text-v2:0')}/invoke`);
        assert.deepEqual(up.body, { inputText: 'hello embedding world' });
        assert.equal(up.auth_ok, true, up.auth_error);
    });

    it('Titan takes one text per request: several are a 400', async () => {
        await assert.rejects(client.embeddings.create({ model: 'titan-embed', input: ['a', 'b'] }),
            (e) => e instanceof OpenAI.BadRequestError && /exactly one input/.test(e.message));
    });

    it('Cohere: several texts, base64 as the SDK asks by default', async () => {
        // The SDK asks for base64 and decodes it to floats itself.
        const r = await client.embeddings.create({ model: 'cohere-embed', input: ['first text', 'second'] });
        assert.equal(r.data.length, 2);
        close(r.data[0].embedding, fakeEmbedding('first text', 8));
        close(r.data[1].embedding, fakeEmbedding('second', 8));
        const up = await lastUpstream();
        assert.deepEqual(up.body, { texts: ['first text', 'second'], input_type: 'search_document' });
    });
});

describe('bedrock/ errors', () => {
    const cases = [
        ['bedrock-overloaded', 503, OpenAI.InternalServerError, null],
        ['bedrock-context-too-long', 400, OpenAI.BadRequestError, 'context_length_exceeded'],
        ['bedrock-fault-429', 429, OpenAI.RateLimitError, null],
        ['bedrock-fault-500', 500, OpenAI.InternalServerError, null],
        ['bedrock-fault-400', 400, OpenAI.BadRequestError, null],
        ['bedrock-wrong-secret', 401, OpenAI.AuthenticationError, null],
        ['bedrock-unknown-key', 401, OpenAI.AuthenticationError, null],
        ['bedrock-session-no-token', 401, OpenAI.AuthenticationError, null],
    ];
    chatFaultTests(() => new OpenAI({ apiKey: h.masterKey, baseURL: h.baseURL, maxRetries: 0 }), cases);

    it('the throttled status keeps retry-after', async () => {
        const r = await fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'bedrock-fault-429', messages: user('x') }),
        });
        assert.equal(r.status, 429);
        assert.equal(r.headers.get('retry-after'), '7');
        const j = await r.json();
        assert.equal(j.error.type, 'rate_limit_error');
    });

    streamFaultTests(() => client, ['bedrock-stream-error', 'bedrock-stream-throttled', 'bedrock-drop-mid-stream',
        'bedrock-bad-event', 'bedrock-bad-crc'], OpenAI.APIError);

    it('a non-streamed reply cut in half is a 502, not a hang', async () => {
        const c = new OpenAI({ apiKey: h.masterKey, baseURL: h.baseURL, maxRetries: 0 });
        await assert.rejects(c.chat.completions.create({ model: 'bedrock-drop-mid-stream', messages: user('x') }),
            (e) => e instanceof OpenAI.APIError && e.status >= 500);
    });

    it('the gateway is fine afterwards', async () => {
        const r = await client.chat.completions.create({ model: 'bedrock', messages: user('still here') });
        assert.equal(r.choices[0].message.content, 'Echo: still here');
    });
});
