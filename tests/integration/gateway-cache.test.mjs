// The response cache (litellm_settings.cache) against a real memcached and
// MariaDB: a repeated question is answered without an upstream call (the
// fake upstream counts the calls), whole or as a stream the official SDKs
// accept, with x-litellm-cache-key and x-sluice-cache; the per-request
// controls (no-cache, no-store, ttl, s-maxage, namespace) do what LiteLLM's
// do; two teams never share an answer; a hit costs nothing and its spend row
// says cache_hit True; an answer too big for memcached is not kept and does
// not fail. A second gateway without the setting never caches; a third
// without memcached keeps entries per process (mode default_off, type redis).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { sleep, waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const uniq = (what) => `${what} ${crypto.randomBytes(6).toString('hex')}`;
const ask = (text) => [{ role: 'user', content: text }];

/* Upstream calls whose body mentions text. */
const callsFor = async (h, text) => (await h.fakeLog()).filter((e) => JSON.stringify(e.body ?? '').includes(text)).length;

/* One chat call through the SDK: {data, headers}. */
const chat = async (client, text, extra = {}) => {
    const { data, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: ask(text), ...extra }).withResponse();
    return { data, headers: response.headers };
};

/* A streamed chat call through the SDK: {text, chunks, usage, finish, tools, headers}. */
const streamed = async (client, text, extra = {}) => {
    const { data: stream, response } = await client.chat.completions.create({
        model: 'gpt-4o-mini', messages: ask(text), stream: true, ...extra,
    }).withResponse();
    const out = { text: '', chunks: 0, usage: null, finish: null, tools: {}, headers: response.headers };
    for await (const ch of stream) {
        out.chunks++;
        if (ch.usage) out.usage = ch.usage;
        for (const c of ch.choices) {
            if (c.delta?.content) out.text += c.delta.content;
            for (const t of c.delta?.tool_calls ?? []) {
                const o = (out.tools[t.index] ??= { id: null, name: null, args: '' });
                if (t.id) o.id = t.id;
                if (t.function?.name) o.name = t.function.name;
                if (t.function?.arguments) o.args += t.function.arguments;
            }
            if (c.finish_reason) out.finish = c.finish_reason;
        }
    }
    return out;
};

const HEX64 = /^[0-9a-f]{64}$/;

