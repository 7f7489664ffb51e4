// bench/webservers.mjs — sluice behind each web server with its shipped
// httpd-conf/ file: requests per second, p99 latency and the memory of the
// sluice processes, for a chat completion and a stream of the built-in mock
// model (no upstream: the web server and sluice alone). The servers are
// started as the integration tests start them (tests/integration/lib/
// webservers.mjs). A benchmark, not a test: it never fails on speed.
//
//   node bench/webservers.mjs [SLUICE_BIN]
// Knobs (environment): BENCH_SECONDS (default 5), BENCH_CONNS (default 16),
// BENCH_SERVERS (default: all five), SLUICE_BIN.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVERS } from '../tests/integration/lib/webservers.mjs';
import { sluiceBin } from '../tests/integration/lib/harness.mjs';
import { mockConfigDir, wrk } from './wrk.mjs';

if (process.argv[2]) process.env.SLUICE_BIN = path.resolve(process.argv[2]);
const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const CONNS = Number(process.env.BENCH_CONNS || 16);
const WHICH = (process.env.BENCH_SERVERS || Object.keys(SERVERS).join(' ')).split(/\s+/).filter(Boolean);
const KEY = 'sk-bench';

const rssKB = (pid) => {
    try {
        return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    } catch {
        return 0;
    }
};

const run = (rootURL, stream) => wrk(rootURL, { conns: CONNS, seconds: SECONDS, stream, key: KEY });

const rows = [];
console.log(`webservers: ${path.basename(sluiceBin())} ${execFileSync(sluiceBin(), ['--version'], { encoding: 'utf8' }).trim()}, ` +
    `wrk -t2 -c${CONNS} -d${SECONDS}s, mock-gpt, load ${os.loadavg()[0].toFixed(2)} (1-min)`);
for (const name of WHICH) {
    const server = SERVERS[name];
    if (!server) throw new Error(`no server ${name}: ${Object.keys(SERVERS).join(', ')}`);
    const { dir, config } = mockConfigDir('sluice-bws-', KEY);
    let stack;
    try {
        stack = await server.start({ dir, config, sluiceBin: sluiceBin(), maxProcs: name === 'apache-fcgid' ? CONNS * 2 : 2 });
        await run(stack.rootURL, false);   // warm-up: processes, threads, caches
        const chat = await run(stack.rootURL, false);
        const stream = await run(stack.rootURL, true);
        const pids = stack.sluicePids();
        const rss = pids.reduce((a, p) => a + rssKB(p), 0);
        rows.push({ name, chat, stream, procs: pids.length, rssMB: rss / 1024 });
    } catch (e) {
        rows.push({ name, error: e.message.split('\n')[0] });
    } finally {
        if (stack) await stack.stop().catch(() => {});
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const pad = (s, n) => String(s).padEnd(n);
console.log(`\n${pad('server', 20)}${pad('chat req/s', 12)}${pad('p99 ms', 9)}${pad('stream req/s', 14)}${pad('p99 ms', 9)}${pad('errors', 8)}sluice processes, RSS`);
for (const r of rows) {
    if (r.error) {
        console.log(`${pad(r.name, 20)}failed: ${r.error}`);
        continue;
    }
    console.log(`${pad(r.name, 20)}${pad(r.chat.rps.toFixed(0), 12)}${pad(r.chat.p99ms.toFixed(1), 9)}` +
        `${pad(r.stream.rps.toFixed(0), 14)}${pad(r.stream.p99ms.toFixed(1), 9)}${pad(r.chat.errors + r.stream.errors, 8)}` +
        `${r.procs} process(es), ${r.rssMB.toFixed(1)} MB`);
}
