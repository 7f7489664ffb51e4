// The response store (sluice_settings.responses_store) against a real
// MariaDB: responses answered through chat completions are kept per key, so
// previous_response_id continues a conversation (whole and streamed, also
// after a tool call), GET and DELETE /v1/responses/{id} work, another key
// sees nothing, store: false keeps nothing, and rows expire. Driven by the
// official openai SDK.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY, FAKE_UPSTREAM_KEY, migrate } from './lib/harness.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';

let dir;
let db;
let h;
let client;
let other;

const weather = {
    type: 'function', name: 'get_weather',
    parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-respstore-'));
    db = await startMariaDB({ dir });
    h = await startHarness({
        generalSettings: { database_url: db.url() },
        sluiceSettings: { spend_spool_dir: path.join(dir, 'spool'), responses_store: true,
            responses_store_max_bytes: 20000 },
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            cfg.model_list.push(
                { model_name: 'claude', litellm_params: { model: 'anthropic/claude-test', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'gpt', litellm_params: { model: 'openai/gpt-4o-mini', api_base: ctx.fakeBase,
                    api_key: FAKE_UPSTREAM_KEY } },
            );
        },
    });
    await migrate(h);
    client = h.client();
    const g = await fetch(`${h.rootURL}/key/generate`, {
        method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ key_alias: 'other' }),
    });
    assert.equal(g.status, 200);
    other = h.client({ apiKey: (await g.json()).key });
});

after(async () => {
    if (h) await h.stop();
    if (db) await db.stop();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

const lastMessages = async () => (await h.fake.log()).filter((e) => e.path === '/v1/messages').at(-1).body.messages;
const textOf = (r) => r.output.filter((o) => o.type === 'message')
    .flatMap((o) => o.content).map((c) => c.text).join('');

describe('the response store', () => {
    it('previous_response_id continues the conversation; the new instructions apply', async () => {
        const r1 = await client.responses.create({ model: 'claude', input: 'first words', instructions: 'be brief' });
        assert.equal(r1.store, true);
        const r2 = await client.responses.create({ model: 'claude', input: 'second words',
            previous_response_id: r1.id, instructions: 'be kind' });
        assert.equal(r2.output_text, 'Echo: second words');
        const up = (await h.fake.log()).filter((e) => e.path === '/v1/messages').at(-1).body;
        assert.deepEqual(up.system, [{ type: 'text', text: 'be kind' }], 'the old instructions do not carry over');
        assert.deepEqual(up.messages.map((m) => [m.role, m.content[0].text]), [
            ['user', 'first words'], ['assistant', 'Echo: first words'], ['user', 'second words']]);
        const r3 = await client.responses.create({ model: 'claude', input: 'third', previous_response_id: r2.id });
        assert.equal(r3.output_text, 'Echo: third');
        assert.equal((await lastMessages()).length, 5, 'three turns of the user, two answers');
    });

    it('a streamed answer is kept too, and a tool call round trip continues from it', async () => {
        const s = client.responses.stream({ model: 'claude', input: 'call tool for Oslo', tools: [weather] });
        for await (const e of s) assert.equal(typeof e.type, 'string');
        const r1 = await s.finalResponse();
        const call = r1.output.find((o) => o.type === 'function_call');
        assert.ok(call);
        const r2 = await client.responses.create({ model: 'claude', tools: [weather], previous_response_id: r1.id,
            input: [{ type: 'function_call_output', call_id: call.call_id, output: 'snow' }] });
        assert.equal(r2.output_text, 'Echo: tool result: snow');
        const msgs = await lastMessages();
        assert.equal(msgs[1].content[0].type, 'tool_use');
        assert.equal(msgs[1].content[0].id, call.call_id);
    });

    it('GET and DELETE /v1/responses/{id}; then it is gone', async () => {
        const r = await client.responses.create({ model: 'claude', input: 'keep me' });
        const got = await client.responses.retrieve(r.id);
        assert.equal(got.id, r.id);
        assert.equal(got.output_text, 'Echo: keep me');
        const del = await client.responses.delete(r.id).catch((e) => e);
        assert.ok(!(del instanceof Error), String(del));
        await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404 &&
            /Response with id '.*' not found/.test(e.message));
        await assert.rejects(client.responses.create({ model: 'claude', input: 'x', previous_response_id: r.id }),
            (e) => e.status === 400 && /Previous response with id '.*' not found/.test(e.message));
    });

    it('another key sees none of them; store: false keeps nothing; too big is not kept', async () => {
        const r = await client.responses.create({ model: 'claude', input: 'mine' });
        await assert.rejects(other.responses.retrieve(r.id), (e) => e.status === 404);
        await assert.rejects(other.responses.create({ model: 'claude', input: 'x', previous_response_id: r.id }),
            (e) => e.status === 400);
        const nostore = await client.responses.create({ model: 'claude', input: 'forget me', store: false });
        assert.equal(nostore.store, false);
        await assert.rejects(client.responses.retrieve(nostore.id), (e) => e.status === 404);
        const big = await client.responses.create({ model: 'claude', input: 'x'.repeat(30000) });
        await assert.rejects(client.responses.retrieve(big.id), (e) => e.status === 404, 'over max_bytes');
        const [[n]] = await db.sql(`SELECT COUNT(*) FROM sluice_responses WHERE response_id = ${sqlString(r.id)}`);
        assert.equal(n, '1');
    });

    it('an expired row is not found, and writing deletes expired rows', async () => {
        const r = await client.responses.create({ model: 'claude', input: 'old news' });
        await db.sql(`UPDATE sluice_responses SET expires_at = NOW(6) - INTERVAL 1 DAY WHERE response_id = ${sqlString(r.id)}`);
        await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
        await client.responses.create({ model: 'claude', input: 'new news' });
        const [[n]] = await db.sql(`SELECT COUNT(*) FROM sluice_responses WHERE response_id = ${sqlString(r.id)}`);
        assert.equal(n, '0');
    });

    it('native deployments: answers are the provider\'s; an id sluice does not have goes to the provider', async () => {
        const r = await client.responses.create({ model: 'gpt', input: 'native one' });
        const r2 = await client.responses.create({ model: 'gpt', input: 'native two', previous_response_id: r.id });
        assert.equal(r2.output_text, 'Echo: native two');
        const up = (await h.fake.log()).filter((e) => e.path === '/v1/responses').at(-1);
        assert.equal(up.body.previous_response_id, r.id, 'passed through');
        // a conversation sluice holds continues on a native deployment too, as chat
        const mine = await client.responses.create({ model: 'claude', input: 'held here' });
        const cont = await client.responses.create({ model: 'gpt', input: 'go on', previous_response_id: mine.id });
        assert.equal(cont.output_text, 'Echo: go on');
        const chat = (await h.fake.log()).filter((e) => e.path === '/v1/chat/completions').at(-1);
        assert.deepEqual(chat.body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
        assert.equal(textOf(cont), 'Echo: go on');
    });
});
