// The integration stack on loopback, under a fresh temp dir:
//   fake OpenAI upstream (child process)  <--  sluice (spawned by lighttpd
//   through mod_fastcgi, from httpd-conf/lighttpd.conf)  <--  tests over HTTP.
//
//   const h = await startHarness();           // in before()
//   const client = h.client();                // official SDK, master key
//   ... h.fakeLog(), h.resetFake(), h.errorLog()
//   await h.stop();                           // in after(); idempotent
//
// The sluice binary is $SLUICE_BIN, default ./sluice in the repo root
// (or build-local/sluice, where scripts/run-local builds, if only that exists);
// sluicectl is $SLUICECTL_BIN, default the one next to it.
// lighttpd is /usr/sbin/lighttpd (or $LIGHTTPD_BIN); it is never optional.
// $SLUICE_KEEP_TMP=1 keeps the temp dir (configs, logs) for a post-mortem.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import {
    REPO_ROOT, spawnLogged, stopChild, stopPids, childPids, waitFor, freePort, readIfExists,
    startFakeProcess, isAlive,
} from './procs.mjs';
import { toYAML } from './yaml.mjs';

export const MASTER_KEY = 'sk-test-master-1234';
export const FAKE_UPSTREAM_KEY = 'fake-upstream-key';

/* Model names routed to the fake upstream under their own name. */
export const FAULT_MODELS = ['fault-500', 'fault-429', 'fault-400', 'empty-503', 'slow-first-byte',
    'drop-mid-stream', 'hang', 'slow-stream', 'echo-body'];

/* Per-model litellm_params timeouts (seconds) unless a test overrides them;
 * models not listed get 10 s, so nothing waits for LiteLLM's 600 s default. */
const DEFAULT_TIMEOUTS = {
    'gpt-4o-mini': { timeout: 5, stream_timeout: 5 },
    hang: { timeout: 2, stream_timeout: 2 },
    'slow-first-byte': { timeout: 10, stream_timeout: 10 },
    'slow-stream': { timeout: 10, stream_timeout: 10 },
    'drop-mid-stream': { timeout: 10, stream_timeout: 10 },
    'echo-alias': { timeout: 10, stream_timeout: 10 },
    unreachable: { timeout: 5, stream_timeout: 5 },
};

export function lighttpdBin() {
    return process.env.LIGHTTPD_BIN || '/usr/sbin/lighttpd';
}

/* $SLUICE_BIN, else ./sluice in the repo root, else the out-of-tree build
 * scripts/run-local makes (build-local/sluice). */
export function sluiceBin() {
    if (process.env.SLUICE_BIN) return path.resolve(REPO_ROOT, process.env.SLUICE_BIN);
    const inTree = path.join(REPO_ROOT, 'sluice');
    const runLocal = path.join(REPO_ROOT, 'build-local', 'sluice');
    const ok = (f) => { try { fs.accessSync(f, fs.constants.X_OK); return true; } catch { return false; } };
    return !ok(inTree) && ok(runLocal) ? runLocal : inTree;
}

/* $SLUICECTL_BIN, else sluicectl next to the sluice binary. */
export function sluicectlBin() {
    if (process.env.SLUICECTL_BIN) return path.resolve(REPO_ROOT, process.env.SLUICECTL_BIN);
    return path.join(path.dirname(sluiceBin()), 'sluicectl');
}

function checkExecutable(file, what, hint) {
    try {
        fs.accessSync(file, fs.constants.X_OK);
    } catch {
        throw new Error(`${what} not found or not executable at ${file}: ${hint}`);
    }
}

/* Runs `sluicectl migrate` on the database of h's config (the repository's
 * schema/, never $DATABASE_URL); throws with sluicectl's words on failure. */
