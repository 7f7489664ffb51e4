// Stacks the harness does not build: sluice started by the test itself
// (standalone with --listen, or run as a plain CGI program), and lighttpd in
// front of it from the templates next to this file:
//   lighttpd-external.conf  mod_fastcgi to an already running sluice
//                           (host/port or unix socket, no bin-path)
//   lighttpd-cgi.conf       mod_cgi running sluice once per request
//
//   const lt = await startLighttpd({ dir, template: 'lighttpd-external.conf', vars: { TARGET } });
//   const sl = await startStandaloneSluice({ dir, config, listen: '127.0.0.1:9000' });
//   const r = await runSluice(args, { env, input, timeoutMs });
//   await lt.stop(); await sl.stop();
//
// Every child runs under a pid we hold and is stopped by that pid (and killed
// if the test process dies first, see procs.mjs).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnLogged, stopChild, waitFor, freePort, readIfExists, withinMs } from './procs.mjs';
import { lighttpdBin, sluiceBin, renderLighttpdConf } from './harness.mjs';

const LIB_DIR = path.dirname(fileURLToPath(import.meta.url));

/* Starts lighttpd -D from a template in this directory. vars fills the
 * template's own placeholders; BIND, PORT, DOCROOT, ERRORLOG and PIDFILE are
 * filled here. ready(rootURL) says when it serves (default: any HTTP answer).
 * Retries on a port race. Returns {child, port, rootURL, baseURL, files,
 * errorLog(), stop()}. */
export async function startLighttpd({ dir, template, vars = {}, name = 'lighttpd', ready, readyTimeoutMs = 20000 }) {
    const files = {
        conf: path.join(dir, `${name}.conf`),
        docroot: path.join(dir, `${name}-htdocs`),
        errorlog: path.join(dir, `${name}-error.log`),
        stderr: path.join(dir, `${name}-stderr.log`),
        pidfile: path.join(dir, `${name}.pid`),
    };
    await fsp.mkdir(files.docroot, { recursive: true });
    const text = await fsp.readFile(path.join(LIB_DIR, template), 'utf8');
    const errorLog = () => {
        const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
        return `--- ${name} error log ---\n${read(files.errorlog)}--- ${name} stderr ---\n${read(files.stderr)}`;
    };
    const isReady = ready ?? (async (rootURL) => {
        const res = await fetch(`${rootURL}/`, { signal: AbortSignal.timeout(3000) });
        await res.arrayBuffer();
        return true;
    });
    let lastErr = null;
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        await fsp.writeFile(files.conf, renderLighttpdConf(text, {
            BIND: '127.0.0.1', PORT: port, DOCROOT: files.docroot, ERRORLOG: files.errorlog,
            PIDFILE: files.pidfile, ...vars,
        }));
        const child = spawnLogged(lighttpdBin(), ['-D', '-f', files.conf], { logFile: files.stderr });
        let exited = null;
        child.exited.then((x) => { exited = x; });
        const rootURL = `http://127.0.0.1:${port}`;
        try {
            await waitFor(async () => {
                if (exited) throw Object.assign(new Error(`lighttpd exited: ${JSON.stringify(exited)}`), { fatal: true });
                return isReady(rootURL);
            }, { timeoutMs: readyTimeoutMs, intervalMs: 100, describe: () => `${name} at ${rootURL}\n${errorLog()}` });
            return {
                child, port, rootURL, baseURL: `${rootURL}/v1`, files, errorLog,
                stop: () => stopChild(child, 8000),
            };
        } catch (e) {
            lastErr = e;
            await stopChild(child, 3000);
            if (!/Address already in use/i.test(errorLog()) || !exited) break;
            await fsp.writeFile(files.stderr, '');
            await fsp.writeFile(files.errorlog, '');
        }
    }
    throw new Error(`${name} did not come up: ${lastErr.message}${lastErr.fatal ? `\n${errorLog()}` : ''}`);
}

/* True once something accepts connections at `listen` (HOST:PORT or a path). */
function canConnect(listen) {
    return new Promise((resolve) => {
        const opts = listen.startsWith('/') ? { path: listen }
            : { host: listen.slice(0, listen.lastIndexOf(':')), port: Number(listen.slice(listen.lastIndexOf(':') + 1)) };
        const s = net.connect(opts, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
        s.setTimeout(2000, () => { s.destroy(); resolve(false); });
    });
}

/* Starts `sluice --config config --listen listen ...args` with its stderr
 * (and stdout) in DIR/NAME.log, and waits until the listen address accepts
 * connections. Returns {child, pid, listen, logFile, log(), exited, stop()}. */
export async function startStandaloneSluice({ dir, config, listen, args = [], env, name = 'sluice', readyTimeoutMs = 20000 }) {
    const logFile = path.join(dir, `${name}.log`);
    const child = spawnLogged(sluiceBin(), ['--config', config, '--listen', listen, ...args], { logFile, env });
    let exited = null;
    child.exited.then((x) => { exited = x; });
    const log = () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
    try {
        await waitFor(async () => {
            if (exited) throw Object.assign(new Error(`sluice exited: ${JSON.stringify(exited)}\n${log()}`), { fatal: true });
            return canConnect(listen);
        }, { timeoutMs: readyTimeoutMs, intervalMs: 50, describe: () => `sluice listening on ${listen}\n${log()}` });
    } catch (e) {
        await stopChild(child, 3000);
        throw e;
    }
    return {
        child, pid: child.pid, listen, logFile, log, exited: child.exited,
        stop: (timeoutMs = 8000) => stopChild(child, timeoutMs),
    };
}

/* Runs the sluice binary once. env replaces the environment entirely (pass
 * {...process.env, ...} to extend it); input goes to stdin (stdin is
 * /dev/null without it). Resolves {code, signal, stdout (Buffer), stderr,
 * elapsedMs, timedOut}; a run longer than timeoutMs is SIGKILLed. */
export function runSluice(args, { env = process.env, input, timeoutMs = 15000, cwd } = {}) {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(sluiceBin(), args, {
            stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env, cwd,
        });
        const out = [];
        const err = [];
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            try {
                child.kill('SIGKILL');
            } catch {
                /* gone */
            }
        }, timeoutMs);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({
                code, signal, timedOut, elapsedMs: Date.now() - t0,
                stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'),
            });
        });
        if (input !== undefined) {
            child.stdin.on('error', () => {}); // sluice may exit before reading it all
            child.stdin.end(input);
        }
    });
}

/* Splits a CGI response (header lines, a blank line, the body). */
export function parseCGI(buf) {
    let end = buf.indexOf('\r\n\r\n');
    let sep = 4;
    const lf = buf.indexOf('\n\n');
    if (end < 0 || (lf >= 0 && lf < end)) {
        end = lf;
        sep = 2;
    }
    if (end < 0) return { headers: null, status: null, body: buf, text: buf.toString('utf8') };
    const headers = {};
    for (const l of buf.toString('latin1', 0, end).split(/\r?\n/)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = headers.status ? Number(headers.status.split(' ')[0]) : null;
    const body = buf.subarray(end + sep);
    return { headers, status, body, text: body.toString('utf8') };
}

export { readIfExists, withinMs };
