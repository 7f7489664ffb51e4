// Reading the Prometheus text exposition in tests.

import assert from 'node:assert/strict';

/* Parses the exposition into [{name, labels, value}], checking every line
 * is a comment, blank or a well-formed sample, and that every family has
 * its HELP and TYPE before its samples. */
export function parseMetrics(text) {
    const out = [];
    const typed = new Set();
    for (const line of text.split('\n')) {
        if (line === '') continue;
        if (line.startsWith('# HELP ')) continue;
        if (line.startsWith('# TYPE ')) {
            const [, , name, type] = line.split(' ');
            assert.ok(['counter', 'gauge', 'histogram'].includes(type), line);
            typed.add(name);
            continue;
        }
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        assert.ok(m, `not a sample line: ${line}`);
        const labels = {};
        if (m[2]) {
            const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
            let lm, seen = 0;
            while ((lm = re.exec(m[2])) !== null) {
                labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
                seen = re.lastIndex;
            }
            assert.equal(seen, m[2].length, `bad labels: ${line}`);
        }
        const family = m[1].replace(/_(bucket|sum|count)$/, '');
        assert.ok(typed.has(m[1]) || typed.has(family), `sample before its TYPE: ${line}`);
        out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
}

/* Sum of the samples called name whose labels include all of match. */
export function sum(samples, name, match = {}) {
    return samples.filter((s) => s.name === name &&
        Object.entries(match).every(([k, v]) => s.labels[k] === v))
        .reduce((a, s) => a + s.value, 0);
}

/* GET /metrics of harness h (with the master key unless headers say
 * otherwise): {status, type, text}. */
export async function scrape(h, headers = { authorization: `Bearer ${h.masterKey}` }) {
    const r = await fetch(`${h.rootURL}/metrics`, { headers });
    const text = await r.text();
    return { status: r.status, type: r.headers.get('content-type'), text };
}

/* A scrape once the counts have settled. A request is counted after its
 * response has gone out (the client does not wait for the accounting),
 * so a scrape right after the last answer may race with the process
 * still finishing it. Each process leaves the in-flight gauge last, so
 * a scrape that sees only itself in flight sees every earlier request
 * counted. Returns {status, type, text, samples}. */
export async function scrapeSettled(h, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const r = await scrape(h);
        assert.equal(r.status, 200, r.text);
        const samples = parseMetrics(r.text);
        const busy = sum(samples, 'litellm_in_flight_requests');
        if (busy <= 1 || Date.now() > deadline)
            return { ...r, samples };
        await new Promise((res) => setTimeout(res, 25));
    }
}

/* The parsed samples of h's /metrics, read with the master key, once
 * settled. */
export async function scrapeSamples(h) {
    return (await scrapeSettled(h)).samples;
}
