#!/bin/sh
# Thin wrapper: bench/run.sh [options]  (see bench/run.py --help)
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
