// Process helpers for the integration tests: spawn children with their output
// in files, wait for conditions, stop children by pid (SIGTERM, then SIGKILL),
// and kill whatever is left if the test process dies first.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Every child still running; killed synchronously if this process exits. */
const live = new Set();
process.on('exit', () => {
    for (const pid of live) {
        try {
            process.kill(pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/* Spawns cmd with stdout and stderr appended to logFile. Returns the child,
 * with child.exited: a promise of {code, signal}. */
export function spawnLogged(cmd, args, { logFile, env, cwd } = {}) {
    const fd = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, {
        stdio: ['ignore', fd, fd],
        env: env ?? process.env,
        cwd: cwd ?? REPO_ROOT,
    });
    fs.closeSync(fd);
    child.exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
            live.delete(child.pid);
            resolve({ code, signal });
        });
        child.once('error', (err) => {
            live.delete(child.pid);
            resolve({ code: null, signal: null, error: err });
        });
    });
    if (child.pid) live.add(child.pid);
    return child;
}

/* True while pid runs; a zombie (exited, not yet reaped by whoever adopted
 * it) counts as gone. */
export function isAlive(pid) {
    try {
        process.kill(pid, 0);
    } catch {
        return false;
    }
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
        return false;
    }
}

/* Stops a child we spawned: SIGTERM, then SIGKILL after timeoutMs. */
export async function stopChild(child, timeoutMs = 5000) {
    if (!child || !child.pid || child.exitCode !== null || child.signalCode !== null) return;
    try {
        child.kill('SIGTERM');
    } catch {
        /* gone */
    }
    const done = await withinMs(child.exited.then(() => true), timeoutMs, false);
    if (!done) {
        try {
            child.kill('SIGKILL');
        } catch {
            /* gone */
        }
        await withinMs(child.exited, 2000);
    }
}

/* promise, or `fallback` after ms; the timer is cleared either way, so a
 * pending time-out never keeps the test process alive after the work is done. */
export function withinMs(promise, ms, fallback = undefined) {
    let timer;
    const t = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/* Pids whose parent is ppid (from /proc). */
export function childPids(ppid) {
    const out = [];
    let names;
    try {
        names = fs.readdirSync('/proc');
    } catch {
        return out;
    }
    for (const n of names) {
        if (!/^\d+$/.test(n)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8');
            // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(rest[1]) === ppid) out.push(Number(n));
        } catch {
            /* raced with exit */
        }
    }
    return out;
}

export function cmdlineOf(pid) {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
        return null;
    }
}

/* Stops pids that we know we started indirectly (e.g. responders spawned by
 * our lighttpd), checking each still runs `exe` so a recycled pid is never hit. */
export async function stopPids(pids, exe, timeoutMs = 5000) {
    const ours = (pid) => {
        const argv = cmdlineOf(pid);
        return argv !== null && argv.length > 0 && argv[0] === exe;
    };
    let left = pids.filter(ours);
    for (const pid of left) {
        try {
            process.kill(pid, 'SIGTERM');
        } catch {
            /* gone */
        }
    }
    const deadline = Date.now() + timeoutMs;
    while (left.length && Date.now() < deadline) {
        await sleep(50);
        left = left.filter((p) => isAlive(p) && ours(p));
    }
    for (const pid of left) {
        try {
            process.kill(pid, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
    return left; // pids that needed SIGKILL
}

/* Polls fn until it returns a truthy value; throws describe() on timeout. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, describe = () => 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let lastErr = null;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() > deadline) {
            const why = await describe();
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${why}` +
                (lastErr ? ` (last error: ${lastErr.message})` : ''));
        }
        await sleep(intervalMs);
    }
}

/* A loopback port that was free a moment ago. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

export async function readIfExists(file) {
    try {
        return await fsp.readFile(file, 'utf8');
    } catch {
        return '';
    }
}

/* Starts tests/fakes/openai.mjs as a child process in dir. Returns
 * {port, child, baseURL, log(), reset(), stop()}. */
export async function startFakeProcess(dir, { apiKey = null, name = 'fake-openai' } = {}) {
    const portFile = path.join(dir, `${name}.port`);
    const logFile = path.join(dir, `${name}.log`);
    const args = [path.join(REPO_ROOT, 'tests', 'fakes', 'openai.mjs'), '--port', '0', '--port-file', portFile];
    if (apiKey) args.push('--api-key', apiKey);
    const child = spawnLogged(process.execPath, args, { logFile });
    let exited = null;
    child.exited.then((x) => { exited = x; });
    const port = await waitFor(async () => {
        if (exited) throw new Error(`fake exited early: ${JSON.stringify(exited)}\n${await readIfExists(logFile)}`);
        const txt = await readIfExists(portFile);
        return txt.trim() ? Number(txt.trim()) : null;
    }, { timeoutMs: 20000, describe: async () => `the fake upstream's port file (log: ${await readIfExists(logFile)})` });
    const ctl = `http://127.0.0.1:${port}/__control`;
    return {
        port,
        child,
        logFile,
        baseURL: `http://127.0.0.1:${port}/v1`,
        log: async () => (await (await fetch(`${ctl}/log`)).json()).requests,
        reset: async () => { await fetch(`${ctl}/reset`, { method: 'POST' }); },
        stop: () => stopChild(child),
    };
}
