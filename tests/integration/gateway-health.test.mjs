// GET /health through lighttpd and a real sluice: every deployment gets one
// small real call (the fake upstream's fault models, a refused port, the
// mock, Bedrock and Vertex AI through their fakes, a wildcard with its
// health_check_model), and the answer lists healthy and unhealthy ones in
// LiteLLM's shape with the upstream's error, never a secret. Probes run at
// once, so a hanging deployment costs one time-out, not one per deployment;
// ?model= and ?model_id= narrow the check; only the master key (or a proxy
// admin) may call it; probes leave no spend rows.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startHarness, sluicectlBin, MASTER_KEY, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/procs.mjs';
import { startMariaDB } from './lib/mariadb.mjs';
import { errorShape } from './lib/http.mjs';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from '../fakes/providers/bedrock.mjs';

const TIMEOUT_MS = 2500;                     // sluice_settings.health_check_timeout_ms
const WRONG_KEY = 'sk-health-SECRET-wrong-0123456789';
const ECHOED_KEY = 'sk-health-SECRET-echoed-9876543210';
const AWS_SECRET_WRONG = 'AWS-health-SECRET-not-the-one-000';
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';

/* An upstream that repeats the caller's credential in its 401, as some do;
 * for model "inband-error", a 200 whose body is an error. */
