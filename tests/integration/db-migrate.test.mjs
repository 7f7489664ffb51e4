// The database foundation against a real MariaDB (Debian's mariadb-server,
// private datadir and socket under a temp dir, a real user with a password):
// sluicectl migrate and status (every table and index, idempotence, a
// changed migration refused, a failing one not recorded), the database_url
// forms and the errors an operator sees, db.c's statement API on the live
// server (tests/unit/test_db with SL_TEST_MARIADB_URL), sluice starting and
// serving while its database is down, and the memcached helper.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startHarness, sluiceBin, sluicectlBin } from './lib/harness.mjs';
import { REPO_ROOT, freePort } from './lib/procs.mjs';
import { startMariaDB } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';
import { toYAML } from './lib/yaml.mjs';

const SCHEMA_DIR = path.join(REPO_ROOT, 'schema');

/* Runs a program to its end: {code, stdout, stderr, elapsedMs}. */
function runProgram(bin, args, { env = {}, timeoutMs = 30000, cwd = REPO_ROOT } = {}) {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = [];
        const err = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', reject);
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({
                code, signal, elapsedMs: Date.now() - t0,
                stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
            });
        });
    });
}

describe('database: schema migrations, sluicectl, database_url, db.c on a live server', () => {
    let dir;
    let db;
    let n = 0;

    /* A config file with this database_url (null: none) and extra settings. */
    const config = async ({ url, sluiceSettings, general = {} } = {}) => {
        const file = path.join(dir, `config-${++n}.yaml`);
        const cfg = {
            model_list: [{ model_name: 'mock-gpt', litellm_params: { model: 'mock/echo' } }],
            general_settings: { master_key: 'sk-test-master', ...(url ? { database_url: url } : {}), ...general },
        };
        if (sluiceSettings) cfg.sluice_settings = sluiceSettings;
        await fsp.writeFile(file, toYAML(cfg));
        return file;
    };
    /* sluicectl with env: SLUICE_SCHEMA_DIR defaults to the tree's schema/; no $DATABASE_URL. */
    const ctl = (args, env = {}) => runProgram(sluicectlBin(), args,
        { env: { SLUICE_SCHEMA_DIR: SCHEMA_DIR, DATABASE_URL: '', SLUICE_CONFIG: '', ...env } });
    const noPassword = (r) => {
        const all = r.stdout + r.stderr;
        assert.ok(!all.includes(db.password) && !all.includes(encodeURIComponent(db.password)),
            `the password leaked:\n${all}`);
    };

    before(async () => {
        fs.accessSync(sluicectlBin(), fs.constants.X_OK);
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-db-'));
        db = await startMariaDB({ dir });
    });

    after(async () => {
        if (db) await db.stop();
        if (process.env.SLUICE_KEEP_TMP === '1') process.stderr.write(`kept ${dir}\n`);
        else if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('migrate creates every table and index on an empty database, then has nothing to do', async () => {
        const cfg = await config({ url: db.url() });
        let r = await ctl(['--config', cfg, 'status']);
        assert.equal(r.code, 5, `status before: pending is exit 5\n${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /schema version: 0 \(0 applied\)/);
        assert.match(r.stdout, /pending:\s+001_keys_teams_users\.sql, 002_spend\.sql, 003_responses\.sql/);

        r = await ctl(['--config', cfg, 'migrate']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^applied 001_keys_teams_users\.sql \(5 statements, \d+ ms\)$/m);
        assert.match(r.stdout, /^applied 002_spend\.sql \(2 statements, \d+ ms\)$/m);
        assert.match(r.stdout, /^applied 003_responses\.sql \(1 statement, \d+ ms\)$/m);
        assert.match(r.stdout, /schema version 3 \(3 migrations applied\)/);
        noPassword(r);

        const tables = (await db.sql(`SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES
            WHERE TABLE_SCHEMA = 'sluice' ORDER BY TABLE_NAME`));
        assert.deepEqual(tables.map((t) => t[0]), ['LiteLLM_BudgetTable', 'LiteLLM_SpendLogs',
            'LiteLLM_TeamMembership', 'LiteLLM_TeamTable', 'LiteLLM_UserTable', 'LiteLLM_VerificationToken',
            'sluice_daily_spend', 'sluice_responses', 'sluice_schema_migrations']);
        for (const t of tables) {
            assert.equal(t[1], 'InnoDB', `${t[0]} engine`);
            assert.equal(t[2], 'utf8mb4_nopad_bin', `${t[0]} collation`);
        }
        const idx = {};
        for (const [t, name, cols, nonUnique] of await db.sql(`SELECT TABLE_NAME, INDEX_NAME,
                GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX), MAX(NON_UNIQUE)
                FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'sluice' GROUP BY 1, 2`)) {
            idx[`${t}.${name}`] = `${cols}${nonUnique === '0' ? ' unique' : ''}`;
        }
        const want = {
            'LiteLLM_VerificationToken.PRIMARY': 'token unique',             // key by token
            'LiteLLM_VerificationToken.uq_key_alias': 'key_alias unique',
            'LiteLLM_VerificationToken.idx_key_team': 'team_id',             // keys by team
            'LiteLLM_VerificationToken.idx_key_user_team': 'user_id,team_id', // keys by user
            'LiteLLM_VerificationToken.idx_key_budget': 'budget_id',
            'LiteLLM_VerificationToken.idx_key_budget_reset': 'budget_reset_at,expires',
            'LiteLLM_TeamTable.PRIMARY': 'team_id unique',
            'LiteLLM_TeamTable.idx_team_alias': 'team_alias',
            'LiteLLM_UserTable.PRIMARY': 'user_id unique',
            'LiteLLM_UserTable.uq_user_sso': 'sso_user_id unique',
            'LiteLLM_UserTable.idx_user_email': 'user_email',
            'LiteLLM_TeamMembership.PRIMARY': 'user_id,team_id unique',
            'LiteLLM_TeamMembership.idx_membership_team': 'team_id',
            'LiteLLM_BudgetTable.PRIMARY': 'budget_id unique',
            'LiteLLM_SpendLogs.PRIMARY': 'request_id unique',
            'LiteLLM_SpendLogs.idx_spendlogs_start': 'startTime',             // by startTime
            'LiteLLM_SpendLogs.idx_spendlogs_key_start': 'api_key,startTime', // by key + time
            'LiteLLM_SpendLogs.idx_spendlogs_team_start': 'team_id,startTime',// by team
            'LiteLLM_SpendLogs.idx_spendlogs_user_start': 'user,startTime',
            'LiteLLM_SpendLogs.idx_spendlogs_end_user_start': 'end_user,startTime',
            'sluice_daily_spend.uq_daily_group': 'date,group_key unique',      // daily by date
            'sluice_daily_spend.idx_daily_key_date': 'api_key,date',
            'sluice_daily_spend.idx_daily_team_date': 'team_id,date',
            'sluice_daily_spend.idx_daily_user_date': 'user_id,date',
            'sluice_responses.PRIMARY': 'response_id unique',
            'sluice_responses.sluice_responses_expires': 'expires_at',
            'sluice_schema_migrations.PRIMARY': 'version unique',
        };
        for (const [k, v] of Object.entries(want)) assert.equal(idx[k], v, `index ${k}`);

        const cols = Object.fromEntries((await db.sql(`SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME), COLUMN_TYPE
            FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'sluice'`)).map(([k, v]) => [k, v]));
        assert.equal(cols['LiteLLM_VerificationToken.token'], 'varchar(64)');
        for (const c of ['LiteLLM_VerificationToken.spend', 'LiteLLM_VerificationToken.max_budget',
            'LiteLLM_TeamTable.spend', 'LiteLLM_UserTable.spend', 'LiteLLM_SpendLogs.spend', 'sluice_daily_spend.spend']) {
            assert.equal(cols[c], 'decimal(20,10)', c);
        }
        assert.equal(cols['LiteLLM_SpendLogs.startTime'], 'datetime(6)');
        assert.equal(cols['LiteLLM_VerificationToken.models'], 'longtext');

        // JSON columns refuse what is not JSON (and text[] columns what is not an array).
        await assert.rejects(db.sql(`INSERT INTO LiteLLM_VerificationToken (token, metadata) VALUES ('a', 'not json')`), /CONSTRAINT/);
        await assert.rejects(db.sql(`INSERT INTO LiteLLM_VerificationToken (token, models) VALUES ('a', '{}')`), /CONSTRAINT/);
        // Spend increments are exact.
        await db.sql(`INSERT INTO LiteLLM_VerificationToken (token) VALUES ('b');
            UPDATE LiteLLM_VerificationToken SET spend = spend + 0.1 WHERE token = 'b';
            UPDATE LiteLLM_VerificationToken SET spend = spend + 0.2 WHERE token = 'b';`);
        assert.deepEqual(await db.sql(`SELECT spend = 0.3, models, metadata FROM LiteLLM_VerificationToken WHERE token = 'b'`),
            [['1', '[]', '{}']]);
        await db.sql(`DELETE FROM LiteLLM_VerificationToken`);

        const rows = await db.sql('SELECT version, name, checksum, applied_by FROM sluice_schema_migrations ORDER BY version');
        for (const [i, f] of ['001_keys_teams_users.sql', '002_spend.sql', '003_responses.sql'].entries()) {
            const sum = crypto.createHash('sha256').update(fs.readFileSync(path.join(SCHEMA_DIR, f))).digest('hex');
            assert.deepEqual(rows[i].slice(0, 3), [String(i + 1), f, sum]);
            assert.match(rows[i][3], /^sluicectl /);
        }

        r = await ctl(['--config', cfg, 'migrate']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /nothing to do: schema version 3 is current \(mysql:\/\/sluice:\*\*\*@127\.0\.0\.1:\d+\/sluice\)/);
        r = await ctl(['--config', cfg, 'status']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /schema version: 3 \(3 applied\)/);
        assert.match(r.stdout, /pending:\s+none/);
        assert.match(r.stdout, /\(MariaDB 1\d\./);
        noPassword(r);
    });

    it('an applied migration that changed is refused, never re-run', async () => {
        const cfg = await config({ url: db.url() });
        const changed = path.join(dir, 'schema-changed');
        await fsp.cp(SCHEMA_DIR, changed, { recursive: true });
        await fsp.appendFile(path.join(changed, '001_keys_teams_users.sql'), '-- edited after release\n');
        for (const cmd of ['migrate', 'status']) {
            const r = await ctl(['--config', cfg, '--schema-dir', changed, cmd]);
            assert.equal(r.code, 4, `${cmd}: a changed migration is exit 4\n${r.stdout}${r.stderr}`);
            assert.match(r.stderr, /001_keys_teams_users\.sql was changed after it was applied/);
        }
        assert.deepEqual(await db.sql('SELECT COUNT(*) FROM sluice_schema_migrations'), [['3']]);
    });

    it('new migrations apply once and in order; a failing one is not recorded', async () => {
        await db.createDatabase('scratch');
        const cfg = await config({ url: db.url({ database: 'scratch' }) });
        const s = path.join(dir, 'schema-more');
        await fsp.cp(SCHEMA_DIR, s, { recursive: true });
        await fsp.writeFile(path.join(s, '004_extra.sql'),
            'CREATE TABLE IF NOT EXISTS t_extra (id INT PRIMARY KEY);\nINSERT IGNORE INTO t_extra VALUES (1);\n');
        let r = await ctl(['--config', cfg, 'migrate'], { SLUICE_SCHEMA_DIR: s });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(r.stdout.match(/^applied (\S+)/gm), ['applied 001_keys_teams_users.sql',
            'applied 002_spend.sql', 'applied 003_responses.sql', 'applied 004_extra.sql']);

        await fsp.writeFile(path.join(s, '005_broken.sql'),
            'CREATE TABLE IF NOT EXISTS t_five (id INT);\nINSERT INTO t_missing VALUES (1);\n');
        r = await ctl(['--config', cfg, 'migrate'], { SLUICE_SCHEMA_DIR: s });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /005_broken\.sql failed after 1 statement\(s\): statement 2: Table 'scratch\.t_missing' doesn't exist/);
        assert.match(r.stderr, /not recorded as applied; fix the cause and run migrate again/);
        r = await ctl(['--config', cfg, 'status'], { SLUICE_SCHEMA_DIR: s });
        assert.equal(r.code, 5, r.stdout + r.stderr);
        assert.match(r.stdout, /schema version: 4 \(4 applied\)/);
        assert.match(r.stdout, /pending:\s+005_broken\.sql/);

        // Fixed (before release): applied, its first statement running again harmlessly.
        await fsp.writeFile(path.join(s, '005_broken.sql'),
            'CREATE TABLE IF NOT EXISTS t_five (id INT);\nINSERT INTO t_five VALUES (1);\n');
        r = await ctl(['--config', cfg, 'migrate'], { SLUICE_SCHEMA_DIR: s });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^applied 005_broken\.sql/m);
        assert.deepEqual(await db.sql('SELECT COUNT(*) FROM t_five', 'scratch'), [['1']]);

        // The tree's schema/ against this database: 004 and 005 are unknown to it.
        r = await ctl(['--config', cfg, 'status']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stderr, /warning: the database has migration 004, which this schema directory does not/);

        // Bad file names are refused before the database is touched.
        await fsp.writeFile(path.join(s, 'five.sql'), 'SELECT 1;\n');
        r = await ctl(['--config', cfg, 'migrate'], { SLUICE_SCHEMA_DIR: s });
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stderr, /five\.sql: a migration is named NNN_what\.sql/);
    });

    it('database_url forms: TCP, unix socket, mariadb://, $DATABASE_URL; the password never shown', async () => {
        const forms = [
            { name: 'socket', cfg: await config({ url: db.url({ socket: true }) }), shown: /\?socket=/ },
            { name: 'mariadb://', cfg: await config({ url: db.url({ scheme: 'mariadb' }) }), shown: /mariadb:\/\/sluice:\*\*\*@/ },
            { name: '$DATABASE_URL', cfg: await config({}), env: { DATABASE_URL: db.url() }, shown: /mysql:\/\/sluice:\*\*\*@/ },
            { name: 'os.environ/', cfg: await config({ url: 'os.environ/SL_TEST_DB_URL' }), env: { SL_TEST_DB_URL: db.url() }, shown: /:\*\*\*@/ },
        ];
        for (const f of forms) {
            const r = await ctl(['--config', f.cfg, 'status'], f.env);
            assert.equal(r.code, 0, `${f.name}\n${r.stdout}${r.stderr}`);
            assert.match(r.stdout, f.shown, f.name);
            noPassword(r);
        }
        // SLUICE_CONFIG is read like sluice reads it.
        const r = await ctl(['status'], { SLUICE_CONFIG: forms[0].cfg });
        assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it('clear errors: wrong password, unknown database, nothing listening, a silent server, no URL', async () => {
        let r = await ctl(['--config', await config({ url: db.url({ password: 'wrong-secret-9' }) }), 'migrate']);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /Access denied for user 'sluice'/);
        assert.match(r.stderr, /check the user, password and database in database_url/);
        assert.ok(!(r.stdout + r.stderr).includes('wrong-secret-9'), 'no password in the output');

        r = await ctl(['--config', await config({ url: db.url({ database: 'nosuchdb' }) }), 'status']);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /access denied/);
        assert.match(r.stderr, /nosuchdb/);

        const closed = await freePort();
        r = await ctl(['--config', await config({ url: db.url({ port: closed }) }), 'status']);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /cannot connect to mysql:\/\/sluice:\*\*\*@127\.0\.0\.1:\d+\/sluice: Can't connect/);
        assert.match(r.stderr, /is the server running/);
        assert.ok(r.elapsedMs < 5000, `refused quickly (${r.elapsedMs} ms)`);

        // Accepts the connection and never says a word: the connect time-out ends it.
        const silent = net.createServer(() => {});
        await new Promise((res) => silent.listen(0, '127.0.0.1', res));
        try {
            r = await ctl(['--config', await config({ url: db.url({ port: silent.address().port }),
                sluiceSettings: { db_connect_timeout_ms: 1000 } }), 'status']);
        } finally {
            silent.close();
        }
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.ok(r.elapsedMs < 6000, `gave up after the time-out, not later (${r.elapsedMs} ms)`);
        assert.match(r.stderr, /Lost connection|timed out|Can't connect/i);

        r = await ctl(['--config', await config({}), 'migrate']);
        assert.equal(r.code, 3);
        assert.match(r.stderr, /no database configured .*set general_settings\.database_url/);

        const pg = await config({ url: 'postgresql://llmproxy:dbpassword9090@localhost:5432/litellm' });
        r = await ctl(['--config', pg, 'migrate']);
        assert.equal(r.code, 3);
        assert.match(r.stderr, /config-\d+\.yaml:\d+:\d+: error: general_settings\.database_url: expected mysql:\/\/user:password@host:port\/database/);
        assert.ok(!r.stderr.includes('dbpassword9090'));

        r = await ctl(['frobnicate']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /unknown command 'frobnicate'/);
    });

    it("db.c's statement API on the live server (tests/unit/test_db)", async () => {
        const build = path.dirname(sluiceBin());
        const bin = path.join(build, 'tests', 'unit', 'test_db');
        if (!fs.existsSync(bin) && fs.existsSync(path.join(build, 'Makefile'))) {
            const m = await runProgram('make', ['-s', '-C', build, 'tests/unit/test_db'], { timeoutMs: 300000 });
            assert.equal(m.code, 0, `building test_db:\n${m.stdout}${m.stderr}`);
        }
        assert.ok(fs.existsSync(bin), `${bin} is missing: build it (make check) next to the sluice binary`);
        await db.createDatabase('dbtest');
        const r = await runProgram(bin, [], {
            env: { SL_TEST_MARIADB_URL: db.url({ database: 'dbtest' }), SL_TEST_DATA: path.join(REPO_ROOT, 'tests', 'data') },
            timeoutMs: 60000,
        });
        const failed = r.stdout.split('\n').filter((l) => l.startsWith('not ok'));
        assert.deepEqual(failed, [], r.stdout);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /ok \d+ - live: connect and ping/);
        assert.match(r.stdout, /^1\.\.\d+$/m);
    });

    it('sluice starts and serves with database_url pointing at a database that is down', async () => {
        const closed = await freePort();
        const h = await startHarness({ generalSettings: { database_url: db.url({ port: closed }) } });
        try {
            const res = await h.client().chat.completions.create({
                model: 'mock-gpt', messages: [{ role: 'user', content: 'hello without a database' }],
            });
            assert.equal(res.choices[0].message.content, 'Echo: hello without a database');
            const log = h.sluiceLog();
            assert.match(log, new RegExp(`database: mysql://sluice:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/sluice \\(connected on first use\\)`));
            assert.ok(!log.includes(db.password) && !log.includes(encodeURIComponent(db.password)), 'no password in the log');
        } finally {
            await h.stop();
        }
        const h2 = await startHarness();
        try {
            const log = h2.sluiceLog();
            assert.match(log, /no database configured \(general_settings\.database_url, \$DATABASE_URL\): running with the master key alone/);
        } finally {
            await h2.stop();
        }
    });

    it('memcached: a private server on loopback, and memcached_servers in the config', async () => {
        const mc = await startMemcached({ dir });
        try {
            assert.match(await mc.command('version'), /^VERSION \d/);
            assert.match(await mc.command('set k 0 60 2\r\nhi', { until: /STORED\r\n$/ }), /STORED/);
            assert.match(await mc.command('get k', { until: /END\r\n$/ }), /VALUE k 0 2\r\nhi\r\nEND/);
            const good = await config({ general: { memcached_servers: [mc.server] } });
            let r = await runProgram(sluiceBin(), ['--check-config', good]);
            assert.equal(r.code, 0, r.stderr);
            assert.ok(!/memcached/.test(r.stderr), r.stderr);
            const bad = await config({ general: { memcached_servers: ['127.0.0.1:99999'] } });
            r = await runProgram(sluiceBin(), ['--check-config', bad]);
            assert.equal(r.code, 1);
            assert.match(r.stderr, /config-\d+\.yaml:\d+:\d+: error: general_settings\.memcached_servers: '127\.0\.0\.1:99999': the port must be a number from 1 to 65535/);
        } finally {
            await mc.stop();
        }
    });
});
