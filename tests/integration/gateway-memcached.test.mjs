// memcached with two servers, and one of them going away: keys are spread
// over both (consistent hashing), /health/readiness reports the cache and,
// while a server is down, "degraded" (still 200); calls keep succeeding
// without a time-out each (the dead server is taken out of the ring), the
// log says "memcached does not answer" once (at most once a minute), and
// when the server is back on its port readiness is healthy again.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, migrate } from './lib/harness.mjs';
import { sleep, waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const KEYS = 24;
const DOWN_LINE = /memcached does not answer/g;
const BACK_LINE = /memcached answers again/;

describe('memcached: two servers, one stops and comes back', () => {
    let dir;
    let db;
    const mcs = [];
    let h;
    const keys = [];

    const currItems = async (mc) => {
        const stats = await mc.command('stats', { until: /END\r\n$/ });
        const m = /STAT curr_items (\d+)/.exec(stats);
        assert.ok(m, stats);
        return Number(m[1]);
    };
    const readiness = async () => {
        const r = await fetch(`${h.rootURL}/health/readiness`);
        return { status: r.status, json: await r.json() };
    };
    /* One chat call with key; {status, ms}. */
    const call = async (key) => {
        const t0 = Date.now();
        const res = await fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
        });
        await res.arrayBuffer();
        return { status: res.status, ms: Date.now() - t0 };
    };
    const callAll = async () => {
        const out = [];
        for (const k of keys) out.push(await call(k));
        return out;
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-memcached-'));
        db = await startMariaDB({ dir });
        mcs.push(await startMemcached({ dir, name: 'memcached-a' }), await startMemcached({ dir, name: 'memcached-b' }));
        h = await startHarness({
            generalSettings: { database_url: db.url(), memcached_servers: mcs.map((m) => m.server) },
            sluiceSettings: { spend_spool_dir: path.join(dir, 'spool') },
        });
        await migrate(h);
        for (let i = 0; i < KEYS; i++) {
            const raw = `sk-mc-${i}-${crypto.randomBytes(9).toString('base64url')}`;
            await db.sql('INSERT INTO LiteLLM_VerificationToken (token, key_alias, rpm_limit) VALUES ' +
                `(${sqlString(sha(raw))}, ${sqlString(`mc-${i}`)}, 100000)`);
            keys.push(raw);
        }
    });

    after(async () => {
        if (h) await h.stop();
        for (const m of mcs) await m.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('keys with limits land on both servers; readiness: healthy, cache "memcached"', async () => {
        for (const r of await callAll()) assert.equal(r.status, 200);
        const items = [await currItems(mcs[0]), await currItems(mcs[1])];
        // 24 key snapshots and 24 rate-limit counters at least, spread by hashing
        assert.ok(items[0] + items[1] >= 2 * KEYS, `items ${items}`);
        assert.ok(items[0] >= 5 && items[1] >= 5, `both servers hold keys: ${items}`);
        const r = await readiness();
        assert.equal(r.status, 200);
        assert.equal(r.json.status, 'healthy', JSON.stringify(r.json));
        assert.equal(r.json.cache, 'memcached');
        assert.equal(r.json.memcached, undefined);
        assert.equal(typeof r.json.litellm_version, 'string');
        assert.equal(h.errorLog().match(DOWN_LINE), null, 'no warning while both answer');
    });

    it('one server killed: calls still succeed fast, readiness degraded, the warning logged once', async () => {
        mcs[1].child.kill('SIGKILL');
        await mcs[1].stop();
        for (let round = 0; round < 3; round++) {
            for (const r of await callAll()) {
                assert.equal(r.status, 200);
                assert.ok(r.ms < 1500, `a call took ${r.ms} ms`);
            }
        }
        const r = await readiness();
        assert.equal(r.status, 200, 'sluice still serves');
        assert.equal(r.json.status, 'degraded', JSON.stringify(r.json));
        assert.equal(r.json.cache, 'memcached');
        assert.match(r.json.memcached, /not answering; counting per host/);
        assert.equal((h.errorLog().match(DOWN_LINE) || []).length, 1, h.errorLog().slice(-3000));
        // the survivor took the dead one's keys: its counters are there
        assert.ok(await currItems(mcs[0]) >= KEYS, 'the live server holds the moved keys');
    });

    it('the server back on its port: readiness healthy within seconds, "answers again" logged', async () => {
        mcs[1] = await startMemcached({ dir, name: 'memcached-b', port: mcs[1].port });
        await waitFor(async () => (await readiness()).json.status === 'healthy',
            { timeoutMs: 5000, intervalMs: 250, describe: () => 'readiness healthy again' });
        const r = await readiness();
        assert.equal(r.json.memcached, undefined);
        // calls clear the process's failing state once no call failed for a few seconds
        await waitFor(async () => {
            for (const c of await callAll()) assert.equal(c.status, 200);
            return BACK_LINE.test(h.errorLog());
        }, { timeoutMs: 20000, intervalMs: 500, describe: () => `"answers again" in the log\n${h.errorLog().slice(-2000)}` });
        assert.equal((h.errorLog().match(DOWN_LINE) || []).length, 1, 'still one warning');
        await sleep(200);
        assert.ok(await currItems(mcs[1]) > 0, 'keys land on the returned server again');
    });
});
