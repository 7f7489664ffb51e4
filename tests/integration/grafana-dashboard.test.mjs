// docs/grafana/sluice-dashboard.json: an importable Grafana dashboard
// (schemaVersion, uid, the DS_PROMETHEUS input, every panel with a title,
// a datasource and a query, unique ids) whose queries name only metrics
// sluice exports and only labels those metrics carry. The names are checked
// against the exposition of a real sluice after some traffic, and against
// the families in src/metrics.c for those this traffic cannot produce.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startHarness } from './lib/harness.mjs';
import { scrapeSettled } from './lib/metrics.mjs';

const dashboard = JSON.parse(fs.readFileSync(new URL('../../docs/grafana/sluice-dashboard.json', import.meta.url), 'utf8'));
const metricsC = fs.readFileSync(new URL('../../src/metrics.c', import.meta.url), 'utf8');

const ask = (text) => [{ role: 'user', content: text }];
const METRIC = /\b(?:litellm|sluice)_[a-z0-9_]+/g;
const HIST = /_(bucket|sum|count)$/;
const CORE = ['litellm_proxy_total_requests_metric_total', 'litellm_request_total_latency_metric',
    'litellm_input_tokens_metric_total', 'litellm_spend_metric_total',
    'litellm_deployment_successful_fallbacks_total'];

/* Every panel, rows' nested panels included; rows themselves hold no query. */
const allPanels = (list) => list.flatMap((p) => [p, ...allPanels(p.panels || [])]);
const queryPanels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');

/* Every query text: panel targets and template variables. */
function queries() {
    const out = queryPanels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
    for (const v of dashboard.templating.list) {
        if (v.type !== 'query') continue;
        for (const q of [v.definition, typeof v.query === 'string' ? v.query : v.query?.query]) {
            if (q) out.push({ where: `variable $${v.name}`, expr: q });
        }
    }
    return out;
}

/* The metric names of a query: identifiers outside label matchers and
 * by (...) clauses (a label such as litellm_model_name is no metric). */
function metricsOf(expr) {
    const bare = expr.replace(/\{[^}]*\}/g, '{}')
        .replace(/\b(by|without)\s*\([^)]*\)/g, '$1()')
        .replace(/label_values\(([^,]*),[^)]*\)/g, 'label_values($1)');
    return [...new Set(bare.match(METRIC) || [])];
}

/* The balanced (...) group starting at s[i] === '(' (forward) or ending at
 * s[i] === ')' (backward). */
function group(s, i, dir) {
    let depth = 0;
    for (let j = i; j >= 0 && j < s.length; j += dir) {
        if (s[j] === '(' || s[j] === ')') depth += (s[j] === '(') === (dir > 0) ? 1 : -1;
        if (depth === 0) return dir > 0 ? s.slice(i, j + 1) : s.slice(j, i + 1);
    }
    assert.fail(`unbalanced parentheses: ${s}`);
}

/* [{metric, label}] pairs a query relies on: its label matchers, the labels
 * of its by (...) clauses (for every metric the aggregation reads) and the
 * label of label_values(metric, label). */
function labelUses(expr) {
    const uses = [];
    for (const m of expr.matchAll(/\b((?:litellm|sluice)_[a-z0-9_]+)\{([^}]*)\}/g)) {
        for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) uses.push({ metric: m[1], label: lm[1] });
    }
    for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)\s*/g)) {
        const after = m.index + m[0].length;
        const arg = expr[after] === '(' ? group(expr, after, 1) : group(expr, expr.lastIndexOf(')', m.index), -1);
        const labels = m[1].split(',').map((l) => l.trim()).filter(Boolean);
        for (const metric of metricsOf(arg)) for (const label of labels) uses.push({ metric, label });
    }
    for (const m of expr.matchAll(/label_values\(\s*((?:litellm|sluice)_[a-z0-9_]+)[^,]*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g)) {
        uses.push({ metric: m[1], label: m[2] });
    }
    return uses;
}

/* src/metrics.c: family name -> its label names (from the families[] table,
 * the label macros expanded), plus the three series sl_metrics_render adds. */
