// Apache 2.4 + mod_proxy_fcgi with the shipped httpd-conf/apache-proxy-fcgi.conf
// in front of a standalone sluice on a unix socket. The web server checks of
// lib/webserver-suite.mjs; the graceful reload is `apachectl graceful`
// (SIGUSR1): children finish the requests they serve, new ones take over.

import { webServerSuite } from './lib/webserver-suite.mjs';
import { SERVERS } from './lib/webservers.mjs';

webServerSuite(SERVERS['apache-proxy-fcgi'].title, SERVERS['apache-proxy-fcgi']);
