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

/* The parsed samples of h's /metrics, read with the master key. */
export async function scrapeSamples(h) {
    return parseMetrics((await scrape(h)).text);
}
