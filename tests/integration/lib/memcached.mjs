// A private memcached for one test file: Debian's memcached on a free
// loopback port (TCP only, no UDP), its log under the caller's temp dir,
// stopped by pid.
//
//   const mc = await startMemcached({ dir });    // { dir, port } to take a given port
//   mc.server                        // "127.0.0.1:PORT", for memcached_servers
//   await mc.command('version')      // one text-protocol line in, the reply out
//   await mc.stop()
//
// As root, memcached needs -u root. The binary is $MEMCACHED_BIN, else
// /usr/bin/memcached; missing is an error naming the package, never a skip.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnLogged, stopChild, waitFor, freePort } from './procs.mjs';

const BIN = process.env.MEMCACHED_BIN || '/usr/bin/memcached';

/* Sends one command line; resolves what came back until a line matching
 * `until` (default: any complete line). */
export function memcachedCommand(port, line, { until = /\r\n$/, timeoutMs = 3000 } = {}) {
    return new Promise((resolve, reject) => {
        let buf = '';
        const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\r\n`));
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error(`memcached: no answer to ${line.split(' ')[0]}`));
        }, timeoutMs);
        s.on('data', (c) => {
            buf += c.toString('utf8');
            if (until.test(buf)) {
                clearTimeout(timer);
                s.end();
                resolve(buf);
            }
        });
        s.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
    });
}

/* port: a given one (e.g. to restart a stopped server where the gateway
 * expects it), else a free one. */
export async function startMemcached({ dir, name = 'memcached', memoryMb = 16, readyTimeoutMs = 10000, port: given = 0 } = {}) {
    try {
        fs.accessSync(BIN, fs.constants.X_OK);
    } catch {
        throw new Error(`memcached not found at ${BIN}: install Debian's memcached (apt-get install ` +
            'memcached); the tests need a real server and never skip');
    }
    const logFile = path.join(dir, `${name}.log`);
    const log = () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
    let lastErr = null;
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = given || await freePort();
        const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(memoryMb), '-t', '2',
            ...(process.getuid && process.getuid() === 0 ? ['-u', 'root'] : [])];
        const child = spawnLogged(BIN, args, { logFile, cwd: dir });
        let exited = null;
        child.exited.then((x) => { exited = x; });
        try {
            await waitFor(async () => {
                if (exited) throw Object.assign(new Error(`memcached exited: ${JSON.stringify(exited)}`), { fatal: true });
                return /^VERSION /.test(await memcachedCommand(port, 'version', { timeoutMs: 1000 }));
            }, { timeoutMs: readyTimeoutMs, intervalMs: 50, describe: () => `memcached on port ${port}\n${log()}` });
            return {
                child, port, host: '127.0.0.1', server: `127.0.0.1:${port}`, logFile, log,
                command: (line, o) => memcachedCommand(port, line, o),
                stop: () => stopChild(child, 5000),
            };
        } catch (e) {
            lastErr = e;
            await stopChild(child, 3000);
            if (given || !/Address already in use|bind\(\)/i.test(log())) break;
        }
    }
    throw new Error(`memcached did not come up: ${lastErr.message}\n${log()}`);
}