export async function migrate(h) {
    const r = await new Promise((resolve) => {
        execFile(sluicectlBin(), ['--config', h.files.config, 'migrate'],
            { env: { ...process.env, SLUICE_SCHEMA_DIR: path.join(REPO_ROOT, 'schema'), DATABASE_URL: '' } },
            (err, stdout, stderr) => resolve({ err, stdout, stderr }));
    });
    if (r.err) throw new Error(`sluicectl migrate failed: ${r.stderr}`);
}

/* The sluice config the harness writes, as an object (see toYAML).
 * ctx: {fakeBase, closedPort, tmpdir}. opts: see startHarness. */
export function buildConfig(ctx, opts = {}) {
    const params = (modelName, upstream) => ({
        model: `openai/${upstream}`,
        api_base: ctx.fakeBase,
        api_key: FAKE_UPSTREAM_KEY,
        ...(DEFAULT_TIMEOUTS[modelName] || { timeout: 10, stream_timeout: 10 }),
        ...((opts.modelParams || {})[modelName] || {}),
    });
    const model_list = [
        { model_name: 'gpt-4o-mini', litellm_params: params('gpt-4o-mini', 'gpt-4o-mini') },
        {
            model_name: 'text-embedding-3-small',
            litellm_params: params('text-embedding-3-small', 'text-embedding-3-small'),
            model_info: { mode: 'embedding' },
        },
        ...FAULT_MODELS.map((m) => ({ model_name: m, litellm_params: params(m, m) })),
        // An alias whose upstream name differs, to see the model rewritten.
        { model_name: 'echo-alias', litellm_params: params('echo-alias', 'echo-body') },
        // A deployment nobody listens for.
        {
            model_name: 'unreachable',
            litellm_params: {
                ...params('unreachable', 'gpt-4o-mini'),
                api_base: `http://127.0.0.1:${ctx.closedPort}/v1`,
            },
        },
        { model_name: 'mock-gpt', litellm_params: { model: 'mock/echo', ...((opts.modelParams || {})['mock-gpt'] || {}) } },
        ...(opts.extraModels || []),
    ];
    const cfg = {
        model_list,
        general_settings: { master_key: MASTER_KEY, ...(opts.generalSettings || {}) },
        sluice_settings: {
            threads: 4,
            heartbeat_ms: 300,
            // the spool and the host's counter table (counters.shm) of this stack alone
            ...(ctx.tmpdir ? { spend_spool_dir: path.join(ctx.tmpdir, 'spool') } : {}),
            ...(process.env.SLUICE_LOG_LEVEL ? { log_level: process.env.SLUICE_LOG_LEVEL } : {}),
            ...(opts.sluiceSettings || {}),
        },
    };
    if (opts.litellmSettings) cfg.litellm_settings = opts.litellmSettings;
    if (opts.routerSettings) cfg.router_settings = opts.routerSettings;
    if (opts.configure) opts.configure(cfg, ctx);
    return cfg;
}

/* Fills the placeholders of httpd-conf/lighttpd.conf. */
export function renderLighttpdConf(template, vars) {
    let out = template;
    for (const [k, v] of Object.entries(vars)) out = out.split(`@${k}@`).join(String(v));
    const left = out.match(/@[A-Z]+@/g);
    if (left) throw new Error(`lighttpd.conf: unfilled placeholders ${[...new Set(left)].join(', ')}`);
    return out;
}

/* Starts the whole stack. Options:
 *   extraModels      more model_list entries
 *   modelParams      {model_name: {litellm_params overrides}} (e.g. {hang: {timeout: 1}})
 *   generalSettings, sluiceSettings, litellmSettings, routerSettings: merged in
 *   configure(cfg, ctx)  last word on the config object
 *   maxProcs         lighttpd max-procs (default 1)
 *   streamRequestBody  lighttpd server.stream-request-body (unset: lighttpd's
 *                    default 0, the whole body is spooled before sluice runs)
 *   lighttpdExtra    more lighttpd.conf lines, appended to the rendered template
 *   lighttpdModules  lighttpd modules loaded BEFORE mod_fastcgi (lighttpd runs
 *                    modules in load order, so mod_auth must come first to
 *                    authenticate what mod_fastcgi would otherwise take)
 *   readyTimeoutMs   how long to wait for /health/liveliness (default 30000)
 *
 * Besides the methods above, h.sluiceLog() is the captured stderr of
 * lighttpd and its responders (sluice's JSON log lines) read synchronously,
 * h.configYAML(edit) renders a copy of the config object changed by
 * edit(cfg, ctx), and h.writeConfig(text, {atomic}) replaces config.yaml
 * (atomic: write a temp file and rename it over, as editors do; else
 * rewrite the file in place) and returns Date.now() after the write. */
