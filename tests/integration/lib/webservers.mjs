// How to start each web server in front of sluice with its shipped
// httpd-conf/ file, for the web server tests (webserver-*.test.mjs, through
// lib/webserver-suite.mjs) and bench/webservers.mjs. Each start() takes a
// private dir, a config.yaml and the sluice binary, and resolves once sluice
// answers behind the server: {rootURL, reload(), stop(), log(), sluicePids()}.
// reload() is the server's graceful reload; sluicePids() the sluice processes
// serving (for memory figures).

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { lighttpdBin, renderLighttpdConf as render } from './harness.mjs';
import { startStandaloneSluice } from './frontend.mjs';
import { startApache } from './apache.mjs';
import { REPO_ROOT, spawnLogged, stopChild, stopPids, childPids, waitFor, freePort, isAlive, cmdlineOf, sleep } from './procs.mjs';

const template = (name) => fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', name), 'utf8');
const readFile = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };

/* True once sluice answers behind the server (sluice sets x-request-id). */
export async function sluiceAnswers(rootURL) {
    const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200 && res.headers.get('x-request-id') !== null;
}

/* Waits for sluice behind a server started as child; stop() on failure. */
async function ready(child, rootURL, log, stop, what) {
    let exited = null;
    child.exited.then((x) => { exited = x; });
    try {
        await waitFor(async () => {
            if (exited) throw new Error(`${what} exited: ${JSON.stringify(exited)}\n${log()}`);
            return sluiceAnswers(rootURL);
        }, { timeoutMs: 20000, intervalMs: 100, describe: () => `${what} and sluice at ${rootURL}\n${log()}` });
    } catch (e) {
        await stop();
        throw e;
    }
}

/* Pids of the processes running the binary bin. */
export function pidsOf(bin) {
    return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
        .filter((p) => (cmdlineOf(p) ?? [])[0] === bin);
}

/* Directives (e.g. FcgidInitialEnv) that hand the sanitizers' settings of
 * the test run on to processes a server starts with an environment of its
 * own (mod_fcgid), so that their reports land with the others. */
export function sanitizerEnv(directive) {
    return ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'].filter((n) => process.env[n])
        .map((n) => `${directive} ${n} "${process.env[n]}"`);
}

/* A standalone sluice on a unix socket in dir, for the servers that do not
 * spawn it. */
const standalone = (dir, config) => startStandaloneSluice({
    dir, config, listen: path.join(dir, 'sluice.sock'), args: ['--socket-mode', '0666'],
});

export async function startLighttpdSpawning({ dir, config, sluiceBin, maxProcs = 2 }) {
    const f = (n) => path.join(dir, n);
    fs.mkdirSync(f('htdocs'), { recursive: true });
    const port = await freePort();
    fs.writeFileSync(f('lighttpd.conf'), render(template('lighttpd.conf'), {
        BIND: '127.0.0.1', PORT: port, SLUICE: sluiceBin, CONFIG: config, SOCKET: f('sluice.sock'),
        MAXPROCS: maxProcs, DOCROOT: f('htdocs'), ERRORLOG: f('lighttpd-error.log'), PIDFILE: f('lighttpd.pid'),
    }));
    const child = spawnLogged(lighttpdBin(), ['-D', '-f', f('lighttpd.conf')], { logFile: f('lighttpd-stderr.log') });
    const seen = new Set();
    const remember = () => { for (const p of childPids(child.pid)) seen.add(p); };
    const log = () => `--- lighttpd error log ---\n${readFile(f('lighttpd-error.log'))}` +
        `--- lighttpd/sluice stderr ---\n${readFile(f('lighttpd-stderr.log')).slice(-8000)}`;
    const rootURL = `http://127.0.0.1:${port}`;
    const stop = async () => {
        remember();
        await stopChild(child, 8000);
        await stopPids([...seen], sluiceBin, 5000);
    };
    await ready(child, rootURL, log, stop, 'lighttpd');
    remember();
    return {
        rootURL, log, stop,
        sluicePids: () => childPids(child.pid).filter((p) => (cmdlineOf(p) ?? [])[0] === sluiceBin),
        // Graceful restart: lighttpd stops accepting, lets running requests
        // finish, then reads its config again and restarts.
        reload: async () => { remember(); process.kill(child.pid, 'SIGUSR1'); },
    };
}

