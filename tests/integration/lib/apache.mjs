// A real Apache 2.4 (Debian's apache2 package) for the web server tests:
// a minimal top-level configuration of our own (loopback port, pid file,
// logs, lock files under the test dir, event MPM, the modules asked for)
// that Includes a rendered httpd-conf/ file unchanged. Runs in the
// foreground under a pid we hold; as root, children run as www-data.
//
//   const ap = await startApache({ dir, modules: ['proxy', 'proxy_fcgi'], include: file, ready });
//   ap.rootURL; ap.graceful(); ap.log(); await ap.stop();

import fs from 'node:fs';
import path from 'node:path';
import { spawnLogged, stopChild, waitFor, freePort } from './procs.mjs';

const APACHE = process.env.APACHE_BIN || '/usr/sbin/apache2';
const MODULES_DIR = '/usr/lib/apache2/modules';

export async function startApache({ dir, modules, include, ready, name = 'apache' }) {
    const f = (n) => path.join(dir, `${name}-${n}`);
    const port = await freePort();
    const load = ['mpm_event', 'authz_core', 'authn_core', 'mime', 'alias', 'env', ...modules]
        .map((m) => `LoadModule ${m}_module ${MODULES_DIR}/mod_${m}.so`);
    const conf = [
        `ServerRoot ${dir}`,
        'ServerName 127.0.0.1',
        `Listen 127.0.0.1:${port}`,
        `PidFile ${f('httpd.pid')}`,
        `DefaultRuntimeDir ${dir}`,
        `Mutex file:${dir} default`,
        `ErrorLog ${f('error.log')}`,
        'LogLevel info',
        'TypesConfig /etc/mime.types',
        ...load,
        ...(process.getuid() === 0 ? ['User www-data', 'Group www-data'] : []),
        // Debian's stock apache2.conf denies the file system by default.
        '<Directory />', '    AllowOverride None', '    Require all denied', '</Directory>',
        // Small on purpose: a graceful restart replaces every child.
        'StartServers 1', 'ServerLimit 4', 'ThreadsPerChild 25', 'MaxRequestWorkers 100',
        `Include ${include}`,
        '',
    ].join('\n');
    fs.writeFileSync(f('httpd.conf'), conf);
    const child = spawnLogged(APACHE, ['-f', f('httpd.conf'), '-DFOREGROUND'], { logFile: f('stderr.log') });
    const read = (n) => { try { return fs.readFileSync(f(n), 'utf8'); } catch { return ''; } };
    const log = () => `--- ${name} error log ---\n${read('error.log').slice(-8000)}--- ${name} stderr ---\n${read('stderr.log')}`;
    let exited = null;
    child.exited.then((x) => { exited = x; });
    const rootURL = `http://127.0.0.1:${port}`;
    const ap = {
        child, port, rootURL, log,
        /* apachectl graceful: children finish what they serve, then go. */
        graceful: () => { process.kill(child.pid, 'SIGUSR1'); },
        stop: () => stopChild(child, 10000),
    };
    try {
        await waitFor(async () => {
            if (exited) throw new Error(`apache exited: ${JSON.stringify(exited)}\n${log()}`);
            return ready(rootURL);
        }, { timeoutMs: 20000, intervalMs: 100, describe: () => `apache at ${rootURL}\n${log()}` });
    } catch (e) {
        await ap.stop();
        throw e;
    }
    return ap;
}
