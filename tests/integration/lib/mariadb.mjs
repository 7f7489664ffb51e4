// A private MariaDB server for one test file: Debian's mariadb-server, with
// its data directory, socket, pid file and logs under the caller's temp dir,
// listening on a free loopback port only. A real user with a password and
// its own database are created (never --skip-grant-tables); root, with no
// password, is reachable only through the private socket and is used for
// set-up and for checks (information_schema).
//
//   const db = await startMariaDB({ dir });
//   db.url()                        // mysql://sluice:<%-encoded password>@127.0.0.1:PORT/sluice
//   db.url({ socket: true })        // ...@localhost/sluice?socket=...
//   await db.sql('SELECT 1')        // as root over the socket: rows of tab-separated text
//   await db.createDatabase('other')// another database the same user may use
//   await db.stop()
//
// Runs as root (CI) or as any user: as root, mariadbd needs --user=root.
// Binaries: $MARIADBD_BIN, $MARIADB_INSTALL_DB_BIN, $MARIADB_BIN, else
// Debian's paths; missing ones are an error naming the package, never a skip.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawnLogged, stopChild, waitFor, freePort } from './procs.mjs';

const BINS = {
    mariadbd: process.env.MARIADBD_BIN || '/usr/sbin/mariadbd',
    installDb: process.env.MARIADB_INSTALL_DB_BIN || '/usr/bin/mariadb-install-db',
    client: process.env.MARIADB_BIN || '/usr/bin/mariadb',
};

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function checkBins() {
    for (const [what, file] of Object.entries(BINS)) {
        try {
            fs.accessSync(file, fs.constants.X_OK);
        } catch {
            throw new Error(`${what} not found at ${file}: install Debian's mariadb-server and ` +
                'mariadb-client (apt-get install mariadb-server mariadb-client); the database ' +
                'tests need a real server and never skip');
        }
    }
}

/* Runs cmd to its end; resolves {code, stdout, stderr}. */
function run(cmd, args, { input, env, timeoutMs = 30000 } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
        const out = [];
        const err = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
        child.stdin.on('error', () => {});
        child.stdin.end(input ?? '');
    });
}

/* A string as a single-quoted SQL literal (set-up statements only). */
export function sqlString(s) {
    return `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/* Starts the server. Options: dir (required, the caller's temp dir), name,
 * user, password, database, readyTimeoutMs. */
export async function startMariaDB({
    dir, name = 'mariadb', user = 'sluice', password = 'p@ss:w/rd %?#&=+x', database = 'sluice',
    readyTimeoutMs = 30000,
} = {}) {
    checkBins();
    const files = {
        datadir: path.join(dir, `${name}-data`),
        socket: path.join(dir, `${name}.sock`),
        pidfile: path.join(dir, `${name}.pid`),
        errorlog: path.join(dir, `${name}-error.log`),
        stderr: path.join(dir, `${name}-stderr.log`),
    };
    // Small InnoDB files: the defaults (a 96 MiB redo log) only cost time here.
    const common = ['--no-defaults', `--datadir=${files.datadir}`, '--innodb-log-file-size=8M',
        '--innodb-buffer-pool-size=32M', '--skip-name-resolve', ...(isRoot() ? ['--user=root'] : [])];
    await fsp.mkdir(files.datadir, { recursive: true });
    const inst = await run(BINS.installDb, [...common, '--auth-root-authentication-method=normal',
        '--skip-test-db'], { timeoutMs: 60000 });
    if (inst.code !== 0) throw new Error(`mariadb-install-db failed (${inst.code}):\n${inst.stdout}${inst.stderr}`);

    const errorLog = () => {
        const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
        return `--- ${name} error log ---\n${read(files.errorlog)}--- ${name} stderr ---\n${read(files.stderr)}`;
    };
    const rootSQL = (query, db) => run(BINS.client, ['--no-defaults', `--socket=${files.socket}`, '-uroot',
        '--batch', '--skip-column-names', ...(db ? [db] : [])], { input: query });

    const serverArgs = (p) => [...common, `--socket=${files.socket}`, `--port=${p}`,
        '--bind-address=127.0.0.1', `--pid-file=${files.pidfile}`, `--log-error=${files.errorlog}`,
        '--innodb-flush-log-at-trx-commit=2', '--max-connections=300'];
    let child = null;
    let port = 0;
    let lastErr = null;
    for (let attempt = 0; attempt < 3 && !child; attempt++) {
        port = await freePort();
        const c = spawnLogged(BINS.mariadbd, serverArgs(port), { logFile: files.stderr, cwd: dir });
        let exited = null;
        c.exited.then((x) => { exited = x; });
        try {
            await waitFor(async () => {
                if (exited) throw Object.assign(new Error(`mariadbd exited: ${JSON.stringify(exited)}`), { fatal: true });
                return (await rootSQL('SELECT 1')).code === 0;
            }, { timeoutMs: readyTimeoutMs, intervalMs: 100, describe: () => `mariadbd on port ${port}\n${errorLog()}` });
            child = c;
        } catch (e) {
            lastErr = e;
            await stopChild(c, 10000);
            if (!/Address already in use|Can't start server: Bind/i.test(errorLog())) break;
        }
    }
    if (!child) throw new Error(`MariaDB did not come up: ${lastErr.message}\n${errorLog()}`);

    const m = {
        child, port, host: '127.0.0.1', socket: files.socket, user, password, database, files, errorLog,
        /* The database URL; options: {database, password, socket (bool), scheme, host, port}. */
        url(o = {}) {
            const pw = encodeURIComponent(o.password ?? password);
            const db = encodeURIComponent(o.database ?? database);
            const scheme = o.scheme ?? 'mysql';
            if (o.socket) return `${scheme}://${encodeURIComponent(user)}:${pw}@localhost/${db}?socket=${encodeURIComponent(files.socket)}`;
            return `${scheme}://${encodeURIComponent(user)}:${pw}@${o.host ?? '127.0.0.1'}:${o.port ?? port}/${db}`;
        },
        /* Runs SQL as root; resolves the rows (arrays of column texts). */
        async sql(query, db = database) {
            const r = await rootSQL(query, db);
            if (r.code !== 0) throw new Error(`SQL failed: ${r.stderr.trim()}\n${query}`);
            return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
        },
        /* A database `db` the test user may use fully. */
        async createDatabase(db) {
            await m.sql(`CREATE DATABASE IF NOT EXISTS \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;\n` +
                `GRANT ALL ON \`${db}\`.* TO ${sqlString(user)}@'127.0.0.1', ${sqlString(user)}@'localhost';`, '');
        },
        stop: () => stopChild(m.child, 20000),
        /* Starts the stopped server again: same data directory, same port
         * (the URL stays valid). */
        async restart() {
            const c = spawnLogged(BINS.mariadbd, serverArgs(port), { logFile: files.stderr, cwd: dir });
            let exited = null;
            c.exited.then((x) => { exited = x; });
            await waitFor(async () => {
                if (exited) throw Object.assign(new Error(`mariadbd exited: ${JSON.stringify(exited)}`), { fatal: true });
                return (await rootSQL('SELECT 1')).code === 0;
            }, { timeoutMs: readyTimeoutMs, intervalMs: 100, describe: () => `mariadbd restart on port ${port}\n${errorLog()}` });
            m.child = c;
        },
    };
    await m.sql(`CREATE USER ${sqlString(user)}@'127.0.0.1' IDENTIFIED BY ${sqlString(password)};\n` +
        `CREATE USER ${sqlString(user)}@'localhost' IDENTIFIED BY ${sqlString(password)};`, '');
    await m.createDatabase(database);
    return m;
}
