// Caddy with the shipped httpd-conf/Caddyfile in front of a standalone
// sluice on a unix socket. The web server checks of lib/webserver-suite.mjs;
// the graceful reload is `caddy reload --force` through Caddy's admin
// endpoint (on a free loopback port here): the new configuration takes the
// listener, the old server finishes its running requests, even past the
// global grace_period (1 s here, shorter than the stream: it only bounds a
// stop).

import { webServerSuite } from './lib/webserver-suite.mjs';
import { SERVERS } from './lib/webservers.mjs';

webServerSuite(SERVERS['caddy'].title, SERVERS['caddy']);
