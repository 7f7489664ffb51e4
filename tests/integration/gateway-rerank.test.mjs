// POST /v1/rerank (and /rerank, /v2/rerank) through sluice, in Cohere's
// shape as LiteLLM serves it: to Cohere's v2 rerank, to an OpenAI-compatible
// reranker (hosted_vllm: its own /rerank, passed through) and to Bedrock
// (InvokeModel of a Cohere rerank model, SigV4 signed). Driven with the
// official cohere-ai SDK pointed at sluice, and with fetch for the errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CohereClientV2 } from 'cohere-ai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from '../fakes/providers/bedrock.mjs';

let h;
const DOCS = ['the cat sat', 'cat and dog', 'nope'];

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            cfg.model_list.push(
                { model_name: 'cohere-rerank', litellm_params: { model: 'cohere/rerank-v3.5', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'vllm-rerank', litellm_params: { model: 'hosted_vllm/bge-reranker', api_base: ctx.fakeBase,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'bedrock-rerank', litellm_params: { model: 'bedrock/cohere.rerank-v3-5:0', api_base: root,
                    aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: SECRET_ACCESS_KEY,
                    aws_region_name: 'us-east-1' } },
                { model_name: 'cohere-429', litellm_params: { model: 'cohere/fault-429', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
            );
        },
    });
});

after(async () => {
    if (h) await h.stop();
});

const post = async (path, body, key = h.masterKey) => {
    const res = await fetch(`${h.rootURL}${path}`, {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
};
const upstream = async (pred) => (await h.fake.log()).filter(pred).at(-1);

describe('rerank through sluice', () => {
    it('cohere/: the cohere-ai SDK against sluice; Cohere\'s v2 rerank upstream', async () => {
        const co = new CohereClientV2({ token: h.masterKey, environment: h.rootURL, maxRetries: 0 });
        const r = await co.rerank({ model: 'cohere-rerank', query: 'cat dog', documents: DOCS, topN: 2 });
        assert.deepEqual(r.results, [{ index: 1, relevanceScore: 1 }, { index: 0, relevanceScore: 0.5 }]);
        assert.equal(r.meta.billedUnits.searchUnits, 1);
        const up = await upstream((e) => e.path === '/v2/rerank');
        assert.equal(up.body.model, 'rerank-v3.5');
        assert.deepEqual(up.body.documents, DOCS);
        assert.equal(up.body.top_n, 2);
        assert.equal(up.auth_ok, true);
    });

    it('priced per search from the built-in table (rerank-v3.5: $0.002)', async () => {
        const res = await fetch(`${h.rootURL}/v1/rerank`, { method: 'POST',
            headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'cohere-rerank', query: 'q', documents: DOCS }) });
        assert.equal(res.status, 200);
        assert.equal(Number(res.headers.get('x-litellm-response-cost')), 0.002);
    });

    it('return_documents puts the texts back; object documents give their text', async () => {
        const r = await post('/v1/rerank', { model: 'cohere-rerank', query: 'cat dog', return_documents: true,
            documents: [{ text: 'the cat sat' }, 'cat and dog', 'nope'] });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.results.map((x) => [x.index, x.document.text]), [[1, 'cat and dog'], [0, 'the cat sat'], [2, 'nope']]);
        assert.equal(typeof r.json.id, 'string');
    });

    it('hosted_vllm/: its own /rerank, passed through with the client\'s model name', async () => {
        for (const path of ['/v1/rerank', '/rerank']) {
            const r = await post(path, { model: 'vllm-rerank', query: 'cat dog', documents: DOCS, top_n: 3 });
            assert.equal(r.status, 200);
            assert.equal(r.json.model, 'vllm-rerank');
            assert.deepEqual(r.json.results.map((x) => x.index), [1, 0, 2]);
            assert.equal(r.json.results[0].relevance_score, 1);
        }
        const up = await upstream((e) => e.path === '/v1/rerank');
        assert.equal(up.body.model, 'bge-reranker');
        assert.equal(up.body.query, 'cat dog');
    });

    it('bedrock/: InvokeModel of the rerank model, signed; Cohere\'s shape back', async () => {
        const r = await post('/v1/rerank', { model: 'bedrock-rerank', query: 'cat dog', documents: DOCS, top_n: 2 });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.results, [{ index: 1, relevance_score: 1 }, { index: 0, relevance_score: 0.5 }]);
        const up = await upstream((e) => e.path === '/model/cohere.rerank-v3-5%3A0/invoke');
        assert.equal(up.auth_ok, true);
        assert.equal(up.body.api_version, 2);
        assert.deepEqual(up.body.documents, DOCS);
    });

    it('what a client gets wrong: 400 OpenAI-shaped; no key: 401; upstream 429 passed on', async () => {
        for (const [body, re] of [
            [{ model: 'cohere-rerank', documents: DOCS }, /query is a required field/],
            [{ model: 'cohere-rerank', query: 'q', documents: [] }, /documents is a required field/],
            [{ model: 'cohere-rerank', query: 'q', documents: [1, 2] }, /documents must be strings or objects/],
            [{ model: 'cohere-rerank', query: 'q', documents: DOCS, top_n: 0 }, /top_n must be a positive integer/],
            [{ model: 'cohere-rerank', query: 'q', documents: DOCS, stream: true }, /cannot be streamed/],
            [{ model: 'gpt-4o-mini', query: 'q', documents: DOCS }, /does not support this endpoint/],
        ]) {
            const r = await post('/v1/rerank', body);
            assert.equal(r.status, 400, JSON.stringify(r.json));
            assert.match(r.json.error.message, re);
            assert.equal(typeof r.json.error.type, 'string');
        }
        assert.equal((await post('/v1/rerank', { model: 'cohere-rerank', query: 'q', documents: DOCS }, 'sk-wrong')).status, 401);
        assert.equal((await post('/v1/rerank', { model: 'cohere-429', query: 'q', documents: DOCS })).status, 429);
    });
});
