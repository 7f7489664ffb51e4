// OpenAI's Codex CLI (npm @openai/codex, pinned in package.json), which
// speaks only the Responses API, pointed at sluice as a custom model
// provider, fully offline: `codex exec` completes a task that needs one
// real tool call (its exec_command tool runs a shell command that writes a
// file), once through an openai/ deployment (the Responses API passed
// through) and once through an anthropic/ one (translated to chat and back,
// streamed). The fakes answer "call tool: run `CMD`" with a call of the
// agent's shell tool (tests/fakes/openai.mjs, toolArguments).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CODEX = path.join(ROOT, 'node_modules/.bin/codex');

let h;
let tmp;

before(async () => {
    assert.ok(fs.existsSync(CODEX), 'the Codex CLI is a devDependency: npm ci installs it');
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            cfg.model_list.push(
                { model_name: 'codex-openai', litellm_params: { model: 'openai/gpt-4o-mini', api_base: ctx.fakeBase,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'codex-claude', litellm_params: { model: 'anthropic/claude-test', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
            );
        },
    });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-codex-'));
});

after(async () => {
    if (h) await h.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/* Runs `codex exec` in a fresh directory with its own CODEX_HOME whose
 * config names sluice as the model provider. {code, stdout, stderr, dir,
 * last} (last: the agent's final message). */
function codexExec(model, prompt) {
    const home = fs.mkdtempSync(path.join(tmp, 'home-'));
    const dir = fs.mkdtempSync(path.join(tmp, 'work-'));
    fs.writeFileSync(path.join(home, 'config.toml'), [
        `model = "${model}"`,
        'model_provider = "sluice"',
        // nothing but the provider: no update check, analytics, telemetry or
        // plugin fetch (Codex would otherwise look up github.com and chatgpt.com)
        'check_for_update_on_startup = false',
        '[analytics]',
        'enabled = false',
        '[feedback]',
        'enabled = false',
        '[otel]',
        'exporter = "none"',
        'trace_exporter = "none"',
        'metrics_exporter = "none"',
        '[features]',
        'plugins = false',
        'remote_plugin = false',
        'apps = false',
        '[model_providers.sluice]',
        'name = "sluice"',
        `base_url = "${h.baseURL}"`,
        'env_key = "SLUICE_API_KEY"',
        'wire_api = "responses"',
        'request_max_retries = 0',
        'stream_max_retries = 0',
        '',
    ].join('\n'));
    const last = path.join(dir, '..', `${path.basename(dir)}.last.txt`);
    return new Promise((resolve, reject) => {
        const child = spawn(CODEX, ['exec', '--strict-config', '--skip-git-repo-check',
            '--dangerously-bypass-approvals-and-sandbox', '--ephemeral', '--color', 'never', '-o', last, prompt], {
            cwd: dir,
            env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: home, SLUICE_API_KEY: h.masterKey,
                RUST_LOG: 'error', NO_COLOR: '1' },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => { stdout += d; });
        child.stderr.on('data', (d) => { stderr += d; });
        const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, dir, last: fs.existsSync(last) ? fs.readFileSync(last, 'utf8') : null });
        });
    });
}

describe('the Codex CLI against sluice', () => {
    for (const [model, upstreamPath] of [['codex-openai', '/v1/responses'], ['codex-claude', '/v1/messages']]) {
        it(`${model}: one tool call runs a shell command, then the final answer`, async () => {
            const before = (await h.fake.log()).filter((e) => e.path === upstreamPath).length;
            const r = await codexExec(model, 'call tool: run `echo hello from codex > out.txt`');
            const why = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
            assert.equal(r.code, 0, why);
            assert.equal(fs.readFileSync(path.join(r.dir, 'out.txt'), 'utf8'), 'hello from codex\n',
                'the command ran');
            assert.match(r.last ?? '', /^Echo: tool result: /, why);
            const sent = (await h.fake.log()).filter((e) => e.path === upstreamPath).slice(before);
            assert.equal(sent.length, 2, 'the task, then the task with the tool\'s output');
            if (model === 'codex-claude') {
                // the agent's exec_command reached Anthropic as a tool; the built-in ones were left out
                assert.ok(sent[0].body.tools.some((t) => t.name === 'exec_command'));
                assert.ok(!sent[0].body.tools.some((t) => t.type === 'web_search'));
                assert.equal(sent[1].body.messages.at(-1).content[0].type, 'tool_result');
            } else {
                assert.equal(sent[0].body.model, 'gpt-4o-mini');
                assert.equal(sent[0].body.store, false);
                assert.ok(sent[1].body.input.some((i) => i.type === 'function_call_output'));
            }
        });
    }
});
