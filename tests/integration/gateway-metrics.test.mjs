// GET /metrics: Prometheus text summed over every sluice process of the
// host. A known mix of calls is spread over two responders that lighttpd
// spawned; the scrape (served by either) must show exact counts, and a
// responder killed and respawned must not take its counts with it. Then
// the families of routing (retries, fallbacks, cooldowns), admission
// (rate-limit rejections), guardrails and access to the endpoint.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { waitFor } from './lib/procs.mjs';
import { scrape, scrapeSamples, scrapeSettled, sum } from './lib/metrics.mjs';

const ask = (text) => [{ role: 'user', content: text }];

describe('/metrics: exact counts over two processes', () => {
    let h;
    let client;

    before(async () => {
        h = await startHarness({ maxProcs: 2 });
        client = h.client();
    });
    after(async () => { if (h) await h.stop(); });

    const usage = { prompt: 0, completion: 0 };
    const mix = async (rounds) => {
        for (let r = 0; r < rounds; r++) {
            // concurrent, so that lighttpd hands them to both responders
            const calls = [];
            for (let i = 0; i < 3; i++) {
                calls.push(client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(`hi ${r} ${i}`) })
                    .then((c) => { usage.prompt += c.usage.prompt_tokens; usage.completion += c.usage.completion_tokens; }));
            }
            calls.push((async () => {
                const s = await client.chat.completions.create({
                    model: 'slow-stream', messages: ask(`stream ${r}`), stream: true,
                    stream_options: { include_usage: true },
                });
                for await (const c of s) {
                    if (c.usage) { usage.prompt += c.usage.prompt_tokens; usage.completion += c.usage.completion_tokens; }
                }
            })());
            calls.push(client.chat.completions.create({ model: 'fault-400', messages: ask('x') })
                .then(() => assert.fail('fault-400 answered'), (e) => assert.equal(e.status, 400)));
            calls.push(client.chat.completions.create({ model: 'no-such-model', messages: ask('x') })
                .then(() => assert.fail('unknown model answered'), (e) => assert.equal(e.status, 400)));
            calls.push(fetch(`${h.baseURL}/chat/completions`, {
                method: 'POST', headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'gpt-4o-mini', messages: ask('x') }),
            }).then(async (res) => { await res.arrayBuffer(); assert.equal(res.status, 401); }));
            await Promise.all(calls);
        }
    };

    it('a known mix: requests by model group and status, tokens, failures, latency counts', async () => {
        await mix(4);
        const { status, type, text, samples: m } = await scrapeSettled(h);
        assert.equal(status, 200);
        assert.match(type, /^text\/plain; version=0\.0\.4/);
        const total = 'litellm_proxy_total_requests_metric_total';
        assert.equal(sum(m, total, { requested_model: 'gpt-4o-mini', status_code: '200' }), 12);
        assert.equal(sum(m, total, { requested_model: 'slow-stream', status_code: '200' }), 4);
        assert.equal(sum(m, total, { requested_model: 'fault-400', status_code: '400' }), 4);
        assert.equal(sum(m, total, { status_code: '401' }), 4);
        assert.equal(sum(m, total, { requested_model: '', status_code: '400' }), 4, 'the unknown model');
        assert.equal(sum(m, total), 28);
        assert.ok(!text.includes('no-such-model'), 'a name the client made up is never a label value');
        assert.ok(!text.includes('sk-wrong'));
        const failed = 'litellm_proxy_failed_requests_metric_total';
        assert.equal(sum(m, failed, { requested_model: 'fault-400', exception_status: '400', exception_class: 'BadRequestError' }), 4);
        assert.equal(sum(m, failed, { exception_status: '401', exception_class: 'AuthenticationError' }), 4);
        assert.equal(sum(m, failed), 12);
        assert.equal(sum(m, 'litellm_input_tokens_metric_total'), usage.prompt);
        assert.equal(sum(m, 'litellm_output_tokens_metric_total'), usage.completion);
        assert.equal(sum(m, 'litellm_total_tokens_metric_total'), usage.prompt + usage.completion);
        assert.equal(sum(m, 'litellm_input_tokens_metric_total', { requested_model: 'gpt-4o-mini', model: 'gpt-4o-mini' }) > 0, true);
        // histograms: every request once in the total latency, every upstream success in the call latency
        assert.equal(sum(m, 'litellm_request_total_latency_metric_count'), 28);
        assert.equal(sum(m, 'litellm_request_total_latency_metric_bucket', { le: '+Inf' }), 28);
        assert.equal(sum(m, 'litellm_llm_api_latency_metric_count', { requested_model: 'gpt-4o-mini' }), 12);
        assert.equal(sum(m, 'litellm_llm_api_time_to_first_token_metric_count', { requested_model: 'slow-stream' }), 4);
        assert.equal(sum(m, 'litellm_llm_api_time_to_first_token_metric_count', { requested_model: 'gpt-4o-mini' }), 0);
        const slow = m.filter((s) => s.name === 'litellm_request_total_latency_metric_bucket' &&
            s.labels.requested_model === 'slow-stream');
        assert.ok(slow.length > 0);
        assert.equal(sum(slow, 'litellm_request_total_latency_metric_bucket', { le: '0.005' }), 0,
            'a slow stream is not in the 5 ms bucket');
        // deployments: attempts, successes and failures by class
        assert.equal(sum(m, 'litellm_deployment_total_requests_total', { requested_model: 'fault-400' }), 4);
        assert.equal(sum(m, 'litellm_deployment_failure_responses_total',
            { requested_model: 'fault-400', exception_status: '400', exception_class: 'BadRequestError' }), 4);
        assert.equal(sum(m, 'litellm_deployment_success_responses_total', { litellm_model_name: 'gpt-4o-mini' }), 12);
        assert.equal(sum(m, 'litellm_deployment_success_responses_total', { api_provider: 'openai' }), 16);
        // every route, /metrics included
        assert.equal(sum(m, 'sluice_http_requests_total', { route: '/v1/chat/completions' }), 28);
        assert.equal(sum(m, 'sluice_processes'), 2);
        assert.equal(sum(m, 'litellm_in_flight_requests'), 1, 'the scrape itself');
        assert.equal(sum(m, 'sluice_metrics_overflow_total'), 0);
    });

    it('both responders counted, and a responder killed and respawned keeps the counts', async () => {
        assert.equal(h.respondersAlive().length, 2);
        const before = await scrapeSamples(h);
        const victim = h.respondersAlive()[0];
        process.kill(victim, 'SIGKILL');
        await waitFor(() => !h.respondersAlive().includes(victim), { timeoutMs: 5000, describe: () => 'the kill' });
        // lighttpd replaces a dead responder on its once-a-second check; a
        // request it hands out before then may get its 500 (not sluice's)
        await waitFor(() => h.respondersNow().filter((p) => !h.responders.includes(p)).length > 0,
            { timeoutMs: 10000, describe: () => 'the responder lighttpd starts in its place' });
        await mix(2);
        const after = await scrapeSamples(h);
        const total = 'litellm_proxy_total_requests_metric_total';
        assert.equal(sum(after, total, { requested_model: 'gpt-4o-mini', status_code: '200' }),
            sum(before, total, { requested_model: 'gpt-4o-mini', status_code: '200' }) + 6);
        assert.equal(sum(after, total), sum(before, total) + 14);
        assert.equal(sum(after, 'litellm_input_tokens_metric_total'), usage.prompt);
    });
});

