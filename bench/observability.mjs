// bench/observability.mjs — what metrics, tracing and a callback cost:
// requests per second of the built-in mock model (no upstream, so sluice's
// own work is all there is to measure) behind nginx, with everything off
// (sluice_settings.metrics: false, no callbacks) and with everything on
// (metrics, otel spans to an OTLP receiver, a generic_api webhook: both
// receivers run in this process). The two stacks run side by side and are
// measured in turns, so drift of the shared machine hits both alike; the
// median of the rounds is compared against the target (on ≥ 95 % of off).
// A benchmark, not a test: it never fails on speed.
//
//   node bench/observability.mjs [SLUICE_BIN]
// Knobs (environment): BENCH_SECONDS (default 5), BENCH_CONNS (default 16),
// BENCH_ROUNDS (default 3), BENCH_STREAM=1 (measure streams instead),
// BENCH_ON (default "metrics otel hook": what the "on" stack turns on).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVERS } from '../tests/integration/lib/webservers.mjs';
import { sluiceBin } from '../tests/integration/lib/harness.mjs';
import { startSink } from '../tests/integration/lib/sinks.mjs';
import { mockConfigDir, wrk } from './wrk.mjs';

if (process.argv[2]) process.env.SLUICE_BIN = path.resolve(process.argv[2]);
const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const CONNS = Number(process.env.BENCH_CONNS || 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const STREAM = process.env.BENCH_STREAM === '1';
const KEY = 'sk-bench';

/* (asynchronous: the receivers live in this process's event loop) */
const run = (rootURL, seconds = SECONDS) => wrk(rootURL, { conns: CONNS, seconds, stream: STREAM, key: KEY });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function stack(name, extra) {
    const { dir, config } = mockConfigDir(`sluice-bobs-${name}-`, KEY, extra);
    const s = await SERVERS.nginx.start({ dir, config, sluiceBin: sluiceBin(), maxProcs: 2 });
    return { ...s, dir };
}

const otlp = await startSink({ mode: 'drain' });
const hook = await startSink({ mode: 'drain' });
const off = await stack('off', { sluice_settings: { metrics: false } });
const ON = (process.env.BENCH_ON || 'metrics otel hook').split(/\s+/);
const callbacks = [...(ON.includes('otel') ? ['otel'] : []), ...(ON.includes('hook') ? ['audit'] : [])];
const on = await stack('on', {
    ...(callbacks.length ? { litellm_settings: { callbacks } } : {}),
    callback_settings: { audit: { callback_type: 'generic_api', endpoint: `${hook.url}/events` } },
    environment_variables: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url },
    sluice_settings: { metrics: ON.includes('metrics') },
});
const runs = { off: [], on: [] };
try {
    console.log(`observability: ${execFileSync(sluiceBin(), ['--version'], { encoding: 'utf8' }).trim()}, nginx, ` +
        `wrk -t2 -c${CONNS} -d${SECONDS}s x ${ROUNDS} rounds, mock-gpt${STREAM ? ' stream' : ''}, ` +
        `load ${os.loadavg()[0].toFixed(2)} (1-min)`);
    await run(off.rootURL, 2);    // warm-up: threads, caches, the metrics file, the sinks' threads
    await run(on.rootURL, 2);
    for (let i = 0; i < ROUNDS; i++) {
        for (const [k, s] of i % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]]) {
            const r = await run(s.rootURL);
            runs[k].push(r);
            console.log(`  round ${i + 1} ${k.padEnd(3)} ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms.toFixed(2)} ms, ${r.errors} errors`);
        }
    }
    await new Promise((r) => setTimeout(r, 1500));   // the last batches
    const mOff = median(runs.off.map((r) => r.rps)), mOn = median(runs.on.map((r) => r.rps));
    const metrics = await (await fetch(`${on.rootURL}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    const count = (name, cb) => [...metrics.matchAll(new RegExp(`^${name}\\{callback_name="${cb}"\\} (\\d+)`, 'gm'))]
        .reduce((a, m) => a + Number(m[1]), 0);
    console.log(`\nall off: ${mOff.toFixed(0)} req/s (median)\nall on:  ${mOn.toFixed(0)} req/s (median): ` +
        `${(100 * mOn / mOff).toFixed(1)} % of off (target >= 95 %)`);
    console.log(`on: ${ON.join(', ')}; callbacks: ${callbacks.map((cb) => `${cb} ${count('sluice_callback_events_sent_total', cb)} sent, ` +
        `${count('sluice_callback_events_dropped_total', cb)} dropped`).join('; ')}`);
} finally {
    for (const s of [off, on]) {
        await s.stop().catch(() => {});
        fs.rmSync(s.dir, { recursive: true, force: true });
    }
    await otlp.stop();
    await hook.stop();
}
