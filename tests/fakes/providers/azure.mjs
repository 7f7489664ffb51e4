// Fake Azure OpenAI upstream (loaded by tests/fakes/openai.mjs).
//
// Routes (everything under /openai/):
//   POST /openai/deployments/{deployment}/chat/completions?api-version=...
//   POST /openai/deployments/{deployment}/embeddings?api-version=...
//   POST /openai/v1/chat/completions, POST /openai/v1/embeddings,
//   GET /openai/v1/models      the newer v1 surface: the model is in the
//                              body and api-version is optional
//   POST /openai/responses?api-version=..., POST /openai/v1/responses
//                              the Responses API (the deployment is the
//                              body's model), answered by openai-extra.mjs
// Any other path under /openai/, and a deployments route without
// ?api-version=, answers Azure's 404 {"error":{"code":"404","message":
// "Resource not found"}}.
//
// Auth: an "api-key" header (the key resource), or "Authorization: Bearer
// <Entra ID token>" where the fake accepts the token "fake-azure-ad-token"
// (and, on the v1 surface only, the api key itself as a bearer, as Azure
// does). Without --api-key any api-key / bearer value is accepted, but one
// of the two headers must be there. Failures are 401 {"error":{"code":"401",
// "message":...}} with Azure's wording (missing key, invalid key, bad token).
// Auth is checked before the api-version.
//
// Behaviour: after auth and api-version the request is handed to the OpenAI
// fake (ctx.helpers.openai) with "model" set to the deployment name, so the
// answers (echo text, streaming, tools, max_tokens, usage, embeddings) and the
// OpenAI fake's fault models (fault-500, fault-400, empty-NNN,
// slow-first-byte, drop-mid-stream, hang, slow-stream, echo-body) work with
// the deployment name as the model. Streamed chat starts, as Azure's does,
// with a chunk that has "choices": [] and "prompt_filter_results" (empty id,
// model and object); so drop-mid-stream shows three events on the wire (that
// chunk and the OpenAI fake's two) before the socket is destroyed.
//
// Azure's own faults, by deployment (v1 surface: by the body's model):
//   content-filter    400 code "content_filter", param "prompt", innererror
//                     {code: "ResponsibleAIPolicyViolation",
//                     content_filter_result: {...}} (Azure's prompt filter)
//   context-too-long  400 code "context_length_exceeded"
//   fault-429         429 {"error":{"code":"429",...}} with retry-after: 7
//                     and retry-after-ms: 7000
//   overloaded        503 {"error":{"code":"ServiceUnavailable",...}}
//   bad-event         stream: the 2nd SSE event is not JSON
//   stream-error      stream: after two events, an in-band
//                     data: {"error": {...}} event, then the end of the body
// (bad-event and stream-error answer normally when not streaming.)

import { handle as responsesHandle } from './openai-extra.mjs';

const AD_TOKEN = 'fake-azure-ad-token';
const RESPONSES_ROUTES = new Set(['POST /openai/responses', 'POST /openai/v1/responses']);
const DEPLOYMENT_RE = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/;
const V1_ROUTES = {
    'POST /openai/v1/chat/completions': '/v1/chat/completions',
    'POST /openai/v1/embeddings': '/v1/embeddings',
    'GET /openai/v1/models': '/v1/models',
};

export function matches(method, pathname) {
    return pathname.startsWith('/openai/');
}

function azureError(res, sendJSON, status, code, message, headers = {}) {
    sendJSON(res, status, { error: { code, message } }, headers);
}

/* Checks the api-key header or the bearer token; answers 401 and returns
 * false when neither is acceptable. */
function checkAuth(ctx, v1) {
    const { req, res, entry, apiKey, helpers } = ctx;
    const key = req.headers['api-key'];
    const auth = req.headers.authorization;
    if (typeof key === 'string' && key !== '') {
        entry.auth_ok = apiKey === null || key === apiKey;
        if (!entry.auth_ok) {
            azureError(res, helpers.sendJSON, 401, '401',
                'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key ' +
                'for an active subscription and use a correct regional API endpoint for your resource.');
        }
        return entry.auth_ok;
    }
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth.trim()) : null;
    if (m) {
        entry.auth_ok = apiKey === null || m[1] === AD_TOKEN || (v1 && m[1] === apiKey);
        if (!entry.auth_ok) {
            azureError(res, helpers.sendJSON, 401, '401',
                'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), ' +
                'or have expired.');
        }
        return entry.auth_ok;
    }
    entry.auth_ok = false;
    azureError(res, helpers.sendJSON, 401, '401',
        'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.');
    return false;
}

