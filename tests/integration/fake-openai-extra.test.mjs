// The fake's OpenAI routes beyond chat and embeddings
// (tests/fakes/providers/openai-extra.mjs: Responses, legacy completions,
// rerank, moderations, images, speech, transcriptions), Cohere's and
// Bedrock's rerank, and the tool "run `CMD`" convention, each proven against
// the official SDK that speaks it, no gateway involved.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { CohereClient, CohereClientV2 } from 'cohere-ai';
import { BedrockRuntimeClient, InvokeModelCommand, ValidationException } from '@aws-sdk/client-bedrock-runtime';
// Bedrock's default handler speaks HTTP/2; the fake is HTTP/1.1.
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startFakeProcess } from './lib/procs.mjs';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from '../fakes/providers/bedrock.mjs';

const KEY = 'fake-extra-key';
let dir;
let fake;
let client;
let root;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-extra-'));
    fake = await startFakeProcess(dir, { apiKey: KEY, name: 'fake-extra' });
    root = `http://127.0.0.1:${fake.port}`;
    client = new OpenAI({ apiKey: KEY, baseURL: fake.baseURL, maxRetries: 0, timeout: 20000 });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const weather = {
    type: 'function', name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};
// The shape of Codex CLI's shell tool, and a plain string-command tool.
const shell = {
    type: 'function', name: 'shell', description: 'Runs a command',
    parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } },
        workdir: { type: 'string' }, timeout_ms: { type: 'number' } }, required: ['command'] },
};
const stringShell = {
    type: 'function', name: 'exec', parameters: { type: 'object', properties: { command: { type: 'string' } } },
};