function familiesOfSource() {
    const macros = new Map();
    for (const m of metricsC.matchAll(/^#define ([A-Z_]+_LABELS) ((?:.*\\\n)*.*)$/gm)) macros.set(m[1], m[2]);
    const labelsOf = (text) => [
        ...[...text.matchAll(/\{\s*L_[A-Z0-9_]+,\s*"([a-z_]+)"\s*\}/g)].map((m) => m[1]),
        ...[...text.matchAll(/\b([A-Z_]+_LABELS)\b/g)].flatMap((m) => labelsOf(macros.get(m[1]) || '')),
    ];
    const table = /static const struct family families\[\] = \{([\s\S]*?)\n\};/.exec(metricsC);
    assert.ok(table, 'the families[] table in src/metrics.c');
    const out = new Map();
    // an entry opens with its name: { "litellm_...", (a label is { L_..., "..." })
    const names = [...table[1].matchAll(/\{\s*"((?:litellm|sluice)_[a-z0-9_]+)"/g)];
    names.forEach((m, i) => {
        const end = i + 1 < names.length ? names[i + 1].index : table[1].length;
        const entry = table[1].slice(m.index, end);
        out.set(m[1], { histogram: /\bT_HISTOGRAM\b/.test(entry), labels: new Set(labelsOf(entry)) });
    });
    const render = /int sl_metrics_render\([\s\S]*?\n\}/.exec(metricsC);
    assert.ok(render, 'sl_metrics_render in src/metrics.c');
    for (const m of render[0].matchAll(/# TYPE ((?:litellm|sluice)_[a-z0-9_]+) /g)) {
        out.set(m[1], { histogram: false, labels: new Set() });
    }
    return out;
}

describe('Grafana dashboard: docs/grafana/sluice-dashboard.json', () => {
    it('is importable: schemaVersion 39, fixed uid, the DS_PROMETHEUS input', () => {
        assert.equal(dashboard.schemaVersion, 39);
        assert.equal(dashboard.uid, 'sluice-gateway');
        assert.equal(dashboard.id, null);
        assert.ok(Array.isArray(dashboard.__inputs));
        const input = dashboard.__inputs.find((i) => i.name === 'DS_PROMETHEUS');
        assert.ok(input, 'a DS_PROMETHEUS input');
        assert.equal(input.type, 'datasource');
        assert.equal(input.pluginId, 'prometheus');
    });

    it('every panel has a title, the datasource and a query; ids are unique', () => {
        assert.ok(queryPanels.length > 0);
        const ids = allPanels(dashboard.panels).map((p) => p.id);
        assert.ok(ids.every((id) => Number.isInteger(id)), 'integer ids');
        assert.equal(new Set(ids).size, ids.length, `panel ids unique: ${ids}`);
        for (const p of allPanels(dashboard.panels)) assert.ok(typeof p.title === 'string' && p.title !== '', `a title: ${p.id}`);
        for (const p of queryPanels) {
            assert.ok(['timeseries', 'stat'].includes(p.type), `${p.title}: ${p.type}`);
            assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: datasource`);
            assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `${p.title}: targets`);
            for (const t of p.targets) {
                assert.equal(typeof t.expr, 'string', `${p.title}: expr`);
                assert.ok(t.expr.trim() !== '', `${p.title}: empty expr`);
                if (t.datasource) assert.equal(t.datasource.uid, '${DS_PROMETHEUS}', `${p.title}: target datasource`);
            }
        }
    });

    it('template variables model_group, api_key_alias, team: multi-select with All', () => {
        const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
        for (const name of ['model_group', 'api_key_alias', 'team']) {
            const v = vars.get(name);
            assert.ok(v, `$${name}`);
            assert.equal(v.multi, true, `$${name} multi`);
            assert.equal(v.includeAll, true, `$${name} includeAll`);
            assert.equal(v.datasource?.uid, '${DS_PROMETHEUS}', `$${name} datasource`);
        }
        assert.match(vars.get('model_group').definition,
            /^label_values\(litellm_proxy_total_requests_metric_total,\s*requested_model\)$/);
    });

    it('the queries read counters with rate() or increase() over $__rate_interval', () => {
        for (const { where, expr } of queries()) {
            for (const m of expr.matchAll(/\b(rate|increase|irate)\(([^[]*)\[([^\]]*)\]/g)) {
                assert.equal(m[3], '$__rate_interval', `${where}: ${m[0]}`);
            }
            for (const metric of metricsOf(expr)) {
                if (!/_total$|_bucket$/.test(metric) || expr.startsWith('label_values')) continue;
                assert.match(expr, new RegExp(`(rate|increase)\\(${metric}\\b`), `${where}: ${metric} without rate()`);
            }
        }
    });

    describe('against a real sluice', () => {
        let h;
        let live;        // family names with a TYPE line in the exposition
        let liveLabels;  // sample name -> label names seen
        const source = familiesOfSource();

        before(async () => {
            h = await startHarness({ routerSettings: { fallbacks: [{ 'fault-500': ['gpt-4o-mini'] }] } });
            const client = h.client();
            for (let i = 0; i < 3; i++) {
                await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(`hi ${i}`) });
            }
            await assert.rejects(client.chat.completions.create({ model: 'fault-400', messages: ask('x') }),
                (e) => e.status === 400);
            const fb = await client.chat.completions.create({ model: 'fault-500', messages: ask('fall back') });
            assert.equal(fb.choices[0].message.role, 'assistant');
            const s = await client.chat.completions.create({ model: 'slow-stream', messages: ask('stream'), stream: true });
            for await (const chunk of s) assert.equal(typeof chunk, 'object');
            const { text, samples } = await scrapeSettled(h);
            live = new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]));
            liveLabels = new Map();
            for (const { name, labels } of samples) {
                if (!liveLabels.has(name)) liveLabels.set(name, new Set());
                for (const l of Object.keys(labels)) liveLabels.get(name).add(l);
            }
        });
        after(async () => { if (h) await h.stop(); });

        it('src/metrics.c: the family table read', () => {
            for (const name of [...CORE, 'sluice_rejections_total', 'litellm_guardrail_requests_total',
                'litellm_in_flight_requests', 'sluice_processes', 'sluice_metrics_overflow_total']) {
                assert.ok(source.has(name), `${name} in src/metrics.c`);
            }
            assert.ok(source.get('litellm_request_total_latency_metric').histogram);
            assert.ok(source.get('litellm_spend_metric_total').labels.has('team'));
        });

        it('the core families are in the live exposition, with samples', () => {
            for (const name of CORE) {
                assert.ok(live.has(name), `# TYPE ${name} in /metrics`);
                const sample = source.get(name)?.histogram ? `${name}_count` : name;
                assert.ok(liveLabels.has(sample), `samples of ${name} after the traffic`);
            }
        });

        it('every metric a query names exists in sluice', () => {
            const used = new Set();
            for (const { where, expr } of queries()) {
                for (const name of metricsOf(expr)) {
                    const family = live.has(name) || source.has(name) ? name : name.replace(HIST, '');
                    used.add(family);
                    assert.ok(live.has(family) || source.has(family),
                        `${where}: ${name} is neither in /metrics nor in src/metrics.c`);
                    if (family !== name) {
                        assert.ok((source.get(family) || {}).histogram !== false,
                            `${where}: ${name}: ${family} is not a histogram`);
                    }
                }
            }
            for (const name of CORE) assert.ok(used.has(name), `the dashboard uses ${name}`);
        });

        it('every label a query filters or groups on is a label of its metric', () => {
            for (const { where, expr } of queries()) {
                for (const { metric, label } of labelUses(expr)) {
                    let labels = liveLabels.get(metric);
                    let from = '/metrics';
                    if (!labels) {
                        const family = source.has(metric) ? metric : metric.replace(HIST, '');
                        const f = source.get(family);
                        assert.ok(f, `${where}: ${metric} unknown`);
                        labels = new Set([...f.labels, ...(metric.endsWith('_bucket') ? ['le'] : [])]);
                        from = 'src/metrics.c';
                    }
                    assert.ok(labels.has(label), `${where}: ${metric} has no label ${label} (${from}: ${[...labels]})`);
                }
            }
        });
    });
});
