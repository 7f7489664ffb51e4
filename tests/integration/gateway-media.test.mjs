// The pass-through routes for OpenAI-compatible deployments, through
// sluice with the official openai SDK: moderations, image generation,
// speech (the audio streamed back as it comes, never buffered) and
// transcriptions (a multipart upload passed on intact, only its model
// replaced); keys and errors as on every route; and the 404 for what
// sluice does not serve.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { toFile } from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            const openai = (name, model) => ({ model_name: name, litellm_params: { model: `openai/${model}`,
                api_base: ctx.fakeBase, api_key: FAKE_UPSTREAM_KEY } });
            cfg.model_list.push(
                openai('omni-moderation-latest', 'omni-moderation-2024-09-26'),
                openai('dall-e', 'dall-e-3'),
                openai('tts', 'gpt-4o-mini-tts'),
                openai('whisper', 'whisper-1'),
                openai('tts-drop', 'drop-mid-stream'),
                openai('tts-1', 'tts-1'),
                { model_name: 'claude', litellm_params: { model: 'anthropic/claude-test', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
            );
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const upstream = async (path) => (await h.fake.log()).filter((e) => e.path === path).at(-1);

/* The first of sluice's JSON log lines that pred accepts, once written. */
async function waitForLogLine(pred) {
    for (let i = 0; i < 100; i++) {
        const hit = h.sluiceLog().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no such log line');
}

describe('pass-through routes', () => {
    it('moderations: the upstream\'s answer with the client\'s model; no model means OpenAI\'s default', async () => {
        const r = await client.moderations.create({ model: 'omni-moderation-latest', input: ['I will kill it', 'hello'] });
        assert.equal(r.model, 'omni-moderation-latest');
        assert.equal(r.results[0].flagged, true);
        assert.equal(r.results[1].flagged, false);
        assert.equal((await upstream('/v1/moderations')).body.model, 'omni-moderation-2024-09-26');
        const d = await client.moderations.create({ input: 'hello' });
        assert.equal(d.results[0].flagged, false);
        assert.equal((await upstream('/v1/moderations')).body.model, 'omni-moderation-2024-09-26',
            'the deployment\'s model named upstream');
    });

    it('images: b64_json as sent, the upstream model name in the body', async () => {
        const r = await client.images.generate({ model: 'dall-e', prompt: 'a cat', response_format: 'b64_json' });
        const png = Buffer.from(r.data[0].b64_json, 'base64');
        assert.equal(png.toString('latin1', 1, 4), 'PNG');
        assert.equal(r.data[0].revised_prompt, 'A picture of: a cat');
        const up = await upstream('/v1/images/generations');
        assert.equal(up.body.model, 'dall-e-3');
        assert.equal(up.body.prompt, 'a cat');
    });

    it('speech: the audio bytes and content type, passed on as they come', async () => {
        const input = 'Hello from the fake speech route.';
        const t0 = Date.now();
        const res = await client.audio.speech.create({ model: 'tts', voice: 'alloy', input });
        assert.equal(res.headers.get('content-type'), 'audio/mpeg');
        const reader = res.body.getReader();
        const parts = [];
        const times = [];
        for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            parts.push(value);
            times.push(Date.now() - t0);
        }
        const mp3 = Buffer.concat(parts);
        assert.equal(mp3.length, input.length * 200);
        assert.deepEqual([...mp3.subarray(0, 2)], [0xff, 0xfb]);
        // the fake sends 4 chunks 100 ms apart: buffered, they would all come at once
        assert.ok(times.at(-1) - times[0] >= 200, `chunks at ${times.join(', ')} ms`);
        assert.equal((await upstream('/v1/audio/speech')).body.model, 'gpt-4o-mini-tts');
        assert.equal((await upstream('/v1/audio/speech')).body.stream_options, undefined);
    });

    it('speech cut by the upstream: the audio ends short, nothing else is written into it', async () => {
        const res = await client.audio.speech.create({ model: 'tts-drop', voice: 'alloy', input: 'one two three four' });
        const buf = Buffer.from(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
        assert.ok(!buf.toString('latin1').includes('error'), 'no error text inside the audio');
        assert.ok(!buf.toString('latin1').includes(': ping'));
    });

    it('transcriptions: the upload arrives intact, json and text answers as sent', async () => {
        const audio = crypto.randomBytes(48000);
        const sha = crypto.createHash('sha256').update(audio).digest('hex');
        const file = () => toFile(audio, 'speech.mp3', { type: 'audio/mpeg' });
        const j = await client.audio.transcriptions.create({ model: 'whisper', file: await file() });
        assert.equal(j.text, `Transcribed 48000 bytes of speech.mp3 (sha256 ${sha.slice(0, 16)})`);
        const up = await upstream('/v1/audio/transcriptions');
        assert.equal(up.model, 'whisper-1', 'the model replaced by the upstream\'s');
        assert.deepEqual(up.body.file, { filename: 'speech.mp3', content_type: 'audio/mpeg', bytes: 48000, sha256: sha });
        const t = await client.audio.transcriptions.create({ model: 'whisper', file: await file(), response_format: 'text' });
        assert.match(t, /^Transcribed 48000 bytes/);
        const v = await client.audio.transcriptions.create({ model: 'whisper', file: await file(),
            response_format: 'verbose_json', language: 'fr' });
        assert.equal(v.language, 'french');
    });

    it('priced per image, second and character from the built-in table', async () => {
        const { response } = await client.images.generate({ model: 'dall-e', prompt: 'a dog', response_format: 'b64_json' })
            .withResponse();
        assert.equal(Number(response.headers.get('x-litellm-response-cost')), 0.04, 'one dall-e-3 image');
        const audio = crypto.randomBytes(1000);
        const t = await client.audio.transcriptions.create({ model: 'whisper', file: await toFile(audio, 'a.mp3') })
            .withResponse();
        const secs = Math.ceil(t.data.usage.seconds);
        assert.ok(secs > 0);
        assert.ok(Math.abs(Number(t.response.headers.get('x-litellm-response-cost')) - secs * 0.0001) < 1e-12,
            `${secs} seconds of whisper-1`);
        const s = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello, héllo' });
        await s.arrayBuffer();
        // the audio's headers went out before its end: the cost is in the request's log line
        const line = await waitForLogLine((l) => l.path === '/v1/audio/speech' && l.model === 'tts-1');
        assert.ok(Math.abs(line.cost - 12 * 0.000015) < 1e-12, `12 characters of tts-1: ${line.cost}`);
    });

    it('what a client gets wrong: 400 OpenAI-shaped; no key 401; a model without the route 400', async () => {
        const post = (path, body, headers = {}) => fetch(`${h.baseURL}${path}`, { method: 'POST',
            headers: { authorization: `Bearer ${h.masterKey}`, ...headers }, body })
            .then(async (r) => ({ status: r.status, json: await r.json() }));
        const json = { 'content-type': 'application/json' };
        for (const [path, body, re] of [
            ['/moderations', { model: 'omni-moderation-latest' }, /input must be/],
            ['/images/generations', { model: 'dall-e' }, /prompt is a required field/],
            ['/images/generations', { model: 'dall-e', prompt: 'x', stream: true }, /Streamed image generation/],
            ['/audio/speech', { model: 'tts', voice: 'alloy' }, /input is a required field/],
            ['/images/generations', { model: 'claude', prompt: 'x' }, /does not support this endpoint/],
        ]) {
            const r = await post(path, JSON.stringify(body), json);
            assert.equal(r.status, 400, `${path} ${JSON.stringify(r.json)}`);
            assert.match(r.json.error.message, re);
        }
        const noFile = new FormData();
        noFile.append('model', 'whisper');
        let r = await post('/audio/transcriptions', noFile);
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /file is a required field/);
        const noModel = new FormData();
        noModel.append('file', new Blob([Buffer.from('abc')]), 'a.mp3');
        r = await post('/audio/transcriptions', noModel);
        assert.match(r.json.error.message, /model is a required field/);
        r = await post('/audio/transcriptions', JSON.stringify({ model: 'whisper' }), json);
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /multipart\/form-data/);
        r = await post('/audio/transcriptions', '--x\r\nbroken', { 'content-type': 'multipart/form-data; boundary=x' });
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /not well-formed/);
        const noKey = await fetch(`${h.baseURL}/moderations`, { method: 'POST', headers: json, body: '{"input":"x"}' });
        assert.equal(noKey.status, 401);
    });

    it('what sluice does not serve under /v1: 404 naming the route, OpenAI-shaped', async () => {
        for (const path of ['/batches', '/files', '/fine_tuning/jobs', '/assistants', '/images/edits']) {
            const res = await fetch(`${h.baseURL}${path}`, { method: 'POST',
                headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' }, body: '{}' });
            assert.equal(res.status, 404);
            const body = await res.json();
            assert.match(body.error.message, new RegExp(`No route for POST /v1${path}`));
        }
    });
});
