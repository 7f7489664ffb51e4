// Small helpers the SDK-driven tests share.

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
