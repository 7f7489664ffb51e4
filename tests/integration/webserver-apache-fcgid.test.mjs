// Apache 2.4 + mod_fcgid with the shipped httpd-conf/apache-fcgid.conf:
// Apache spawns the sluice processes itself (one request per process). The
// web server checks of lib/webserver-suite.mjs; the graceful reload is
// `apachectl graceful` (SIGUSR1). Every sluice process mod_fcgid started is
// gone once Apache has stopped.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { webServerSuite } from './lib/webserver-suite.mjs';
import { renderLighttpdConf as render } from './lib/harness.mjs';
import { startApache } from './lib/apache.mjs';
import { REPO_ROOT, isAlive, cmdlineOf, stopPids, sleep } from './lib/procs.mjs';

const sluiceAnswers = async (rootURL) => {
    const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200 && res.headers.get('x-request-id') !== null;
};

/* Pids of the sluice processes running the given binary. */
function sluicePids(bin) {
    return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
        .filter((p) => (cmdlineOf(p) ?? [])[0] === bin);
}

webServerSuite('Apache + mod_fcgid spawning sluice (httpd-conf/apache-fcgid.conf)', {
    // Apache notices a client that left only when it next writes to it, after
    // two writes (docs/webservers.md); events and heartbeats come every 300 ms.
    abortLimitMs: 2000,
    async start({ dir, config, sluiceBin }) {
        const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'apache-fcgid.conf'), 'utf8');
        // mod_fcgid keeps its process table and sockets here (Debian's
        // default is /var/lib/apache2/fcgid).
        const fcgidDir = path.join(dir, 'fcgid');
        fs.mkdirSync(fcgidDir, { mode: 0o777 });
        fs.chmodSync(fcgidDir, 0o777);
        const wrapper = path.join(dir, 'sluice-apache.conf');
        fs.writeFileSync(wrapper, [
            `FcgidIPCDir ${fcgidDir}/sock`,
            `FcgidProcessTableFile ${fcgidDir}/shm`,
            render(template, { SLUICE: sluiceBin, CONFIG: config, MAXPROCS: 8 }),
        ].join('\n'));
        const before = new Set(sluicePids(sluiceBin));
        const ours = () => sluicePids(sluiceBin).filter((p) => !before.has(p));
        const ap = await startApache({ dir, modules: ['fcgid'], include: wrapper, ready: sluiceAnswers });
        return {
            rootURL: ap.rootURL,
            log: ap.log,
            stop: async () => {
                const spawned = ours();
                await ap.stop();
                // mod_fcgid's process manager stops its processes with Apache.
                let left = spawned;
                for (let i = 0; i < 100 && left.length; i++) {
                    await sleep(100);
                    left = left.filter(isAlive);
                }
                await stopPids(left, sluiceBin, 2000);
                assert.deepEqual(left, [], `sluice processes left running after Apache stopped\n${ap.log()}`);
            },
            reload: async () => ap.graceful(),
        };
    },
});