describe('response cache in memcached', () => {
    let dir;
    let db;
    let mc;
    let h;
    let client;
    const keys = {};

    const newKey = async (alias, team) => {
        const g = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ team_id: team, key_alias: alias }),
        });
        const body = await g.json();
        assert.equal(g.status, 200, JSON.stringify(body));
        return body.key;
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-cache-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        h = await startHarness({
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            litellmSettings: { cache: true, cache_params: { type: 'memcached', ttl: 600 } },
            modelParams: { 'gpt-4o-mini': { input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 } },
            sluiceSettings: { spend_spool_dir: path.join(dir, 'spool') },
        });
        await migrate(h);
        await db.sql("INSERT INTO LiteLLM_TeamTable (team_id) VALUES ('t-a'), ('t-b')");
        keys.a1 = await newKey('a1', 't-a');
        keys.a2 = await newKey('a2', 't-a');
        keys.b1 = await newKey('b1', 't-b');
        client = h.client();
    });
    after(async () => {
        await h?.stop();
        await mc?.stop();
        await db?.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('a miss, then a hit answered without the upstream, with the same answer and key', async () => {
        const q = uniq('miss then hit');
        const a = await chat(client, q, { temperature: 0.2, cache: { ttl: 600 } });
        assert.equal(a.headers.get('x-sluice-cache'), 'miss');
        assert.match(a.headers.get('x-litellm-cache-key'), HEX64);
        const b = await chat(client, q, { temperature: 0.2 });
        assert.equal(b.headers.get('x-sluice-cache'), 'hit');
        assert.equal(b.headers.get('x-litellm-cache-key'), a.headers.get('x-litellm-cache-key'));
        assert.equal(b.data.choices[0].message.content, a.data.choices[0].message.content);
        assert.equal(b.data.choices[0].message.content, `Echo: ${q}`);
        assert.equal(b.data.model, 'gpt-4o-mini');
        assert.deepEqual(b.data.usage, a.data.usage);
        assert.equal(await callsFor(h, q), 1, 'the upstream saw exactly one call');
        const seen = (await h.fakeLog()).find((e) => JSON.stringify(e.body ?? '').includes(q));
        assert.equal(seen.body.cache, undefined, 'the cache member is never sent upstream');
        const c = await chat(client, q, { temperature: 0.3 });
        assert.equal(c.headers.get('x-sluice-cache'), 'miss', 'another temperature is another question');
        assert.equal(await callsFor(h, q), 2);
    });

    it('a streamed request hit is replayed as a stream the SDK accepts; a streamed miss serves whole hits', async () => {
        const q = uniq('stream replay of a whole answer');
        const whole = await chat(client, q);
        const s = await streamed(client, q, { stream_options: { include_usage: true } });
        assert.equal(s.headers.get('x-sluice-cache'), 'hit');
        assert.equal(s.text, whole.data.choices[0].message.content);
        assert.equal(s.finish, 'stop');
        assert.deepEqual(s.usage, whole.data.usage, 'the usage chunk, asked for');
        const noUsage = await streamed(client, q);
        assert.equal(noUsage.usage, null, 'no usage chunk unless asked');
        assert.equal(noUsage.text, s.text);
        assert.equal(await callsFor(h, q), 1);

        const q2 = uniq('whole answer from a stream');
        const first = await streamed(client, q2, { stream_options: { include_usage: true } });
        assert.equal(first.headers.get('x-sluice-cache'), 'miss');
        const hit = await chat(client, q2);
        assert.equal(hit.headers.get('x-sluice-cache'), 'hit');
        assert.equal(hit.data.object, 'chat.completion');
        assert.equal(hit.data.choices[0].message.content, first.text);
        assert.equal(hit.data.choices[0].finish_reason, 'stop');
        assert.deepEqual(hit.data.usage, first.usage);
        const again = await streamed(client, q2);
        assert.equal(again.text, first.text);
        assert.equal(await callsFor(h, q2), 1);
    });

    it('tool calls streamed are kept and replayed', async () => {
        const q = uniq('please call tool');
        const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
        const first = await streamed(client, q, { tools });
        assert.equal(first.finish, 'tool_calls');
        const hit = await chat(client, q, { tools });
        assert.equal(hit.headers.get('x-sluice-cache'), 'hit');
        const tc = hit.data.choices[0].message.tool_calls;
        assert.equal(tc.length, 1);
        assert.equal(tc[0].id, first.tools[0].id);
        assert.equal(tc[0].function.name, 'lookup');
        assert.equal(tc[0].function.arguments, first.tools[0].args);
        const replay = await streamed(client, q, { tools });
        assert.deepEqual(replay.tools, first.tools);
        assert.equal(replay.finish, 'tool_calls');
        assert.equal(await callsFor(h, q), 1);
    });

    it('no-cache skips the lookup and refreshes the entry; no-store keeps nothing', async () => {
        const q = uniq('no-cache');
        const a = await chat(client, q);
        const b = await chat(client, q, { cache: { 'no-cache': true } });
        assert.equal(b.headers.get('x-sluice-cache'), 'miss');
        assert.equal(await callsFor(h, q), 2);
        assert.notEqual(b.data.id, a.data.id);
        const c = await chat(client, q);
        assert.equal(c.headers.get('x-sluice-cache'), 'hit');
        assert.equal(c.data.id, b.data.id, 'the entry is the refreshed answer');

        const q2 = uniq('no-store');
        await chat(client, q2, { cache: { 'no-store': true } });
        const d = await chat(client, q2);
        assert.equal(d.headers.get('x-sluice-cache'), 'miss');
        assert.equal(await callsFor(h, q2), 2);
    });

    it('ttl: an entry expires; s-maxage: only a young enough entry is taken', async () => {
        const q = uniq('short ttl');
        await chat(client, q, { cache: { ttl: 2 } });
        assert.equal((await chat(client, q)).headers.get('x-sluice-cache'), 'hit');
        await sleep(3100);
        assert.equal((await chat(client, q)).headers.get('x-sluice-cache'), 'miss', 'expired after 2 s');
        assert.equal(await callsFor(h, q), 2);

        const q2 = uniq('s-maxage');
        await chat(client, q2);
        await sleep(2100);
        const old = await chat(client, q2, { cache: { 's-maxage': 1 } });
        assert.equal(old.headers.get('x-sluice-cache'), 'miss', 'older than 1 s');
        const young = await chat(client, q2, { cache: { 's-maxage': 60 } });
        assert.equal(young.headers.get('x-sluice-cache'), 'hit');
        assert.equal(await callsFor(h, q2), 2);
    });

    it('a namespace is a separate cache', async () => {
        const q = uniq('namespace');
        await chat(client, q);
        const a = await chat(client, q, { cache: { namespace: 'ns-one' } });
        assert.equal(a.headers.get('x-sluice-cache'), 'miss');
        const b = await chat(client, q, { cache: { namespace: 'ns-one' } });
        assert.equal(b.headers.get('x-sluice-cache'), 'hit');
        assert.equal(b.headers.get('x-litellm-cache-key'), a.headers.get('x-litellm-cache-key'));
        assert.equal(await callsFor(h, q), 2);
    });

    it('two teams never see each other\'s answers; keys of one team share them', async () => {
        const q = uniq('tenant isolation');
        const ca = h.client({ apiKey: keys.a1 });
        const cb = h.client({ apiKey: keys.b1 });
        const a = await chat(ca, q);
        const b = await chat(cb, q);
        assert.equal(a.headers.get('x-sluice-cache'), 'miss');
        assert.equal(b.headers.get('x-sluice-cache'), 'miss');
        assert.notEqual(a.headers.get('x-litellm-cache-key'), b.headers.get('x-litellm-cache-key'));
        const master = await chat(client, q);
        assert.equal(master.headers.get('x-sluice-cache'), 'miss', 'nor the master key');
        const a2 = await chat(h.client({ apiKey: keys.a2 }), q);
        assert.equal(a2.headers.get('x-sluice-cache'), 'hit', 'another key of team t-a');
        assert.equal(await callsFor(h, q), 3);
    });

    it('a hit costs nothing: its spend row says cache_hit True and spend 0', async () => {
        const q = uniq('spend of a hit');
        const c = h.client({ apiKey: keys.a1 });
        const { data: d1, response: r1 } = await c.chat.completions
            .create({ model: 'gpt-4o-mini', messages: ask(q) }).withResponse();
        const { response: r2 } = await c.chat.completions
            .create({ model: 'gpt-4o-mini', messages: ask(q) }).withResponse();
        assert.equal(r2.headers.get('x-sluice-cache'), 'hit');
        assert.equal(r2.headers.get('x-litellm-response-cost'), '0');
        const ids = [r1.headers.get('x-request-id'), r2.headers.get('x-request-id')];
        let rows;
        await waitFor(async () => {
            rows = await db.sql(`SELECT request_id, spend, cache_hit, cache_key, prompt_tokens, status FROM LiteLLM_SpendLogs
                WHERE request_id IN (${ids.map(sqlString).join(', ')})`);
            return rows.length === 2;
        }, { timeoutMs: 15000, intervalMs: 200, describe: () => `two spend rows: ${JSON.stringify(rows)}` });
        const byId = Object.fromEntries(rows.map((r) => [r[0], r]));
        const miss = byId[ids[0]];
        const hit = byId[ids[1]];
        assert.equal(miss[2], 'False');
        assert.ok(Number(miss[1]) > 0, `the miss cost something: ${miss[1]}`);
        assert.equal(hit[2], 'True');
        assert.equal(Number(hit[1]), 0);
        assert.equal(hit[3], r2.headers.get('x-litellm-cache-key'));
        assert.equal(miss[3], hit[3]);
        assert.equal(Number(hit[4]), d1.usage.prompt_tokens, 'the tokens of the stored answer');
        assert.equal(hit[5], 'success');
    });

    it('embeddings are cached too', async () => {
        const input = uniq('embed me');
        const { data: a, response: ra } = await client.embeddings
            .create({ model: 'text-embedding-3-small', input }).withResponse();
        const { data: b, response: rb } = await client.embeddings
            .create({ model: 'text-embedding-3-small', input }).withResponse();
        assert.equal(ra.headers.get('x-sluice-cache'), 'miss');
        assert.equal(rb.headers.get('x-sluice-cache'), 'hit');
        assert.deepEqual(b.data[0].embedding, a.data[0].embedding);
        assert.equal(b.model, 'text-embedding-3-small');
        assert.equal(await callsFor(h, input), 1);
    });

    it('an answer too big for memcached is answered but not kept', async () => {
        const q = uniq('big');
        const big = `${q} ${'x'.repeat(1100000)}`;
        const body = JSON.stringify({ model: 'echo-body', messages: ask(big) });
        const once = async () => {
            const r = await fetch(`${h.baseURL}/chat/completions`, {
                method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body,
            });
            const j = await r.json();
            assert.equal(r.status, 200, JSON.stringify(j).slice(0, 300));
            assert.ok(j.choices[0].message.content.length > 1000000);
            return r.headers.get('x-sluice-cache');
        };
        const before = (await h.fakeLog()).filter((e) => e.model === 'echo-body').length;
        assert.equal(await once(), 'miss');
        assert.equal(await once(), 'miss');
        assert.equal((await h.fakeLog()).filter((e) => e.model === 'echo-body').length - before, 2);
    });

    it('a malformed cache member is a 400 in OpenAI\'s shape', async () => {
        for (const cache of ['yes', { 'no-cache': 'true' }, { ttl: -1 }, { namespace: 5 }]) {
            const r = await fetch(`${h.baseURL}/chat/completions`, {
                method: 'POST',
                headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'gpt-4o-mini', messages: ask('x'), cache }),
            });
            const j = await r.json();
            assert.equal(r.status, 400, JSON.stringify(cache));
            assert.equal(j.error.type, 'invalid_request_error');
            assert.equal(j.error.param, 'cache');
            assert.match(j.error.message, /^cache/);
        }
    });

    it('a refused key cannot read the cache', async () => {
        const q = uniq('refused');
        await chat(client, q);
        const r = await fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: 'Bearer sk-not-a-key', 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: ask(q) }),
        });
        await r.arrayBuffer();
        assert.equal(r.status, 401);
        assert.equal(r.headers.get('x-sluice-cache'), null);
    });

    it('/cache/ping answers LiteLLM\'s shape; /cache/delete (admins) removes an entry', async () => {
        const ping = await fetch(`${h.rootURL}/cache/ping`, { headers: { authorization: `Bearer ${keys.b1}` } });
        const pj = await ping.json();
        assert.equal(ping.status, 200, JSON.stringify(pj));
        assert.equal(pj.status, 'healthy');
        assert.equal(pj.cache_type, 'memcached');
        assert.equal(pj.ping_response, true);
        assert.equal(pj.litellm_cache_params.ttl, 600);

        const q = uniq('delete me');
        const a = await chat(client, q);
        const key = a.headers.get('x-litellm-cache-key');
        const del = (who, body) => fetch(`${h.rootURL}/cache/delete`, {
            method: 'POST',
            headers: { authorization: `Bearer ${who}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
        });
        const refused = await del(keys.b1, { keys: [key] });
        assert.equal(refused.status, 403);
        assert.match((await refused.json()).error.message, /^Admin-only endpoint/);
        assert.equal((await chat(client, q)).headers.get('x-sluice-cache'), 'hit', 'a refused delete deletes nothing');
        const bad = await del(MASTER_KEY, { keys: ['not-a-key'] });
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).error.param, 'keys');
        const ok = await del(MASTER_KEY, { keys: [key] });
        assert.equal(ok.status, 200);
        assert.deepEqual(await ok.json(), { status: 'success' });
        assert.equal((await chat(client, q)).headers.get('x-sluice-cache'), 'miss');
        assert.equal(await callsFor(h, q), 2);
    });

    it('Anthropic\'s Messages API: a hit answers in Anthropic\'s shape, whole and streamed', async () => {
        const an = new Anthropic({ apiKey: MASTER_KEY, baseURL: h.rootURL, maxRetries: 0, timeout: 20000 });
        const q = uniq('anthropic cached');
        const { data: m1, response: r1 } = await an.messages
            .create({ model: 'gpt-4o-mini', max_tokens: 100, messages: ask(q) }).withResponse();
        const { data: m2, response: r2 } = await an.messages
            .create({ model: 'gpt-4o-mini', max_tokens: 100, messages: ask(q) }).withResponse();
        assert.equal(r1.headers.get('x-sluice-cache'), 'miss');
        assert.equal(r2.headers.get('x-sluice-cache'), 'hit');
        assert.equal(m2.type, 'message');
        assert.equal(m2.content[0].text, m1.content[0].text);
        assert.equal(m2.stop_reason, 'end_turn');
        assert.equal(m2.usage.input_tokens, m1.usage.input_tokens);
        const s = await an.messages.stream({ model: 'gpt-4o-mini', max_tokens: 100, messages: ask(q) }).finalMessage();
        assert.equal(s.content[0].text, m1.content[0].text);
        assert.equal(s.stop_reason, 'end_turn');
        assert.equal(await callsFor(h, q), 1);
        const oa = await chat(client, q, { max_tokens: 100 });
        assert.equal(oa.headers.get('x-sluice-cache'), 'miss', 'the Messages API has entries of its own');
    });
});

describe('response cache: off unless configured', () => {
    let h;
    before(async () => { h = await startHarness(); });
    after(async () => { await h?.stop(); });

    it('/cache/ping says the cache is not initialized', async () => {
        const r = await fetch(`${h.rootURL}/cache/ping`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
        const j = await r.json();
        assert.equal(r.status, 503);
        assert.equal(j.error.message, 'Cache not initialized. litellm.cache is None');
    });

    it('without litellm_settings.cache nothing is cached and no cache header is sent', async () => {
        const q = uniq('no cache configured');
        const c = h.client();
        const a = await chat(c, q, { cache: { ttl: 60 } });
        const b = await chat(c, q);
        assert.equal(a.headers.get('x-litellm-cache-key'), null);
        assert.equal(b.headers.get('x-sluice-cache'), null);
        assert.equal(await callsFor(h, q), 2);
        const seen = (await h.fakeLog()).find((e) => JSON.stringify(e.body ?? '').includes(q));
        assert.equal(seen.body.cache, undefined, 'the cache member is never sent upstream');
    });
});

describe('response cache without memcached: per process, mode default_off', () => {
    let h;
    before(async () => {
        h = await startHarness({
            litellmSettings: {
                cache: true,
                cache_params: { type: 'redis', host: 'localhost', port: 6379, ttl: 2, mode: 'default_off',
                    supported_call_types: ['acompletion'] },
            },
        });
    });
    after(async () => { await h?.stop(); });

    it('warns that the entries stay in the process', () => {
        assert.match(h.sluiceLog(), /cache_params\.type: redis: sluice keeps the response cache in memcached/);
    });

    it('only requests with use-cache use it; the config ttl expires them', async () => {
        const c = h.client();
        const q = uniq('default off');
        await chat(c, q);
        assert.equal((await chat(c, q)).headers.get('x-sluice-cache'), null);
        assert.equal(await callsFor(h, q), 2);
        const a = await chat(c, q, { cache: { 'use-cache': true } });
        const b = await chat(c, q, { cache: { 'use-cache': true } });
        assert.equal(a.headers.get('x-sluice-cache'), 'miss');
        assert.equal(b.headers.get('x-sluice-cache'), 'hit');
        assert.equal(await callsFor(h, q), 3);
        await sleep(3100);
        assert.equal((await chat(c, q, { cache: { 'use-cache': true } })).headers.get('x-sluice-cache'), 'miss');
        assert.equal(await callsFor(h, q), 4);
    });

    it('embeddings are not cached when supported_call_types leaves them out', async () => {
        const c = h.client();
        const input = uniq('not cached embeddings');
        for (let i = 0; i < 2; i++) {
            const { response } = await c.embeddings.create({
                model: 'text-embedding-3-small', input, cache: { 'use-cache': true },
            }).withResponse();
            assert.equal(response.headers.get('x-sluice-cache'), null);
        }
        assert.equal(await callsFor(h, input), 2);
    });
});
