// HTTP receivers for what sluice sends off the request path: an OTLP/HTTP
// (JSON) collector, a webhook endpoint, Langfuse's ingestion API. Each
// records every POST (path, headers, parsed body) in this process.
//
//   const s = await startSink();                 // answers 200 {}
//   const s = await startSink({ mode: 'hang' }); // accepts, never answers
//   const s = await startSink({ status: 503 });  // refuses every batch
//   const s = await startSink({ mode: 'drain' }); // answers 200, keeps nothing
//                                                 // (benchmarks: costs next to nothing)
//   s.url, s.port, s.posts, await s.waitFor(pred, ms), await s.stop()

import http from 'node:http';

export async function startSink({ mode = 'ok', status = 200, reply = {} } = {}) {
    const posts = [];
    const hung = new Set();
    const server = http.createServer((req, res) => {
        if (mode === 'drain') {
            req.resume();
            req.on('end', () => { res.writeHead(status); res.end(); });
            return;
        }
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let body = raw;
            try { body = JSON.parse(raw); } catch { /* ndjson or text: kept as is */ }
            posts.push({ path: req.url, headers: req.headers, raw, body, at: Date.now() });
            if (mode === 'hang') { hung.add(res); return; }
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(reply));
        });
    });
    server.keepAliveTimeout = 1000;
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    return {
        port,
        url: `http://127.0.0.1:${port}`,
        posts,
        async waitFor(pred, timeoutMs = 10000) {
            const until = Date.now() + timeoutMs;
            for (;;) {
                const v = pred(posts);
                if (v) return v;
                if (Date.now() > until) throw new Error(`sink: condition not met in ${timeoutMs} ms (${posts.length} posts)`);
                await new Promise((r) => setTimeout(r, 50));
            }
        },
        async stop() {
            for (const res of hung) res.destroy();
            server.closeAllConnections?.();
            await new Promise((resolve) => server.close(resolve));
        },
    };
}
