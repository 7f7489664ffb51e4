// The web server's own authentication (general_settings.trust_remote_user):
// a real lighttpd with mod_auth (basic, a plain user file) in front of
// sluice, a real MariaDB and memcached. A request lighttpd authenticated
// carries REMOTE_USER; sluice maps it to a row of LiteLLM_UserTable,
// created on first sight with litellm_settings.default_internal_user_params
// (budget, models, a default team), and that user's models and budgets
// apply, with or without a virtual key. A client's "Remote-User:" header
// (HTTP_REMOTE_USER) never authenticates, and with trust_remote_user off
// REMOTE_USER is ignored.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const PRICES = { input_cost_per_token: 0.0000015, output_cost_per_token: 0.000002 };
const PASSWORDS = { alice: 'alice-pw', carol: 'carol-pw', dave: 'dave-pw', erin: 'erin-pw', frank: 'frank-pw' };
const TEAM = 'remote-users';
const NEW_USER_BUDGET = 0.01;
const user = [{ role: 'user', content: 'count these few words please' }];
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const basic = (name, pw = PASSWORDS[name]) =>
    `Basic ${Buffer.from(`${name}:${pw}`).toString('base64')}`;

describe('trust_remote_user: lighttpd mod_auth in front of sluice', () => {
    let dir;
    let db;
    let mc;
    let h;        // trust_remote_user: true
    let off;      // the same lighttpd auth, trust_remote_user off

    const sql = (q) => db.sql(q);
    const one = async (q) => (await sql(q))[0];
    const userRow = (id) => one('SELECT user_id, sso_user_id, user_role, max_budget, budget_duration, ' +
        'TIMESTAMPDIFF(DAY, UTC_TIMESTAMP(), budget_reset_at), models, teams, team_id, spend ' +
        `FROM LiteLLM_UserTable WHERE user_id = ${sqlString(id)}`);
    const count = async (q) => Number((await one(q))[0]);
    /* The official SDK, authenticated to lighttpd with Basic auth only: the
     * apiKey it insists on is replaced by the Authorization header. */
    const clientAs = (g, name, headers = {}) => g.client({
        apiKey: 'unused', defaultHeaders: { Authorization: basic(name), ...headers },
    });
    const chat = (c, model = 'mock-gpt') =>
        c.chat.completions.create({ model, messages: user, max_tokens: 20 });
    const apiError = async (p) => {
        try {
            await p;
        } catch (e) {
            assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
            return e;
        }
        assert.fail('the call succeeded');
    };
    const admin = (route, body, auth = `Bearer ${MASTER_KEY}`) => fetch(`${h.rootURL}${route}`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
    });

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-remote-user-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        const users = path.join(dir, 'lighttpd-users');
        await fsp.writeFile(users, Object.entries(PASSWORDS).map(([u, p]) => `${u}:${p}\n`).join(''));
        // lighttpd authenticates /v1/ and /key/; the rest (health, the
        // unprefixed OpenAI routes) reaches sluice without a password.
        const lighttpdExtra = [
            'auth.backend = "plain"',
            `auth.backend.plain.userfile = "${users}"`,
            'auth.require = (',
            '  "/v1/" => ( "method" => "basic", "realm" => "sluice", "require" => "valid-user" ),',
            '  "/key/" => ( "method" => "basic", "realm" => "sluice", "require" => "valid-user" ),',
            ')',
        ].join('\n');
        const common = {
            modelParams: { 'mock-gpt': PRICES },
            // Spend records spooled while the database is down stay in this test.
            sluiceSettings: { spend_flush_interval_ms: 200, budget_reset_interval_ms: 200,
                spend_spool_dir: path.join(dir, 'spool') },
            litellmSettings: {
                default_internal_user_params: {
                    max_budget: NEW_USER_BUDGET, budget_duration: '30d', models: ['mock-gpt'],
                    user_role: 'internal_user', teams: [TEAM],
                },
            },
            lighttpdModules: ['mod_auth', 'mod_authn_file'],
            lighttpdExtra,
        };
        h = await startHarness({
            ...common,
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server], trust_remote_user: true },
        });
        off = await startHarness({
            ...common,
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
        });
        await migrate(h);
        // The default team, and two users an admin made before their first visit.
        assert.equal((await admin('/team/new', { team_id: TEAM, team_alias: 'Remote users' })).status, 200);
        assert.equal((await admin('/user/new', { user_id: 'carol', sso_user_id: 'carol', user_role: 'proxy_admin',
            auto_create_key: false })).status, 200);
        assert.equal((await admin('/user/new', { user_id: 'dave', models: ['gpt-4o-mini'],
            auto_create_key: false })).status, 200);
    });

    after(async () => {
        for (const g of [h, off]) if (g) await g.stop();
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('alice, authenticated by lighttpd with no key, is served and her user row is made with the defaults', async () => {
        const r = await chat(clientAs(h, 'alice'));
        assert.equal(r.object, 'chat.completion');
        const [id, sso, role, maxBudget, duration, resetDays, models, teams, teamId] = await userRow('alice');
        assert.deepEqual([id, sso, role, Number(maxBudget), duration], ['alice', 'alice', 'internal_user', NEW_USER_BUDGET, '30d']);
        assert.ok(Number(resetDays) >= 29 && Number(resetDays) <= 30, `budget_reset_at 30 days ahead: ${resetDays}`);
        assert.deepEqual(JSON.parse(models), ['mock-gpt']);
        assert.deepEqual(JSON.parse(teams), [TEAM]);
        assert.equal(teamId, TEAM);
        assert.equal(await count(`SELECT COUNT(*) FROM LiteLLM_TeamMembership WHERE user_id = 'alice' AND team_id = ${sqlString(TEAM)}`), 1);
        const [mwr] = await one(`SELECT members_with_roles FROM LiteLLM_TeamTable WHERE team_id = ${sqlString(TEAM)}`);
        assert.ok(JSON.parse(mwr).some((m) => m.user_id === 'alice' && m.role === 'user'), mwr);
        // /v1/models lists what she may use: her models only.
        const list = await clientAs(h, 'alice').models.list();
        assert.deepEqual(list.data.map((m) => m.id), ['mock-gpt']);
    });

    it('her calls are spent on her user row and in the spend log under her name, with no key', async () => {
        const c = clientAs(h, 'alice');
        const logged = () => one("SELECT COUNT(*), COALESCE(SUM(spend), 0) FROM LiteLLM_SpendLogs WHERE `user` = 'alice'");
        await waitFor(async () => Number((await logged())[0]) === 1,      // the first test's call
            { timeoutMs: 20000, intervalMs: 100, describe: () => 'alice\'s first call in the spend log' });
        let cost = 0;
        for (let i = 0; i < 3; i++) {
            const r = await chat(c);
            cost += r.usage.prompt_tokens * PRICES.input_cost_per_token +
                r.usage.completion_tokens * PRICES.output_cost_per_token;
        }
        await waitFor(async () => Number((await logged())[0]) === 4,
            { timeoutMs: 20000, intervalMs: 100, describe: () => 'alice\'s 4 calls in the spend log' });
        const total = Number((await logged())[1]);
        assert.ok(total > cost, `the spend log has her 3 calls and the first: ${total} > ${cost}`);
        await waitFor(async () => Math.abs(Number((await userRow('alice'))[9]) - total) < 1e-9,
            { timeoutMs: 20000, intervalMs: 100, describe: () => `alice's user row to reach ${total}` });
        const [apiKey, team] = await one("SELECT api_key, team_id FROM LiteLLM_SpendLogs WHERE `user` = 'alice' " +
            'ORDER BY startTime DESC LIMIT 1');
        assert.equal(apiKey, '', 'no key: api_key is empty');
        assert.equal(team, TEAM);
        await waitFor(async () => Math.abs(Number((await one(`SELECT spend FROM LiteLLM_TeamTable WHERE team_id = ${sqlString(TEAM)}`))[0]) - total) < 1e-9,
            { timeoutMs: 20000, intervalMs: 100, describe: () => 'the default team\'s spend' });
    });

    it('a model outside her models is refused: 401 user_model_access_denied', async () => {
        const e = await apiError(chat(clientAs(h, 'alice'), 'gpt-4o-mini'));
        assert.equal(e.status, 401);
        assert.equal(e.error?.type, 'user_model_access_denied');
        assert.equal(e.error?.message, "user not allowed to access model. This user can only access " +
            "models=['mock-gpt']. Tried to access gpt-4o-mini");
    });

    it('over her budget: 400 budget_exceeded with LiteLLM\'s words', async () => {
        const c = clientAs(h, 'erin');
        await chat(c);                       // erin is made, with the default budget
        await sql("UPDATE LiteLLM_UserTable SET spend = 0.02 WHERE user_id = 'erin'");
        // The snapshot (and the live counter, which never trails it) catches
        // up within user_api_key_cache_ttl (5 s by default).
        let e = null;
        await waitFor(async () => {
            try {
                await chat(c);
                return false;
            } catch (x) {
                e = x;
                return true;
            }
        }, { timeoutMs: 15000, intervalMs: 250, describe: () => 'erin to be refused' });
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, 400);
        assert.equal(e.error?.type, 'budget_exceeded');
        assert.match(e.error?.message, /^ExceededBudget: User=erin over budget\. Spend=0\.02\d*, Budget=0\.01$/);
    });

    it('a wrong password is lighttpd\'s 401; sluice never sees it', async () => {
        const r = await fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: basic('alice', 'wrong'), 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: user }),
        });
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate') || '', /^Basic realm="sluice"/);
        assert.equal(await count("SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE `user` = 'alice' AND status = 'failure'"), 0);
    });

    it('with trust_remote_user off, REMOTE_USER is ignored: 401', async () => {
        const e = await apiError(chat(clientAs(off, 'dave')));
        assert.equal(e.status, 401);
        assert.equal(e.error?.message, 'Authentication Error, no api key passed in.');
    });

    it('a client\'s Remote-User header authenticates nobody and names nobody', async () => {
        const r = await fetch(`${h.rootURL}/chat/completions`, {     // not behind mod_auth
            method: 'POST',
            headers: { 'remote-user': 'mallory', 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: user }),
        });
        assert.equal(r.status, 401);
        assert.equal((await r.json()).error.message, 'Authentication Error, no api key passed in.');
        // Nor does a Basic credential that lighttpd did not check: sluice never decodes one.
        const unchecked = await fetch(`${h.rootURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: basic('alice'), 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock-gpt', messages: user }),
        });
        assert.equal(unchecked.status, 401);
        assert.equal((await unchecked.json()).error.message, 'Authentication Error, no api key passed in.');
        // Behind mod_auth, alice's own name wins over the header.
        const before = await count("SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE `user` = 'alice'");
        await chat(clientAs(h, 'alice', { 'Remote-User': 'mallory' }));
        await waitFor(async () => (await count("SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE `user` = 'alice'")) === before + 1,
            { timeoutMs: 20000, intervalMs: 100, describe: () => 'the call in alice\'s spend log' });
        assert.equal(await count("SELECT COUNT(*) FROM LiteLLM_UserTable WHERE user_id = 'mallory' OR sso_user_id = 'mallory'"), 0);
        assert.equal(await count("SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE `user` = 'mallory'"), 0);
    });

    it('alice with a virtual key: the key\'s rules and hers both apply; the spend is hers and the key\'s', async () => {
        const g = await admin('/key/generate', { models: ['mock-gpt', 'gpt-4o-mini'], user_id: 'dave' },
            `Bearer ${MASTER_KEY}`);
        // /key/ is behind mod_auth too: the master key alone is not enough there.
        assert.equal(g.status, 401);
        const made = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: basic('alice'), 'x-litellm-api-key': MASTER_KEY, 'content-type': 'application/json' },
            body: JSON.stringify({ models: ['mock-gpt', 'gpt-4o-mini'], user_id: 'dave' }),
        });
        assert.equal(made.status, 200, await made.clone().text());
        const key = (await made.json()).key;
        const withKey = clientAs(h, 'alice', { 'x-api-key': key });
        await chat(withKey);
        await waitFor(async () => (await count(`SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(sha(key))}`)) === 1,
            { timeoutMs: 20000, intervalMs: 100, describe: () => 'the keyed call in the spend log' });
        const [u] = await one(`SELECT \`user\` FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(sha(key))}`);
        assert.equal(u, 'alice', 'the web server\'s user, not the key\'s owner');
        // The key allows gpt-4o-mini; alice does not.
        const e = await apiError(chat(withKey, 'gpt-4o-mini'));
        assert.equal(e.status, 401);
        assert.equal(e.error?.type, 'user_model_access_denied');
        // A bad key is refused even though lighttpd vouches for alice.
        const bad = await apiError(chat(clientAs(h, 'alice', { 'x-api-key': 'sk-not-a-key' })));
        assert.equal(bad.status, 401);
        assert.match(bad.error?.message, /Invalid proxy server token passed/);
        // The key's own budget holds as well.
        await sql(`UPDATE LiteLLM_VerificationToken SET max_budget = 0.000001, spend = 1 WHERE token = ${sqlString(sha(key))}`);
        let over = null;
        await waitFor(async () => {
            try {
                await chat(withKey);
                return false;
            } catch (x) {
                over = x;
                return true;
            }
        }, { timeoutMs: 15000, intervalMs: 250, describe: () => 'the key to be over budget' });
        assert.equal(over.status, 400);
        assert.match(over.error?.message, /^Budget has been exceeded! Current cost: /);
    });

    it('a user an admin made (user_id, no sso_user_id) is found by user_id and keeps its own models', async () => {
        const r = await chat(clientAs(h, 'dave'), 'gpt-4o-mini');
        assert.equal(r.object, 'chat.completion');
        assert.equal(await count("SELECT COUNT(*) FROM LiteLLM_UserTable WHERE user_id = 'dave' OR sso_user_id = 'dave'"), 1);
        const e = await apiError(chat(clientAs(h, 'dave')));
        assert.equal(e.error?.type, 'user_model_access_denied');
    });

    it('a proxy_admin user may use the management API; an internal user may not', async () => {
        const made = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: basic('carol'), 'content-type': 'application/json' },
            body: JSON.stringify({ key_alias: 'made-by-carol' }),
        });
        assert.equal(made.status, 200, await made.clone().text());
        const [createdBy] = await one("SELECT created_by FROM LiteLLM_VerificationToken WHERE key_alias = 'made-by-carol'");
        assert.equal(createdBy, 'carol');
        const refused = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: basic('alice'), 'content-type': 'application/json' },
            body: JSON.stringify({ key_alias: 'made-by-alice' }),
        });
        assert.equal(refused.status, 403);
        assert.match((await refused.json()).error.message, /^Admin-only endpoint/);
    });

    it('with the database down, a user seen before still works; a new one is refused with 503', async () => {
        await db.stop();
        try {
            const r = await chat(clientAs(h, 'alice'));      // cached: served past its TTL
            assert.equal(r.object, 'chat.completion');
            const e = await apiError(chat(clientAs(h, 'frank')));
            assert.equal(e.status, 503);
            assert.match(e.error?.message, /database is unavailable/);
        } finally {
            await db.restart();
        }
    });
});