/* POSTs JSON to the fake with the key; returns {status, headers, json}. */
async function post(p, body, headers = {}) {
    const r = await fetch(`${root}${p}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        /* not JSON */
    }
    return { status: r.status, headers: r.headers, json, text };
}

/* Expects a 400 in OpenAI's error shape whose message matches re (and param, when given). */
async function bad400(p, body, re, param) {
    const r = await post(p, body);
    assert.equal(r.status, 400, r.text);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.ok('param' in r.json.error && 'code' in r.json.error);
    assert.match(r.json.error.message, re);
    if (param !== undefined) assert.equal(r.json.error.param, param);
    return r.json.error;
}

/* The log entry of the fake's last request to path p. */
const lastLog = async (p) => (await fake.log()).filter((e) => e.path === p).at(-1);

describe('responses via the openai SDK', () => {
    it('a string input: the response object as OpenAI returns it', async () => {
        const r = await client.responses.create({ model: 'gpt-4.1-mini', input: 'hello there world',
            instructions: 'be brief', temperature: 0.5, metadata: { k: 'v' } });
        assert.match(r.id, /^resp_[0-9a-f]+$/);
        assert.equal(r.object, 'response');
        assert.equal(typeof r.created_at, 'number');
        assert.equal(r.status, 'completed');
        assert.equal(r.model, 'gpt-4.1-mini');
        assert.equal(r.output_text, 'Echo: hello there world');
        assert.equal(r.output.length, 1);
        const [m] = r.output;
        assert.match(m.id, /^msg_/);
        assert.equal(m.type, 'message');
        assert.equal(m.role, 'assistant');
        assert.equal(m.status, 'completed');
        assert.deepEqual(m.content, [{ type: 'output_text', annotations: [], logprobs: [], text: 'Echo: hello there world' }]);
        // 3 + 3 words of input, 3 + 2 of instructions; 4 words out.
        assert.deepEqual(r.usage, { input_tokens: 11, input_tokens_details: { cached_tokens: 0 }, output_tokens: 4,
            output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 15 });
        assert.equal(r.instructions, 'be brief');
        assert.equal(r.temperature, 0.5);
        assert.deepEqual(r.metadata, { k: 'v' });
        assert.equal(r.error, null);
        assert.equal(r.incomplete_details, null);
        assert.equal(r.parallel_tool_calls, true);
        assert.equal(r.tool_choice, 'auto');
        assert.deepEqual(r.tools, []);
        assert.deepEqual(r.text, { format: { type: 'text' }, verbosity: 'medium' });
        assert.equal(r.previous_response_id, null);
        assert.equal(r.max_output_tokens, null);
        assert.deepEqual(r.reasoning, { effort: null, summary: null });
        assert.equal(r.store, true);
        assert.equal(r.top_p, 1);
        assert.equal(r.truncation, 'disabled');
        assert.equal(r.user, null);
        const log = await lastLog('/v1/responses');
        assert.equal(log.model, 'gpt-4.1-mini');
        assert.equal(log.auth_ok, true);
        assert.equal(log.stream, false);
        assert.equal(log.body.input, 'hello there world');
        // output_text is the SDK's; the wire does not carry it.
        const raw = await post('/v1/responses', { model: 'm', input: 'x' });
        assert.ok(!('output_text' in raw.json));
    });

    it('an item array: parts, the last user message wins, every role accepted', async () => {
        const r = await client.responses.create({
            model: 'gpt-4.1-mini',
            input: [
                { role: 'developer', content: 'dev rules' },
                { role: 'system', content: [{ type: 'input_text', text: 'sys' }] },
                { role: 'user', content: 'first' },
                { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Echo: first' }] },
                { type: 'reasoning', id: 'rs_1', summary: [] },
                { role: 'user', content: [{ type: 'input_text', text: 'second ' }, { type: 'input_text', text: 'turn' },
                    { type: 'input_image', image_url: 'https://example.com/cat.png' },
                    { type: 'input_file', filename: 'a.pdf',
                        file_data: `data:application/pdf;base64,${Buffer.from('PDF!').toString('base64')}` }] },
            ],
        });
        assert.equal(r.output_text, 'Echo: second turn [image-url https://example.com/cat.png] [file a.pdf 4]');
    });

    it('a function call, then the function_call_output round trip', async () => {
        const input = [{ role: 'user', content: 'call tool for Paris' }];
        const r1 = await client.responses.create({ model: 'gpt-4.1-mini', input, tools: [weather] });
        assert.equal(r1.status, 'completed');
        assert.equal(r1.output.length, 1);
        const call = r1.output[0];
        assert.equal(call.type, 'function_call');
        assert.match(call.id, /^fc_/);
        assert.match(call.call_id, /^call_/);
        assert.equal(call.name, 'get_weather');
        assert.equal(call.status, 'completed');
        assert.deepEqual(JSON.parse(call.arguments), { text: 'call tool for Paris' });
        assert.equal(r1.output_text, '');
        assert.equal(r1.tools[0].name, 'get_weather');
        assert.equal(r1.tools[0].strict, true);
        const r2 = await client.responses.create({
            model: 'gpt-4.1-mini', tools: [weather],
            input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
        });
        assert.equal(r2.output_text, 'Echo: tool result: sunny');
        assert.equal(r2.output[0].type, 'message');
    });

    it('tool_choice names the function; "none" answers text', async () => {
        const r = await client.responses.create({ model: 'm', input: 'call tool', tools: [weather, stringShell],
            tool_choice: { type: 'function', name: 'exec' } });
        assert.equal(r.output[0].name, 'exec');
        const none = await client.responses.create({ model: 'm', input: 'call tool', tools: [weather], tool_choice: 'none' });
        assert.equal(none.output_text, 'Echo: call tool');
    });

    it('text.format json_schema and json_object answer JSON', async () => {
        const r = await client.responses.create({
            model: 'm', input: 'give json',
            text: { format: { type: 'json_schema', name: 'echo', schema: { type: 'object', properties: { echo: { type: 'string' } } } } },
        });
        assert.deepEqual(JSON.parse(r.output_text), { echo: 'give json' });
        const o = await client.responses.create({ model: 'm', input: 'answer in json', text: { format: { type: 'json_object' } } });
        assert.deepEqual(JSON.parse(o.output_text), { echo: 'answer in json' });
        await assert.rejects(client.responses.create({ model: 'm', input: 'no mention', text: { format: { type: 'json_object' } } }),
            (e) => e.status === 400 && /must contain the word 'json'/.test(e.message));
    });

    it('max_output_tokens cuts the words: incomplete, reason max_output_tokens', async () => {
        const r = await client.responses.create({ model: 'm', input: 'a b c d e f', max_output_tokens: 3 });
        assert.equal(r.status, 'incomplete');
        assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
        assert.equal(r.output_text, 'Echo: a b ');
        assert.equal(r.output[0].status, 'incomplete');
        assert.equal(r.usage.output_tokens, 3);
        assert.equal(r.max_output_tokens, 3);
    });

    it('reasoning: a reasoning item first, reasoning tokens counted', async () => {
        const r = await client.responses.create({ model: 'o4-mini', input: 'think hard', reasoning: { effort: 'high' },
            include: ['reasoning.encrypted_content'] });
        assert.equal(r.output.length, 2);
        const [rs, m] = r.output;
        assert.equal(rs.type, 'reasoning');
        assert.match(rs.id, /^rs_/);
        assert.deepEqual(rs.summary, []);
        assert.equal(typeof rs.encrypted_content, 'string');
        assert.equal(m.type, 'message');
        assert.equal(r.output_text, 'Echo: think hard');
        // "Thinking about: think hard" is 4 words.
        assert.equal(r.usage.output_tokens_details.reasoning_tokens, 4);
        assert.equal(r.usage.output_tokens, 3 + 4);
        assert.deepEqual(r.reasoning, { effort: 'high', summary: null });
        // The reasoning item goes back in, as a stateless client (Codex) sends it.
        const r2 = await client.responses.create({ model: 'o4-mini', reasoning: { effort: 'low' },
            input: [{ role: 'user', content: 'think hard' }, rs, m, { role: 'user', content: 'again' }] });
        assert.equal(r2.output_text, 'Echo: again');
    });

    it('stream: the exact event sequence, helpers and finalResponse', async () => {
        const stream = client.responses.stream({ model: 'gpt-4.1-mini', input: [{ role: 'user', content: 'one two three' }] });
        const events = [];
        const deltas = [];
        const snapshots = [];
        stream.on('response.output_text.delta', (e) => {
            deltas.push(e.delta);
            snapshots.push(e.snapshot);
        });
        for await (const e of stream) events.push(e);
        const final = await stream.finalResponse();
        assert.deepEqual(events.map((e) => e.type), ['response.created', 'response.in_progress',
            'response.output_item.added', 'response.content_part.added',
            'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta',
            'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
        assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
        assert.equal(events[0].response.status, 'in_progress');
        assert.deepEqual(deltas, ['Echo: ', 'one ', 'two ', 'three']);
        assert.equal(snapshots.at(-1), 'Echo: one two three');
        assert.equal(events[8].text, 'Echo: one two three');
        assert.equal(events.at(-1).response.usage.output_tokens, 4);
        // (finalResponse() has no output_text: the SDK adds it to create()'s answers only.)
        assert.equal(final.output[0].content[0].text, 'Echo: one two three');
        assert.equal(final.status, 'completed');
        assert.equal(final.id, events[0].response.id);
    });

    it('stream: the wire form (event names, empty starts, no [DONE])', async () => {
        // (The SDK's accumulator fills the objects it was given, so look at the wire.)
        const r = await post('/v1/responses', { model: 'm', input: 'hi', stream: true, stream_options: { include_obfuscation: false } });
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        const events = r.text.split('\n\n').filter(Boolean).map((b) => {
            const [ev, data] = b.split('\n');
            const e = JSON.parse(data.slice('data: '.length));
            assert.equal(ev.slice('event: '.length), e.type);
            assert.ok(!('obfuscation' in e));
            return e;
        });
        assert.deepEqual(events[0].response.output, []);
        assert.equal(events[0].response.usage, null);
        assert.deepEqual(events[2].item,
            { id: events[2].item.id, type: 'message', status: 'in_progress', content: [], role: 'assistant' });
        assert.deepEqual(events[3].part, { type: 'output_text', annotations: [], logprobs: [], text: '' });
        assert.equal(events.at(-1).response.output[0].content[0].text, 'Echo: hi');
        assert.ok(!r.text.includes('[DONE]'));
        const obfuscated = await post('/v1/responses', { model: 'm', input: 'hi', stream: true });
        assert.match(obfuscated.text, /"obfuscation":"[0-9A-Za-z]+"/);
    });

    it('stream: a function call', async () => {
        const stream = client.responses.stream({ model: 'm', input: 'call tool now', tools: [weather] });
        const types = [];
        let args = '';
        stream.on('response.function_call_arguments.delta', (e) => { args = e.snapshot; });
        for await (const e of stream) types.push(e.type);
        const final = await stream.finalResponse();
        assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
        assert.ok(types.filter((t) => t === 'response.function_call_arguments.delta').length > 1);
        assert.deepEqual(types.slice(-3), ['response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
        const call = final.output[0];
        assert.equal(call.type, 'function_call');
        assert.equal(call.arguments, args);
        assert.deepEqual(JSON.parse(call.arguments), { text: 'call tool now' });
    });

    it('stream: reasoning, then incomplete ends with response.incomplete', async () => {
        const s = client.responses.stream({ model: 'm', input: 'a b c d', max_output_tokens: 2, reasoning: { effort: 'low' } });
        const events = [];
        for await (const e of s) events.push(e);
        const types = events.map((e) => e.type);
        assert.deepEqual(types.slice(2, 4), ['response.output_item.added', 'response.output_item.done']);
        assert.equal(events[2].item.type, 'reasoning');
        assert.equal(types.at(-1), 'response.incomplete');
        // (The SDK's snapshot only takes the response of response.completed.)
        const last = events.at(-1).response;
        assert.equal(last.status, 'incomplete');
        assert.deepEqual(last.incomplete_details, { reason: 'max_output_tokens' });
        assert.equal(last.output[1].content[0].text, 'Echo: a ');
    });

    it('retrieve, input_items and delete a stored response; store: false is not kept', async () => {
        const r = await client.responses.create({ model: 'm', input: 'keep me' });
        const got = await client.responses.retrieve(r.id);
        assert.equal(got.id, r.id);
        assert.equal(got.output_text, 'Echo: keep me');
        const items = await client.responses.inputItems.list(r.id);
        assert.equal(items.data.length, 1);
        assert.equal(items.data[0].type, 'message');
        assert.match(items.data[0].id, /^msg_/);
        await client.responses.delete(r.id);
        await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404 && /not found/.test(e.message));
        const off = await client.responses.create({ model: 'm', input: 'forget me', store: false });
        assert.equal(off.store, false);
        await assert.rejects(client.responses.retrieve(off.id), (e) => e.status === 404);
    });

    it('previous_response_id: known continues (and counts), unknown is a 400', async () => {
        const r1 = await client.responses.create({ model: 'm', input: 'call tool for Rome', tools: [weather] });
        const call = r1.output[0];
        // Only the output goes back; the call it answers is in the stored conversation.
        const r2 = await client.responses.create({ model: 'm', previous_response_id: r1.id, tools: [weather],
            input: [{ type: 'function_call_output', call_id: call.call_id, output: '21C' }] });
        assert.equal(r2.output_text, 'Echo: tool result: 21C');
        assert.equal(r2.previous_response_id, r1.id);
        assert.ok(r2.usage.input_tokens > r1.usage.input_tokens);
        const r3 = await client.responses.create({ model: 'm', previous_response_id: r2.id, input: 'and now?' });
        assert.equal(r3.output_text, 'Echo: and now?');
        await assert.rejects(client.responses.create({ model: 'm', input: 'x', previous_response_id: 'resp_nope' }), (e) => {
            assert.equal(e.status, 400);
            assert.equal(e.code, 'previous_response_not_found');
            assert.equal(e.param, 'previous_response_id');
            assert.equal(e.error.message, "Previous response with id 'resp_nope' not found.");
            return true;
        });
    });

    it('malformed requests: 400 in OpenAI\'s shape', async () => {
        await bad400('/v1/responses', { input: 'x' }, /Missing required parameter: 'model'/, 'model');
        await bad400('/v1/responses', { model: 'm' }, /Missing required parameter: 'input'/, 'input');
        await bad400('/v1/responses', { model: 'm', input: 42 }, /Invalid type for 'input'/, 'input');
        await bad400('/v1/responses', { model: 'm', input: { role: 'user' } }, /Invalid type for 'input'/, 'input');
        await bad400('/v1/responses', { model: 'm', input: [{ type: 'bogus_item' }] }, /Invalid value: 'bogus_item'/, 'input[0].type');
        await bad400('/v1/responses', { model: 'm', input: [{ role: 'robot', content: 'x' }] }, /Invalid value: 'robot'/, 'input[0].role');
        await bad400('/v1/responses', { model: 'm', input: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] },
            /Invalid value: 'text'/, 'input[0].content[0].type');
        await bad400('/v1/responses', { model: 'm', input: [{ type: 'function_call_output', call_id: 'call_x', output: 'y' }] },
            /No tool call found for function call output with call_id call_x/, 'input');
        await bad400('/v1/responses', { model: 'm', input: 'x', tools: ['get_weather'] }, /Invalid type for 'tools\[0\]'/, 'tools[0]');
        await bad400('/v1/responses', { model: 'm', input: 'x', tools: [{ name: 'f' }] }, /'tools\[0\]\.type'/, 'tools[0].type');
        await bad400('/v1/responses', { model: 'm', input: 'x', tools: [weather], tool_choice: { type: 'function', name: 'nope' } },
            /Tool choice 'function' not found/, 'tool_choice');
        await bad400('/v1/responses', '{"model":', /could not parse the JSON body/);
        // The SDK surfaces them as BadRequestError with the param.
        await assert.rejects(client.responses.create({ model: 'm', input: [{ type: 'bogus_item' }] }),
            (e) => e instanceof OpenAI.BadRequestError && e.param === 'input[0].type');
        // Built-in tools are accepted (the fake never calls them).
        const r = await client.responses.create({ model: 'm', input: 'call tool', tools: [{ type: 'web_search' }] });
        assert.equal(r.output_text, 'Echo: call tool');
    });

    it('auth and faults', async () => {
        const noKey = await fetch(`${root}/v1/responses`, { method: 'POST', body: '{}' });
        assert.equal(noKey.status, 401);
        assert.equal((await noKey.json()).error.code, 'invalid_api_key');
        const wrong = new OpenAI({ apiKey: 'wrong', baseURL: fake.baseURL, maxRetries: 0 });
        await assert.rejects(wrong.responses.create({ model: 'm', input: 'x' }), (e) => e.status === 401);
        assert.equal((await lastLog('/v1/responses')).auth_ok, false);
        await assert.rejects(client.responses.create({ model: 'fault-500', input: 'x' }), (e) => e.status === 500);
        await assert.rejects(client.responses.create({ model: 'fault-429', input: 'x' }),
            (e) => e.status === 429 && e.headers.get('retry-after') === '7');
        await assert.rejects(client.responses.create({ model: 'fault-400', input: 'x', stream: true }), (e) => e.status === 400);
        const dropped = client.responses.stream({ model: 'drop-mid-stream', input: 'one two three four' });
        await assert.rejects(dropped.finalResponse());
        const t0 = Date.now();
        const slow = await client.responses.create({ model: 'slow-stream-50', input: 'a b', stream: true });
        let n = 0;
        for await (const e of slow) n += e ? 1 : 0;
        assert.ok(n >= 10 && Date.now() - t0 >= 400, `${n} events in ${Date.now() - t0} ms`);
        await assert.rejects(client.responses.create({ model: 'hang', input: 'x' }, { timeout: 300 }),
            (e) => e instanceof OpenAI.APIConnectionTimeoutError);
    });

    it('without the /v1 prefix too', async () => {
        const r = await post('/responses', { model: 'm', input: 'bare' });
        assert.equal(r.status, 200);
        assert.equal(r.json.output[0].content[0].text, 'Echo: bare');
        const got = await fetch(`${root}/responses/${r.json.id}`, { headers: { authorization: `Bearer ${KEY}` } });
        assert.equal((await got.json()).id, r.json.id);
        const put = await fetch(`${root}/v1/responses/${r.json.id}`,
            { method: 'PUT', headers: { authorization: `Bearer ${KEY}` } });
        assert.equal(put.status, 405);
    });
});

describe('legacy completions via the openai SDK', () => {
    it('plain: text_completion, usage, max_tokens 16 by default', async () => {
        const r = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say this please' });
        assert.match(r.id, /^cmpl-/);
        assert.equal(r.object, 'text_completion');
        assert.equal(r.model, 'gpt-3.5-turbo-instruct');
        assert.deepEqual(r.choices, [{ text: 'Echo: say this please', index: 0, logprobs: null, finish_reason: 'stop' }]);
        assert.deepEqual(r.usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
        const words20 = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
        const long = await client.completions.create({ model: 'm', prompt: words20 });
        assert.equal(long.choices[0].finish_reason, 'length');
        assert.equal(long.usage.completion_tokens, 16);
    });

    it('several prompts, n, echo, suffix, stop, logprobs, token prompts', async () => {
        const r = await client.completions.create({ model: 'm', prompt: ['one', 'two'], n: 2, max_tokens: 5 });
        assert.deepEqual(r.choices.map((c) => [c.index, c.text]),
            [[0, 'Echo: one'], [1, 'Echo: one'], [2, 'Echo: two'], [3, 'Echo: two']]);
        const e = await client.completions.create({ model: 'm', prompt: 'hi', echo: true });
        assert.equal(e.choices[0].text, 'hiEcho: hi');
        const s = await client.completions.create({ model: 'm', prompt: 'fill', suffix: 'END' });
        assert.equal(s.choices[0].text, 'Echo: fill [before END]');
        const st = await client.completions.create({ model: 'm', prompt: 'a b STOP c', stop: ['STOP'] });
        assert.equal(st.choices[0].text, 'Echo: a b ');
        assert.equal(st.choices[0].finish_reason, 'stop');
        const lp = await client.completions.create({ model: 'm', prompt: 'x y', logprobs: 1 });
        assert.deepEqual(lp.choices[0].logprobs.tokens, ['Echo: ', 'x ', 'y']);
        assert.deepEqual(lp.choices[0].logprobs.text_offset, [0, 6, 8]);
        const tok = await client.completions.create({ model: 'm', prompt: [1, 2, 3] });
        assert.equal(tok.choices[0].text, 'Echo: 1 2 3');
        assert.equal(tok.usage.prompt_tokens, 3);
    });

    it('stream: chunks, finish, usage when asked, [DONE]', async () => {
        const chunks = [];
        for await (const c of await client.completions.create({ model: 'm', prompt: 'one two', stream: true,
            stream_options: { include_usage: true } })) chunks.push(c);
        assert.ok(chunks.every((c) => c.object === 'text_completion' && c.model === 'm'));
        assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Echo: one two');
        assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
        assert.deepEqual(chunks.at(-1).choices, []);
        assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
        assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
        const plain = [];
        for await (const c of await client.completions.create({ model: 'm', prompt: 'x', stream: true })) plain.push(c);
        assert.ok(plain.every((c) => !('usage' in c)));
        const wire = await post('/v1/completions', { model: 'm', prompt: 'x', stream: true });
        assert.ok(wire.text.endsWith('data: [DONE]\n\n'));
    });

    it('malformed: 400', async () => {
        await bad400('/v1/completions', { model: 'm' }, /'prompt'/, 'prompt');
        await bad400('/v1/completions', { model: 'm', prompt: { a: 1 } }, /prompt/, 'prompt');
        await bad400('/v1/completions', { prompt: 'x' }, /model/, 'model');
        await bad400('/v1/completions', { model: 'm', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, /stop/, 'stop');
    });
});

describe('rerank (Cohere-compatible, as vLLM and Jina serve it)', () => {
    const documents = ['the cat sat', 'a dog ran far', 'cat and dog', { text: 'nothing here' }];

    it('results best first, top_n, documents, usage', async () => {
        for (const p of ['/v1/rerank', '/rerank']) {
            const r = await post(p, { model: 'bge-reranker', query: 'cat dog', documents, top_n: 3 });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.model, 'bge-reranker');
            assert.equal(typeof r.json.id, 'string');
            assert.deepEqual(r.json.results, [
                { index: 2, relevance_score: 1, document: { text: 'cat and dog' } },
                { index: 0, relevance_score: 0.5, document: { text: 'the cat sat' } },
                { index: 1, relevance_score: 0.5, document: { text: 'a dog ran far' } },
            ]);
            assert.equal(r.json.usage.total_tokens, 2 + 3 + 4 + 3 + 2);
        }
        const noDocs = await post('/v1/rerank', { model: 'r', query: 'cat', documents, return_documents: false });
        assert.equal(noDocs.json.results.length, 4);
        assert.ok(noDocs.json.results.every((x) => !('document' in x)));
    });

    it('malformed: 400', async () => {
        await bad400('/v1/rerank', { model: 'r', documents: ['a'] }, /'query'/, 'query');
        await bad400('/v1/rerank', { model: 'r', query: 'q', documents: [] }, /documents/, 'documents');
        await bad400('/v1/rerank', { model: 'r', query: 'q', documents: [1] }, /documents\[0\]/, 'documents[0]');
        await bad400('/v1/rerank', { model: 'r', query: 'q', documents: ['a'], top_n: 0 }, /top_n/, 'top_n');
    });

    it('cohere-ai: CohereClient.rerank (v1) and CohereClientV2.rerank (v2)', async () => {
        const v1 = new CohereClient({ token: KEY, environment: root, maxRetries: 0 });
        const r1 = await v1.rerank({ model: 'rerank-english-v3.0', query: 'cat dog', documents: ['the cat sat', 'cat and dog', 'nope'],
            topN: 2, returnDocuments: true });
        assert.deepEqual(r1.results.map((x) => [x.index, x.relevanceScore, x.document.text]),
            [[1, 1, 'cat and dog'], [0, 0.5, 'the cat sat']]);
        assert.equal(r1.meta.billedUnits.searchUnits, 1);
        const v2 = new CohereClientV2({ token: KEY, environment: root, maxRetries: 0 });
        const r2 = await v2.rerank({ model: 'rerank-v3.5', query: 'cat dog',
            documents: ['the cat sat', 'cat and dog', 'nope'], topN: 2 });
        assert.deepEqual(r2.results, [{ index: 1, relevanceScore: 1 }, { index: 0, relevanceScore: 0.5 }]);
        assert.equal(r2.meta.apiVersion.version, '2');
        assert.equal(r2.meta.billedUnits.searchUnits, 1);
        assert.match(r2.id, /^[0-9a-f-]{36}$/);
        await assert.rejects(v2.rerank({ model: 'rerank-v3.5', query: 'q', documents: [] }),
            (e) => e.statusCode === 400 && /documents/.test(e.body.message));
        await assert.rejects(v2.rerank({ model: 'fault-429', query: 'q', documents: ['a'] }), (e) => e.statusCode === 429);
        const wrong = new CohereClientV2({ token: 'wrong', environment: root, maxRetries: 0 });
        await assert.rejects(wrong.rerank({ model: 'rerank-v3.5', query: 'q', documents: ['a'] }), (e) => e.statusCode === 401);
    });

    it('Bedrock InvokeModel of cohere.rerank-v3-5:0 (SigV4 signed)', async () => {
        const bedrock = new BedrockRuntimeClient({
            region: 'us-east-1', endpoint: root, maxAttempts: 1,
            credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
            requestHandler: new NodeHttpHandler({ requestTimeout: 20000 }),
        });
        try {
            const invoke = (body) => bedrock.send(new InvokeModelCommand({ modelId: 'cohere.rerank-v3-5:0',
                contentType: 'application/json', accept: 'application/json', body: JSON.stringify(body) }));
            const r = await invoke({ query: 'cat dog', documents: ['the cat sat', 'cat and dog', 'nope'], top_n: 2, api_version: 2 });
            const out = JSON.parse(Buffer.from(r.body).toString('utf8'));
            assert.equal(typeof out.id, 'string');
            assert.deepEqual(out.results, [{ index: 1, relevance_score: 1 }, { index: 0, relevance_score: 0.5 }]);
            assert.equal((await lastLog('/model/cohere.rerank-v3-5%3A0/invoke')).auth_ok, true);
            await assert.rejects(invoke({ query: 'q', documents: ['a'] }),
                (e) => e instanceof ValidationException && /api_version/.test(e.message));
        } finally {
            bedrock.destroy();
        }
    });
});

describe('moderations, images, speech and transcriptions via the openai SDK', () => {
    it('moderations: a flagged and a clean text, and multi-modal parts', async () => {
        const r = await client.moderations.create({ model: 'omni-moderation-latest', input: ['I will kill it', 'hello'] });
        assert.match(r.id, /^modr-/);
        assert.equal(r.model, 'omni-moderation-latest');
        assert.equal(r.results.length, 2);
        const [bad, good] = r.results;
        assert.equal(bad.flagged, true);
        assert.equal(bad.categories.violence, true);
        assert.equal(bad.category_scores.violence, 0.9);
        assert.equal(good.flagged, false);
        assert.equal(Object.keys(good.categories).length, 13);
        assert.ok(Object.values(good.categories).every((v) => v === false));
        assert.deepEqual(Object.keys(good.categories).sort(), Object.keys(good.category_scores).sort());
        assert.deepEqual(good.category_applied_input_types.violence, ['text']);
        const mm = await client.moderations.create({ model: 'omni-moderation-latest', input: [
            { type: 'text', text: 'a picture' }, { type: 'image_url', image_url: { url: 'https://example.com/x.png' } }] });
        assert.equal(mm.results.length, 1);
        assert.deepEqual(mm.results[0].category_applied_input_types.violence, ['text', 'image']);
        assert.deepEqual(mm.results[0].category_applied_input_types.hate, ['text']);
        await bad400('/v1/moderations', { input: 42 }, /input/, 'input');
    });

    it('images: b64_json, url (fetchable), gpt-image usage', async () => {
        const b = await client.images.generate({ model: 'dall-e-3', prompt: 'a cat', response_format: 'b64_json' });
        assert.equal(typeof b.created, 'number');
        const png = Buffer.from(b.data[0].b64_json, 'base64');
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        assert.equal(png.toString('latin1', 12, 16), 'IHDR');
        assert.equal(b.data[0].revised_prompt, 'A picture of: a cat');
        const u = await client.images.generate({ model: 'dall-e-2', prompt: 'two cats', n: 2, size: '256x256' });
        assert.equal(u.data.length, 2);
        const img = await fetch(u.data[1].url);
        assert.equal(img.status, 200);
        assert.equal(img.headers.get('content-type'), 'image/png');
        assert.deepEqual(Buffer.from(await img.arrayBuffer()), png);
        const g = await client.images.generate({ model: 'gpt-image-1', prompt: 'a big dog' });
        assert.equal(typeof g.data[0].b64_json, 'string');
        assert.equal(g.data[0].url, undefined);
        assert.deepEqual(g.usage, { input_tokens: 3, input_tokens_details: { text_tokens: 3, image_tokens: 0 },
            output_tokens: 272, total_tokens: 275 });
        await bad400('/v1/images/generations', { model: 'dall-e-3', prompt: 'x', n: 2 }, /n=1/, 'n');
        await bad400('/v1/images/generations', { model: 'dall-e-2' }, /'prompt'/, 'prompt');
        await bad400('/v1/images/generations', { prompt: 'x', response_format: 'jpeg' },
            /Invalid value: 'jpeg'/, 'response_format');
    });

    it('speech: the bytes and content type, in chunks spread over time', async () => {
        const input = 'Hello from the fake speech route.';
        const t0 = Date.now();
        const res = await client.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input });
        assert.equal(res.headers.get('content-type'), 'audio/mpeg');
        assert.equal(res.headers.get('content-length'), null);
        const reader = res.body.getReader();
        const parts = [];
        const times = [];
        for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            parts.push(value);
            times.push(Date.now() - t0);
        }
        const mp3 = Buffer.concat(parts);
        assert.equal(mp3.length, input.length * 200);
        assert.deepEqual([...mp3.subarray(0, 2)], [0xff, 0xfb]);
        assert.ok(parts.length >= 3, `${parts.length} chunks`);
        assert.ok(times.at(-1) - times[0] >= 250, `chunks at ${times.join(', ')} ms`);

        const wav = Buffer.from(await (await client.audio.speech.create({ model: 'tts-1', voice: 'nova', input: 'hi there',
            response_format: 'wav' })).arrayBuffer());
        assert.equal(wav.toString('latin1', 0, 4), 'RIFF');
        assert.equal(wav.toString('latin1', 8, 12), 'WAVE');
        assert.equal(wav.length, 44 + 8 * 200);
        const pcm = await client.audio.speech.create({ model: 'tts-1', voice: 'nova', input: 'ab', response_format: 'pcm' });
        assert.equal(pcm.headers.get('content-type'), 'audio/pcm');
        assert.equal((await pcm.arrayBuffer()).byteLength, 400);
        await bad400('/v1/audio/speech', { model: 'tts-1', input: 'x' }, /'voice'/, 'voice');
        await bad400('/v1/audio/speech', { model: 'tts-1', input: 'x', voice: 'alloy', response_format: 'ogg' },
            /'ogg'/, 'response_format');
    });

    it('transcriptions: json, text, verbose_json; the upload arrives intact', async () => {
        const audio = crypto.randomBytes(48000);
        const sha = crypto.createHash('sha256').update(audio).digest('hex').slice(0, 16);
        const expected = `Transcribed 48000 bytes of speech.mp3 (sha256 ${sha})`;
        const file = () => toFile(audio, 'speech.mp3', { type: 'audio/mpeg' });
        const j = await client.audio.transcriptions.create({ model: 'whisper-1', file: await file() });
        assert.equal(j.text, expected);
        assert.deepEqual(j.usage, { type: 'duration', seconds: 3 });
        const log = await lastLog('/v1/audio/transcriptions');
        assert.deepEqual(log.body.file, { filename: 'speech.mp3', content_type: 'audio/mpeg', bytes: 48000,
            sha256: crypto.createHash('sha256').update(audio).digest('hex') });
        assert.equal(log.model, 'whisper-1');
        const t = await client.audio.transcriptions.create({ model: 'whisper-1', file: await file(), response_format: 'text' });
        assert.equal(t.trim(), expected);
        const v = await client.audio.transcriptions.create({ model: 'whisper-1', file: await file(), response_format: 'verbose_json',
            language: 'fr', timestamp_granularities: ['word', 'segment'] });
        assert.equal(v.task, 'transcribe');
        assert.equal(v.language, 'french');
        assert.equal(v.duration, 3);
        assert.equal(v.text, expected);
        assert.equal(v.segments.length, 1);
        assert.equal(v.segments[0].end, 3);
        assert.equal(v.words.length, expected.split(' ').length);
        const g = await client.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await file() });
        assert.equal(g.text, expected);
        assert.equal(g.usage.type, 'tokens');
        assert.equal(g.usage.total_tokens, g.usage.input_tokens + g.usage.output_tokens);
        const deltas = [];
        const stream = await client.audio.transcriptions.create({ model: 'gpt-4o-mini-transcribe', file: await file(), stream: true });
        for await (const e of stream) {
            if (e.type === 'transcript.text.delta') deltas.push(e.delta);
            else assert.equal(e.text, expected);
        }
        assert.equal(deltas.join(''), expected);
        const tr = await client.audio.translations.create({ model: 'whisper-1', file: await file() });
        assert.match(tr.text, /^Translated 48000 bytes of speech\.mp3/);
    });

    it('transcriptions: missing file, a wrong format, not multipart: 400', async () => {
        const form = new FormData();
        form.append('model', 'whisper-1');
        const r = await fetch(`${root}/v1/audio/transcriptions`,
            { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
        assert.equal(r.status, 400);
        const e = (await r.json()).error;
        assert.equal(e.param, 'file');
        assert.match(e.message, /'file'/);
        const notes = await toFile(Buffer.from('x'), 'notes.txt');
        await assert.rejects(client.audio.transcriptions.create({ model: 'whisper-1', file: notes }),
            (err) => err.status === 400 && /Invalid file format/.test(err.message));
        await assert.rejects(client.audio.transcriptions.create({ model: 'gpt-4o-transcribe', response_format: 'srt',
            file: await toFile(Buffer.from('x'), 'a.wav') }), (err) => err.status === 400 && err.param === 'response_format');
        await bad400('/v1/audio/transcriptions', { model: 'whisper-1' }, /multipart\/form-data/);
    });
});

describe('the tool "run `CMD`" convention', () => {
    it('chat: an array command for Codex-style shells, a string otherwise; tool results end the loop', async () => {
        const tools = [{ type: 'function', function: { name: shell.name, parameters: shell.parameters } }];
        const messages = [{ role: 'user', content: 'call tool: run `echo hi > out.txt`' }];
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages });
        const tc = r.choices[0].message.tool_calls[0];
        assert.deepEqual(JSON.parse(tc.function.arguments), { command: ['bash', '-lc', 'echo hi > out.txt'] });
        const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages,
            tools: [{ type: 'function', function: { name: 'exec', parameters: stringShell.parameters } }] });
        assert.deepEqual(JSON.parse(s.choices[0].message.tool_calls[0].function.arguments), { command: 'echo hi > out.txt' });
        // Without "run `...`" (or without a command property) the arguments stay {text}.
        const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', tools,
            messages: [{ role: 'user', content: 'call tool now' }] });
        assert.deepEqual(JSON.parse(plain.choices[0].message.tool_calls[0].function.arguments), { text: 'call tool now' });
        // The round trip: the tool's output is echoed and no tool is called again.
        const r2 = await client.chat.completions.create({ model: 'gpt-4o-mini', tools,
            messages: [...messages, r.choices[0].message, { role: 'tool', tool_call_id: tc.id, content: 'done' }] });
        assert.equal(r2.choices[0].finish_reason, 'stop');
        assert.equal(r2.choices[0].message.content, 'Echo: tool result: done');
        const chunks = [];
        const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, stream: true,
            messages: [...messages, r.choices[0].message, { role: 'tool', tool_call_id: tc.id, content: 'streamed' }] });
        for await (const c of stream) chunks.push(c);
        assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Echo: tool result: streamed');
    });

    it('responses: the same, through function_call and function_call_output', async () => {
        const input = [{ role: 'user', content: 'call tool: run `ls -la`' }];
        const r = await client.responses.create({ model: 'gpt-5-codex', input, tools: [shell], store: false });
        const call = r.output[0];
        assert.equal(call.name, 'shell');
        assert.deepEqual(JSON.parse(call.arguments), { command: ['bash', '-lc', 'ls -la'] });
        const stream = client.responses.stream({ model: 'gpt-5-codex', input, tools: [stringShell] });
        const final = await stream.finalResponse();
        assert.deepEqual(JSON.parse(final.output[0].arguments), { command: 'ls -la' });
        const r2 = await client.responses.create({ model: 'gpt-5-codex', tools: [shell], store: false,
            input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'total 0' }] });
        assert.equal(r2.output_text, 'Echo: tool result: total 0');
    });

    it('anthropic: input_schema with a command property', async () => {
        const anthropic = new Anthropic({ apiKey: KEY, baseURL: root, maxRetries: 0 });
        const m = await anthropic.messages.create({ model: 'claude-fake-1', max_tokens: 100,
            tools: [{ name: 'bash', input_schema: { type: 'object', properties: { command: { type: 'string' } } } }],
            messages: [{ role: 'user', content: 'call tool and run `make test`' }] });
        const tu = m.content.find((b) => b.type === 'tool_use');
        assert.deepEqual(tu.input, { command: 'make test' });
        const arr = await anthropic.messages.create({ model: 'claude-fake-1', max_tokens: 100,
            tools: [{ name: 'sh', input_schema: shell.parameters }, { name: 'other', input_schema: { type: 'object' } }],
            messages: [{ role: 'user', content: 'call tool: run `pwd`' }] });
        assert.deepEqual(arr.content.find((b) => b.type === 'tool_use').input, { command: ['bash', '-lc', 'pwd'] });
    });
});
