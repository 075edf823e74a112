#!/bin/sh
# Rosetta gives the task its interface port as BASE_PORT (custom interface port software).
exec httpd -f -p "${BASE_PORT:-8080}" -h /www
