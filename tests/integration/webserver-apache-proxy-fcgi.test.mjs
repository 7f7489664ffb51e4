// Apache 2.4 + mod_proxy_fcgi with the shipped httpd-conf/apache-proxy-fcgi.conf
// in front of a standalone sluice on a unix socket. The web server checks of
// lib/webserver-suite.mjs; the graceful reload is `apachectl graceful`
// (SIGUSR1): children finish the requests they serve, new ones take over.

import fs from 'node:fs';
import path from 'node:path';
import { webServerSuite } from './lib/webserver-suite.mjs';
import { renderLighttpdConf as render } from './lib/harness.mjs';
import { startStandaloneSluice } from './lib/frontend.mjs';
import { startApache } from './lib/apache.mjs';
import { REPO_ROOT } from './lib/procs.mjs';

const sluiceAnswers = async (rootURL) => {
    const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200 && res.headers.get('x-request-id') !== null;
};

webServerSuite('Apache + mod_proxy_fcgi in front of standalone sluice (httpd-conf/apache-proxy-fcgi.conf)', {
    // Apache notices a client that left only when it next writes to it, after
    // two writes (docs/webservers.md); events and heartbeats come every 300 ms.
    abortLimitMs: 2000,
    async start({ dir, config }) {
        const sock = path.join(dir, 'sluice.sock');
        const sl = await startStandaloneSluice({ dir, config, listen: sock, args: ['--socket-mode', '0666'] });
        const site = path.join(dir, 'sluice-apache.conf');
        const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'apache-proxy-fcgi.conf'), 'utf8');
        fs.writeFileSync(site, render(template, { SOCKET: sock }));
        let ap;
        try {
            ap = await startApache({ dir, modules: ['proxy', 'proxy_fcgi'], include: site, ready: sluiceAnswers });
        } catch (e) {
            await sl.stop();
            throw e;
        }
        return {
            rootURL: ap.rootURL,
            log: () => `${ap.log()}--- sluice ---\n${sl.log().slice(-4000)}`,
            stop: async () => {
                await ap.stop();
                await sl.stop();
            },
            reload: async () => ap.graceful(),
        };
    },
});
