// Rate limits of virtual keys (rpm_limit, tpm_limit, max_parallel_requests,
// model_rpm_limit) against a real MariaDB and memcached shared by THREE
// gateways (three lighttpd instances, each with its own sluice process): the
// counters live in memcached, so a limit holds for the sum of them, not for
// each. Processes reserve by leases (src/counter.h) and give back what is
// left every flush interval (1 s here). Windows are
// fixed 60 s windows from the epoch; a test that counts in a window first
// waits until it is not near the window's end.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { sleep } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const rawKey = (what) => `sk-${what}-${crypto.randomBytes(9).toString('base64url')}`;
const user = [{ role: 'user', content: 'count these few words please' }];
const MESSAGE = /^Rate limit exceeded for (?:api_key|team|user|model_per_key|end_user|global): ([-\w]+)\. Limit type: (requests|tokens|max_parallel_requests)\. Current limit: (\d+), Remaining: 0\. Limit resets at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;

/* Waits until the current 60 s window has at least 15 s left. */
async function awayFromWindowEnd() {
    const into = Date.now() % 60000;
    if (into > 45000) await sleep(60000 - into + 200);
}

describe('rate limits of keys, counted in memcached across two gateways', () => {
    let dir;
    let db;
    let mc;
    const hs = [];

    const insertKey = async (name, cols = {}) => {
        const raw = rawKey(name);
        const all = { token: sha(raw), key_alias: name, ...cols };
        const names = Object.keys(all);
        await db.sql(`INSERT INTO LiteLLM_VerificationToken (${names.join(', ')}) VALUES (` +
            `${names.map((n) => sqlString(String(all[n]))).join(', ')})`);
        return raw;
    };
    /* One chat call on gateway i: {status, headers, body}. */
    const call = async (i, key, { model = 'mock-gpt', signal, gateways = 2, body = {} } = {}) => {
        const res = await fetch(`${hs[i % gateways].baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model, messages: user, max_tokens: 20, ...body }),
            signal,
        });
        return { status: res.status, headers: res.headers, body: await res.json() };
    };
    /* who: the raw key (its hash is named), or {team} / {user} */
    const assertRefused = (r, who, type, limit) => {
        assert.equal(r.status, 429, JSON.stringify(r.body));
        assert.equal(r.body.error.type, 'rate_limit_error');
        assert.equal(r.body.error.code, '429');
        const m = MESSAGE.exec(r.body.error.message);
        assert.ok(m, r.body.error.message);
        if (typeof who === 'string') assert.match(r.body.error.message, /^Rate limit exceeded for api_key: /);
        assert.equal(m[1], typeof who === 'string' ? sha(who) : who.team ?? who.user);
        if (who.team) assert.match(r.body.error.message, /^Rate limit exceeded for team: /);
        if (who.user) assert.match(r.body.error.message, /^Rate limit exceeded for user: /);
        assert.equal(m[2], type);
        assert.equal(Number(m[3]), limit);
        const retry = Number(r.headers.get('retry-after'));
        if (type === 'max_parallel_requests') assert.equal(retry, 1);
        else assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`);
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-ratelimits-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        const settings = {
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            sluiceSettings: { parallel_lease_s: 2 },   // slots of a dead worker are gone within 4 s
            extraModels: [{
                model_name: 'mock-slow',    // a stream of 10 words, one every 700 ms
                litellm_params: { model: 'mock/echo', mock_response: 'a b c d e f g h i j', mock_delay_ms: 700 },
            }],
        };
        hs.push(await startHarness(settings), await startHarness(settings), await startHarness(settings));
        await migrate(hs[0]);
    });

    after(async () => {
        for (const h of hs) await h.stop();
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('rpm_limit 10: of 30 concurrent calls on two gateways exactly 10 succeed, the others get a 429', async () => {
        const key = await insertKey('rpm', { rpm_limit: 10 });
        await awayFromWindowEnd();
        const results = await Promise.all(Array.from({ length: 30 }, (_, i) => call(i, key)));
        const ok = results.filter((r) => r.status === 200);
        assert.equal(ok.length, 10, `statuses: ${results.map((r) => r.status).join(' ')}`);
        for (const r of results.filter((x) => x.status !== 200)) {
            assertRefused(r, key, 'requests', 10);
            assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
        }
        const remaining = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))).sort((a, b) => a - b);
        assert.deepEqual(remaining, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each success saw its own count');
        for (const r of ok) {
            assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
            assert.equal(r.headers.get('x-ratelimit-api_key-limit-requests'), '10');
            assert.equal(r.headers.get('x-ratelimit-api_key-remaining-requests'), r.headers.get('x-ratelimit-remaining-requests'));
            assert.equal(r.headers.get('x-ratelimit-limit-tokens'), null, 'no tpm_limit: no token headers');
        }
    });

    it('max_parallel_requests 2: at most two calls in flight; slots come back after errors and client aborts', async () => {
        const key = await insertKey('parallel', { max_parallel_requests: 2 });
        const burst = () => Promise.all(Array.from({ length: 6 }, (_, i) => call(i, key, { model: 'slow-first-byte' })));
        let results = await burst();
        assert.equal(results.filter((r) => r.status === 200).length, 2, `statuses: ${results.map((r) => r.status).join(' ')}`);
        for (const r of results.filter((x) => x.status !== 200)) assertRefused(r, key, 'max_parallel_requests', 2);
        const ok = results.find((r) => r.status === 200);
        assert.equal(ok.headers.get('x-ratelimit-api_key-limit-max_parallel_requests'), '2');

        // Calls that fail upstream give their slot back.
        for (let i = 0; i < 4; i++) assert.equal((await call(i, key, { model: 'fault-500' })).status, 500);
        // So do calls whose client leaves before the answer.
        const ctrls = [new AbortController(), new AbortController()];
        const gone = ctrls.map((c, i) => call(i, key, { model: 'slow-first-byte', signal: c.signal }).catch((e) => e));
        await sleep(400);
        for (const c of ctrls) c.abort();
        await Promise.all(gone);
        await sleep(2500);    // the upstream answers after 1.5 s; sluice then sees the client gone
        results = await burst();
        assert.equal(results.filter((r) => r.status === 200).length, 2,
            `two slots free again: ${results.map((r) => r.status).join(' ')}`);
    });

    it('a call longer than two lease periods keeps its parallel slot to the end', async () => {
        const key = await insertKey('parallel-long', { max_parallel_requests: 1 });
        const t0 = Date.now();
        const long = fetch(`${hs[0].baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-slow', messages: user, stream: true }),
        }).then(async (res) => ({ status: res.status, text: await res.text() }));
        await sleep(5000);      // past two 2 s periods: upkeep moved the slot along
        const during = await call(1, key);
        assert.equal(during.status, 429, `still held after ${Date.now() - t0} ms: ${JSON.stringify(during.body)}`);
        const done = await long;
        assert.equal(done.status, 200);
        assert.match(done.text, /\[DONE\]/);
        assert.ok(Date.now() - t0 >= 6000, 'the stream did last that long');
        assert.equal((await call(1, key)).status, 200, 'and given back when it ended');
    });

    it('a worker killed while it holds a parallel slot cannot hold it past the next lease period', async () => {
        const key = await insertKey('parallel-crash', { max_parallel_requests: 1 });
        const held = call(0, key, { model: 'slow-first-byte' }).catch((e) => e);
        await sleep(400);
        const pids = hs[0].respondersAlive();
        assert.ok(pids.length > 0);
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        const t0 = Date.now();
        const first = await call(1, key);
        assert.equal(first.status, 429, 'the dead worker\'s slot still counts at first');
        let r = first;
        while (r.status === 429 && Date.now() - t0 < 15000) {
            await sleep(250);
            r = await call(1, key);
        }
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(Date.now() - t0 <= 6500, `admitted again after ${Date.now() - t0} ms (two 2 s periods at most)`);
        await held;
    });

    it('rpm_limit 100: of 300 calls from three gateways exactly 100 succeed', async () => {
        const key = await insertKey('rpm100', { rpm_limit: 100 });
        await awayFromWindowEnd();
        const results = [];
        const queue = Array.from({ length: 300 }, (_, i) => i);
        await Promise.all(Array.from({ length: 24 }, async () => {
            for (let i = queue.shift(); i !== undefined; i = queue.shift())
                results.push(await call(i, key, { gateways: 3 }));
        }));
        const ok = results.filter((r) => r.status === 200);
        assert.equal(ok.length, 100, `statuses: ${results.map((r) => r.status).join(' ')}`);
        for (const r of results.filter((x) => x.status !== 200)) assertRefused(r, key, 'requests', 100);
    });

    it('tpm_limit: an estimate is reserved at admission and replaced by the real usage, streams included', async () => {
        const key = await insertKey('tpm-stream', { tpm_limit: 100000 });
        await awayFromWindowEnd();
        const streamed = async (i) => {
            const res = await fetch(`${hs[i].baseURL}/chat/completions`, {
                method: 'POST',
                headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'mock-gpt', messages: user, max_tokens: 20, stream: true,
                                       stream_options: { include_usage: true } }),
            });
            assert.equal(res.status, 200);
            const text = await res.text();
            const chunks = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)));
            const usage = chunks.find((c) => c.usage)?.usage;
            assert.ok(usage && usage.total_tokens > 0, 'the stream reported its usage');
            return { left: Number(res.headers.get('x-ratelimit-remaining-tokens')), used: usage.total_tokens };
        };
        const first = await streamed(0);
        assert.ok(first.left < 100000 - 20, `the estimate (prompt and max_tokens) is reserved: ${first.left}`);
        await sleep(2500);      // every gateway gives its leases back each flush interval
        const second = await streamed(1);
        assert.equal(first.left - second.left, first.used,
            'the next call, on another gateway, sees what the stream really used, not its estimate');
    });

    it('tpm_limit: a call that used the window\'s tokens makes the next one get a 429 on the other gateway', async () => {
        const key = await insertKey('tpm', { tpm_limit: 5 });
        await awayFromWindowEnd();
        const first = await call(0, key);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '5');
        assert.equal(first.headers.get('x-ratelimit-remaining-tokens'), '0', 'its estimate takes all');
        assert.ok(first.body.usage.total_tokens >= 5, `the call used ${first.body.usage.total_tokens} tokens`);
        const second = await call(1, key);
        assertRefused(second, key, 'tokens', 5);
        assert.equal(second.headers.get('x-ratelimit-remaining-tokens'), '0');
    });

    it('a team\'s rpm_limit holds for all its keys together; its user\'s max_parallel_requests too', async () => {
        await db.sql("INSERT INTO LiteLLM_TeamTable (team_id, rpm_limit) VALUES ('team-rl', 4)");
        await db.sql("INSERT INTO LiteLLM_UserTable (user_id, max_parallel_requests) VALUES ('user-rl', 1)");
        const a = await insertKey('team-a', { team_id: 'team-rl' });
        const b = await insertKey('team-b', { team_id: 'team-rl', rpm_limit: 100 });
        await awayFromWindowEnd();
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => call(i, i % 3 ? a : b)));
        const ok = results.filter((r) => r.status === 200);
        assert.equal(ok.length, 4, `statuses: ${results.map((r) => r.status).join(' ')}`);
        for (const r of results.filter((x) => x.status !== 200)) assertRefused(r, { team: 'team-rl' }, 'requests', 4);
        for (const r of ok) {
            assert.equal(r.headers.get('x-ratelimit-team-limit-requests'), '4');
            assert.equal(r.headers.get('x-ratelimit-limit-requests'), '4', 'the plain headers show the tightest limit');
        }
        const userKey = await insertKey('user-a', { user_id: 'user-rl' });
        const slow = await Promise.all(Array.from({ length: 3 }, (_, i) => call(i, userKey, { model: 'slow-first-byte' })));
        assert.equal(slow.filter((r) => r.status === 200).length, 1, `statuses: ${slow.map((r) => r.status).join(' ')}`);
        for (const r of slow.filter((x) => x.status !== 200)) assertRefused(r, { user: 'user-rl' }, 'max_parallel_requests', 1);
        assert.equal((await call(0, userKey)).status, 200, 'the slot is back');
    });

    it('model_rpm_limit in the key\'s metadata limits each model on its own', async () => {
        const key = await insertKey('per-model', { metadata: JSON.stringify({ model_rpm_limit: { 'mock-gpt': 2 } }) });
        await awayFromWindowEnd();
        const results = await Promise.all(Array.from({ length: 5 }, (_, i) => call(i, key)));
        assert.equal(results.filter((r) => r.status === 200).length, 2, `statuses: ${results.map((r) => r.status).join(' ')}`);
        const refused = results.find((r) => r.status === 429);
        assert.match(refused.body.error.message,
            new RegExp(`^Rate limit exceeded for model_per_key: ${sha(key)}:mock-gpt\\. Limit type: requests\\. Current limit: 2,`));
        const ok = results.find((r) => r.status === 200);
        assert.equal(ok.headers.get('x-ratelimit-model_per_key-limit-requests'), '2');
        const other = await call(0, key, { model: 'fault-500' });
        assert.equal(other.status, 500, 'another model of the same key is not limited');
    });

    it('the master key has no limits and no rate-limit headers', async () => {
        const r = await call(0, MASTER_KEY);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('x-ratelimit-api_key-remaining-requests'), null);
    });
});

describe('limits from the config: each end user, and all calls together', () => {
    let dir;
    let mc;
    let h;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-ratelimits-cfg-'));
        mc = await startMemcached({ dir });
        h = await startHarness({
            generalSettings: { memcached_servers: [mc.server], global_max_parallel_requests: 2 },
            sluiceSettings: { end_user_rpm_limit: 3 },
        });
    });

    after(async () => {
        if (h) await h.stop();
        if (mc) await mc.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    const call = async (body) => {
        const res = await fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: user, ...body }),
        });
        return { status: res.status, headers: res.headers, body: await res.json() };
    };

    it('end_user_rpm_limit holds for each `user` apart, the master key too', async () => {
        await awayFromWindowEnd();
        const alice = [];   // one after the other: global_max_parallel_requests is 2
        for (let i = 0; i < 5; i++) alice.push(await call({ user: 'alice' }));
        assert.equal(alice.filter((r) => r.status === 200).length, 3, alice.map((r) => r.status).join(' '));
        const refused = alice.find((r) => r.status === 429);
        assert.match(refused.body.error.message, /^Rate limit exceeded for end_user: alice\. Limit type: requests\. Current limit: 3,/);
        assert.equal((await call({ user: 'bob' })).status, 200, 'another end user has their own limit');
        assert.equal((await call({})).status, 200, 'a call naming no user has none');
    });

    it('global_max_parallel_requests: at most two calls in flight in all', async () => {
        const slow = await Promise.all(Array.from({ length: 5 }, () => call({ model: 'slow-first-byte' })));
        assert.equal(slow.filter((r) => r.status === 200).length, 2, slow.map((r) => r.status).join(' '));
        const refused = slow.find((r) => r.status === 429);
        assert.match(refused.body.error.message, /^Rate limit exceeded for global: all calls\. Limit type: max_parallel_requests\. Current limit: 2,/);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal((await call({})).status, 200, 'the slots are back');
    });
});

describe('memcached gone and back: limits per host meanwhile, shared again after', () => {
    let dir;
    let db;
    let mc;
    const hs = [];

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-ratelimits-mc-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        // Two gateways of one host: the same spool directory, so the same host table.
        const settings = {
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            sluiceSettings: { spend_spool_dir: path.join(dir, 'spool') },
        };
        hs.push(await startHarness(settings), await startHarness(settings));
        await migrate(hs[0]);
    });

    after(async () => {
        for (const h of hs) await h.stop();
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    const insertKey = async (name, cols) => {
        const raw = rawKey(name);
        const all = { token: sha(raw), key_alias: name, ...cols };
        const names = Object.keys(all);
        await db.sql(`INSERT INTO LiteLLM_VerificationToken (${names.join(', ')}) VALUES (` +
            `${names.map((n) => sqlString(String(all[n]))).join(', ')})`);
        return raw;
    };
    const call = async (i, key) => {
        const t0 = Date.now();
        const res = await fetch(`${hs[i % 2].baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: user, max_tokens: 20 }),
        });
        return { status: res.status, ms: Date.now() - t0, body: await res.json() };
    };
    const burst = async (key, n) => {
        const out = [];
        for (let i = 0; i < n; i += 4) out.push(...await Promise.all([0, 1, 2, 3].map((j) => call(i + j, key))));
        return out;
    };
    const window = () => Math.floor(Date.now() / 60000);

    it('counts in memcached, then per host while it is down, then in memcached again', async () => {
        await awayFromWindowEnd();
        const a = await insertKey('mc-up', { rpm_limit: 5 });
        let r = await burst(a, 12);
        assert.equal(r.filter((x) => x.status === 200).length, 5, r.map((x) => x.status).join(' '));
        const w = window();
        const counted = await mc.command(`get sluice:lim:rk:${sha(a)}:${w}`, { until: /END\r\n$/ });
        assert.match(counted, /\r\n5\s*\r\nEND/, `memcached holds the count: ${counted}`);

        await mc.stop();
        const b = await insertKey('mc-down', { rpm_limit: 5 });
        r = await burst(b, 12);
        assert.ok(r.every((x) => x.status === 200 || x.status === 429), r.map((x) => x.status).join(' '));
        assert.equal(r.filter((x) => x.status === 200).length, 5,
            `both processes of the host count in one table: ${r.map((x) => x.status).join(' ')}`);
        assert.ok(r.every((x) => x.ms < 1500), `no call waits on the dead memcached: ${r.map((x) => x.ms).join(' ')}`);

        mc = await startMemcached({ dir, name: 'memcached-again', port: mc.port });
        await sleep(6000);      // each client tries a dead server again 5 s after it failed
        const c = await insertKey('mc-back', { rpm_limit: 5 });
        r = await burst(c, 12);
        assert.equal(r.filter((x) => x.status === 200).length, 5, r.map((x) => x.status).join(' '));
        const again = await mc.command(`get sluice:lim:rk:${sha(c)}:${window()}`, { until: /END\r\n$/ });
        assert.match(again, /\r\n5\s*\r\nEND/, `counted in memcached again: ${again}`);
    });
});