/* The main nginx configuration around the shipped server block: everything
 * nginx writes goes under dir. */
function nginxMain(dir, site) {
    const f = (n) => path.join(dir, n);
    return [
        'daemon off;',
        'master_process on;',
        'worker_processes 2;',
        process.getuid() === 0 ? 'user www-data;' : '',
        `pid ${f('nginx.pid')};`,
        `error_log ${f('nginx-error.log')} info;`,
        'events { worker_connections 1024; }',
        'http {',
        '    include /etc/nginx/mime.types;',
        '    access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${f(`nginx-${t}-temp`)};`),
        `    include ${site};`,
        '}',
        '',
    ].join('\n');
}

export async function startNginx({ dir, config }) {
    const f = (n) => path.join(dir, n);
    const sl = await standalone(dir, config);
    const port = await freePort();
    fs.writeFileSync(f('nginx-site.conf'), render(template('nginx.conf'), { BIND: '127.0.0.1', PORT: port, SOCKET: sl.listen }));
    fs.writeFileSync(f('nginx-main.conf'), nginxMain(dir, f('nginx-site.conf')));
    // "include fastcgi_params" is relative to the main config's directory,
    // /etc/nginx in a real install.
    fs.symlinkSync('/etc/nginx/fastcgi_params', f('fastcgi_params'));
    const child = spawnLogged(process.env.NGINX_BIN || '/usr/sbin/nginx', ['-c', f('nginx-main.conf'), '-p', dir],
        { logFile: f('nginx-stderr.log') });
    const log = () => `--- nginx error log ---\n${readFile(f('nginx-error.log')).slice(-6000)}--- nginx stderr ---\n` +
        `${readFile(f('nginx-stderr.log'))}--- sluice ---\n${sl.log().slice(-4000)}`;
    const rootURL = `http://127.0.0.1:${port}`;
    const stop = async () => {
        await stopChild(child, 8000);
        await sl.stop();
    };
    await ready(child, rootURL, log, stop, 'nginx');
    return {
        rootURL, log, stop, sluicePids: () => [sl.pid],
        // SIGHUP: new workers read the config again, old ones finish the
        // requests they are serving.
        reload: async () => { process.kill(child.pid, 'SIGHUP'); },
    };
}

export async function startCaddy({ dir, config }) {
    const f = (n) => path.join(dir, n);
    const caddy = process.env.CADDY_BIN || '/usr/bin/caddy';
    const sl = await standalone(dir, config);
    const port = await freePort();
    const admin = `127.0.0.1:${await freePort()}`;
    // A grace period far shorter than the stream the reload check keeps
    // running (about 3.5 s after the reload): it bounds how long a stop
    // waits, and a reload lets running streams finish whatever it says, as
    // the shipped Caddyfile tells.
    const global = ['{', `\tadmin ${admin}`, '\tauto_https off', `\tstorage file_system ${f('caddy-data')}`,
        '\tgrace_period 1s', '}', ''].join('\n');
    fs.writeFileSync(f('Caddyfile'), global + render(template('Caddyfile'), { BIND: '127.0.0.1', PORT: port, SOCKET: sl.listen }));
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: f('caddy-data'), XDG_CONFIG_HOME: f('caddy-config') };
    const child = spawnLogged(caddy, ['run', '--config', f('Caddyfile'), '--adapter', 'caddyfile'],
        { logFile: f('caddy.log'), env });
    const log = () => `--- caddy ---\n${readFile(f('caddy.log')).slice(-6000)}--- sluice ---\n${sl.log().slice(-4000)}`;
    const rootURL = `http://127.0.0.1:${port}`;
    const stop = async () => {
        await stopChild(child, 8000);
        await sl.stop();
    };
    await ready(child, rootURL, log, stop, 'caddy');
    return {
        rootURL, log, stop, sluicePids: () => [sl.pid],
        // caddy reload through the admin endpoint: the new configuration
        // takes the listener, the old server finishes its running requests.
        reload: () => new Promise((resolve, reject) => {
            execFile(caddy, ['reload', '--force', '--config', f('Caddyfile'), '--adapter', 'caddyfile',
                '--address', admin], { env, timeout: 20000 }, (err, stdout, stderr) => {
                if (err) reject(new Error(`caddy reload failed: ${stderr}`));
                else resolve();
            });
        }),
    };
}

