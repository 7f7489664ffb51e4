// The operator's price file (sluice_settings.model_cost_map, LiteLLM's
// model_prices_and_context_window.json format): a deployment whose model
// only the file prices gets x-litellm-response-cost from it; the file
// overrides the built-in table for the same name; a deployment's own
// litellm_params prices still win. Editing the price file alone reloads the
// config: a broken file is logged naming file and entry and the old prices
// stay; a good one is in effect within 2 s.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { sleep } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

/* USD per token; house-model-7b is in no built-in table. */
const prices = (house) => ({
    sample_spec: { input_cost_per_token: 'the price of one input token', mode: 'chat, embedding, ...' },
    'house-model-7b': { input_cost_per_token: house[0], output_cost_per_token: house[1],
        litellm_provider: 'openai', mode: 'chat', max_tokens: 8192 },
    'gpt-4o-mini': { input_cost_per_token: 3e-6, output_cost_per_token: 5e-6, mode: 'chat' },
});

describe('price file: model_cost_map', () => {
    let dir;
    let file;
    let h;
    let client;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-prices-'));
        file = path.join(dir, 'prices.json');
        await fsp.writeFile(file, JSON.stringify(prices([1e-6, 4e-6])));
        h = await startHarness({
            sluiceSettings: { model_cost_map: file },
            configure: (cfg, ctx) => cfg.model_list.push(
                { model_name: 'house', litellm_params: { model: 'openai/house-model-7b', api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'house-own', litellm_params: { model: 'openai/house-model-7b', api_base: ctx.fakeBase,
                    api_key: FAKE_UPSTREAM_KEY, input_cost_per_token: 2e-6, output_cost_per_token: 2e-6 } },
            ),
        });
        client = h.client();
    });

    after(async () => {
        if (h) await h.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    /* [header cost, cost from the usage the client saw at in/out per token] */
    const call = async (model, inOut) => {
        const { data, response } = await client.chat.completions.create({ model, messages: user('price me') }).withResponse();
        const want = data.usage.prompt_tokens * inOut[0] + data.usage.completion_tokens * inOut[1];
        return [Number(response.headers.get('x-litellm-response-cost')), want];
    };
    const near = ([got, want], what) => assert.ok(want > 0 && Math.abs(got - want) < 1e-12, `${what}: header ${got}, want ${want}`);

    it('a model only the file prices gets the cost header from it', async () => {
        near(await call('house', [1e-6, 4e-6]), 'house-model-7b');
    });

    it('the file overrides the built-in table; litellm_params prices win over the file', async () => {
        near(await call('gpt-4o-mini', [3e-6, 5e-6]), 'gpt-4o-mini from the file');
        near(await call('house-own', [2e-6, 2e-6]), 'litellm_params prices');
    });

    it('a broken price file keeps the old config; a fixed one reloads', async () => {
        await fsp.writeFile(file, JSON.stringify({ 'house-model-7b': { input_cost_per_token: -1 } }));
        const needle = 'model_cost_map: ' + file + ': entry \\"house-model-7b\\": input_cost_per_token';
        const seen = () => h.sluiceLog().split(needle).length - 1;
        for (let i = 0; i < 40 && seen() === 0; i++) await sleep(100);
        assert.equal(seen(), 1, `the error names file and entry:\n${h.sluiceLog().slice(-2000)}`);
        near(await call('house', [1e-6, 4e-6]), 'old prices kept');
        await sleep(1500);
        assert.equal(seen(), 1, 'the broken file is not retried every second');

        await fsp.writeFile(file, JSON.stringify(prices([6e-6, 7e-6])));
        const t0 = Date.now();
        let r;
        do {
            await sleep(100);
            r = await call('house', [6e-6, 7e-6]);
        } while (Math.abs(r[0] - r[1]) >= 1e-12 && Date.now() - t0 < 2500);
        near(r, 'new prices within 2.5 s');
    });
});
