// wrk for the Node benchmarks: POSTs a chat completion (post-chat.lua or
// post-chat-stream.lua) and reads the WRKSTAT line those scripts print.
// Asynchronous, so that receivers in the calling process keep running.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/* {rps, p99ms, errors} of `wrk -t2 -cCONNS -dSECONDS` against rootURL's
 * /v1/chat/completions with model and key. */
export async function wrk(rootURL, { conns, seconds, stream = false, model = 'mock-gpt', key }) {
    const { stdout: out } = await promisify(execFile)('wrk', ['-t2', `-c${conns}`, `-d${seconds}s`, '--latency', '-s',
        path.join(HERE, stream ? 'post-chat-stream.lua' : 'post-chat.lua'), `${rootURL}/v1/chat/completions`], {
        encoding: 'utf8', env: { ...process.env, BENCH_MODEL: model, BENCH_KEY: key },
    });
    const m = /WRKSTAT (.*)/.exec(out);
    if (!m) throw new Error(`wrk printed no WRKSTAT line:\n${out}`);
    const s = Object.fromEntries(m[1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
    const errors = s.err_connect + s.err_read + s.err_write + s.err_status + s.err_timeout;
    return { rps: s.requests / (s.duration_us / 1e6), p99ms: s.p99_us / 1000, errors };
}
