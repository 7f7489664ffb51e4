// lighttpd with the shipped httpd-conf/lighttpd.conf: lighttpd spawns the
// sluice responders itself (mod_fastcgi bin-path). The web server checks of
// lib/webserver-suite.mjs; the graceful reload is lighttpd's SIGUSR1.

import { webServerSuite } from './lib/webserver-suite.mjs';
import { SERVERS } from './lib/webservers.mjs';

webServerSuite(SERVERS['lighttpd'].title, SERVERS['lighttpd']);
