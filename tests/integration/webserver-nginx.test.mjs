// nginx with the shipped httpd-conf/nginx.conf in front of a standalone
// sluice on a unix socket. The web server checks of lib/webserver-suite.mjs;
// the graceful reload is SIGHUP to nginx's master: new workers read the
// config again, old ones finish the requests they are serving.

import { webServerSuite } from './lib/webserver-suite.mjs';
import { SERVERS } from './lib/webservers.mjs';

webServerSuite(SERVERS['nginx'].title, SERVERS['nginx']);