export async function startApacheProxyFcgi({ dir, config }) {
    const sl = await standalone(dir, config);
    const site = path.join(dir, 'sluice-apache.conf');
    fs.writeFileSync(site, render(template('apache-proxy-fcgi.conf'), { SOCKET: sl.listen }));
    let ap;
    try {
        ap = await startApache({ dir, modules: ['proxy', 'proxy_fcgi'], include: site, ready: sluiceAnswers });
    } catch (e) {
        await sl.stop();
        throw e;
    }
    return {
        rootURL: ap.rootURL,
        log: () => `${ap.log()}--- sluice ---\n${sl.log().slice(-4000)}`,
        stop: async () => {
            await ap.stop();
            await sl.stop();
        },
        sluicePids: () => [sl.pid],
        // apachectl graceful: children finish what they serve, new ones take over.
        reload: async () => ap.graceful(),
    };
}

export async function startApacheFcgid({ dir, config, sluiceBin, maxProcs = 8 }) {
    // mod_fcgid keeps its process table and sockets here (Debian's default
    // is /var/lib/apache2/fcgid).
    const fcgidDir = path.join(dir, 'fcgid');
    fs.mkdirSync(fcgidDir, { mode: 0o777 });
    fs.chmodSync(fcgidDir, 0o777);
    const site = path.join(dir, 'sluice-apache.conf');
    fs.writeFileSync(site, [
        `FcgidIPCDir ${fcgidDir}/sock`,
        `FcgidProcessTableFile ${fcgidDir}/shm`,
        ...sanitizerEnv('FcgidInitialEnv'),
        render(template('apache-fcgid.conf'), { SLUICE: sluiceBin, CONFIG: config, MAXPROCS: maxProcs }),
    ].join('\n'));
    const ap = await startApache({ dir, modules: ['fcgid'], include: site, ready: sluiceAnswers });
    // mod_fcgid's process manager is a child of Apache's parent process (a
    // new one after each graceful restart) and the parent of the sluice
    // processes: so ours are told apart from those of tests running alongside.
    const ours = () => childPids(ap.child.pid).flatMap((pm) => childPids(pm))
        .filter((p) => (cmdlineOf(p) ?? [])[0] === sluiceBin);
    return {
        rootURL: ap.rootURL,
        log: ap.log,
        sluicePids: ours,
        reload: async () => ap.graceful(),
        // mod_fcgid's process manager stops its processes with Apache; any
        // left after 10 s are killed, and reported.
        stop: async () => {
            const spawned = ours();
            await ap.stop();
            let left = spawned;
            for (let i = 0; i < 100 && left.length; i++) {
                await sleep(100);
                left = left.filter(isAlive);
            }
            await stopPids(left, sluiceBin, 2000);
            if (left.length) throw new Error(`sluice processes left running after Apache stopped: ${left}\n${ap.log()}`);
        },
    };
}

/* Every server, with how soon it must let sluice know of a client that left
 * (lib/webserver-suite.mjs): lighttpd and nginx at the next write or at
 * once; Apache after two writes, Caddy after about four (docs/webservers.md),
 * with events and heartbeats every 300 ms, plus a busy machine. */
export const SERVERS = {
    lighttpd: { title: 'lighttpd spawning sluice (httpd-conf/lighttpd.conf)', start: startLighttpdSpawning, abortLimitMs: 1500 },
    nginx: { title: 'nginx in front of standalone sluice (httpd-conf/nginx.conf)', start: startNginx, abortLimitMs: 1500 },
    caddy: { title: 'Caddy in front of standalone sluice (httpd-conf/Caddyfile)', start: startCaddy, abortLimitMs: 2500 },
    'apache-proxy-fcgi': {
        title: 'Apache + mod_proxy_fcgi in front of standalone sluice (httpd-conf/apache-proxy-fcgi.conf)',
        start: startApacheProxyFcgi, abortLimitMs: 2000,
    },
    'apache-fcgid': {
        title: 'Apache + mod_fcgid spawning sluice (httpd-conf/apache-fcgid.conf)',
        start: startApacheFcgid, abortLimitMs: 2000,
    },
};