export async function startHarness(opts = {}) {
    const lighttpd = lighttpdBin();
    checkExecutable(lighttpd, 'lighttpd', 'install it (apt-get install lighttpd); ' +
        'the integration tests need a real lighttpd and never skip');
    const sluice = sluiceBin();
    checkExecutable(sluice, 'the sluice binary', 'build it first (autoreconf -fi && ./configure && make) ' +
        'or point SLUICE_BIN at it');

    const tmpdir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-it-'));
    const files = {
        config: path.join(tmpdir, 'config.yaml'),
        conf: path.join(tmpdir, 'lighttpd.conf'),
        docroot: path.join(tmpdir, 'htdocs'),
        socket: path.join(tmpdir, 'sluice.sock'),
        errorlog: path.join(tmpdir, 'lighttpd-error.log'),
        stderr: path.join(tmpdir, 'lighttpd-stderr.log'), // sluice's stderr lands here too
        pidfile: path.join(tmpdir, 'lighttpd.pid'),
    };
    const h = {
        tmpdir,
        files,
        masterKey: MASTER_KEY,
        sluiceBin: sluice,
        fake: null,
        lighttpd: null,
        responders: [],   // sluice pids seen under our lighttpd
        leftovers: null,  // after stop(): responder pids that needed SIGKILL
        stopped: false,
    };
    h.errorLog = () => {
        const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
        return `--- lighttpd error log ---\n${read(files.errorlog)}--- lighttpd/sluice stderr ---\n${read(files.stderr)}`;
    };
    h.stop = async () => {
        if (h.stopped) return;
        h.stopped = true;
        process.off('exit', onExit);
        try {
            if (h.lighttpd) {
                const pids = new Set([...h.responders, ...childPids(h.lighttpd.pid)]);
                await stopChild(h.lighttpd, 8000);
                h.leftovers = await stopPids([...pids], sluice, 5000);
            }
        } finally {
            if (h.fake) await h.fake.stop();
            if (process.env.SLUICE_KEEP_TMP === '1') {
                process.stderr.write(`harness: kept ${tmpdir}\n`);
            } else {
                await fsp.rm(tmpdir, { recursive: true, force: true });
            }
        }
    };
    // Responders are our grandchildren: kill them too if this process dies.
    const onExit = () => {
        for (const pid of h.responders) {
            try {
                process.kill(pid, 'SIGKILL');
            } catch {
                /* gone */
            }
        }
    };
    process.on('exit', onExit);

    try {
        await fsp.mkdir(files.docroot);
        h.fake = await startFakeProcess(tmpdir, { apiKey: FAKE_UPSTREAM_KEY });
        const closedPort = await freePort();
        const ctx = { fakeBase: h.fake.baseURL, fakePort: h.fake.port, closedPort, tmpdir };
        h.ctx = ctx;
        h.config = buildConfig(ctx, opts);
        h.modelNames = [...new Set(h.config.model_list.map((m) => m.model_name))];
        await fsp.writeFile(files.config, toYAML(h.config));

        const template = await fsp.readFile(path.join(REPO_ROOT, 'httpd-conf', 'lighttpd.conf'), 'utf8');
        let lastErr = null;
        for (let attempt = 0; attempt < 3; attempt++) {
            const port = await freePort();
            let conf = renderLighttpdConf(template, {
                PORT: port, BIND: '127.0.0.1', SLUICE: sluice, CONFIG: files.config, SOCKET: files.socket,
                DOCROOT: files.docroot, ERRORLOG: files.errorlog, PIDFILE: files.pidfile,
                MAXPROCS: opts.maxProcs ?? 1,
            });
            if (opts.streamRequestBody !== undefined) {
                conf += `\nserver.stream-request-body = ${Number(opts.streamRequestBody)}\n`;
            }
            if (opts.lighttpdExtra) conf += `\n${opts.lighttpdExtra}\n`;
            if (opts.lighttpdModules) {
                conf = `server.modules = ( ${opts.lighttpdModules.map((m) => `"${m}"`).join(', ')} )\n${conf}`;
            }
            await fsp.writeFile(files.conf, conf);
            const child = spawnLogged(lighttpd, ['-D', '-f', files.conf], { logFile: files.stderr });
            let exited = null;
            child.exited.then((x) => { exited = x; });
            h.lighttpd = child;
            h.port = port;
            h.rootURL = `http://127.0.0.1:${port}`;
            h.baseURL = `${h.rootURL}/v1`;
            try {
                await waitFor(async () => {
                    if (exited) throw Object.assign(new Error('lighttpd exited'), { fatal: true });
                    const res = await fetch(`${h.rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
                    await res.arrayBuffer();
                    // lighttpd itself answers 503 while no responder is up; anything
                    // else (or any reply carrying sluice's x-request-id) is sluice.
                    return res.headers.get('x-request-id') !== null || ![502, 503, 504].includes(res.status);
                }, {
                    timeoutMs: opts.readyTimeoutMs ?? 30000,
                    intervalMs: 100,
                    describe: () => `sluice behind lighttpd to answer ${h.rootURL}/health/liveliness\n${h.errorLog()}`,
                });
                lastErr = null;
                break;
            } catch (e) {
                lastErr = e;
                await stopChild(child, 3000);
                const log = h.errorLog();
                if (!/Address already in use/i.test(log) || !exited) break; // only a port race is worth a retry
                await fsp.writeFile(files.stderr, '');
                await fsp.writeFile(files.errorlog, '');
            }
        }
        if (lastErr) {
            throw new Error(`the stack did not come up: ${lastErr.message}${lastErr.fatal ? `\n${h.errorLog()}` : ''}`);
        }
        h.responders = childPids(h.lighttpd.pid);
    } catch (e) {
        await h.stop().catch(() => {});
        throw e;
    }

    h.fakeLog = () => h.fake.log();
    h.resetFake = () => h.fake.reset();
    h.fakePort = h.fake.port;
    /* The official SDK pointed at the gateway; no retries, so faults show as they are. */
    h.client = (o = {}) => new OpenAI({
        apiKey: MASTER_KEY, baseURL: h.baseURL, maxRetries: 0, timeout: 30000, ...o,
    });
    /* Responder pids (seen at start-up) that still run. */
    h.respondersAlive = () => h.responders.filter(isAlive);
    /* The responders lighttpd runs now (respawned ones included). */
    h.respondersNow = () => childPids(h.lighttpd.pid).filter(isAlive);
    h.readLog = () => readIfExists(files.stderr);
    h.sluiceLog = () => {
        try {
            return fs.readFileSync(files.stderr, 'utf8');
        } catch {
            return '';
        }
    };
    h.configYAML = (edit) => {
        const cfg = structuredClone(h.config);
        if (edit) edit(cfg, h.ctx);
        return toYAML(cfg);
    };
    h.writeConfig = (text, { atomic = true } = {}) => {
        if (atomic) {
            const tmp = path.join(tmpdir, `.config.yaml.${process.pid}.${Date.now()}`);
            fs.writeFileSync(tmp, text);
            fs.renameSync(tmp, files.config);
        } else {
            fs.writeFileSync(files.config, text);
        }
        return Date.now();
    };
    return h;
}
