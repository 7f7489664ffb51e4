// Apache 2.4 + mod_fcgid with the shipped httpd-conf/apache-fcgid.conf:
// Apache spawns the sluice processes itself (one request per process). The
// web server checks of lib/webserver-suite.mjs; the graceful reload is
// `apachectl graceful` (SIGUSR1). Every sluice process mod_fcgid started is
// gone once Apache has stopped.

import { webServerSuite } from './lib/webserver-suite.mjs';
import { SERVERS } from './lib/webservers.mjs';

webServerSuite(SERVERS['apache-fcgid'].title, SERVERS['apache-fcgid']);
