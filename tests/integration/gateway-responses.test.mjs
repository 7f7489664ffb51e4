// POST /v1/responses through sluice, driven by the official openai SDK's
// responses client (create, stream and its helpers): against backends
// without the Responses API (an OpenAI-compatible vendor, Anthropic,
// Gemini, Bedrock), where sluice translates to chat and rebuilds the
// Response and its event sequence, and against openai/, where it passes
// the API through. Then the errors a client can cause.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from '../fakes/providers/bedrock.mjs';

let h;
let client;

const TRANSLATED = ['vllm', 'claude', 'gem', 'bedrock'];

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            const dep = (name, params) => ({ model_name: name, litellm_params: { timeout: 10, ...params } });
            cfg.model_list.push(
                dep('gpt', { model: 'openai/gpt-4o-mini', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('az', { model: 'azure/gpt-4o-prod', api_base: root, api_key: FAKE_UPSTREAM_KEY, api_version: '2024-10-21' }),
                dep('az-v1', { model: 'azure/gpt-4o-prod', api_base: `${root}/openai/v1`, api_key: FAKE_UPSTREAM_KEY }),
                dep('gpt-drop', { model: 'openai/drop-mid-stream', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('native-then-claude', { model: 'openai/fault-500', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('vllm', { model: 'hosted_vllm/gpt-4o-mini', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('vllm-drop', { model: 'hosted_vllm/drop-mid-stream', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('vllm-400', { model: 'hosted_vllm/fault-400', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY }),
                dep('claude', { model: 'anthropic/claude-test', api_base: root, api_key: FAKE_UPSTREAM_KEY }),
                dep('gem', { model: 'gemini/gemini-2.0-flash', api_base: root, api_key: FAKE_UPSTREAM_KEY }),
                dep('bedrock', { model: 'bedrock/anthropic.claude-3-haiku-20240307-v1:0', api_base: root,
                    aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: SECRET_ACCESS_KEY,
                    aws_region_name: 'us-east-1' }),
            );
            cfg.router_settings = { ...(cfg.router_settings || {}), fallbacks: [{ 'native-then-claude': ['claude'] }] };
            cfg.guardrails = [{ guardrail_name: 'mask-email',
                litellm_params: { guardrail: 'sluice_pii', mode: 'pre_call', detectors: ['EMAIL'] } }];
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

/* The text of a Response's messages (the SDK adds output_text to
 * responses.create's answers only). */
const textOf = (r) => r.output.filter((o) => o.type === 'message')
    .flatMap((o) => o.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');

const weather = {
    type: 'function', name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

for (const model of TRANSLATED) {
    describe(`responses on ${model} (translated to chat)`, () => {
        it('a string input: a message with output_text, usage, the settings echoed', async () => {
            const r = await client.responses.create({ model, input: 'hello there', instructions: 'be brief',
                temperature: 0.5, metadata: { case: 'one' } });
            assert.equal(r.object, 'response');
            assert.match(r.id, /^resp_/);
            assert.equal(r.status, 'completed');
            assert.equal(r.model, model);
            assert.equal(r.output_text, 'Echo: hello there');
            assert.equal(r.output.length, 1);
            const [m] = r.output;
            assert.equal(m.type, 'message');
            assert.equal(m.role, 'assistant');
            assert.equal(m.status, 'completed');
            assert.deepEqual(m.content[0], { type: 'output_text', text: 'Echo: hello there', annotations: [], logprobs: [] });
            assert.ok(r.usage.input_tokens > 0);
            assert.equal(r.usage.output_tokens, 3);
            assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
            assert.equal(r.instructions, 'be brief');
            assert.equal(r.temperature, 0.5);
            assert.deepEqual(r.metadata, { case: 'one' });
            assert.equal(r.error, null);
        });

        it('streamed: the event sequence the SDK accumulates, and the final response', async () => {
            const stream = client.responses.stream({ model, input: [{ role: 'user', content: 'one two three' }] });
            const types = [];
            const deltas = [];
            stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
            for await (const e of stream) types.push(e.type);
            const final = await stream.finalResponse();
            assert.equal(textOf(final), 'Echo: one two three');
            assert.equal(deltas.join(''), 'Echo: one two three');
            assert.ok(deltas.length >= 1);
            assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
                'response.output_item.added', 'response.content_part.added']);
            assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
                'response.output_item.done', 'response.completed']);
            assert.equal(final.status, 'completed');
            assert.ok(final.usage.output_tokens > 0);
        });

        it('streamed text that needs escapes: quotes, backslashes, non-ASCII, a line break', async () => {
            const said = 'say "hi" C:\\tmp — naïve 😀 end\nnext';
            const stream = client.responses.stream({ model, input: said });
            const deltas = [];
            stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
            for await (const e of stream) assert.equal(typeof e.sequence_number, 'number');
            const final = await stream.finalResponse();
            assert.equal(deltas.join(''), `Echo: ${said}`);
            assert.equal(textOf(final), `Echo: ${said}`, 'the final text, decoded as the deltas were');
        });

        it('a tool call round trip: function_call out, function_call_output back in', async () => {
            const input = [{ role: 'user', content: 'call tool for Paris' }];
            const r1 = await client.responses.create({ model, input, tools: [weather] });
            const call = r1.output.find((o) => o.type === 'function_call');
            assert.ok(call, JSON.stringify(r1.output));
            assert.equal(call.name, 'get_weather');
            assert.equal(JSON.parse(call.arguments).text, 'call tool for Paris');
            assert.equal(typeof call.call_id, 'string');
            const r2 = await client.responses.create({
                model, tools: [weather],
                input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
            });
            assert.equal(r2.status, 'completed');
            assert.equal(r2.output_text, 'Echo: tool result: sunny');
            if (model === 'vllm') {
                // what the chat upstream was sent: the call and its result as chat messages
                const up = (await h.fake.log()).filter((e) => e.path === '/v1/chat/completions').at(-1);
                assert.deepEqual(up.body.messages.slice(1), [
                    { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function',
                        function: { name: 'get_weather', arguments: call.arguments } }] },
                    { role: 'tool', tool_call_id: call.call_id, content: 'sunny' },
                ]);
                assert.deepEqual(up.body.messages[0].role, 'user');
            }
        });

        it('a streamed tool call: output_item.added, argument deltas, .done', async () => {
            const stream = client.responses.stream({ model, input: 'call tool now', tools: [weather] });
            const types = new Set();
            for await (const e of stream) types.add(e.type);
            const final = await stream.finalResponse();
            const call = final.output.find((o) => o.type === 'function_call');
            assert.ok(call);
            assert.equal(JSON.parse(call.arguments).text, 'call tool now');
            assert.ok(types.has('response.function_call_arguments.done'));
            assert.ok(types.has('response.completed'));
        });
    });
}

describe('responses on openai/ (passed through)', () => {
    const upstream = async () => (await h.fake.log()).filter((e) => e.path === '/v1/responses').at(-1);

    it('the body goes as the client sent it, with the upstream model; the answer comes back with the client\'s', async () => {
        const input = [{ role: 'user', content: [{ type: 'input_text', text: 'hello native' }] }];
        const r = await client.responses.create({ model: 'gpt', input, instructions: 'be brief',
            metadata: { a: 'b' }, store: false, reasoning: { effort: 'low' }, include: ['reasoning.encrypted_content'] });
        assert.equal(r.model, 'gpt');
        assert.equal(r.output_text, 'Echo: hello native');
        assert.equal(r.output[0].type, 'reasoning', 'the native reasoning item, kept');
        assert.ok(r.usage.output_tokens_details.reasoning_tokens > 0);
        const up = await upstream();
        assert.equal(up.body.model, 'gpt-4o-mini');
        assert.deepEqual(up.body.input, input);
        assert.deepEqual(up.body.metadata, { a: 'b' });
        assert.deepEqual(up.body.include, ['reasoning.encrypted_content']);
        assert.equal(up.body.stream_options, undefined);
        assert.equal((await h.fake.log()).filter((e) => e.path === '/v1/chat/completions' &&
            e.body?.messages?.[0]?.content === 'hello native').length, 0);
    });

    it('built-in tools reach a native deployment', async () => {
        const r = await client.responses.create({ model: 'gpt', input: 'search', tools: [{ type: 'web_search' }] });
        assert.equal(r.output_text, 'Echo: search');
        assert.deepEqual((await upstream()).body.tools, [{ type: 'web_search' }]);
    });

    it('streamed: the upstream\'s events as they came, the model put in, usage counted', async () => {
        const stream = client.responses.stream({ model: 'gpt', input: 'a b c', tools: [weather] });
        const events = [];
        for await (const e of stream) events.push(e);
        const final = await stream.finalResponse();
        assert.equal(textOf(final), 'Echo: a b c');
        assert.equal(final.model, 'gpt');
        assert.equal(events[0].response.model, 'gpt');
        assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
        assert.equal(events.at(-1).type, 'response.completed');
        const up = await upstream();
        assert.equal(up.body.stream, true);
        assert.equal(up.body.stream_options, undefined);
    });

    it('a tool call round trip on the native API', async () => {
        const r1 = await client.responses.create({ model: 'gpt', input: 'call tool for Rome', tools: [weather] });
        const call = r1.output.find((o) => o.type === 'function_call');
        assert.ok(call);
        const r2 = await client.responses.create({ model: 'gpt', tools: [weather],
            input: ['call tool for Rome', call, { type: 'function_call_output', call_id: call.call_id, output: 'rain' }]
                .map((x) => (typeof x === 'string' ? { role: 'user', content: x } : x)) });
        assert.equal(r2.output_text, 'Echo: tool result: rain');
    });

    it('a native stream cut short: error and response.failed after the upstream\'s events', async () => {
        const res = await fetch(`${h.baseURL}/responses`, {
            method: 'POST',
            headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-drop', input: 'one two three four five six', stream: true }),
        });
        const events = (await res.text()).split('\n\n').filter(Boolean).map((b) => JSON.parse(/^data: (.*)$/m.exec(b)[1]));
        assert.equal(events[0].type, 'response.created');
        assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
        assert.deepEqual(events.slice(-2).map((e) => e.type), ['error', 'response.failed']);
    });

    it('with a guardrail on the call it goes as chat, masked', async () => {
        const r = await client.responses.create({ model: 'gpt', input: 'mail bob@example.com now',
            guardrails: ['mask-email'] });
        assert.doesNotMatch(r.output_text, /bob@example\.com/);
        const chat = (await h.fake.log()).filter((e) => e.path === '/v1/chat/completions').at(-1);
        assert.doesNotMatch(JSON.stringify(chat.body.messages), /bob@example\.com/);
        assert.match(JSON.stringify(chat.body.messages), /mail .* now/);
        assert.equal(chat.body.guardrails, undefined, 'a gateway field, never sent upstream');
    });

    it('azure/: passed through to its Responses API (a newer api-version than the one set for chat)', async () => {
        for (const [model, path] of [['az', '/openai/responses'], ['az-v1', '/openai/v1/responses']]) {
            const r = await client.responses.create({ model, input: 'hello azure', tools: [{ type: 'web_search' }] });
            assert.equal(r.model, model);
            assert.equal(r.output_text, 'Echo: hello azure');
            const up = (await h.fake.log()).filter((e) => e.path === path).at(-1);
            assert.ok(up, `${model} went to ${path}`);
            assert.equal(up.auth_ok, true);
            assert.equal(up.body.model, 'gpt-4o-prod', 'the deployment is the body\'s model');
            assert.deepEqual(up.body.tools, [{ type: 'web_search' }]);
            if (model === 'az') assert.equal(up.query, '?api-version=2025-04-01-preview');
        }
        const s = client.responses.stream({ model: 'az', input: 'streamed azure' });
        for await (const e of s) assert.equal(typeof e.type, 'string');
        assert.equal(textOf(await s.finalResponse()), 'Echo: streamed azure');
    });

    it('a native deployment that fails falls back to a translated one', async () => {
        const r = await client.responses.create({ model: 'native-then-claude', input: 'fall back' });
        assert.equal(r.output_text, 'Echo: fall back');
        assert.equal(r.object, 'response');
        const s = client.responses.stream({ model: 'native-then-claude', input: 'fall back streamed' });
        for await (const e of s) assert.equal(typeof e.type, 'string');
        assert.equal(textOf(await s.finalResponse()), 'Echo: fall back streamed');
    });
});

describe('responses: structured output and limits', () => {
    it('text.format json_schema reaches Anthropic as structured output', async () => {
        const r = await client.responses.create({
            model: 'claude', input: 'give json',
            text: { format: { type: 'json_schema', name: 'echo', schema: { type: 'object', properties: { echo: { type: 'string' } } } } },
        });
        // the anthropic adapter asks for the schema as a forced tool, as LiteLLM does
        assert.deepEqual(Object.values(JSON.parse(r.output_text)), ['give json']);
        const up = (await h.fake.log()).filter((e) => e.path === '/v1/messages').at(-1);
        assert.ok(JSON.stringify(up.body).includes('{"type":"object","properties":{"echo":{"type":"string"}}}'),
            'the schema reached Anthropic');
    });

    it('max_output_tokens cuts the answer: status incomplete, reason max_output_tokens', async () => {
        const r = await client.responses.create({ model: 'vllm', input: 'a b c d e f g', max_output_tokens: 2 });
        assert.equal(r.status, 'incomplete');
        assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
        const s = client.responses.stream({ model: 'vllm', input: 'a b c d e f g', max_output_tokens: 2 });
        const types = [];
        for await (const e of s) types.push(e.type);
        assert.equal(types.at(-1), 'response.incomplete');
    });
});

describe('responses: errors', () => {
    const bad = async (body, re) => {
        await assert.rejects(client.responses.create({ model: 'vllm', ...body }), (e) => {
            assert.equal(e.status, 400);
            assert.match(e.message, re);
            return true;
        });
    };

    it('no input, a wrong input type, an unknown item type', async () => {
        await bad({}, /input is a required field/);
        await bad({ input: 42 }, /input must be a string or an array/);
        await bad({ input: [{ type: 'computer_call_output', call_id: 'x' }] }, /computer_call_output are not supported/);
        await bad({ input: [{ role: 'robot', content: 'x' }] }, /input\.0\.role/);
    });

    it('previous_response_id without a store: a 400 that names the missing store', async () => {
        await bad({ input: 'x', previous_response_id: 'resp_123' }, /no response store is configured/);
    });

    it('GET and DELETE /v1/responses/{id}: 400 naming the missing store; 401 without a key', async () => {
        await assert.rejects(client.responses.retrieve('resp_abc'), (e) => e.status === 400 &&
            /no response store is configured/.test(e.message));
        await assert.rejects(client.responses.delete('resp_abc'), (e) => e.status === 400);
        const res = await fetch(`${h.baseURL}/responses/resp_abc`);
        assert.equal(res.status, 401);
        assert.equal(typeof (await res.json()).error.message, 'string');
        const put = await fetch(`${h.baseURL}/responses/resp_abc`, { method: 'PUT',
            headers: { authorization: `Bearer ${h.masterKey}` } });
        assert.equal(put.status, 405);
    });

    it('built-in tools on a backend without the Responses API: left out; a tool_choice naming one: 400', async () => {
        const r = await client.responses.create({ model: 'vllm', input: 'plain words',
            tools: [{ type: 'web_search' }, weather] });
        assert.equal(r.output_text, 'Echo: plain words');
        const up = (await h.fake.log()).filter((e) => e.path === '/v1/chat/completions').at(-1);
        assert.deepEqual(up.body.tools.map((t) => t.function.name), ['get_weather'], 'only the function tool went');
        await bad({ input: 'x', tools: [{ type: 'web_search' }], tool_choice: { type: 'web_search' } },
            /tool_choice: tools of type web_search exist at OpenAI only/);
    });

    it('an upstream error before the stream: the status and OpenAI error shape', async () => {
        await assert.rejects(client.responses.create({ model: 'vllm-400', input: 'x' }), (e) => e.status === 400);
        await assert.rejects(client.responses.create({ model: 'vllm-400', input: 'x', stream: true }), (e) => e.status === 400);
    });

    it('a stream cut by the upstream: an error event and response.failed', async () => {
        const res = await fetch(`${h.baseURL}/responses`, {
            method: 'POST',
            headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'vllm-drop', input: 'one two three four five six', stream: true }),
        });
        assert.equal(res.status, 200);
        const text = await res.text();
        const events = text.split('\n\n').filter(Boolean).map((b) => {
            const ev = /^event: (.*)$/m.exec(b)?.[1];
            const data = JSON.parse(/^data: (.*)$/m.exec(b)[1]);
            assert.equal(ev, data.type, 'every event is named as its type');
            return data;
        });
        assert.equal(events[0].type, 'response.created');
        const seq = events.map((e) => e.sequence_number);
        assert.deepEqual(seq, seq.map((_, i) => i), 'sequence numbers count up from 0');
        assert.equal(events.at(-2).type, 'error');
        assert.equal(events.at(-1).type, 'response.failed');
        assert.equal(events.at(-1).response.status, 'failed');
        assert.equal(typeof events.at(-1).response.error.message, 'string');
        assert.equal(events.at(-2).message, events.at(-1).response.error.message);
        assert.ok(!text.includes('[DONE]'));
    });

    it('the SDK raises the in-band error', async () => {
        const s = client.responses.stream({ model: 'vllm-drop', input: 'one two three four five six' });
        await assert.rejects(s.finalResponse());
    });
});