/* Azure's own error faults; true if one was sent. */
function sendAzureFault(res, sendJSON, model, operation) {
    switch (model) {
    case 'content-filter':
        sendJSON(res, 400, {
            error: {
                message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. " +
                    'Please modify your prompt and retry. To learn more about our content filtering policies please read our ' +
                    'documentation: https://go.microsoft.com/fwlink/?linkid=2198766',
                type: null,
                param: 'prompt',
                code: 'content_filter',
                status: 400,
                innererror: {
                    code: 'ResponsibleAIPolicyViolation',
                    content_filter_result: {
                        hate: { filtered: false, severity: 'safe' },
                        jailbreak: { filtered: false, detected: false },
                        self_harm: { filtered: false, severity: 'safe' },
                        sexual: { filtered: false, severity: 'safe' },
                        violence: { filtered: true, severity: 'medium' },
                    },
                },
            },
        });
        return true;
    case 'context-too-long':
        sendJSON(res, 400, {
            error: {
                message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. " +
                    'Please reduce the length of the messages.',
                type: 'invalid_request_error',
                param: 'messages',
                code: 'context_length_exceeded',
            },
        });
        return true;
    case 'fault-429':
        azureError(res, sendJSON, 429, '429',
            `Requests to the ${operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit ` +
            'of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: ' +
            'https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.',
            { 'retry-after': '7', 'retry-after-ms': '7000' });
        return true;
    case 'overloaded':
        azureError(res, sendJSON, 503, 'ServiceUnavailable',
            'The service is temporarily unable to process your request. Please try again later.');
        return true;
    default:
        return false;
    }
}

/* Rewrites the OpenAI fake's SSE events on their way out: Azure's
 * prompt-filter chunk first, and the bad-event / stream-error faults. */
function shapeStream(res, fault) {
    const origWrite = res.write.bind(res);
    const origEnd = res.end.bind(res);
    let events = 0;
    let finished = false;
    const prelude = {
        choices: [], created: 0, id: '', model: '', object: '',
        prompt_filter_results: [{
            prompt_index: 0,
            content_filter_results: {
                hate: { filtered: false, severity: 'safe' },
                self_harm: { filtered: false, severity: 'safe' },
                sexual: { filtered: false, severity: 'safe' },
                violence: { filtered: false, severity: 'safe' },
            },
        }],
    };
    res.write = (chunk, ...rest) => {
        if (finished) return true;
        events++;
        if (events === 1) origWrite(`data: ${JSON.stringify(prelude)}\n\n`);
        if (fault === 'bad-event' && events === 1) {
            return origWrite('data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{"delta":\n\n', ...rest);
        }
        if (fault === 'stream-error' && events === 2) {
            // After two events on the wire (prelude + role chunk): the in-band error, then the end.
            finished = true;
            origWrite(`data: ${JSON.stringify({ error: {
                message: 'The server had an error processing your request (fake upstream stream-error).',
                type: 'server_error', param: null, code: null,
            } })}\n\n`);
            origEnd();
            return true;
        }
        return origWrite(chunk, ...rest);
    };
    res.end = (...args) => (finished ? res : origEnd(...args));
}

export function handle(ctx) {
    const { req, res, url, raw, entry, helpers } = ctx;
    const dep = DEPLOYMENT_RE.exec(url.pathname);
    const v1Target = V1_ROUTES[`${req.method} ${url.pathname}`];
    const notFound = () => azureError(res, helpers.sendJSON, 404, '404', 'Resource not found');
    // openai.mjs keeps every header but authorization in the log; the key must not be there either.
    delete entry.headers['api-key'];

    if (RESPONSES_ROUTES.has(`${req.method} ${url.pathname}`)) {
        if (!checkAuth(ctx, url.pathname.startsWith('/openai/v1/'))) return;
        if (url.pathname === '/openai/responses' && !url.searchParams.get('api-version')) {
            notFound();
            return;
        }
        // Azure checked the key; the Responses fake answers as OpenAI would.
        const authOk = entry.auth_ok;
        responsesHandle({ ...ctx, url: new URL('/v1/responses', 'http://fake'), apiKey: null });
        entry.auth_ok = authOk;
        return;
    }
    if (!dep && !v1Target) {
        if (!checkAuth(ctx, url.pathname.startsWith('/openai/v1/'))) return;
        notFound();
        return;
    }
    let body = null;
    try {
        body = JSON.parse(raw);
    } catch {
        body = null;
    }
    const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
    if (isObject) {
        entry.body = body;
        entry.stream = body.stream === true;
        if (typeof body.model === 'string') entry.model = body.model;
    }
    if (dep) entry.model = decodeURIComponent(dep[1]);
    if (!checkAuth(ctx, !dep)) return;

    if (dep) {
        if (req.method !== 'POST' || !url.searchParams.get('api-version')) {
            notFound();
            return;
        }
    }
    const target = dep ? `/v1/${dep[2]}` : v1Target;
    const model = entry.model;
    const isChat = target === '/v1/chat/completions';
    if (target !== '/v1/models' &&
        sendAzureFault(res, helpers.sendJSON, model, isChat ? 'ChatCompletions_Create' : 'Embeddings_Create')) {
        return;
    }
    if (isChat && isObject && body.stream === true) shapeStream(res, model);
    // The deployment name becomes the model, so the OpenAI fake's faults apply to it.
    const forwarded = dep && isObject ? JSON.stringify({ ...body, model }) : raw;
    helpers.openai(target, forwarded);
}
