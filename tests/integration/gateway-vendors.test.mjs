// azure/ and the OpenAI-compatible vendors (providers/vendors.c) end to end:
// the official openai client talks to sluice, sluice talks to the fake
// (tests/fakes/providers/azure.mjs for Azure, the OpenAI fake for vendors),
// and the fake's log shows what each vendor was sent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { runSluice } from './lib/frontend.mjs';
import { toYAML } from './lib/yaml.mjs';
import { user, collect } from './lib/chat.mjs';

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            const az = (name, deployment, extra = {}) => ({
                model_name: name,
                litellm_params: { model: `azure/${deployment}`, api_base: root, api_key: FAKE_UPSTREAM_KEY,
                    api_version: '2024-10-21', timeout: 10, ...extra },
            });
            cfg.model_list.push(
                az('az-gpt', 'gpt-4o-prod'),
                az('az-v1', 'gpt-4o-prod', { api_base: `${root}/openai/v1` }),
                az('az-entra', 'gpt-4o-prod', { api_key: 'not-used', azure_ad_token: 'fake-azure-ad-token' }),
                az('az-emb', 'text-embedding-3-small'),
                az('az-content-filter', 'content-filter'),
                az('az-context', 'context-too-long'),
                az('az-429', 'fault-429'),
                az('az-no-version', 'gpt-4o-prod', { api_base: `${root}/openai` }),
                {
                    model_name: 'mistral-small',
                    litellm_params: { model: 'mistral/mistral-small-latest', api_base: ctx.fakeBase,
                        api_key: FAKE_UPSTREAM_KEY },
                },
                {
                    model_name: 'kimi',
                    litellm_params: { model: 'moonshot/kimi-k2', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY },
                },
                {
                    model_name: 'groq-llama',
                    litellm_params: { model: 'groq/llama-3.3-70b', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY },
                },
            );
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const lastUpstream = async () => (await h.fake.log()).at(-1);

describe('azure/ through sluice', () => {
    it('chat on a deployment: api-key header, api-version, answer', async () => {
        const r = await client.chat.completions.create({ model: 'az-gpt', messages: user('hello azure') });
        assert.equal(r.choices[0].message.content, 'Echo: hello azure');
        assert.equal(r.model, 'az-gpt');
        const up = await lastUpstream();
        assert.equal(up.path, '/openai/deployments/gpt-4o-prod/chat/completions');
        assert.equal(up.query, '?api-version=2024-10-21');
        assert.equal(up.auth_ok, true);
        assert.equal(up.headers['api-key'], undefined, 'the fake does not log the key');
    });

    it('stream: Azure\'s prompt-filter chunk does not upset the SDK; usage at the end', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'az-gpt', messages: user('one two'), stream: true, stream_options: { include_usage: true },
        }));
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
        assert.equal(text, 'Echo: one two');
        assert.ok(chunks.at(-1).usage.total_tokens > 0);
    });

    it('the v1 API (api_base .../openai/v1): model in the body', async () => {
        const r = await client.chat.completions.create({ model: 'az-v1', messages: user('v1') });
        assert.equal(r.choices[0].message.content, 'Echo: v1');
        const up = await lastUpstream();
        assert.equal(up.path, '/openai/v1/chat/completions');
        assert.equal(up.model, 'gpt-4o-prod');
    });

    it('Entra ID token as Bearer (azure_ad_token)', async () => {
        const r = await client.chat.completions.create({ model: 'az-entra', messages: user('entra') });
        assert.equal(r.choices[0].message.content, 'Echo: entra');
    });

    it('embeddings on a deployment', async () => {
        const r = await client.embeddings.create({ model: 'az-emb', input: ['a', 'b'] });
        assert.equal(r.data.length, 2);
        assert.equal((await lastUpstream()).path, '/openai/deployments/text-embedding-3-small/embeddings');
    });

    it('the content filter → 400 content_policy_violation', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'az-content-filter', messages: user('x') }),
            (e) => e instanceof OpenAI.BadRequestError && e.code === 'content_policy_violation');
    });

    it('context too long → 400 context_length_exceeded', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'az-context', messages: user('x') }),
            (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
    });

    it('429 keeps its status and retry-after', async () => {
        const c = new OpenAI({ apiKey: h.masterKey, baseURL: h.baseURL, maxRetries: 0 });
        await assert.rejects(c.chat.completions.create({ model: 'az-429', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.RateLimitError, `${e.status} ${e.message}`);
            assert.equal(e.headers.get('retry-after'), '7');
            return true;
        });
    });

    it('an api_base ending in /openai is not doubled', async () => {
        const r = await client.chat.completions.create({ model: 'az-no-version', messages: user('base') });
        assert.equal(r.choices[0].message.content, 'Echo: base');
        assert.equal((await lastUpstream()).path, '/openai/deployments/gpt-4o-prod/chat/completions');
    });
});

