// What the Node benchmarks share: wrk, which POSTs a chat completion
// (post-chat.lua or post-chat-stream.lua) and whose WRKSTAT line is read,
// asynchronously so that receivers in the calling process keep running;
// and the directory of a sluice serving the built-in mock model.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { toYAML } from '../tests/integration/lib/yaml.mjs';

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

/* A temp dir (readable by the web servers' users) with a spool directory
 * and config.yaml: the mock model as mock-gpt, master key key, and extra
 * merged in at the top level (its sluice_settings into sluice's). */
export function mockConfigDir(prefix, key, extra = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, 'spool'), { mode: 0o777 });
    fs.chmodSync(path.join(dir, 'spool'), 0o777);
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, toYAML({
        model_list: [{ model_name: 'mock-gpt', litellm_params: { model: 'mock/echo', mock_delay_ms: 0 } }],
        general_settings: { master_key: key },
        ...extra,
        sluice_settings: { log_level: 'warn', spend_spool_dir: path.join(dir, 'spool'), ...extra.sluice_settings },
    }), { mode: 0o644 });
    return { dir, config };
}