describe('/metrics: routing, admission, guardrails and access', () => {
    let h;
    let client;

    before(async () => {
        h = await startHarness({
            routerSettings: {
                num_retries: 1, allowed_fails: 0, cooldown_time: 30,
                fallbacks: [{ 'fb-primary': ['gpt-4o-mini'] }],
            },
            sluiceSettings: { end_user_rpm_limit: 2, metrics_allowed_ips: ['10.9.8.0/24'] },
            configure: (cfg, ctx) => {
                const p = (upstream) => ({
                    model: `openai/${upstream}`, api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY,
                    timeout: 10, stream_timeout: 10,
                });
                cfg.model_list.push(
                    { model_name: 'fb-primary', litellm_params: p('fault-500') },
                    { model_name: 'two-429', litellm_params: p('fault-429'), model_info: { id: 'a-429' } },
                    { model_name: 'two-429', litellm_params: p('fault-429'), model_info: { id: 'b-429' } },
                );
                cfg.guardrails = [{
                    guardrail_name: 'mask-email',
                    litellm_params: { guardrail: 'sluice_pii', mode: 'pre_call', detectors: ['EMAIL'], default_on: true },
                }];
            },
        });
        client = h.client();
    });
    after(async () => { if (h) await h.stop(); });

    it('retries, fallbacks and cooldowns', async () => {
        // fb-primary: one deployment failing 500, retried once, then gpt-4o-mini answers
        for (let i = 0; i < 2; i++) {
            const c = await client.chat.completions.create({ model: 'fb-primary', messages: ask('x') });
            assert.equal(c.choices[0].message.role, 'assistant');
        }
        // two-429: both deployments answer 429 and cool down; the retry takes the other one
        await assert.rejects(client.chat.completions.create({ model: 'two-429', messages: ask('x') }),
            (e) => e.status === 429);
        const m = await scrapeSamples(h);
        assert.equal(sum(m, 'litellm_deployment_successful_fallbacks_total',
            { requested_model: 'fb-primary', fallback_model: 'gpt-4o-mini', exception_class: 'InternalServerError' }), 2);
        assert.equal(sum(m, 'litellm_deployment_failed_fallbacks_total'), 0);
        assert.equal(sum(m, 'sluice_fallbacks_total', { requested_model: 'fb-primary' }), 2);
        assert.equal(sum(m, 'sluice_retries_total', { requested_model: 'fb-primary' }), 2);
        assert.equal(sum(m, 'litellm_deployment_failure_responses_total',
            { requested_model: 'fb-primary', exception_status: '500', exception_class: 'InternalServerError' }), 4);
        assert.equal(sum(m, 'litellm_proxy_total_requests_metric_total', { requested_model: 'fb-primary', status_code: '200' }), 2);
        assert.equal(sum(m, 'litellm_deployment_cooled_down_total', { model_id: 'a-429', exception_status: '429' }), 1);
        assert.equal(sum(m, 'litellm_deployment_cooled_down_total', { model_id: 'b-429', exception_status: '429' }), 1);
        assert.equal(sum(m, 'litellm_deployment_failure_responses_total',
            { requested_model: 'two-429', exception_class: 'RateLimitError' }), 2);
    });

    it('rate-limit rejections by reason and scope; guardrail runs by outcome', async () => {
        const call = (user, content) => client.chat.completions.create({ model: 'gpt-4o-mini', user, messages: ask(content) });
        await call('alice', 'write to bob@example.com');
        await call('alice', 'nothing to see');
        await assert.rejects(call('alice', 'x'), (e) => e.status === 429);
        const m = await scrapeSamples(h);
        assert.equal(sum(m, 'sluice_rejections_total', { reason: 'rpm', scope: 'end_user' }), 1);
        assert.ok(!(await scrape(h)).text.includes('alice'), 'the end user is not a label');
        assert.equal(sum(m, 'litellm_guardrail_requests_total',
            { guardrail_name: 'mask-email', status: 'masked', hook_type: 'pre_call' }), 1);
        assert.ok(sum(m, 'litellm_guardrail_requests_total', { guardrail_name: 'mask-email', status: 'passed' }) >= 1);
        assert.equal(sum(m, 'litellm_guardrail_latency_seconds_count', { guardrail_name: 'mask-email', status: 'masked' }), 1);
    });

    it('access: the master key; 401 without a key or with a wrong one, OpenAI-shaped', async () => {
        for (const headers of [{}, { authorization: 'Bearer sk-nope' }]) {
            const r = await scrape(h, headers);
            assert.equal(r.status, 401);
            assert.equal(typeof JSON.parse(r.text).error.message, 'string');
        }
        const ok = await scrape(h);
        assert.equal(ok.status, 200);
    });
});

describe('/metrics: access settings', () => {
    it('an allowed address reads it without a key; require_auth_for_metrics_endpoint: false opens it; metrics: false turns it off', async () => {
        const allowed = await startHarness({ sluiceSettings: { metrics_allowed_ips: ['127.0.0.0/8', '::1'] } });
        try {
            assert.equal((await scrape(allowed, {})).status, 200);
        } finally { await allowed.stop(); }
        const open = await startHarness({ litellmSettings: { require_auth_for_metrics_endpoint: false } });
        try {
            assert.equal((await scrape(open, {})).status, 200);
        } finally { await open.stop(); }
        const off = await startHarness({ sluiceSettings: { metrics: false } });
        try {
            const r = await scrape(off);
            assert.equal(r.status, 404);
            assert.match(JSON.parse(r.text).error.message, /metrics: false/);
        } finally { await off.stop(); }
    });
});
