// LiteLLM's team and user management API (/team/*, /user/*) against a real
// MariaDB: create/info/list/update/delete of teams and users with LiteLLM's
// fields, members added and removed (reflected on the team, the user and
// LiteLLM_TeamMembership), /key/generate with a team_id (the team must exist
// and the key's models be among the team's), hostile strings round-trip
// exactly through the prepared statements, only the master key may call,
// bad fields get a 400 naming the field, and sluicectl team/user create and
// list on the same database.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, sluicectlBin, MASTER_KEY } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';

const SCHEMA_DIR = path.join(REPO_ROOT, 'schema');
const HOSTILE = "it's \"quoted\" \\ back; DROP TABLE LiteLLM_TeamTable; -- % _ \n ü 🚀 <b>";
// Ids travel in query strings too, where lighttpd refuses control characters
// even percent-encoded (docs/management-api.md): no newline in them.
const HOSTILE_ID = HOSTILE.replace('\n', '\t').replace('\t', ' ');

function runProgram(bin, args, { env = {}, timeoutMs = 30000 } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { env: { ...process.env, ...env }, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = [];
        const err = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
    });
}

describe('team and user management API (/team/*, /user/*) and sluicectl team/user, on MariaDB', () => {
    let dir;
    let db;
    let h;

    const call = async (method, route, { body, key = MASTER_KEY } = {}) => {
        const headers = {};
        if (key) headers.authorization = `Bearer ${key}`;
        if (body !== undefined) headers['content-type'] = 'application/json';
        const r = await fetch(`${h.rootURL}${route}`, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined });
        const text = await r.text();
        let parsed = null;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        return { status: r.status, body: parsed, text };
    };
    const post = (route, body, o = {}) => call('POST', route, { body, ...o });
    const get = (route, o = {}) => call('GET', route, o);
    const ok = (r, what) => assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}\n${h.errorLog().slice(-3000)}`);
    const bad = (r, field, status = 400) => {
        assert.equal(r.status, status, `${field}: ${r.status} ${r.text}`);
        assert.ok(r.body.error.message.includes(field), `message names ${field}: ${r.body.error.message}`);
    };
    const q = encodeURIComponent;
    const ctl = (args) => runProgram(sluicectlBin(), ['--config', h.files.config, ...args],
        { env: { SLUICE_SCHEMA_DIR: SCHEMA_DIR, DATABASE_URL: '', SLUICE_CONFIG: '' } });
    const members = (team) => team.members_with_roles.map((m) => `${m.user_id}:${m.role}`).sort();

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-teams-'));
        db = await startMariaDB({ dir });
        h = await startHarness({ generalSettings: { database_url: db.url() } });
        const m = await ctl(['migrate']);
        assert.equal(m.code, 0, m.stdout + m.stderr);
    });

    after(async () => {
        if (h) await h.stop();
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('team new, info, list, update, delete with LiteLLM fields', async () => {
        let r = await post('/team/new', {
            team_id: 'team-a', team_alias: 'Team A', models: ['mock-gpt', 'gpt-4o-mini'], max_budget: 50,
            budget_duration: '30d', tpm_limit: 10000, rpm_limit: 100, metadata: { dept: 'r&d', n: 1 },
        });
        ok(r, 'team/new');
        assert.equal(r.body.team_id, 'team-a');
        assert.equal(r.body.team_alias, 'Team A');
        assert.deepEqual(r.body.models, ['mock-gpt', 'gpt-4o-mini']);
        assert.equal(r.body.max_budget, 50);
        assert.equal(r.body.budget_duration, '30d');
        assert.ok(Date.parse(r.body.budget_reset_at) > Date.now() + 29 * 86400e3);
        assert.equal(r.body.tpm_limit, 10000);
        assert.equal(r.body.rpm_limit, 100);
        assert.deepEqual(r.body.metadata, { dept: 'r&d', n: 1 });
        assert.equal(r.body.blocked, false);
        assert.equal(r.body.spend, 0);
        assert.deepEqual(r.body.members_with_roles, []);

        r = await post('/team/new', { team_alias: 'generated' });
        ok(r, 'team/new without team_id');
        assert.match(r.body.team_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const gen = r.body.team_id;

        r = await post('/team/new', { team_id: 'team-a' });
        bad(r, 'team-a');
        assert.match(r.body.error.message, /already exists/);

        r = await get('/team/info?team_id=team-a');
        ok(r, 'team/info');
        assert.equal(r.body.team_id, 'team-a');
        assert.equal(r.body.team_info.team_alias, 'Team A');
        assert.deepEqual(r.body.keys, []);
        assert.deepEqual(r.body.team_memberships, []);
        bad(await get('/team/info?team_id=nope'), 'nope', 404);

        r = await get('/team/list');
        ok(r, 'team/list');
        assert.deepEqual(r.body.map((t) => t.team_id).sort(), [gen, 'team-a'].sort());

        r = await post('/team/update', { team_id: 'team-a', max_budget: 75, blocked: true, team_alias: null });
        ok(r, 'team/update');
        assert.equal(r.body.team_id, 'team-a');
        assert.equal(r.body.data.max_budget, 75);
        assert.equal(r.body.data.blocked, true);
        assert.equal(r.body.data.team_alias, null);
        assert.deepEqual(r.body.data.models, ['mock-gpt', 'gpt-4o-mini'], 'fields not given stay');
        bad(await post('/team/update', { team_id: 'ghost', max_budget: 1 }), 'ghost', 404);

        bad(await post('/team/delete', { team_ids: [gen, 'ghost'] }), 'ghost', 404);
        ok(await get(`/team/info?team_id=${gen}`), 'all or nothing: the first team is still there');
        r = await post('/team/delete', { team_ids: [gen] });
        ok(r, 'team/delete');
        assert.deepEqual(r.body.deleted_teams, [gen]);
        assert.equal((await get(`/team/info?team_id=${gen}`)).status, 404);
    });

    it('user new, info, list, update, delete with LiteLLM fields', async () => {
        let r = await post('/user/new', {
            user_id: 'alice', user_email: 'alice@example.com', user_role: 'internal_user',
            models: ['mock-gpt'], max_budget: 5, budget_duration: '1mo', tpm_limit: 500, rpm_limit: 10,
            metadata: { tz: 'UTC' }, teams: ['team-a'],
        });
        ok(r, 'user/new');
        assert.equal(r.body.user_id, 'alice');
        assert.equal(r.body.user_email, 'alice@example.com');
        assert.equal(r.body.user_role, 'internal_user');
        assert.deepEqual(r.body.models, ['mock-gpt']);
        assert.equal(r.body.max_budget, 5);
        assert.equal(r.body.budget_duration, '1mo');
        assert.deepEqual(r.body.metadata, { tz: 'UTC' });
        assert.deepEqual(r.body.teams, ['team-a']);
        assert.match(r.body.key, /^sk-/, 'a key is made for the user (auto_create_key)');
        const aliceKey = r.body.key;

        r = await post('/user/new', { user_email: 'gen@example.com', auto_create_key: false });
        ok(r, 'user/new without user_id');
        assert.match(r.body.user_id, /^[0-9a-f-]{36}$/);
        assert.equal(r.body.key, undefined);
        const gen = r.body.user_id;

        bad(await post('/user/new', { user_id: 'alice' }), 'alice');
        bad(await post('/user/new', { user_id: 'x', teams: ['no-such-team'] }), 'no-such-team', 404);
        assert.equal((await get('/user/info?user_id=x')).status, 404, 'nothing is left of a failed /user/new');
        ok(await post('/key/generate', { key_alias: 'taken' }), 'a key alias');
        bad(await post('/user/new', { user_id: 'y', key_alias: 'taken' }), 'taken');
        assert.equal((await get('/user/info?user_id=y')).status, 404, 'no user without its key');

        r = await get('/user/info?user_id=alice');
        ok(r, 'user/info');
        assert.equal(r.body.user_id, 'alice');
        assert.equal(r.body.user_info.user_email, 'alice@example.com');
        assert.equal(r.body.keys.length, 1);
        assert.equal(r.body.keys[0].user_id, 'alice');
        assert.deepEqual(r.body.teams.map((t) => t.team_id), ['team-a']);
        r = await get('/team/info?team_id=team-a');
        assert.deepEqual(members(r.body.team_info), ['alice:user']);
        assert.deepEqual(r.body.team_memberships.map((m) => m.user_id), ['alice']);

        r = await get('/user/list');
        ok(r, 'user/list');
        assert.equal(r.body.total, 2);
        assert.equal(r.body.page, 1);
        assert.equal(r.body.page_size, 25);
        assert.equal(r.body.total_pages, 1);
        assert.deepEqual(r.body.users.map((u) => u.user_id).sort(), ['alice', gen].sort());
        r = await get('/user/list?role=internal_user&page_size=1');
        ok(r, 'user/list filtered');
        assert.equal(r.body.total, 1);
        assert.equal(r.body.users[0].user_id, 'alice');
        r = await get('/user/list?team=team-a');
        assert.deepEqual(r.body.users.map((u) => u.user_id), ['alice']);

        r = await post('/user/update', { user_id: 'alice', max_budget: 7.5, user_role: 'proxy_admin_viewer' });
        ok(r, 'user/update');
        assert.equal(r.body.user_id, 'alice');
        assert.equal(r.body.data.max_budget, 7.5);
        assert.equal(r.body.data.user_role, 'proxy_admin_viewer');
        assert.equal(r.body.data.user_email, 'alice@example.com');
        r = await post('/user/update', { user_email: 'gen@example.com', user_alias: 'G' });
        ok(r, 'user/update by email');
        assert.equal(r.body.user_id, gen);

        r = await post('/user/delete', { user_ids: ['alice'] });
        ok(r, 'user/delete');
        assert.deepEqual(r.body.deleted_users, ['alice']);
        assert.equal((await get('/user/info?user_id=alice')).status, 404);
        assert.equal((await get('/v1/models', { key: aliceKey })).status, 401, "the user's key went with it");
        r = await get('/team/info?team_id=team-a');
        assert.deepEqual(r.body.team_info.members_with_roles, [], 'and the membership');
        assert.deepEqual(r.body.team_memberships, []);
    });

    it('team member_add and member_delete are reflected on the team, the users and the memberships', async () => {
        let r = await post('/team/new', { team_id: 'team-m', members_with_roles: [{ user_id: 'm-admin', role: 'admin' }] });
        ok(r, 'team/new with members');
        assert.deepEqual(members(r.body), ['m-admin:admin']);

        r = await post('/team/member_add', { team_id: 'team-m', member: { user_id: 'bob', role: 'user' } });
        ok(r, 'member_add one');
        assert.deepEqual(members(r.body), ['bob:user', 'm-admin:admin']);
        assert.deepEqual(r.body.updated_users.map((u) => u.user_id), ['bob']);
        assert.deepEqual(r.body.updated_users[0].teams, ['team-m']);
        assert.deepEqual(r.body.updated_team_memberships.map((m) => [m.user_id, m.team_id]), [['bob', 'team-m']]);

        r = await post('/team/member_add', { team_id: 'team-m', member: [{ user_id: 'carol' }, { user_email: 'dan@example.com', role: 'admin' }] });
        ok(r, 'member_add a list');
        assert.equal(r.body.members_with_roles.length, 4);
        const dan = r.body.members_with_roles.find((m) => m.user_email === 'dan@example.com');
        assert.equal(dan.role, 'admin');

        bad(await post('/team/member_add', { team_id: 'team-m', member: { user_id: 'bob' } }), 'bob');
        bad(await post('/team/member_add', { team_id: 'ghost', member: { user_id: 'bob' } }), 'ghost', 404);
        bad(await post('/team/member_add', { team_id: 'team-m', member: { user_id: 'x', role: 'owner' } }), 'member.role');
        bad(await post('/team/member_add', { team_id: 'team-m' }), 'member');

        r = await get('/team/info?team_id=team-m');
        assert.deepEqual(r.body.team_memberships.map((m) => m.user_id).sort(), ['bob', 'carol', dan.user_id, 'm-admin'].sort());
        r = await get('/user/info?user_id=bob');
        assert.deepEqual(r.body.user_info.teams, ['team-m']);
        assert.deepEqual(r.body.teams.map((t) => t.team_id), ['team-m']);
        assert.deepEqual((await get('/team/list?user_id=bob')).body.map((t) => t.team_id), ['team-m']);

        r = await post('/team/member_delete', { team_id: 'team-m', user_id: 'bob' });
        ok(r, 'member_delete');
        assert.ok(!members(r.body).includes('bob:user'));
        r = await get('/user/info?user_id=bob');
        assert.deepEqual(r.body.user_info.teams, []);
        assert.deepEqual(r.body.teams, []);
        bad(await post('/team/member_delete', { team_id: 'team-m', user_id: 'bob' }), 'bob', 404);
        ok(await post('/team/member_delete', { team_id: 'team-m', user_email: 'dan@example.com' }), 'member_delete by email');

        r = await post('/team/delete', { team_ids: ['team-m'] });
        ok(r, 'team/delete with members');
        r = await get('/user/info?user_id=carol');
        assert.deepEqual(r.body.user_info.teams, [], "the deleted team left the users' teams");
        const rows = await db.sql("SELECT COUNT(*) FROM LiteLLM_TeamMembership WHERE team_id = 'team-m'");
        assert.equal(rows[0][0], '0');
    });

    it('/key/generate with a team_id: the team must exist and hold the models', async () => {
        ok(await post('/team/new', { team_id: 'team-k', models: ['mock-gpt'] }), 'team');
        let r = await post('/key/generate', { team_id: 'team-k', models: ['mock-gpt'] });
        ok(r, 'key in the team');
        const key = r.body.key;
        assert.equal(r.body.team_id, 'team-k');
        bad(await post('/key/generate', { team_id: 'no-team' }), 'no-team');
        bad(await post('/key/generate', { team_id: 'team-k', models: ['gpt-4o-mini'] }), 'gpt-4o-mini');
        r = await get('/team/info?team_id=team-k');
        assert.deepEqual(r.body.keys.map((k) => k.team_id), ['team-k']);
        ok(await get('/v1/models', { key }), 'the team key works');
        ok(await post('/team/delete', { team_ids: ['team-k'] }), 'team/delete');
        assert.equal((await get('/v1/models', { key })).status, 401, "the team's keys went with it");
    });

    it('hostile strings round-trip exactly', async () => {
        const id = `team ${HOSTILE_ID}`;
        let r = await post('/team/new', { team_id: id, team_alias: HOSTILE, metadata: { [HOSTILE]: HOSTILE }, models: [HOSTILE] });
        ok(r, 'hostile team');
        assert.equal(r.body.team_id, id);
        r = await get(`/team/info?team_id=${q(id)}`);
        ok(r, 'hostile team info');
        assert.equal(r.body.team_info.team_alias, HOSTILE);
        assert.deepEqual(r.body.team_info.metadata, { [HOSTILE]: HOSTILE });
        assert.deepEqual(r.body.team_info.models, [HOSTILE]);
        const uid = `user ${HOSTILE_ID}`;
        r = await post('/team/member_add', { team_id: id, member: { user_id: uid, user_email: HOSTILE } });
        ok(r, 'hostile member');
        r = await post('/user/new', { user_id: 'u%_', auto_create_key: false, teams: [id] });
        ok(r, 'a user whose id has LIKE wildcards');
        r = await get(`/user/info?user_id=${q(uid)}`);
        ok(r, 'hostile user info');
        assert.equal(r.body.user_info.user_email, HOSTILE);
        assert.deepEqual(r.body.user_info.teams, [id]);
        ok(await post('/user/delete', { user_ids: ['u%_'] }), 'delete the wildcard user');
        r = await get(`/team/info?team_id=${q(id)}`);
        assert.deepEqual(r.body.team_info.members_with_roles.map((m) => m.user_id), [uid], 'only that user left the team');
        ok(await post('/team/delete', { team_ids: [id] }), 'delete hostile team');
        const hex = Buffer.from(id, 'utf8').toString('hex').toUpperCase();
        assert.equal((await db.sql(`SELECT COUNT(*) FROM LiteLLM_TeamTable WHERE HEX(team_id) = ${sqlString(hex)}`))[0][0], '0');
        r = await get(`/user/info?user_id=${q(uid)}`);
        assert.deepEqual(r.body.user_info.teams, []);
    });

    it('only the master key may call; bad fields get a 400 naming the field', async () => {
        const g = await post('/key/generate', {});
        ok(g, 'a virtual key');
        for (const [m, route, body] of [['POST', '/team/new', {}], ['GET', '/team/list'], ['GET', '/team/info?team_id=team-a'],
            ['POST', '/team/member_add', { team_id: 'team-a', member: { user_id: 'z' } }], ['POST', '/user/new', {}],
            ['GET', '/user/list'], ['POST', '/user/delete', { user_ids: ['x'] }], ['POST', '/team/delete', { team_ids: ['team-a'] }]]) {
            const r = await call(m, route, { body, key: g.body.key });
            assert.equal(r.status, 403, `${route}: ${r.status} ${r.text}`);
        }
        assert.equal((await get('/team/list', { key: 'sk-nope' })).status, 401);
        assert.equal((await get('/team/list', { key: null })).status, 401);

        bad(await post('/team/new', { max_budget: 'lots' }), 'max_budget');
        bad(await post('/team/new', { models: 'mock-gpt' }), 'models');
        bad(await post('/team/new', { tpm_limit: -1 }), 'tpm_limit');
        bad(await post('/team/new', { budget_duration: 'forever' }), 'budget_duration');
        bad(await post('/team/new', { metadata: [] }), 'metadata');
        bad(await post('/team/new', { blocked: 'yes' }), 'blocked');
        bad(await post('/team/new', { team_id: 5 }), 'team_id');
        bad(await post('/team/new', { team_id: 'x'.repeat(256) }), 'team_id');
        bad(await post('/team/new', { members_with_roles: { user_id: 'x' } }), 'members_with_roles');
        bad(await post('/team/update', { max_budget: 1 }), 'team_id');
        bad(await post('/team/delete', {}), 'team_ids');
        bad(await post('/team/delete', { team_ids: [1] }), 'team_ids');
        bad(await get('/team/info'), 'team_id');
        bad(await post('/user/new', { user_role: 'god' }), 'user_role');
        bad(await post('/user/new', { rpm_limit: 1.5 }), 'rpm_limit');
        bad(await post('/user/new', { teams: 'team-a' }), 'teams');
        bad(await post('/user/new', { auto_create_key: 'no' }), 'auto_create_key');
        bad(await post('/user/update', { user_id: 'gone' }), 'gone', 404);
        bad(await post('/user/delete', { user_ids: 'x' }), 'user_ids');
        bad(await get('/user/list?page_size=0'), 'page_size');
        assert.equal((await get('/team/new')).status, 405);
        assert.equal((await post('/team/nothing', {})).status, 404);
    });

    it('sluicectl team and user create and list on the same database', async () => {
        let r = await ctl(['team', 'create', '--id', 'ctl-team', '--alias', "ctl 'team' ü", '--models', 'mock-gpt,gpt-4o-mini', '--max-budget', '3']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(r.stdout.trim(), 'ctl-team');
        r = await get('/team/info?team_id=ctl-team');
        ok(r, 'the API sees the team');
        assert.equal(r.body.team_info.team_alias, "ctl 'team' ü");
        assert.deepEqual(r.body.team_info.models, ['mock-gpt', 'gpt-4o-mini']);
        assert.equal(r.body.team_info.max_budget, 3);

        r = await ctl(['team', 'create']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout.trim(), /^[0-9a-f-]{36}$/);
        r = await ctl(['team', 'create', '--id', 'ctl-team']);
        assert.equal(r.code, 2, 'a duplicate is a usage error');
        assert.match(r.stderr, /already exists/);

        r = await ctl(['user', 'create', '--id', 'ctl-user', '--email', 'ctl@example.com', '--role', 'internal_user', '--team', 'ctl-team']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(r.stdout.trim(), 'ctl-user');
        r = await get('/user/info?user_id=ctl-user');
        ok(r, 'the API sees the user');
        assert.equal(r.body.user_info.user_email, 'ctl@example.com');
        assert.deepEqual(r.body.user_info.teams, ['ctl-team']);
        assert.deepEqual(r.body.keys, [], 'sluicectl user create makes no key');
        r = await ctl(['user', 'create', '--role', 'nobody']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /user_role/);

        r = await ctl(['team', 'list']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^team_id\tteam_alias/);
        assert.ok(r.stdout.split('\n').some((l) => l.startsWith("ctl-team\tctl 'team' ü\t")), r.stdout);
        r = await ctl(['user', 'list']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^user_id\tuser_email/);
        assert.ok(r.stdout.split('\n').some((l) => l.startsWith('ctl-user\tctl@example.com\tinternal_user\t')), r.stdout);
        r = await ctl(['team', 'frobnicate']);
        assert.equal(r.code, 2);
    });
});
