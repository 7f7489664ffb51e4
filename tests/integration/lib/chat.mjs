// Small helpers the SDK-driven tests share.

import { it } from 'node:test';
import assert from 'node:assert/strict';

/* A one-message conversation. */
export const user = (text) => [{ role: 'user', content: text }];

/* Every chunk of an SDK stream, in order. */
export async function collect(stream) {
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    return chunks;
}

/* The text the deltas of OpenAI chat chunks add up to (first choice). */
export const textOf = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

/* Registers one test per [model, status, ErrorClass, code] case: a chat call
 * to that model fails in the SDK with that class, status and (when given)
 * code, and a non-empty OpenAI-shaped message. client() gives the SDK client
 * once the suite's before() has run. */
export function chatFaultTests(client, cases) {
    for (const [model, status, cls, code] of cases) {
        it(`${model} → ${status}`, async () => {
            await assert.rejects(client().chat.completions.create({ model, messages: user('x') }), (e) => {
                assert.ok(e instanceof cls, `${model}: ${e.constructor.name} ${e.status} ${e.message}`);
                assert.equal(e.status, status);
                assert.equal(typeof e.error.message, 'string');
                assert.ok(e.error.message.length > 0);
                if (code) assert.equal(e.code, code);
                return true;
            });
        });
    }
}

/* Registers one test per model: its stream ends in an error the SDK raises. */
export function streamFaultTests(client, models, APIError) {
    for (const model of models) {
        it(`${model}: the stream ends in an error the SDK raises`, async () => {
            const stream = await client().chat.completions.create({ model, messages: user('one two three'),
                stream: true });
            await assert.rejects(collect(stream), (e) => e instanceof APIError, model);
        });
    }
}
