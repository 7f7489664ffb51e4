// POST /v1/completions (legacy text completions) through sluice with the
// official openai SDK: passed through to an OpenAI-wire deployment, and
// answered through chat completions by one without the legacy API
// (Anthropic), whole and streamed; what only the legacy API can do is
// refused there with a 400 that says why.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            cfg.model_list.push(
                { model_name: 'instruct', litellm_params: { model: 'openai/gpt-3.5-turbo-instruct',
                    api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'claude', litellm_params: { model: 'anthropic/claude-test', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
            );
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const upstream = async (path) => (await h.fake.log()).filter((e) => e.path === path).at(-1);

describe('legacy completions on an OpenAI-wire deployment: passed through', () => {
    it('whole: the text_completion with the client\'s model name, the body as sent', async () => {
        const r = await client.completions.create({ model: 'instruct', prompt: 'say this', max_tokens: 7, echo: false });
        assert.equal(r.object, 'text_completion');
        assert.equal(r.model, 'instruct');
        assert.equal(r.choices[0].text, 'Echo: say this');
        assert.ok(r.usage.prompt_tokens > 0);
        const up = await upstream('/v1/completions');
        assert.equal(up.body.model, 'gpt-3.5-turbo-instruct');
        assert.equal(up.body.prompt, 'say this');
        assert.equal(up.body.max_tokens, 7);
        assert.equal(up.body.echo, false);
        const echoed = await client.completions.create({ model: 'instruct', prompt: 'say', echo: true, max_tokens: 5 });
        assert.equal(echoed.choices[0].text, 'sayEcho: say', 'echo is the legacy API\'s own');
    });

    it('streamed: chunks and [DONE]; usage only when asked', async () => {
        let text = '';
        let usage = null;
        for await (const c of await client.completions.create({ model: 'instruct', prompt: 'one two', max_tokens: 16,
            stream: true, stream_options: { include_usage: true } })) {
            assert.equal(c.object, 'text_completion');
            assert.equal(c.model, 'instruct');
            if (c.choices[0]) text += c.choices[0].text;
            if (c.usage) usage = c.usage;
        }
        assert.equal(text, 'Echo: one two');
        assert.ok(usage && usage.completion_tokens > 0);
        let sawUsage = false;
        for await (const c of await client.completions.create({ model: 'instruct', prompt: 'x', stream: true })) {
            if (c.usage) sawUsage = true;
        }
        assert.equal(sawUsage, false, 'usage was asked for on the client\'s behalf and kept back');
    });
});

describe('legacy completions on a chat-only deployment: through chat', () => {
    it('whole: the prompt as one user message, the answer as a text_completion', async () => {
        const r = await client.completions.create({ model: 'claude', prompt: 'say this', max_tokens: 50, stop: ['\n\n'] });
        assert.equal(r.object, 'text_completion');
        assert.match(r.id, /^cmpl-/);
        assert.equal(r.model, 'claude');
        assert.equal(r.choices[0].text, 'Echo: say this');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.choices[0].logprobs, null);
        assert.ok(r.usage.prompt_tokens > 0);
        const up = await upstream('/v1/messages');
        assert.deepEqual(up.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'say this' }] }]);
        assert.equal(up.body.max_tokens, 50);
    });

    it('streamed: text chunks, a finish, usage when asked, [DONE]', async () => {
        const chunks = [];
        for await (const c of await client.completions.create({ model: 'claude', prompt: 'one two three', stream: true,
            stream_options: { include_usage: true } })) chunks.push(c);
        assert.ok(chunks.every((c) => c.object === 'text_completion' && c.model === 'claude'));
        assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Echo: one two three');
        assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'));
        assert.ok(chunks.at(-1).usage.completion_tokens > 0);
        const plain = [];
        for await (const c of await client.completions.create({ model: 'claude', prompt: 'x', stream: true })) plain.push(c);
        assert.ok(plain.every((c) => c.usage === undefined || c.usage === null));
    });

    it('what only the legacy API does: 400 naming it', async () => {
        for (const [extra, re] of [[{ echo: true }, /echo needs a legacy completions model/],
            [{ suffix: 'x' }, /suffix/], [{ logprobs: 2 }, /logprobs/], [{ best_of: 3 }, /best_of/],
            [{ prompt: ['a', 'b'] }, /send one prompt/], [{ prompt: [1, 2, 3] }, /send one prompt/]]) {
            await assert.rejects(client.completions.create({ model: 'claude', prompt: 'x', ...extra }), (e) => {
                assert.equal(e.status, 400);
                assert.match(e.message, re);
                return true;
            });
        }
        const r = await client.completions.create({ model: 'claude', prompt: ['only one'], best_of: 1, echo: false });
        assert.equal(r.choices[0].text, 'Echo: only one');
    });

    it('no prompt, a wrong prompt type: 400', async () => {
        await assert.rejects(client.completions.create({ model: 'claude' }), (e) => e.status === 400 &&
            /prompt is a required field/.test(e.message));
        await assert.rejects(client.completions.create({ model: 'claude', prompt: { a: 1 } }), (e) => e.status === 400);
    });
});