function startEchoingUpstream() {
    const srv = http.createServer((req, res) => {
        let raw = '';
        req.on('data', (c) => { raw += c; });
        req.on('end', () => {
            let model = null;
            try { model = JSON.parse(raw).model; } catch { /* no body */ }
            const inband = model === 'inband-error';
            const body = JSON.stringify({ error: {
                message: inband ? 'The engine is overloaded (in band).'
                    : `Incorrect API key provided: ${req.headers.authorization || ''}.`,
                type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
            res.writeHead(inband ? 200 : 401,
                { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
            res.end(body);
        });
    });
    return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('GET /health: probes every deployment, lists healthy and unhealthy ones', () => {
    let dir;
    let db;
    let h;
    let echo;
    let virtualKey;

    const get = async (query = '', { key = MASTER_KEY, method = 'GET' } = {}) => {
        const t0 = Date.now();
        const r = await fetch(`${h.rootURL}/health${query}`, {
            method, headers: key ? { authorization: `Bearer ${key}` } : {},
        });
        const text = await r.text();
        let json = null;
        try { json = JSON.parse(text); } catch { /* checked by the caller */ }
        return { status: r.status, text, json, ms: Date.now() - t0 };
    };
    const names = (list) => list.map((e) => e.model_name).sort();
    const byName = (json, name) => [...json.healthy_endpoints, ...json.unhealthy_endpoints]
        .filter((e) => e.model_name === name);

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-health-'));
        db = await startMariaDB({ dir });
        echo = await startEchoingUpstream();
        h = await startHarness({
            generalSettings: { database_url: db.url() },
            sluiceSettings: { health_check_timeout_ms: TIMEOUT_MS, spend_spool_dir: path.join(dir, 'spool') },
            configure(cfg, ctx) {
                const root = `http://127.0.0.1:${ctx.fakePort}`;
                const openai = (name, upstream, extra = {}, info = undefined) => ({
                    model_name: name,
                    litellm_params: { model: `openai/${upstream}`, api_base: ctx.fakeBase,
                        api_key: FAKE_UPSTREAM_KEY, timeout: 10, ...extra },
                    ...(info ? { model_info: info } : {}),
                });
                cfg.model_list.push(
                    openai('wrong-key', 'gpt-4o-mini', { api_key: WRONG_KEY }),
                    openai('echoed-key', 'gpt-4o-mini', { api_key: ECHOED_KEY,
                        api_base: `http://127.0.0.1:${echo.address().port}/v1` }),
                    openai('inband', 'inband-error', { api_base: `http://127.0.0.1:${echo.address().port}/v1` }),
                    openai('hang-quick', 'hang', {}, { id: 'hang-quick-id', health_check_timeout: 0.5 }),
                    openai('wild/*', '*', {}, { health_check_model: 'openai/gpt-4o-mini' }),
                    openai('wild-unnamed/*', '*'),
                    openai('pictures', 'dall-e-3', {}, { mode: 'image_generation' }),
                    { model_name: 'mock-embed', litellm_params: { model: 'mock/embed' }, model_info: { mode: 'embedding' } },
                    { model_name: 'bedrock-ok', litellm_params: { model: `bedrock/${HAIKU}`, api_base: root,
                        aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: SECRET_ACCESS_KEY,
                        aws_region_name: 'us-east-1', timeout: 10 } },
                    { model_name: 'bedrock-wrong', litellm_params: { model: `bedrock/${HAIKU}`, api_base: root,
                        aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: AWS_SECRET_WRONG,
                        aws_region_name: 'us-east-1', timeout: 10 } },
                    { model_name: 'vertex-ok', litellm_params: { model: 'vertex_ai/gemini-2.5-pro', api_base: root,
                        vertex_location: 'europe-west4', vertex_credentials: path.join(ctx.tmpdir, 'sa.json'),
                        timeout: 10 } },
                );
            },
        });
        const sa = await (await fetch(`http://127.0.0.1:${h.fakePort}/__control/vertex/service-account.json`)).json();
        await fsp.writeFile(path.join(h.tmpdir, 'sa.json'), JSON.stringify(sa, null, 2));
        h.privateKey = sa.private_key;
        const m = await new Promise((resolve) => {
            execFile(sluicectlBin(), ['--config', h.files.config, 'migrate'],
                { env: { ...process.env, SLUICE_SCHEMA_DIR: path.join(REPO_ROOT, 'schema'), DATABASE_URL: '' } },
                (err, stdout, stderr) => resolve({ err, stderr }));
        });
        assert.equal(m.err, null, `migrate failed: ${m.stderr}`);
        const g = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ key_alias: 'not-an-admin' }),
        });
        const body = await g.json();
        assert.equal(g.status, 200, JSON.stringify(body));
        virtualKey = body.key;
    });

    after(async () => {
        if (h) await h.stop();
        if (echo) await new Promise((r) => echo.close(r));
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('lists each deployment as healthy or unhealthy, in LiteLLM\'s shape, within one time-out', async () => {
        await h.resetFake();
        const r = await get();
        assert.equal(r.status, 200, r.text);
        const j = r.json;
        assert.deepEqual(Object.keys(j).sort(),
            ['healthy_count', 'healthy_endpoints', 'unhealthy_count', 'unhealthy_endpoints']);
        assert.equal(j.healthy_count, j.healthy_endpoints.length);
        assert.equal(j.unhealthy_count, j.unhealthy_endpoints.length);
        const healthy = names(j.healthy_endpoints);
        const unhealthy = names(j.unhealthy_endpoints);
        for (const n of ['gpt-4o-mini', 'text-embedding-3-small', 'mock-gpt', 'mock-embed', 'echo-alias',
            'slow-first-byte', 'wild/*', 'bedrock-ok', 'vertex-ok'])
            assert.ok(healthy.includes(n), `${n} is healthy: ${r.text}`);
        for (const n of ['fault-500', 'fault-429', 'fault-400', 'empty-503', 'hang', 'hang-quick', 'unreachable',
            'wrong-key', 'echoed-key', 'bedrock-wrong', 'drop-mid-stream', 'slow-stream', 'inband'])
            assert.ok(unhealthy.includes(n), `${n} is unhealthy: ${r.text}`);
        // Not probed, not listed: a wildcard without health_check_model, a mode sluice does not serve.
        assert.equal(byName(j, 'wild-unnamed/*').length, 0);
        assert.equal(byName(j, 'pictures').length, 0);
        assert.equal(healthy.length + unhealthy.length, h.config.model_list.length - 2);
        for (const e of j.healthy_endpoints) {
            assert.equal(e.error, undefined);
            assert.ok(typeof e.model === 'string' && typeof e.model_id === 'string', JSON.stringify(e));
        }
        for (const e of j.unhealthy_endpoints) assert.equal(typeof e.error, 'string', JSON.stringify(e));
        // hang and slow-stream each take the whole time-out; in parallel that is one.
        assert.ok(r.ms >= TIMEOUT_MS - 100, `took ${r.ms} ms`);
        assert.ok(r.ms < TIMEOUT_MS + 1500, `probes ran in parallel: ${r.ms} ms`);
    });

    it('unhealthy entries carry the status and the upstream\'s own message', async () => {
        const { json: j } = await get();
        const err = (n) => byName(j, n)[0].error;
        assert.match(err('fault-500'), /^HTTP 500: .*fault-500/);
        assert.match(err('fault-429'), /^HTTP 429: Rate limit reached/);
        assert.match(err('fault-400'), /^HTTP 400: .*fault-400/);
        assert.match(err('empty-503'), /^HTTP 503/);
        assert.match(err('wrong-key'), /^HTTP 401: Incorrect API key/);
        assert.match(err('hang'), new RegExp(`^Timeout: no answer within ${TIMEOUT_MS} ms`));
        assert.match(err('hang-quick'), /^Timeout: no answer within 500 ms/);
        assert.match(err('unreachable'), /^Connection error: .*(refused|connect)/i);
        assert.match(err('bedrock-wrong'), /^HTTP 403/);
        assert.match(err('slow-stream'), /^Timeout/);
        assert.match(err('drop-mid-stream'), /^The upstream's reply could not be read: /);
        assert.equal(err('inband'), 'HTTP 200 with an error: The engine is overloaded (in band).');
    });

    it('never shows a secret: api keys, AWS secrets, service account keys, the master key', async () => {
        const { text, json: j } = await get();
        for (const s of [FAKE_UPSTREAM_KEY, WRONG_KEY, ECHOED_KEY, SECRET_ACCESS_KEY, AWS_SECRET_WRONG,
            ACCESS_KEY_ID, MASTER_KEY, 'PRIVATE KEY', h.privateKey.slice(40, 80)])
            assert.ok(!text.includes(s), `the body holds ${s.slice(0, 12)}...`);
        for (const e of [...j.healthy_endpoints, ...j.unhealthy_endpoints]) {
            for (const k of Object.keys(e))
                assert.doesNotMatch(k, /api_key|secret|access_key|credential/, `${e.model_name}: ${k}`);
        }
        // The upstream repeated the key it got: shown masked.
        const echoed = byName(j, 'echoed-key')[0].error;
        assert.match(echoed, /^HTTP 401: Incorrect API key provided: Bearer \*\*\*\.$/);
        // Nor in the gateway's log.
        const log = h.sluiceLog();
        for (const s of [FAKE_UPSTREAM_KEY, WRONG_KEY, ECHOED_KEY, SECRET_ACCESS_KEY, AWS_SECRET_WRONG])
            assert.ok(!log.includes(s), `the log holds ${s.slice(0, 12)}...`);
    });

    it('a probe is a minimal real call through the adapter, with the deployment\'s key', async () => {
        await h.resetFake();
        await get();
        const log = await h.fakeLog();
        const chat = log.filter((e) => e.model === 'gpt-4o-mini' && e.body && e.body.messages);
        assert.ok(chat.length >= 2, 'gpt-4o-mini and wild/* were probed');
        for (const e of chat) {
            assert.equal(e.body.max_tokens, 1);
            assert.deepEqual(e.body.messages, [{ role: 'user', content: 'ping' }]);
            assert.equal(e.stream, false);
        }
        assert.ok(chat.some((e) => e.auth_ok === true), 'sent with the deployment\'s own key');
        const emb = log.find((e) => e.model === 'text-embedding-3-small');
        assert.equal(emb.body.input, 'ping');
        assert.equal(log.filter((e) => e.model === 'dall-e-3').length, 0, 'an image model is not called');
    });

    it('?model= probes one model group only, and quickly when it is quick', async () => {
        let r = await get('?model=fault-500');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(names(r.json.unhealthy_endpoints), ['fault-500']);
        assert.equal(r.json.healthy_count, 0);
        assert.equal(r.json.unhealthy_count, 1);
        assert.ok(r.ms < 1500, `${r.ms} ms`);
        r = await get('?model=mock-gpt');
        assert.deepEqual(names(r.json.healthy_endpoints), ['mock-gpt']);
        assert.equal(r.json.unhealthy_count, 0);
        r = await get(`?model=${encodeURIComponent('wild/*')}`);
        assert.deepEqual(names(r.json.healthy_endpoints), ['wild/*']);
        r = await get('?model_id=hang-quick-id');
        assert.deepEqual(names(r.json.unhealthy_endpoints), ['hang-quick']);
        assert.ok(r.ms < 1500, `its own 0.5 s time-out: ${r.ms} ms`);
    });

    it('a hanging deployment costs the probe time-out, not more', async () => {
        const r = await get('?model=hang');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(names(r.json.unhealthy_endpoints), ['hang']);
        assert.ok(r.ms >= TIMEOUT_MS - 100 && r.ms < TIMEOUT_MS + 1500, `${r.ms} ms`);
    });

    it('an unknown model group is a 404 in OpenAI\'s shape', async () => {
        const r = await get('?model=no-such-group');
        assert.equal(r.status, 404);
        errorShape(r.json);
        assert.match(r.json.error.message, /no-such-group/);
        const i = await get('?model_id=no-such-id');
        assert.equal(i.status, 404);
        errorShape(i.json);
    });

    it('only the master key may call it: 401 without a key or with a wrong one, 403 for a virtual key', async () => {
        let r = await get('', { key: null });
        assert.equal(r.status, 401, r.text);
        errorShape(r.json);
        r = await get('', { key: 'sk-not-a-key-at-all' });
        assert.equal(r.status, 401, r.text);
        errorShape(r.json);
        await h.resetFake();
        r = await get('', { key: virtualKey });
        assert.equal(r.status, 403, r.text);
        errorShape(r.json);
        assert.match(r.json.error.message, /Admin-only/);
        assert.equal((await h.fakeLog()).length, 0, 'nothing was probed for a refused caller');
        r = await get('', { method: 'POST' });
        assert.equal(r.status, 405, r.text);
        errorShape(r.json);
    });

    it('probes leave no spend rows, and the routes LiteLLM keeps public stay public', async () => {
        const before = await db.sql('SELECT COUNT(*) FROM LiteLLM_SpendLogs');
        await get();
        const c = h.client();
        await c.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'count me' }] });
        // The one real call lands; the probes never do.
        const { waitFor } = await import('./lib/procs.mjs');
        let rows;
        await waitFor(async () => {
            [[rows]] = await db.sql('SELECT COUNT(*) FROM LiteLLM_SpendLogs');
            return Number(rows) === Number(before[0][0]) + 1;
        }, { timeoutMs: 10000, intervalMs: 200, describe: () => `one new spend row, got ${rows}` });
        await new Promise((r) => setTimeout(r, 1500));   // a writer's flush later: still one
        const [[after]] = await db.sql('SELECT COUNT(*) FROM LiteLLM_SpendLogs');
        assert.equal(Number(after), Number(before[0][0]) + 1);
        const [[probes]] = await db.sql("SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE model_group <> 'mock-gpt'");
        assert.equal(Number(probes), 0);
        for (const p of ['/health/liveliness', '/health/readiness']) {
            const r = await fetch(`${h.rootURL}${p}`);
            assert.equal(r.status, 200, p);
        }
    });
});