describe('OpenAI-compatible vendors through sluice', () => {
    it('mistral: renamed parameters and tool_choice "any"', async () => {
        const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
        await client.chat.completions.create({
            model: 'mistral-small', messages: user('hi'), max_completion_tokens: 20, seed: 4, tools,
            tool_choice: 'required',
        });
        const up = await lastUpstream();
        assert.equal(up.path, '/v1/chat/completions');
        assert.equal(up.model, 'mistral-small-latest');
        assert.equal(up.auth_ok, true);
        assert.equal(up.body.max_tokens, 20);
        assert.equal(up.body.max_completion_tokens, undefined);
        assert.equal(up.body.random_seed, 4);
        assert.equal(up.body.seed, undefined);
        assert.equal(up.body.tool_choice, 'any');
    });

    it('moonshot: temperature above 1 is clamped; groq: logprobs refused, then dropped', async () => {
        const r = await client.chat.completions.create({ model: 'kimi', messages: user('k'), temperature: 1.7 });
        assert.equal(r.choices[0].message.content, 'Echo: k');
        assert.equal((await lastUpstream()).body.temperature, 1);
        await assert.rejects(
            client.chat.completions.create({ model: 'groq-llama', messages: user('g'), logprobs: true }),
            (e) => e instanceof OpenAI.BadRequestError && /groq does not support parameters: logprobs/.test(e.message),
        );
        const g = await client.chat.completions.create({ model: 'groq-llama', messages: user('g'), logprobs: true,
            drop_params: true });
        assert.equal(g.choices[0].message.content, 'Echo: g');
        assert.equal((await lastUpstream()).body.logprobs, undefined);
    });

    it('cost: x-litellm-response-cost from the price table, and in the request log line', async () => {
        const { data, response } = await client.chat.completions.create({
            model: 'mistral-small', messages: user('what does this cost'),
        }).withResponse();
        // mistral-small-latest: USD 0.10 in, 0.30 out per million tokens
        const want = (data.usage.prompt_tokens * 0.10 + data.usage.completion_tokens * 0.30) / 1e6;
        const got = Number(response.headers.get('x-litellm-response-cost'));
        assert.ok(Math.abs(got - want) < 1e-12, `header ${got}, want ${want}`);
        const rid = response.headers.get('x-request-id');
        let line;
        for (let i = 0; i < 50 && !line; i++) {
            line = h.sluiceLog().split('\n').filter((l) => l.includes(rid)).map((l) => JSON.parse(l))
                .find((o) => o.msg === 'request');
            if (!line) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(line, `a request log line for ${rid}`);
        assert.ok(Math.abs(line.cost - want) < 1e-12, JSON.stringify(line));
        // a model the table does not know gets no header rather than a wrong 0
        const other = await client.chat.completions.create({ model: 'kimi', messages: user('x') }).withResponse();
        assert.equal(other.response.headers.get('x-litellm-response-cost'), null);
    });

    it('hosted_vllm without api_base is a config error naming the entry', async () => {
        const dir = await fs.mkdtemp(path.join(h.tmpdir, 'vllm-'));
        const file = path.join(dir, 'c.yaml');
        await fs.writeFile(file, toYAML({ model_list: [{ model_name: 'v', litellm_params: { model: 'hosted_vllm/x' } }] }));
        const env = { ...process.env };
        delete env.HOSTED_VLLM_API_BASE;
        const r = await runSluice(['--check-config', file], { env });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /hosted_vllm needs api_base or the variable HOSTED_VLLM_API_BASE/);
    });
});
