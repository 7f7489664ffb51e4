// nginx with the shipped httpd-conf/nginx.conf in front of a standalone
// sluice on a unix socket. The web server checks of lib/webserver-suite.mjs;
// the graceful reload is SIGHUP to nginx's master: new workers read the
// config again, old ones finish the requests they are serving.

import fs from 'node:fs';
import path from 'node:path';
import { webServerSuite } from './lib/webserver-suite.mjs';
import { renderLighttpdConf as render } from './lib/harness.mjs';
import { startStandaloneSluice } from './lib/frontend.mjs';
import { REPO_ROOT, spawnLogged, stopChild, waitFor, freePort } from './lib/procs.mjs';

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

/* The main configuration around the shipped server block: everything nginx
 * writes goes under dir. */
function mainConf(dir, site) {
    const f = (n) => path.join(dir, n);
    return [
        'daemon off;',
        'master_process on;',
        'worker_processes 2;',
        process.getuid() === 0 ? 'user www-data;' : '',
        `pid ${f('nginx.pid')};`,
        `error_log ${f('nginx-error.log')} info;`,
        'events { worker_connections 256; }',
        'http {',
        '    include /etc/nginx/mime.types;',
        `    access_log ${f('nginx-access.log')};`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${f(`nginx-${t}-temp`)};`),
        `    include ${site};`,
        '}',
        '',
    ].join('\n');
}

webServerSuite('nginx in front of standalone sluice (httpd-conf/nginx.conf)', {
    async start({ dir, config }) {
        const f = (n) => path.join(dir, n);
        const sock = f('sluice.sock');
        const sl = await startStandaloneSluice({ dir, config, listen: sock, args: ['--socket-mode', '0666'] });
        const port = await freePort();
        const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'nginx.conf'), 'utf8');
        fs.writeFileSync(f('nginx-site.conf'), render(template, { BIND: '127.0.0.1', PORT: port, SOCKET: sock }));
        fs.writeFileSync(f('nginx-main.conf'), mainConf(dir, f('nginx-site.conf')));
        // "include fastcgi_params" is relative to the main config's directory,
        // /etc/nginx in a real install.
        fs.symlinkSync('/etc/nginx/fastcgi_params', f('fastcgi_params'));
        const child = spawnLogged(NGINX, ['-c', f('nginx-main.conf'), '-p', dir], { logFile: f('nginx-stderr.log') });
        const read = (n) => { try { return fs.readFileSync(f(n), 'utf8'); } catch { return ''; } };
        const log = () => `--- nginx error log ---\n${read('nginx-error.log')}--- nginx stderr ---\n` +
            `${read('nginx-stderr.log')}--- sluice ---\n${sl.log().slice(-4000)}`;
        const rootURL = `http://127.0.0.1:${port}`;
        let exited = null;
        child.exited.then((x) => { exited = x; });
        const stop = async () => {
            await stopChild(child, 8000);
            await sl.stop();
        };
        try {
            await waitFor(async () => {
                if (exited) throw new Error(`nginx exited: ${JSON.stringify(exited)}\n${log()}`);
                const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
                await res.arrayBuffer();
                return res.status === 200 && res.headers.get('x-request-id') !== null;
            }, { timeoutMs: 20000, intervalMs: 100, describe: () => `nginx and sluice at ${rootURL}\n${log()}` });
        } catch (e) {
            await stop();
            throw e;
        }
        return {
            rootURL,
            log,
            stop,
            reload: async () => { process.kill(child.pid, 'SIGHUP'); },
        };
    },
});
