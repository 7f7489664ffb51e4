// Raw HTTP for edge cases the SDK will not send: curl through child_process
// (exact bytes in, status + headers + body out), and a bare socket for bodies
// that lie about their length.

import { spawn } from 'node:child_process';
import net from 'node:net';

/* Runs curl against url. body (string or Buffer) is sent as is with
 * --data-binary; headers is an object. Returns
 * {status, headers, body (Buffer), text, json, exitCode, elapsedMs, stderr}.
 * json is undefined when the body is not JSON. With stream: true, curl runs
 * with -N and `lines` lists [msSinceStart, line] as they arrived. */
export function curl(url, { method = 'GET', headers = {}, body, maxTime = 20, args = [], stream = false } = {}) {
    const argv = ['-sS', '-i', '--max-time', String(maxTime), '-H', 'Expect:', '-X', method];
    for (const [k, v] of Object.entries(headers)) argv.push('-H', `${k}: ${v}`);
    if (body !== undefined) argv.push('--data-binary', '@-');
    if (stream) argv.push('-N');
    argv.push(...args, url);
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn('curl', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
        const out = [];
        const err = [];
        const lines = [];
        let partial = '';
        child.stdout.on('data', (c) => {
            out.push(c);
            if (stream) {
                const now = Date.now() - t0;
                partial += c.toString('utf8');
                const parts = partial.split('\n');
                partial = parts.pop();
                for (const l of parts) lines.push([now, l.replace(/\r$/, '')]);
            }
        });
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', reject);
        child.on('close', (code) => {
            if (partial) lines.push([Date.now() - t0, partial]);
            const res = parseResponse(Buffer.concat(out));
            res.exitCode = code;
            res.elapsedMs = Date.now() - t0;
            res.stderr = Buffer.concat(err).toString('utf8');
            res.lines = lines;
            resolve(res);
        });
        if (body !== undefined) child.stdin.end(body);
        else child.stdin.end();
    });
}

/* Splits curl -i output into the last header block and the body; interim
 * 1xx blocks are skipped. */
export function parseResponse(buf) {
    let rest = buf;
    let status = null;
    let headers = {};
    for (;;) {
        const s = rest.toString('latin1', 0, Math.min(rest.length, 16));
        if (!s.startsWith('HTTP/')) break;
        let end = rest.indexOf('\r\n\r\n');
        let sepLen = 4;
        if (end < 0) {
            end = rest.indexOf('\n\n');
            sepLen = 2;
        }
        if (end < 0) end = rest.length;
        const block = rest.toString('latin1', 0, end).split(/\r?\n/);
        status = Number(block[0].split(' ')[1]);
        headers = {};
        for (const l of block.slice(1)) {
            const i = l.indexOf(':');
            if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        rest = rest.subarray(Math.min(rest.length, end + sepLen));
        if (status >= 200) break;
    }
    const text = rest.toString('utf8');
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status, headers, body: rest, text, json };
}

/* Sends raw bytes over a fresh TCP connection; resolves with whatever came
 * back once the server closes or after waitMs, then closes. */
export function rawSocket(port, bytes, { waitMs = 2000, halfClose = false } = {}) {
    return new Promise((resolve) => {
        const chunks = [];
        const s = net.connect(port, '127.0.0.1', () => {
            s.write(bytes);
            if (halfClose) s.end();
        });
        const finish = () => {
            clearTimeout(t);
            s.destroy();
            resolve(Buffer.concat(chunks));
        };
        const t = setTimeout(finish, waitMs);
        s.on('data', (c) => chunks.push(c));
        s.on('error', finish);
        s.on('close', finish);
    });
}

/* Checks the OpenAI error envelope and returns the inner error object. */
export function errorShape(json) {
    if (!json || typeof json !== 'object' || !json.error || typeof json.error !== 'object') {
        throw new Error(`not an OpenAI error envelope: ${JSON.stringify(json)?.slice(0, 300)}`);
    }
    for (const k of ['message', 'type', 'param', 'code']) {
        if (!(k in json.error)) throw new Error(`error envelope lacks "${k}": ${JSON.stringify(json).slice(0, 300)}`);
    }
    if (typeof json.error.message !== 'string' || json.error.message === '') {
        throw new Error(`error.message is not a non-empty string: ${JSON.stringify(json).slice(0, 300)}`);
    }
    return json.error;
}
